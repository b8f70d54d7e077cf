// Package projections is the read-side runtime: a batching Kafka consumer
// that applies events to Postgres read models exactly once per aggregate
// version, and marks commands projected. Each service's read models live in
// a sub-package and plug in as a Projection.
package projections

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	kafkago "github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/postgres"
)

// Event is one event read from Kafka, with its CloudEvents headers parsed
// and its data decoded through the aggregate's definition.
type Event struct {
	ID            string
	Type          string // ce_type, "auth.RoleCreated.v1"
	AggregateID   string // ce_subject
	Version       int64  // strataversion
	CommandID     string
	CorrelationID string
	Actor         string
	Time          time.Time
	Data          json.RawMessage
	Event         aggregates.Event // nil when the type is unknown to this build
	// Last is set on an aggregate's last event in the batch being applied:
	// bookkeeping such as a row's version need only be written then.
	Last bool

	topic     string // the Kafka topic and partition it came from
	partition int
}

// Projection is one read model: the topics it consumes and how it applies
// an event. Apply queues the event's statements on the batch; they run in
// order, in the batch's transaction, in one round trip with the rest.
type Projection struct {
	Name       string // consumer group "strata.projection.<Name>"
	Schema     string // the read schema, e.g. "auth_read"
	Topics     []string
	Migrations []postgres.Migration
	Apply      func(b *Batch, e *Event) error
	// MarksCommands makes this projection move the commands behind its
	// events from accepted to projected: the events of Service's own
	// topics (all topics when Service is empty). Topics of other services,
	// read for denormalised data such as owners' names, are left to their
	// own service's projection, whose read model the command's writer waits for.
	MarksCommands bool
	Service       string
	// Partitioned says that Apply writes only rows that belong to the
	// event's own aggregate (no statement touches rows another aggregate's
	// events write), so a batch may be applied in parallel transactions,
	// one per group of partitions. A projection that denormalises across
	// aggregates (a role's new name into its users' rows) must leave it
	// false: parallel parts could deadlock or lose an update there.
	Partitioned bool
}

// marks reports whether the projection settles the command behind e.
func (p *Projection) marks(e *Event) bool {
	if !p.MarksCommands || e.CommandID == "" {
		return false
	}
	return p.Service == "" || (strings.HasPrefix(e.Type, p.Service) && strings.HasPrefix(e.Type[len(p.Service):], "."))
}

// EventDecoder finds the definition of a CloudEvents type; the command
// registry implements it.
type EventDecoder interface {
	ForEvent(ceType string) (*aggregates.Definition, bool)
}

// MarkProjected queues the settling of commands whose events a batch
// applied: command i produced version versions[i] of aggregateIDs[i].
// commands.QueueMarkProjected implements it.
type MarkProjected func(b interface{ Queue(string, ...any) }, commandIDs, aggregateIDs []string, versions []int64)

// Batch collects statements and sends them in one round trip, in order.
// Consecutive inserts of one row with the same SQL text (a batch of grants)
// go out as multi-row inserts (see insertPattern for which). Held touches
// (see TouchFinal) are sent after the statements, then the version-only
// touches (see Touch), one set-based UPDATE per table.
type Batch struct {
	b       pgx.Batch
	run     *run          // the statements being gathered, not yet in b
	expect  map[int]int64 // statement index in b → rows it must affect
	touches map[string]*touches
	tables  []string // the touched tables, in first-touch order
	held    map[rowKey]*heldTouch
	order   []rowKey // the rows of held, in first-touch order
}

// rowKey names a read-model row: its table and id.
type rowKey struct{ table, id string }

// heldTouch is the last touch that sets columns of a row, not sent yet.
type heldTouch struct {
	sql  string
	args []any
}

// touches are the rows of one table whose version and update time a
// batch sets: row i gets versions[i] and times[i].
type touches struct {
	ids      []string
	versions []int64
	times    []time.Time
}

// Queue adds a statement.
func (b *Batch) Queue(sql string, args ...any) {
	if r := b.run; r != nil && r.shape != nil && r.sql == sql && len(args) == r.shape.width {
		r.args, r.rows = append(r.args, args...), r.rows+1
		return
	}
	b.flushRun()
	r := &run{sql: sql, shape: shapeOf(sql, len(args)), args: args, rows: 1}
	if r.shape != nil {
		r.args = append(make([]any, 0, 8*len(args)), args...) // grown by the run, not the caller's array
	}
	b.run = r
}

