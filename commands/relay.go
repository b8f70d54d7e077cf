package commands

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/postgres"
)

// RelayConfig configures a service's relay.
type RelayConfig struct {
	Service  string
	Brokers  []string
	Pool     *pgxpool.Pool
	Registry *Registry
	Logger   *slog.Logger
	// DataSchema maps a CloudEvents type to its ce_dataschema URI.
	DataSchema func(ceType string) string
	// BatchSize bounds the rows published per round. Default 2000.
	BatchSize int
	// PollInterval is the fallback poll when no NOTIFY arrives. Default 1s.
	PollInterval time.Duration
	// Metrics, when set, gets strata_relay_publish_delay_seconds{service}:
	// how long each event waited between its append and Kafka's
	// acknowledgement.
	Metrics prometheus.Registerer
}

// Validate reports every missing setting.
func (c *RelayConfig) Validate() error {
	var errs []error
	if c.Service == "" {
		errs = append(errs, errors.New("relay: Service is required"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("relay: Brokers are required"))
	}
	if c.Pool == nil {
		errs = append(errs, errors.New("relay: Pool is required"))
	}
	if c.Registry == nil {
		errs = append(errs, errors.New("relay: Registry is required"))
	}
	return errors.Join(errs...)
}

func (c *RelayConfig) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 2000
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DataSchema == nil {
		c.DataSchema = func(string) string { return "" }
	}
}

// Relay publishes a service's journal to Kafka: the rows its outbox lists,
// in position order, each to its aggregate's topic keyed by aggregate id,
// with acks=all, then takes them off the outbox. One relay per service is
// active at a time, elected through a Postgres advisory lock; the others
// stand by.
type Relay struct {
	cfg     RelayConfig
	journal *Journal
	writer  *kafka.OrderedWriter
	log     *slog.Logger
	delay   prometheus.Observer // nil without RelayConfig.Metrics
	// read and readExcluding are unpublished's statements: the outbox's
	// first rows, and those leaving out positions $2.
	read, readExcluding string
	leader              atomic.Bool
	running             atomic.Bool
}

// NewRelay checks the config and returns a relay.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Relay{
		cfg:     cfg,
		journal: NewJournal(cfg.Service, cfg.Registry),
		writer:  kafka.NewOrderedWriter(cfg.Brokers),
		log:     cfg.Logger.With("component", "relay", "service", cfg.Service),
	}
	const read = `SELECT ` + JournalColumns + ` FROM %[1]s.outbox o JOIN %[1]s.events e USING (position)
		%[2]s ORDER BY o.position LIMIT $1`
	r.read = fmt.Sprintf(read, r.journal.schema, "")
	r.readExcluding = fmt.Sprintf(read, r.journal.schema, "WHERE o.position <> ALL($2::bigint[])")
	if cfg.Metrics != nil {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "strata_relay_publish_delay_seconds",
			Help:        "Time from the worker's decision (the event's occurred_at, on its clock) to Kafka's acknowledgement of its record (on the relay's).",
			ConstLabels: prometheus.Labels{"service": cfg.Service},
			Buckets:     prometheus.ExponentialBuckets(0.001, 1.5, 24), // 1 ms .. 11 s
		})
		if err := cfg.Metrics.Register(h); err != nil {
			return nil, fmt.Errorf("relay: register metrics: %w", err)
		}
		r.delay = h
	}
	return r, nil
}

// Ready reports whether the relay runs, as leader or standby.
func (r *Relay) Ready() bool { return r.running.Load() }

// Leader reports whether this relay holds the service's lock.
func (r *Relay) Leader() bool { return r.leader.Load() }

// Run relays until ctx is done; it returns nil on cancellation.
func (r *Relay) Run(ctx context.Context) error {
	defer r.writer.Close()
	r.running.Store(true)
	defer r.running.Store(false)
	for ctx.Err() == nil {
		if err := r.lead(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("relay", "err", err)
			kafka.Sleep(ctx, time.Second)
		}
	}
	return nil
}

