package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// testPartitions is the partition count of every test topic: enough that
// different aggregates spread over partitions (and over two workers).
const testPartitions = 4

// wait bounds every wait of a test for the runtime to do something.
const wait = 15 * time.Second

// testKey signs and verifies the tests' commands.
var testKey = Key(bytes.Repeat([]byte("k"), MinKeyBytes))

// testActor issues every command of the tests.
const testActor = "7f0c6a1e-0000-4000-8000-000000000001"

// harness is one test's auth service: a fresh database with the journal and
// status schemas, an in-process broker with the auth topics, and helpers to
// submit commands, run workers and relays, and read what they wrote.
type harness struct {
	t       testing.TB
	ctx     context.Context
	pool    *pgxpool.Pool
	brokers []string
	key     Key
	reg     *Registry
	journal *Journal
	status  *StatusStore
	admin   *kafkago.Client // for offsets and group state
	logs    *logBuffer
	log     *slog.Logger

	busMu sync.Mutex
	bus   *Bus
}

// newHarness sets up a harness; the topics named in absent are not
// created, to simulate their outage.
func newHarness(t testing.TB, absent ...string) *harness {
	t.Helper()
	h := &harness{t: t, ctx: t.Context(), key: testKey, logs: &logBuffer{}}
	h.log = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h.pool = testkit.PostgresPool(t)
	if err := postgres.Migrate(h.ctx, h.pool, Migrations(auth.Service)); err != nil {
		t.Fatal(err)
	}
	h.brokers = testkit.Kafka(t)
	tr := &kafkago.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	h.admin = &kafkago.Client{Addr: kafkago.TCP(h.brokers...), Transport: tr}
	reg, err := NewRegistry(auth.Definitions()...)
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, name := range append([]string{CommandTopic(auth.Service), DLQTopic(auth.Service)}, aggregateTopics(reg)...) {
		if !slices.Contains(absent, name) {
			topics = append(topics, name)
		}
	}
	h.createTopics(topics...)
	h.reg, h.journal, h.status = reg, NewJournal(auth.Service, reg), NewStatusStore(h.pool)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("component logs:\n%s", h.logs)
		}
	})
	return h
}

// aggregateTopics lists the event topics of the registry's aggregates.
func aggregateTopics(reg *Registry) []string {
	var out []string
	for _, d := range reg.Definitions() {
		out = append(out, d.Topic())
	}
	return out
}

// createTopics creates topics with testPartitions partitions.
func (h *harness) createTopics(names ...string) {
	h.t.Helper()
	var topics []kafka.Topic
	for _, name := range names {
		topics = append(topics, kafka.Topic{Name: name, Partitions: testPartitions})
	}
	if err := kafka.EnsureTopics(h.ctx, h.brokers, topics); err != nil {
		h.t.Fatal(err)
	}
}

// def returns the definition of an auth aggregate type ("role").
func (h *harness) def(typ string) *aggregates.Definition {
	d, ok := h.reg.Aggregate(auth.Service, typ)
	if !ok {
		h.t.Fatalf("no aggregate auth.%s", typ)
	}
	return d
}

// command returns a fresh envelope carrying cmd for aggregate id.
func (h *harness) command(id string, cmd aggregates.Command) *Envelope {
	payload, err := json.Marshal(cmd)
	if err != nil {
		h.t.Fatal(err)
	}
	return &Envelope{
		ID: NewID(), Type: auth.Service + "." + cmd.CommandType(), AggregateID: id,
		Actor: Actor{UserID: testActor}, IssuedAt: time.Now().UTC(), CorrelationID: NewID(), Payload: payload,
	}
}

// expecting sets the envelope's expected version.
func expecting(env *Envelope, v int64) *Envelope {
	env.ExpectedVersion = &v
	return env
}

// send produces env through the gateway's bus. It may be called from any
// goroutine.
func (h *harness) send(env *Envelope) {
	h.busMu.Lock()
	if h.bus == nil {
		b, err := NewBus(BusConfig{Brokers: h.brokers, Key: h.key, Logger: h.log})
		if err != nil {
			h.busMu.Unlock()
			h.t.Errorf("bus: %v", err)
			return
		}
		h.bus = b
		h.t.Cleanup(func() { _ = b.Close() })
	}
	b := h.bus
	h.busMu.Unlock()
	if err := b.Send(h.ctx, env); err != nil {
		h.t.Errorf("send %s: %v", env.ID, err)
	}
}