// queueExpecting adds a statement that must affect exactly rows rows;
// Send fails with ErrOverlap when it affects another number.
func (b *Batch) queueExpecting(rows int64, sql string, args ...any) {
	b.flushRun()
	if b.expect == nil {
		b.expect = map[int]int64{}
	}
	b.expect[b.b.Len()] = rows
	b.b.Queue(sql, args...)
}

// flushRun moves the gathered statements into the pgx batch.
func (b *Batch) flushRun() {
	if b.run == nil {
		return
	}
	b.run.statements(func(sql string, args []any) { b.b.Queue(sql, args...) })
	b.run = nil
}

// Touch sets the version and update time of the event's own row of table
// (schema-qualified, keyed by id), plus the assignments in set, which may
// use $4 on for args. A row already at the event's version or later is
// left alone. A touch that sets more runs in order, as a statement of its
// own (see TouchFinal for one that need not). A touch with nothing to set
// is needed only for an aggregate's last event of the batch (a role
// granted 27 permissions in one batch is updated once), and those of a
// batch are sent together as one UPDATE per table, after its other
// statements.
func Touch(b *Batch, e *Event, table, set string, args ...any) {
	if set != "" {
		b.releaseHeld(rowKey{table, e.AggregateID})
		b.Queue(touchSQL(table, set), append([]any{e.AggregateID, e.Version, e.Time}, args...)...)
		return
	}
	b.touchVersion(e, table)
}

// TouchFinal is Touch for assignments of which only the row's last in the
// batch matters: it is held back, and a later TouchFinal of the row with
// the same set replaces it, so 500 deposits to one account in a batch
// update its row once, not 500 times along a growing chain of the row's
// versions. A held touch is sent before any other touch of its row that
// sets something, and before the version-only touches, so a row's touches
// keep their order. set must assign values that do not depend on the row
// (balance = $4, never balance = balance + $4), no unique index may cover
// them, and no statement other than a touch may read or change them. Rows
// are told apart by table and id as spelled: spell a table the same way
// in every touch of it.
func TouchFinal(b *Batch, e *Event, table, set string, args ...any) {
	sql, all := touchSQL(table, set), append([]any{e.AggregateID, e.Version, e.Time}, args...)
	k := rowKey{table, e.AggregateID}
	if h := b.held[k]; h != nil && h.sql == sql {
		h.args = all
		return
	}
	b.releaseHeld(k) // one with another set goes first
	if b.held == nil {
		b.held = map[rowKey]*heldTouch{}
	}
	b.held[k] = &heldTouch{sql, all}
	b.order = append(b.order, k)
}

func touchSQL(table, set string) string {
	return `UPDATE ` + table + ` SET version=$2, updated_at=$3, ` + set + ` WHERE id=$1 AND version < $2`
}

// releaseHeld queues the held touch of a row, if any.
func (b *Batch) releaseHeld(k rowKey) {
	if h := b.held[k]; h != nil {
		b.Queue(h.sql, h.args...)
		delete(b.held, k)
	}
}

// touchVersion records a version-only touch of the event's row.
func (b *Batch) touchVersion(e *Event, table string) {
	if !e.Last {
		return
	}
	if b.touches == nil {
		b.touches = map[string]*touches{}
	}
	t := b.touches[table]
	if t == nil {
		t = &touches{}
		b.touches[table] = t
		b.tables = append(b.tables, table)
	}
	t.ids, t.versions, t.times = append(t.ids, e.AggregateID), append(t.versions, e.Version), append(t.times, e.Time)
}

// queueTouches queues the held touches, then one UPDATE per table for the
// version-only touches, and forgets them all. A row held again after a
// release is in order twice; its first entry releases it.
func (b *Batch) queueTouches() {
	for _, k := range b.order {
		b.releaseHeld(k)
	}
	b.order = nil
	b.flushRun()
	for _, table := range b.tables {
		t := b.touches[table]
		b.b.Queue(`UPDATE `+table+` AS r SET version = t.v, updated_at = t.at
			FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[]) AS t(id, v, at)
			WHERE r.id = t.id AND r.version < t.v
			AND r.id = ANY($1::uuid[])`, t.ids, t.versions, t.times) // an index scan, whatever the statistics (see commands' indexedJoin)
	}
	b.touches, b.tables = nil, nil
}

