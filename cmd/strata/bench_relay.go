package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/bench"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/schemas"
)

// produceBatch is how many records the raw produce hands to each
// WriteMessages call: the relay's default batch (commands.RelayConfig
// BatchSize; keep them equal), so the ratio compares like with like.
const produceBatch = 2000

// produceBatchLarge is the call size of the raw produce ceiling: kafka-go
// writes the partitions of one call concurrently, so larger calls go faster.
const produceBatchLarge = 10_000

// runRelay measures journal → Kafka: N events appended to the journal
// (untimed) are published by a commands.Relay, timed from its start until
// the last one is marked published (with the relay's own default settings);
// the same records produced by a plain kafka-go writer of the same
// settings, in calls of the relay's batch size, give the ratio.
func runRelay(ctx context.Context, m *BenchMain) (*bench.Report, error) {
	o := m.opts
	rep := m.report()
	p, err := m.pieces(ctx, rep)
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, p.pool, commands.Migrations(p.ns)); err != nil {
		return nil, err
	}
	topic, rawTopic := p.ns+".role", p.ns+".raw-role"
	if err := m.createTopics(ctx, p, topic, rawTopic); err != nil {
		return nil, err
	}
	relayPool, err := m.connect(ctx, p.db.URL)
	if err != nil {
		return nil, err
	}
	warm := warmupEvents(o.events)
	rep.Params.Set("events", o.events)
	rep.Params.Set("warmup_events", warm)
	rep.Params.Set("produce_batch", produceBatch)
	perms := benchPermissions()
	j := commands.NewJournal(p.ns, p.reg)

	// Warm-up: a relay publishes the first events and stops.
	if err := fillJournal(ctx, p, j, "warm", warm, perms, m.bar(int64(warm), "warm-up fill")); err != nil {
		return nil, err
	}
	if _, err := relayAll(ctx, m, p, relayPool, m.bar(int64(warm), "warm-up relay")); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if err := fillJournal(ctx, p, j, "bench", o.events, perms, m.bar(int64(o.events), "filling the journal")); err != nil {
		return nil, err
	}

	// The raw produce of the same records, then the relay.
	msgs, err := unpublished(ctx, p, rawTopic)
	if err != nil {
		return nil, err
	}
	w := kafka.NewWriter(p.brokers, "")
	defer w.Close()
	if _, err := bench.Produce(ctx, w, msgs[:min(warm, len(msgs))], produceBatch); err != nil {
		return nil, err
	}
	raw, err := bench.Produce(ctx, w, msgs, produceBatch)
	if err != nil {
		return nil, err
	}
	// The embedded broker keeps its records in this process: the
	// baseline's copy goes before the relay runs. Kept, it held the heap
	// at the memory limit, and a fifth of the relay's profile was the
	// runtime handing pages back to the OS.
	msgs = nil
	if m.opts.kafka == "" {
		if err := kafka.DeleteTopics(ctx, p.brokers, rawTopic); err != nil {
			return nil, err
		}
		runtime.GC()
	}
	if err := m.startProfile(); err != nil {
		return nil, err
	}
	rate, err := relayAll(ctx, m, p, relayPool, m.bar(int64(o.events), "relay"))
	if perr := m.stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}

	var left, total int64
	schema := pgx.Identifier{p.ns}.Sanitize()
	if err := p.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+schema+`.outbox), (SELECT count(*) FROM `+
		schema+`.events)`).Scan(&left, &total); err != nil {
		return nil, err
	}
	records, err := bench.TopicRecords(ctx, p.brokers, topic)
	if err != nil {
		return nil, err
	}
	rep.Metric("events_per_sec", rate.PerSec())
	rep.Metric("elapsed_ms", bench.Millis(rate.Elapsed))
	rep.Metric("published", float64(total-left-int64(warm)))
	rep.Metric("unpublished", float64(left))
	rep.Metric("kafka_records", float64(records-int64(warm)))
	rep.Metric("raw_produce_msgs_per_sec", raw.PerSec())
	rep.Ratio("relay_vs_raw_produce", "relay", rate.PerSec(), raw.PerSec(), "raw kafka-go batched produce of the same records")
	var errs []error
	if left != 0 || total != int64(warm+o.events) {
		errs = append(errs, fmt.Errorf("the journal holds %d events, %d unpublished; want %d, 0", total, left, warm+o.events))
	}
	if records < int64(warm+o.events) {
		errs = append(errs, fmt.Errorf("%s holds %d records, want at least %d", topic, records, warm+o.events))
	}
	return rep, errors.Join(errs...)
}