// submit does what the gateway does: record the pending row, then
// produce. It may be called from any goroutine.
func (h *harness) submit(env *Envelope) {
	if h.pending(env) {
		h.send(env)
	}
}

// pending records env's pending row as the gateway does before producing
// it, and reports whether that worked. It may be called from any goroutine.
func (h *harness) pending(env *Envelope) bool {
	if _, _, err := h.status.InsertPending(h.ctx, Submission{Envelope: env, RequestHash: []byte(env.ID)}); err != nil {
		h.t.Errorf("insert pending %s: %v", env.ID, err)
		return false
	}
	return true
}

// do submits env and returns its decided status.
func (h *harness) do(env *Envelope) *Status {
	h.t.Helper()
	h.submit(env)
	return h.decided(env.ID)
}

// rawMessage is env as a Kafka record keyed by its aggregate, signed with
// key (unsigned when key is nil), for producing around the bus.
func rawMessage(env *Envelope, key Key) kafkago.Message {
	b, err := json.Marshal(env)
	if err != nil {
		panic(err)
	}
	return signedValue(env.AggregateID, b, key)
}

// signedValue is a command record with an arbitrary value.
func signedValue(partitionKey string, value []byte, key Key) kafkago.Message {
	m := kafkago.Message{Key: []byte(partitionKey), Value: value}
	if key != nil {
		m.Headers = []kafkago.Header{{Key: SignatureHeader, Value: []byte(key.Sign(value))}}
	}
	return m
}

// produce writes records to the command topic with a plain kafka-go writer,
// bypassing the bus, in one call: records with one key stay in order.
func (h *harness) produce(msgs ...kafkago.Message) {
	h.t.Helper()
	w := kafka.NewWriter(h.brokers, CommandTopic(auth.Service))
	defer w.Close()
	if err := w.WriteMessages(h.ctx, msgs...); err != nil {
		h.t.Fatal(err)
	}
}