// Send runs the statements in tx and returns the first error, naming the
// statement that failed.
func (b *Batch) Send(ctx context.Context, tx postgres.Batcher) error {
	b.queueTouches()
	n := b.b.Len()
	if n == 0 {
		return nil
	}
	res := tx.SendBatch(ctx, &b.b)
	for i := range n {
		tag, err := res.Exec()
		if err != nil {
			_ = res.Close()
			return fmt.Errorf("statement %d of %d: %w", i+1, n, err)
		}
		if want, ok := b.expect[i]; ok && tag.RowsAffected() != want {
			_ = res.Close()
			return fmt.Errorf("%w: statement %d of %d affected %d rows, want %d", ErrOverlap, i+1, n, tag.RowsAffected(), want)
		}
	}
	return res.Close()
}

// Migrations returns the runtime's per-schema tables followed by the
// projection's own migrations.
func (p *Projection) AllMigrations() []postgres.Migration {
	runtime := postgres.Migration{Component: p.Schema + ".runtime", Version: 1, SQL: fmt.Sprintf(`
CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.projection_versions (
	projection   text NOT NULL,
	aggregate_id uuid NOT NULL,
	version      bigint NOT NULL,
	PRIMARY KEY (projection, aggregate_id)
);`, pgx.Identifier{p.Schema}.Sanitize())}
	return append([]postgres.Migration{runtime}, p.Migrations...)
}

// Config configures a projector.
type Config struct {
	Projection *Projection
	Brokers    []string
	Pool       *pgxpool.Pool
	Decoder    EventDecoder
	Mark       MarkProjected
	Logger     *slog.Logger
	// BatchSize bounds the events per transaction. Default 2000.
	BatchSize int
	// BatchWait is how long a batch collects after its first event. Default 20ms.
	BatchWait time.Duration
	// AfterCommit, when set, runs between a batch's Postgres commit and
	// its offset commit. Fault-injection tests cancel the projector there
	// to crash it at the worst moment.
	AfterCommit func()
	// Parallel is how many transactions apply one batch at once, each the
	// events of a disjoint set of partitions (so of aggregates). Default 2.
	Parallel int
	// SplitAbove is the batch size from which a batch is split into
	// Parallel transactions: below it a second commit (a WAL flush) costs
	// more than the parallel work saves, and latency at moderate load
	// suffers. Default 500.
	SplitAbove int
}