// lockKey is the advisory lock id of a service's relay.
func lockKey(service string) int64 {
	h := fnv.New64a()
	h.Write([]byte("strata.relay." + service))
	return int64(h.Sum64())
}

// lead takes the lock on a dedicated connection, listens for journal
// notifications on it and publishes until ctx is done or the connection
// fails. Without the lock it waits and tries again.
func (r *Relay) lead(ctx context.Context) error {
	pc, err := r.cfg.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The session lock lives and dies with this connection, so it never
	// goes back to the pool.
	conn := pc.Hijack()
	defer func() {
		r.leader.Store(false)
		_ = conn.Close(context.Background())
	}()
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(r.cfg.Service)).Scan(&got); err != nil {
			return err
		}
		if got {
			break
		}
		kafka.Sleep(ctx, r.cfg.PollInterval)
		if ctx.Err() != nil {
			return nil
		}
	}
	r.leader.Store(true)
	r.log.Info("relay is leader")
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{JournalChannel(r.cfg.Service)}.Sanitize()); err != nil {
		return err
	}
	// The relay reads the outbox on this connection. Right after a burst
	// the tables' statistics are stale and the planner would sort every
	// waiting row per batch (measured: 32 ms instead of 0.9 ms for 2000 of
	// 50000), or merge the whole journal; during a backlog of more than
	// about 25k rows it would gather the read from parallel workers (57-135
	// ms a batch instead of 3-4). These settings leave it the ordered scan
	// of the outbox's key with a lookup of each row in the journal. Reads
	// run on generic plans, made once for this session (plan_cache_mode,
	// see postgres.GenericPlans), except those that leave out rows being
	// marked: see unpublished.
	if _, err := conn.Exec(ctx, `SET enable_bitmapscan = off; SET enable_seqscan = off; SET enable_sort = off;
		SET enable_hashjoin = off; SET enable_mergejoin = off; SET max_parallel_workers_per_gather = 0;
		SET plan_cache_mode = force_generic_plan`); err != nil {
		return err
	}
	for {
		if err := r.drain(ctx, conn); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, r.cfg.PollInterval)
		_, err = conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
}

// drain publishes until the outbox is empty. It pipelines: while one
// batch is being taken off the outbox (marked), the next is read and
// produced (excluding the rows still being marked). A crash between a
// produce and its mark republishes those rows: consumers dedupe by
// (ce_subject, strataversion). Batches are produced one after another, so each
// aggregate's events reach Kafka in version order.
func (r *Relay) drain(ctx context.Context, conn *pgx.Conn) error {
	var marking chan error
	var inflight []int64
	awaitMark := func() error {
		if marking == nil {
			return nil
		}
		err := <-marking
		marking = nil
		return err
	}
	defer func() { _ = awaitMark() }()
	for {
		events, err := r.unpublished(ctx, conn, inflight)
		if err != nil || len(events) == 0 {
			return errors.Join(err, awaitMark())
		}
		msgs := make([]kafkago.Message, len(events))
		positions := make([]int64, len(events))
		for i := range events {
			if msgs[i], err = r.message(&events[i]); err != nil {
				return err
			}
			positions[i] = events[i].Position
		}
		// On a failure nothing of this round is taken off the outbox, so the
		// next round writes it all again after whatever prefix went out.
		if err := r.writer.Write(ctx, msgs); err != nil {
			return err
		}
		if r.delay != nil {
			now := time.Now()
			for i := range events {
				r.delay.Observe(now.Sub(events[i].OccurredAt).Seconds())
			}
		}
		if err := awaitMark(); err != nil {
			return err
		}
		marking, inflight = make(chan error, 1), positions
		go func() { marking <- r.mark(ctx, positions) }()
		if len(events) < r.cfg.BatchSize {
			return awaitMark()
		}
	}
}