// fillJournal appends n events through Journal.Append: roles of
// RoleCreated plus grants, one Append per role, 20 roles per transaction,
// on four connections.
func fillJournal(ctx context.Context, p *pieces, j *commands.Journal, prefix string, n int, perms []string, bar *bench.Bar) error {
	defer bar.Done()
	type role struct{ i, k int }
	var roles []role
	for i, left := 0, n; left > 0; i++ {
		k := min(left, grantsPerRole+1)
		roles, left = append(roles, role{i, k}), left-k
	}
	const perTx, fillers = 20, 4
	work := make(chan []role)
	var mu sync.Mutex
	var done int64
	errs := make([]error, fillers)
	var wg sync.WaitGroup
	for f := range fillers {
		wg.Go(func() {
			for group := range work {
				if errs[f] != nil {
					continue
				}
				errs[f] = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
					for _, r := range group {
						id, now := commands.NewID(), time.Now()
						agg := &commands.Aggregate{Def: p.def, ID: id, State: p.def.New(), LastHash: commands.GenesisHash}
						meta := commands.Metadata{CommandID: id, CorrelationID: id, CausationID: id, Actor: "bench"}
						if _, err := j.Append(ctx, tx, agg, roleHistory(prefix, r.i, r.k, perms), meta, now); err != nil {
							return err
						}
					}
					return nil
				})
				mu.Lock()
				for _, r := range group {
					done += int64(r.k)
				}
				bar.Set(done)
				mu.Unlock()
			}
		})
	}
	for i := 0; i < len(roles); i += perTx {
		work <- roles[i:min(i+perTx, len(roles))]
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fill journal: %w", err)
	}
	return nil
}

// unpublished returns the journal's unpublished events as the relay's
// records, addressed to topic.
func unpublished(ctx context.Context, p *pieces, topic string) ([]kafkago.Message, error) {
	schema := pgx.Identifier{p.ns}.Sanitize()
	rows, err := p.pool.Query(ctx, `SELECT `+commands.JournalColumns+` FROM `+schema+`.events
		WHERE position IN (SELECT position FROM `+schema+`.outbox) ORDER BY position`)
	if err != nil {
		return nil, err
	}
	events, err := pgx.CollectRows(rows, commands.ScanJournalEvent)
	if err != nil {
		return nil, err
	}
	return relayMessages(topic, p.ns, events)
}

// relayAll runs a commands.Relay until every journal event is published,
// then stops it. The time runs from the relay's start to the poll that saw
// the last event published (polls every 5ms).
func relayAll(ctx context.Context, m *BenchMain, p *pieces, pool *pgxpool.Pool, bar *bench.Bar) (bench.Rate, error) {
	defer bar.Done()
	schema := pgx.Identifier{p.ns}.Sanitize()
	var first, n int64
	if err := p.pool.QueryRow(ctx, `SELECT coalesce(min(position), 0), count(*) FROM `+schema+
		`.outbox`).Scan(&first, &n); err != nil {
		return bench.Rate{}, err
	}
	r, err := commands.NewRelay(commands.RelayConfig{Service: p.ns, Brokers: p.brokers, Pool: pool, Registry: p.reg,
		Logger: m.log, DataSchema: schemas.DataSchemaURI})
	if err != nil {
		return bench.Rate{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(rctx) }()
	defer func() { cancel(); <-done }()
	var st stall
	for {
		var next int64 // the first unpublished position, 0 when none
		if err := p.pool.QueryRow(ctx, `SELECT coalesce(min(position), 0) FROM `+schema+
			`.outbox`).Scan(&next); err != nil {
			return bench.Rate{}, err
		}
		if next == 0 {
			return bench.Rate{N: int(n), Elapsed: time.Since(start)}, nil
		}
		bar.Set(next - first)
		if st.stuck(next, time.Now()) {
			return bench.Rate{}, fmt.Errorf("relay: stuck at position %d (from %d) for %s", next, first, stallTimeout)
		}
		select {
		case <-ctx.Done():
			return bench.Rate{}, ctx.Err()
		case err := <-done:
			done <- err
			return bench.Rate{}, fmt.Errorf("relay stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