// Validate reports every missing setting.
func (c *Config) Validate() error {
	var errs []error
	if c.Projection == nil || c.Projection.Apply == nil || c.Projection.Name == "" {
		errs = append(errs, errors.New("projector: a Projection with Name and Apply is required"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("projector: Brokers are required"))
	}
	if c.Pool == nil {
		errs = append(errs, errors.New("projector: Pool is required"))
	}
	if c.Decoder == nil {
		errs = append(errs, errors.New("projector: Decoder is required"))
	}
	if c.Projection != nil && c.Projection.MarksCommands && c.Mark == nil {
		errs = append(errs, errors.New("projector: Mark is required when the projection marks commands"))
	}
	return errors.Join(errs...)
}

// Projector consumes a projection's topics in batches. Each batch is one
// Postgres transaction holding the read-model writes, the per-aggregate
// version bookkeeping and the command marks; Kafka offsets are committed
// only after it commits. A crash anywhere therefore neither loses nor
// double-applies an event: redelivered versions are skipped.
type Projector struct {
	cfg     Config
	log     *slog.Logger
	running atomic.Bool
	healthy atomic.Bool
	applied atomic.Int64

	// afterCommit runs between the Postgres commit and the offset commit;
	// tests use it to simulate a crash there.
	afterCommit func()
}

// New checks the config and returns a projector.
func New(cfg Config) (*Projector, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 2000
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 20 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.SplitAbove <= 0 {
		cfg.SplitAbove = 500
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Projector{cfg: cfg, log: cfg.Logger.With("component", "projector", "projection", cfg.Projection.Name),
		afterCommit: cfg.AfterCommit}
	p.healthy.Store(true)
	return p, nil
}

// Ready reports whether the projector is consuming and its last batch did
// not fail.
func (p *Projector) Ready() bool { return p.running.Load() && p.healthy.Load() }

// Applied returns how many events this projector applied since start.
func (p *Projector) Applied() int64 { return p.applied.Load() }

// Run consumes until ctx is done; it returns nil on cancellation.
func (p *Projector) Run(ctx context.Context) error {
	defer p.running.Store(false)
	c := &kafka.Consumer{
		Reader: kafka.ReaderOptions{
			Brokers: p.cfg.Brokers,
			GroupID: "strata.projection." + p.cfg.Projection.Name,
			Topics:  p.cfg.Projection.Topics,
			Logger:  p.cfg.Logger,
		},
		BatchSize: p.cfg.BatchSize, BatchWait: p.cfg.BatchWait, Logger: p.log,
		Handle: p.applyWithRetry, AfterHandle: p.afterCommit,
		Started: func() { p.running.Store(true) },
	}
	return c.Run(ctx)
}

// applyWithRetry applies a batch until it succeeds or ctx is done. The
// batch is split by partition into up to Parallel transactions that run at
// once: Postgres, not Go, bounds a projector, and one transaction at a time
// leaves it a core idle. The parts touch disjoint aggregates (an aggregate
// lives in one partition); if any part fails the whole batch is applied
// again, and the parts that had committed skip what they applied.
func (p *Projector) applyWithRetry(ctx context.Context, msgs []kafkago.Message) error {
	failed := false
	for backoff := 50 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		events, err := p.parseAll(msgs)
		if err == nil {
			err = p.applyParts(ctx, events, failed)
		}
		failed = err != nil
		if err == nil {
			p.healthy.Store(true)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.healthy.Store(false)
		p.log.Error("projection batch failed, retrying", "events", len(events), "err", err, "backoff", backoff)
		kafka.Sleep(ctx, backoff)
	}
}

// applyParts applies the events of each group of partitions in its own
// transaction, concurrently; in one transaction when the projection is not
// Partitioned, the batch is small, or it is a retry (whatever failed is
// then not failed again by a parallel part).
func (p *Projector) applyParts(ctx context.Context, events []*Event, retry bool) error {
	n := p.cfg.Parallel
	if !p.cfg.Projection.Partitioned || len(events) < p.cfg.SplitAbove || retry {
		n = 1
	}
	parts := make([][]*Event, n)
	for _, e := range events {
		i := e.partition % len(parts)
		parts[i] = append(parts[i], e)
	}
	var g errgroup.Group // a part that fails does not stop the others: what they commit stands
	for _, part := range parts {
		if len(part) == 0 {
			continue
		}
		g.Go(func() error {
			applied := 0
			err := postgres.InTx(ctx, p.cfg.Pool, nil, func(tx *postgres.Tx) (err error) {
				applied, err = p.applyBatch(ctx, tx, part)
				return err
			})
			if err == nil {
				// Counted once committed: a failed commit is retried and
				// must not count its events twice.
				p.applied.Add(int64(applied))
			}
			return err
		})
	}
	return g.Wait()
}

// MarkLast sets Last on the event that brings each aggregate to its
// highest version in the batch, if newer than applied (the versions
// already applied; nil for none). A redelivered copy later in the batch is
// skipped when applying, so it is never the one marked.
func MarkLast(events []*Event, applied map[string]int64) {
	last := make(map[string]*Event, len(events))
	for _, e := range events {
		e.Last = false
		if e.Version <= applied[e.AggregateID] {
			continue
		}
		if l, ok := last[e.AggregateID]; !ok || e.Version > l.Version {
			last[e.AggregateID] = e
		}
	}
	for _, e := range last {
		e.Last = true
	}
}

// ErrOverlap means another writer stored versions of the batch's
// aggregates after the batch read them; the batch is applied again.
var ErrOverlap = errors.New("projector: another writer applied these aggregates meanwhile")

// ErrGap means an event arrived whose predecessor was never applied.
var ErrGap = errors.New("projector: version gap")

// applyBatch applies events in order, skipping versions already applied and
// failing on gaps, then stores the new versions and settles the commands:
// one round trip to read versions and one for every write. It returns how
// many events it applied.
func (p *Projector) applyBatch(ctx context.Context, tx postgres.Batcher, events []*Event) (int, error) {
	versions, err := p.loadVersions(ctx, tx, events)
	if err != nil {
		return 0, err
	}
	read := maps.Clone(versions)
	MarkLast(events, versions)
	b := &Batch{}
	changed := map[string]bool{}
	var marks struct {
		ids, aggs []string
		versions  []int64
	}
	applied := 0
	for _, e := range events {
		have := versions[e.AggregateID]
		if e.Version <= have {
			continue // redelivered
		}
		if e.Version != have+1 {
			return 0, fmt.Errorf("%w: %s is at version %d, got %d (%s)", ErrGap, e.AggregateID, have, e.Version, e.Type)
		}
		if e.Event != nil {
			if err := p.cfg.Projection.Apply(b, e); err != nil {
				return 0, fmt.Errorf("apply %s v%d %s: %w", e.AggregateID, e.Version, e.Type, err)
			}
		}
		if p.cfg.Projection.marks(e) {
			marks.ids, marks.aggs = append(marks.ids, e.CommandID), append(marks.aggs, e.AggregateID)
			marks.versions = append(marks.versions, e.Version)
		}
		versions[e.AggregateID] = e.Version
		changed[e.AggregateID] = true
		applied++
	}
	p.storeVersions(b, read, versions, changed)
	if len(marks.ids) > 0 {
		p.cfg.Mark(b, marks.ids, marks.aggs, marks.versions)
	}
	if err := b.Send(ctx, tx); err != nil {
		return 0, err
	}
	return applied, nil
}

// loadVersions locks, for the transaction, the partitions the events came
// from, then reads the applied version of every aggregate in the batch.
// The locks make two projector instances that overlap during a rebalance
// apply a partition's events one after the other: the second sees what the
// first applied and skips it. An aggregate lives in one partition, so a
// lock per partition (a few per batch, in memory) serves where a lock per
// version row served before: those took a statement to create missing
// rows and wrote a WAL record per row locked.
func (p *Projector) loadVersions(ctx context.Context, tx postgres.Batcher, events []*Event) (map[string]int64, error) {
	seen := make(map[string]bool, len(events))
	ids := make([]string, 0, len(events))
	type partition struct {
		topic string
		n     int
	}
	parts := map[partition]bool{}
	for _, e := range events {
		parts[partition{e.topic, e.partition}] = true
		if !seen[e.AggregateID] {
			seen[e.AggregateID] = true
			ids = append(ids, e.AggregateID)
		}
	}
	keys := make([][2]int32, 0, len(parts))
	for part := range parts {
		keys = append(keys, p.lockKey(part.topic, part.n))
	}
	slices.SortFunc(keys, func(a, b [2]int32) int { // one lock order for every instance
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	k1, k2 := make([]int32, len(keys)), make([]int32, len(keys))
	for i, k := range keys {
		k1[i], k2[i] = k[0], k[1]
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock(k1, k2) FROM unnest($1::int4[], $2::int4[]) AS t(k1, k2)`, k1, k2)
	b.Queue(`SELECT aggregate_id::text, version FROM `+p.schema()+`.projection_versions
		WHERE projection=$1 AND aggregate_id = ANY($2::uuid[])`, p.cfg.Projection.Name, ids)
	res := tx.SendBatch(ctx, b)
	defer res.Close()
	if _, err := res.Exec(); err != nil {
		return nil, fmt.Errorf("lock partitions: %w", err)
	}
	rows, err := res.Query()
	if err != nil {
		return nil, err
	}
	versions := make(map[string]int64, len(ids))
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		versions[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return versions, res.Close()
}

// lockKey is the advisory lock (two int4s: apart from the runtime's
// bigint locks) of one of the projection's partitions.
func (p *Projector) lockKey(topic string, partition int) [2]int32 {
	h := fnv.New32a()
	h.Write([]byte(p.cfg.Projection.Name + "\x00" + topic))
	return [2]int32{int32(h.Sum32()), int32(partition)}
}

// storeVersions queues the new versions of the changed aggregates as a
// compare-and-set against the versions the batch read: a row still at the
// version read is moved on, a row that was missing is inserted. If another
// writer moved one in between, fewer rows are affected and the batch fails
// with ErrOverlap, to be applied again from what that writer stored. The
// partition locks make that impossible between instances of this build;
// the check also holds against a build that locked version rows instead,
// and against an aggregate whose partition changed.
func (p *Projector) storeVersions(b *Batch, read, versions map[string]int64, changed map[string]bool) {
	var ids, newIDs []string
	var vs, was, newVs []int64
	for id := range changed {
		if old, ok := read[id]; ok {
			ids, vs, was = append(ids, id), append(vs, versions[id]), append(was, old)
		} else {
			newIDs, newVs = append(newIDs, id), append(newVs, versions[id])
		}
	}
	table := p.schema() + `.projection_versions`
	if len(ids) > 0 {
		b.queueExpecting(int64(len(ids)), `UPDATE `+table+` AS pv SET version = t.v
			FROM unnest($2::uuid[], $3::bigint[], $4::bigint[]) AS t(a, v, was)
			WHERE pv.projection = $1 AND pv.aggregate_id = t.a AND pv.version = t.was
			AND pv.aggregate_id = ANY($2::uuid[])`, p.cfg.Projection.Name, ids, vs, was)
	}
	if len(newIDs) > 0 {
		b.queueExpecting(int64(len(newIDs)), `INSERT INTO `+table+` (projection, aggregate_id, version)
			SELECT $1, a, v FROM unnest($2::uuid[], $3::bigint[]) AS t(a, v) ON CONFLICT DO NOTHING`,
			p.cfg.Projection.Name, newIDs, newVs)
	}
}

func (p *Projector) schema() string { return pgx.Identifier{p.cfg.Projection.Schema}.Sanitize() }

// parseAll parses a batch. Records without strata headers are not ours and
// are skipped; a strata event whose data does not decode is an error, so
// the projection stops (and /readyz says so) rather than lose it.
func (p *Projector) parseAll(msgs []kafkago.Message) ([]*Event, error) {
	events := make([]*Event, 0, len(msgs))
	for _, m := range msgs {
		e, err := p.parse(m)
		if errors.Is(err, errNotStrata) {
			p.log.Warn("skipping a record that is not a strata event", "topic", m.Topic,
				"partition", m.Partition, "offset", m.Offset)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s/%d/%d: %w", m.Topic, m.Partition, m.Offset, err)
		}
		events = append(events, e)
	}
	return events, nil
}

var errNotStrata = errors.New("missing ce_type, ce_subject or strataversion")

// parse reads the CloudEvents headers and decodes the data. The headers
// are read in one pass, without a map: a projector parses every event it
// applies, and a map of a record's 14 headers was a tenth of its CPU.
func (p *Projector) parse(m kafkago.Message) (*Event, error) {
	e := &Event{Data: m.Value, topic: m.Topic, partition: m.Partition}
	var version, at []byte
	for _, h := range m.Headers {
		switch h.Key {
		case "strataversion":
			version = h.Value
		case "ce_subject":
			e.AggregateID = string(h.Value)
		case "ce_type":
			e.Type = string(h.Value)
		case "ce_id":
			e.ID = string(h.Value)
		case "stratacommandid":
			e.CommandID = string(h.Value)
		case "stratacorrelationid":
			e.CorrelationID = string(h.Value)
		case "strataactor":
			e.Actor = string(h.Value)
		case "ce_time":
			at = h.Value
		}
	}
	v, err := strconv.ParseInt(string(version), 10, 64)
	if err != nil || v < 1 || e.AggregateID == "" || e.Type == "" {
		return nil, errNotStrata
	}
	e.Version = v
	e.Time, _ = time.Parse(time.RFC3339Nano, string(at))
	def, ok := p.cfg.Decoder.ForEvent(e.Type)
	if !ok {
		p.log.Warn("unknown event type; advancing its version without applying", "type", e.Type)
		return e, nil
	}
	if e.Event, err = def.DecodeEvent(e.Type, m.Value); err != nil {
		return nil, err
	}
	return e, nil
}
