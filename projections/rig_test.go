package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// The test projection counts "ptest.Ticked.v1" events of the
// "ptest.counter" aggregate, and logs every (aggregate, version) it applies,
// so a test can see exactly what was applied and how often.
const (
	testService = "ptest"
	testTopic   = "ptest.counter"
	tickedType  = "ptest.Ticked.v1"
)

type ticked struct {
	N int64 `json:"n"`
}

func (ticked) EventType() string { return "Ticked" }

type tick struct{}

func (tick) CommandType() string { return "Tick" }

// counterRegistry is the decoder of the test aggregate's events.
func counterRegistry(t testing.TB) *commands.Registry {
	t.Helper()
	reg, err := commands.NewRegistry(aggregates.Define(aggregates.Spec[int64]{
		Service:  testService,
		Type:     "counter",
		Commands: []aggregates.Command{tick{}},
		Events:   []aggregates.Event{ticked{}},
		Creates:  func(aggregates.Command) bool { return false },
		Decide: func(n int64, _ aggregates.Command, _ aggregates.Context) ([]aggregates.Event, error) {
			return []aggregates.Event{ticked{N: n + 1}}, nil
		},
		Evolve: func(_ int64, e aggregates.Event) int64 { return e.(ticked).N },
	}))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func counterProjection() *Projection {
	return &Projection{
		Name:   "counter",
		Schema: testService,
		Topics: []string{testTopic},
		Migrations: []postgres.Migration{{Component: testService, Version: 1, SQL: `
CREATE TABLE ptest.counts (
	aggregate_id uuid PRIMARY KEY,
	applied      bigint NOT NULL,
	last_version bigint NOT NULL
);
CREATE TABLE ptest.log (
	seq          bigserial PRIMARY KEY,
	aggregate_id uuid NOT NULL,
	version      bigint NOT NULL
);`}},
		Apply: applyTicked,
	}
}

// tickSQL logs (aggregate, version) $1, $2 and counts it: one round trip
// per event, like a typical read-model upsert.
const tickSQL = `WITH logged AS (INSERT INTO ptest.log (aggregate_id, version) VALUES ($1, $2))
	INSERT INTO ptest.counts AS c (aggregate_id, applied, last_version) VALUES ($1, 1, $2)
	ON CONFLICT (aggregate_id) DO UPDATE SET applied = c.applied + 1, last_version = EXCLUDED.last_version`

func applyTicked(b *Batch, e *Event) error {
	b.Queue(tickSQL, e.AggregateID, e.Version)
	return nil
}

// rig is one test's world: a fresh database migrated for the test
// projection, an in-process broker with its topic, and a writer.
type rig struct {
	t        testing.TB
	pool     *pgxpool.Pool
	brokers  []string
	writer   *kafkago.Writer
	proj     *Projection
	reg      *commands.Registry
	failures *failureLog
	// BatchSize for the projectors the rig starts (0: the default).
	batchSize int
	// splitAbove is the batch size from which a batch is applied in
	// parallel parts (0: the projector's default).
	splitAbove int
}

func newRig(t testing.TB, partitions int) *rig {
	t.Helper()
	r := &rig{
		t:        t,
		pool:     testkit.PostgresPool(t),
		brokers:  testkit.Kafka(t),
		proj:     counterProjection(),
		reg:      counterRegistry(t),
		failures: &failureLog{},
	}
	ctx := timeout(t, 30*time.Second)
	if err := kafka.EnsureTopics(ctx, r.brokers, []kafka.Topic{{Name: testTopic, Partitions: partitions}}); err != nil {
		t.Fatal(err)
	}
	r.migrate(r.proj.AllMigrations()...)
	r.writer = kafka.NewWriter(r.brokers, "")
	t.Cleanup(func() { _ = r.writer.Close() })
	return r
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (r *rig) migrate(ms ...postgres.Migration) {
	r.t.Helper()
	if err := postgres.Migrate(timeout(r.t, 30*time.Second), r.pool, ms); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) exec(sql string, args ...any) {
	r.t.Helper()
	if _, err := r.pool.Exec(timeout(r.t, 10*time.Second), sql, args...); err != nil {
		r.t.Fatal(err)
	}
}

// produce writes records synchronously (acks=all), in order per key.
func (r *rig) produce(msgs ...kafkago.Message) {
	r.t.Helper()
	if err := r.writer.WriteMessages(timeout(r.t, 30*time.Second), msgs...); err != nil {
		r.t.Fatalf("produce: %v", err)
	}
}

// running is a projector whose Run goroutine the test controls.
type running struct {
	*Projector
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs a projector of the rig's projection (one consumer group for
// all of them) until stop or the end of the test. configure runs before Run
// starts, so it may set hooks.
func (r *rig) start(configure ...func(*running)) *running {
	r.t.Helper()
	p, err := New(Config{
		Projection: r.proj,
		Brokers:    r.brokers,
		Pool:       r.pool,
		Decoder:    r.reg,
		Mark:       commands.QueueMarkProjected,
		Logger:     slog.New(r.failures),
		BatchSize:  r.batchSize,
		SplitAbove: r.splitAbove,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{Projector: p, cancel: cancel, done: make(chan struct{})}
	for _, c := range configure {
		c(rn)
	}
	go func() {
		defer close(rn.done)
		if err := p.Run(ctx); err != nil {
			r.t.Errorf("Run: %v", err)
		}
	}()
	r.t.Cleanup(func() { rn.stop(r.t) })
	return rn
}

// stop cancels the projector and waits for Run to return.
func (rn *running) stop(t testing.TB) {
	t.Helper()
	rn.cancel()
	rn.wait(t)
}

// wait waits for Run to return.
func (rn *running) wait(t testing.TB) {
	t.Helper()
	select {
	case <-rn.done:
	case <-time.After(30 * time.Second):
		t.Fatal("projector did not stop within 30s")
	}
}

// record builds a Kafka record the way the relay does: the event's
// canonical JSON as value and commands.EventHeaders as headers.
func record(aggregateID string, version int64, opts ...func(*commands.JournalEvent)) kafkago.Message {
	e := commands.JournalEvent{
		EventID:       uuid.NewString(),
		AggregateType: "counter",
		AggregateID:   aggregateID,
		Version:       version,
		Type:          tickedType,
		Data:          json.RawMessage(fmt.Sprintf(`{"n":%d}`, version)),
		Metadata:      commands.Metadata{CorrelationID: uuid.NewString(), Actor: "tester"},
		OccurredAt:    time.Now(),
		PrevHash:      commands.GenesisHash,
		Hash:          commands.GenesisHash,
	}
	for _, o := range opts {
		o(&e)
	}
	data, err := commands.CanonicalJSON(e.Data)
	if err != nil {
		panic(err)
	}
	return kafkago.Message{
		Topic:   testTopic,
		Key:     []byte(aggregateID),
		Value:   data,
		Headers: commands.EventHeaders(testService, &e, ""),
	}
}

func byCommand(id string) func(*commands.JournalEvent) {
	return func(e *commands.JournalEvent) { e.Metadata.CommandID = id }
}

func ofType(ceType string) func(*commands.JournalEvent) {
	return func(e *commands.JournalEvent) { e.Type = ceType }
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// logged returns the versions the test projection applied, per aggregate,
// in the order it applied them.
func (r *rig) logged() map[string][]int64 {
	r.t.Helper()
	rows, _ := r.pool.Query(timeout(r.t, 10*time.Second),
		`SELECT aggregate_id::text, version FROM ptest.log ORDER BY seq`)
	out := map[string][]int64{}
	var id string
	var v int64
	_, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error {
		out[id] = append(out[id], v)
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// waitLogged waits until every aggregate in want has at least the given
// number of logged versions.
func (r *rig) waitLogged(want map[string]int) map[string][]int64 {
	r.t.Helper()
	var got map[string][]int64
	testkit.Eventually(r.t, 30*time.Second, func() bool {
		got = r.logged()
		for id, n := range want {
			if len(got[id]) < n {
				return false
			}
		}
		return true
	}, "projection applied %v, want at least %v versions", lazy(func() any { return got }), want)
	return got
}

// lazy formats its value when the message is printed, not when it is built.
type lazy func() any

func (l lazy) String() string { return fmt.Sprint(l()) }

// versions returns 1..n.
func versions(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i) + 1
	}
	return out
}

// committed returns the group's committed offset per partition of the test
// topic (-1 where none).
func (r *rig) committed(partitions int) []int64 {
	r.t.Helper()
	tr := &kafkago.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafkago.Client{Addr: kafkago.TCP(r.brokers...), Transport: tr}
	req := &kafkago.OffsetFetchRequest{
		GroupID: "strata.projection." + r.proj.Name,
		Topics:  map[string][]int{testTopic: partitionList(partitions)},
	}
	resp, err := c.OffsetFetch(timeout(r.t, 10*time.Second), req)
	if err != nil {
		r.t.Fatalf("offset fetch: %v", err)
	}
	out := slices.Repeat([]int64{-1}, partitions)
	for _, p := range resp.Topics[testTopic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

func partitionList(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// failureLog is a slog handler that keeps the errors the projector logs.
type failureLog struct {
	mu   sync.Mutex
	errs []error
}

func (f *failureLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (f *failureLog) WithAttrs([]slog.Attr) slog.Handler           { return f }
func (f *failureLog) WithGroup(string) slog.Handler                { return f }

func (f *failureLog) Handle(_ context.Context, rec slog.Record) error {
	err := errors.New(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		if e, ok := a.Value.Any().(error); ok && a.Key == "err" {
			err = fmt.Errorf("%s: %w", rec.Message, e)
		}
		return true
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, err)
	return nil
}

// all returns the errors logged so far.
func (f *failureLog) all() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.errs)
}