// unpublished reads up to BatchSize unpublished rows in position order,
// leaving out those still being marked. Rows are left out only after a
// full batch, and on a custom plan: it sees the rows being marked as a
// constant array, which Postgres (15+) hashes, where a generic plan
// compares every row it scans with each of them, 2000 × 2000 comparisons
// a batch (measured with `strata bench relay`: 62-67k events/s instead of
// 37-41k). The read after a partial batch, the usual one below full load,
// runs on the connection's generic plan: planning it cost twice its
// execution.
func (r *Relay) unpublished(ctx context.Context, q postgres.Batcher, marking []int64) ([]JournalEvent, error) {
	b := &pgx.Batch{}
	if len(marking) == 0 {
		b.Queue(r.read, r.cfg.BatchSize)
	} else {
		b.Queue(`SELECT set_config('plan_cache_mode', 'force_custom_plan', true)`)
		b.Queue(r.readExcluding, r.cfg.BatchSize, marking)
	}
	res := q.SendBatch(ctx, b)
	defer res.Close()
	if len(marking) > 0 {
		if _, err := res.Exec(); err != nil {
			return nil, err
		}
	}
	rows, err := res.Query()
	if err != nil {
		return nil, err
	}
	events, err := pgx.CollectRows(rows, ScanJournalEvent)
	if err != nil {
		return nil, err
	}
	return events, res.Close()
}

// mark takes published rows off the outbox, on the generic plan (an index
// scan of the positions, planned once per connection instead of per
// batch). The pipeline without BEGIN is one implicit transaction, so the
// setting holds for the delete and nothing after it.
func (r *Relay) mark(ctx context.Context, positions []int64) error {
	b := &pgx.Batch{}
	b.Queue(postgres.GenericPlans)
	b.Queue(`DELETE FROM `+r.journal.schema+`.outbox WHERE position = ANY($1)`, positions)
	return r.cfg.Pool.SendBatch(ctx, b).Close()
}

// message builds the Kafka record of a journal event for its aggregate's
// topic.
func (r *Relay) message(e *JournalEvent) (kafkago.Message, error) {
	return EventMessage(r.cfg.Service+"."+e.AggregateType, r.cfg.Service, e, r.cfg.DataSchema(e.Type))
}

// EventMessage builds the Kafka record of a journal event: keyed by
// aggregate id, the event's canonical JSON as value, the CloudEvents
// binary-mode headers, and the event's time as the record's timestamp.
// Without one kafka-go sends 0, which a broker keeping CreateTime stores as
// 1970: consumers that seek by time (offsetsForTimes) or window by record
// time would see no time at all.
func EventMessage(topic, service string, e *JournalEvent, dataSchema string) (kafkago.Message, error) {
	data, err := CanonicalJSON(e.Data)
	if err != nil {
		return kafkago.Message{}, err
	}
	return kafkago.Message{
		Topic:   topic,
		Key:     []byte(e.AggregateID),
		Value:   data,
		Headers: EventHeaders(service, e, dataSchema),
		Time:    e.OccurredAt,
	}, nil
}

// EventHeaders returns the CloudEvents Kafka binary binding headers and the
// strata extensions of a journal event (DESIGN.md §3.2).
func EventHeaders(service string, e *JournalEvent, dataSchema string) []kafkago.Header {
	h := func(k, v string) kafkago.Header { return kafkago.Header{Key: k, Value: []byte(v)} }
	hs := []kafkago.Header{
		h("ce_specversion", "1.0"),
		h("ce_id", e.EventID),
		h("ce_source", "/strata/"+service),
		h("ce_type", e.Type),
		h("ce_subject", e.AggregateID),
		h("ce_time", e.OccurredAt.UTC().Format(time.RFC3339Nano)),
		h("content-type", "application/json"),
		h("strataversion", strconv.FormatInt(e.Version, 10)),
		h("stratacommandid", e.Metadata.CommandID),
		h("stratacorrelationid", e.Metadata.CorrelationID),
		h("stratacausationid", e.Metadata.CausationID),
		h("strataactor", e.Metadata.Actor),
		h("stratahash", hex.EncodeToString(e.Hash)),
		h("strataprevhash", hex.EncodeToString(e.PrevHash)),
	}
	if dataSchema != "" {
		hs = append(hs, h("ce_dataschema", dataSchema))
	}
	return hs
}