// newWorker returns a worker of the auth service; adjust may change its
// config.
func (h *harness) newWorker(adjust func(*WorkerConfig)) *Worker {
	h.t.Helper()
	cfg := WorkerConfig{Service: auth.Service, Brokers: h.brokers, Pool: h.pool, Registry: h.reg, Key: h.key, Logger: h.log}
	if adjust != nil {
		adjust(&cfg)
	}
	w, err := NewWorker(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return w
}

// newRelay returns a relay of the auth service with a fast poll and a
// data schema for every event type.
func (h *harness) newRelay() *Relay { return h.newRelayWith(nil) }

// newRelayWith returns a relay whose metrics go to m (none when nil).
func (h *harness) newRelayWith(m prometheus.Registerer) *Relay {
	h.t.Helper()
	r, err := NewRelay(RelayConfig{
		Service: auth.Service, Brokers: h.brokers, Pool: h.pool, Registry: h.reg, Logger: h.log,
		DataSchema: testDataSchema, PollInterval: 50 * time.Millisecond, Metrics: m,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func testDataSchema(ceType string) string { return "https://schemas.test/events/" + ceType + ".json" }

// running is a component started by start.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs c until ctx ends or stop is called; the test's cleanup stops
// it and fails the test if Run returned an error.
func (h *harness) start(ctx context.Context, c interface{ Run(context.Context) error }) *running {
	ctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := c.Run(ctx); err != nil {
			h.t.Errorf("%T.Run: %v", c, err)
		}
	}()
	h.t.Cleanup(r.stop)
	return r
}

// stop cancels the component and waits until its Run returned.
func (r *running) stop() {
	r.cancel()
	<-r.done
}

// stopped reports whether Run has returned.
func (r *running) stopped() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// startWorker starts a default worker.
func (h *harness) startWorker() *running { return h.start(h.ctx, h.newWorker(nil)) }

// decided waits until the command has a status other than pending.
func (h *harness) decided(id string) *Status {
	h.t.Helper()
	var st *Status
	testkit.Eventually(h.t, wait, func() bool {
		var err error
		st, err = h.status.Get(h.ctx, id)
		return err == nil && st.Status != StatusPending
	}, "command %s is decided", id)
	return st
}

// statusOf returns a command's current status.
func (h *harness) statusOf(id string) *Status {
	h.t.Helper()
	st, err := h.status.Get(h.ctx, id)
	if err != nil {
		h.t.Fatalf("status of %s: %v", id, err)
	}
	return st
}

// wantOutcome fails unless st has the given status and code ("" for none).
func wantOutcome(t testing.TB, st *Status, status, code string) {
	t.Helper()
	got := ""
	if st.Code != nil {
		got = *st.Code
	}
	if st.Status != status || got != code {
		reason := ""
		if st.Reason != nil {
			reason = *st.Reason
		}
		t.Errorf("command %s (%s): got %s/%q (%s), want %s/%q", st.ID, st.Type, st.Status, got, reason, status, code)
	}
}

// workerGroup is the consumer group of the auth worker.
var workerGroup = WorkerGroup(auth.Service)

// committed returns the worker group's committed offset of every command
// partition (-1 where none) and the partitions' end offsets.
func (h *harness) committed() (committed, end map[int]int64) {
	h.t.Helper()
	topic := CommandTopic(auth.Service)
	got, err := kafka.CommittedOffsets(h.ctx, h.brokers, workerGroup, topic)
	if err != nil {
		h.t.Fatal(err)
	}
	_, end, err = kafka.Offsets(h.ctx, h.brokers, topic)
	if err != nil {
		h.t.Fatal(err)
	}
	committed = map[int]int64{}
	for p := range end {
		committed[p] = -1
		if c, ok := got[p]; ok {
			committed[p] = c
		}
	}
	return committed, end
}

// drained waits until the worker group has committed every command
// produced so far: each of them is decided, DLQ'd or refused for good.
func (h *harness) drained() {
	h.t.Helper()
	testkit.Eventually(h.t, wait, func() bool {
		committed, end := h.committed()
		for p, e := range end {
			if e > 0 && committed[p] != e {
				return false
			}
		}
		return true
	}, "the worker group commits every command")
}

// events returns an aggregate's journal.
func (h *harness) events(id string) []JournalEvent {
	h.t.Helper()
	evs, err := h.journal.History(h.ctx, h.pool, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// eventTypes returns the types of an aggregate's events in version order.
func (h *harness) eventTypes(id string) []string {
	var out []string
	for _, e := range h.events(id) {
		out = append(out, e.Type)
	}
	return out
}

// count runs a SELECT count(*) query.
func (h *harness) count(sql string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.pool.QueryRow(h.ctx, sql, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// appendEvents appends events to an aggregate through Journal.Append in
// its own transaction, as the worker would, and returns the rows written.
func (h *harness) appendEvents(def *aggregates.Definition, id string, events ...aggregates.Event) []JournalEvent {
	h.t.Helper()
	var rows []JournalEvent
	err := pgx.BeginFunc(h.ctx, h.pool, func(tx pgx.Tx) error {
		agg, err := h.journal.Load(h.ctx, tx, def, id)
		if err != nil {
			return err
		}
		meta := Metadata{CommandID: NewID(), CorrelationID: NewID(), Actor: testActor}
		meta.CausationID = meta.CommandID
		rows, err = h.journal.Append(h.ctx, tx, agg, events, meta, time.Now())
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return rows
}

// consume reads n records of topic from its start, failing the test if
// they do not arrive in time. Records of one partition come in order.
func (h *harness) consume(topic string, n int) []*kgo.Record {
	h.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		h.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(h.ctx, wait)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			h.t.Fatalf("%s: got %d records, want %d", topic, len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// headers returns a record's headers as a map, failing on a repeated key.
func headers(t testing.TB, r *kgo.Record) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, hd := range r.Headers {
		if _, dup := m[hd.Key]; dup {
			t.Errorf("header %s appears twice", hd.Key)
		}
		m[hd.Key] = string(hd.Value)
	}
	return m
}

// logBuffer collects the components' JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records returns the log records for which match is true.
func (b *logBuffer) records(match func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && match(rec) {
			out = append(out, rec)
		}
	}
	return out
}
