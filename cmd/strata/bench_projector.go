package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	authdomain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/bench"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/projections"
	authread "github.com/strata-cqrs/strata/projections/auth"
)

// upsertBatch is the raw upsert's transaction size. The projector batches
// up to 2000 events; the raw upsert is about as fast at 500 or 2000 rows
// a transaction (measured 78-86k rows/s at both).
const upsertBatch = 500

// runProjector measures Kafka → read model: warm-up plus N auth events
// (roles created, then granted every built-in permission) pre-filled in
// Kafka with the relay's records, each behind an accepted command, are
// applied by the auth projection's projections.Projector. The rate runs
// over the events after the warm-up and an ANALYZE (see projectAnalyzed);
// the same rows upserted in batches of 500 by plain pgx give the ratio.
func runProjector(ctx context.Context, m *BenchMain) (*bench.Report, error) {
	o := m.opts
	rep := m.report()
	p, err := m.pieces(ctx, rep)
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, p.pool, migrations()); err != nil {
		return nil, err
	}
	if err := bench.PrepareTables(ctx, p.pool); err != nil {
		return nil, err
	}
	topic := p.ns + ".role"
	if err := m.createTopics(ctx, p, topic); err != nil {
		return nil, err
	}
	warm := warmupEvents(o.events)
	rep.Params.Set("events", o.events)
	rep.Params.Set("warmup_events", warm)
	rep.Params.Set("batch", upsertBatch)
	perms := benchPermissions()
	warmEvents, err := roleEvents(p.def, "warm", "bench:warmup", warm, perms)
	if err != nil {
		return nil, err
	}
	events, err := roleEvents(p.def, "bench", "bench", o.events, perms)
	if err != nil {
		return nil, err
	}
	if err := prefillKafka(ctx, m, p, topic, append(warmEvents, events...)); err != nil {
		return nil, err
	}

	if _, err := bench.Upsert(ctx, p.pool, rawRows(warmEvents), upsertBatch); err != nil {
		return nil, err
	}
	raw, err := bench.Upsert(ctx, p.pool, rawRows(events), upsertBatch)
	if err != nil {
		return nil, err
	}
	pool, err := m.connect(ctx, p.db.URL)
	if err != nil {
		return nil, err
	}
	if err := m.startProfile(); err != nil {
		return nil, err
	}
	steady, total, startup, applied, err := projectAnalyzed(ctx, m, p, pool, topic, warm, o.events)
	if perr := m.stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	rep.Params.Set("analyzed_after_warmup", true)
	var marked, roles, grants int64
	if err := p.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM strata.commands WHERE actor = 'bench' AND status = 'projected'),
		(SELECT count(*) FROM auth_read.roles), (SELECT count(*) FROM auth_read.role_permissions)`).
		Scan(&marked, &roles, &grants); err != nil {
		return nil, err
	}
	rep.Metric("events_per_sec", steady.PerSec())
	rep.Metric("total_events_per_sec", total.PerSec())
	rep.Metric("startup_ms", bench.Millis(startup))
	rep.Metric("applied", float64(applied-int64(warm)))
	rep.Metric("commands_projected", float64(marked))
	rep.Metric("read_model_rows", float64(roles+grants))
	rep.Metric("raw_upsert_rows_per_sec", raw.PerSec())
	rep.Ratio("projector_vs_raw_upsert", "projector", steady.PerSec(), raw.PerSec(),
		"raw batched INSERT … ON CONFLICT DO UPDATE of the same rows (pgx.Batch, 500 per transaction)")
	rep.Notes = append(rep.Notes, "events_per_sec runs from the first event a second projector applies, after the warm-up and an ANALYZE, to the last; total_events_per_sec over both projectors' runs; startup_ms is the first projector's time to its first event (joining the group)")
	var errs []error
	if applied != int64(warm+o.events) {
		errs = append(errs, fmt.Errorf("the projector applied %d events, want %d", applied, warm+o.events))
	}
	if marked != int64(o.events) {
		errs = append(errs, fmt.Errorf("%d commands were marked projected, want %d", marked, o.events))
	}
	if want := int64(warm + o.events); roles+grants != want {
		errs = append(errs, fmt.Errorf("the read model holds %d roles and grants, want %d", roles+grants, want))
	}
	return rep, errors.Join(errs...)
}

// prefillKafka records an accepted command behind every event and
// produces the events as the relay would.
func prefillKafka(ctx context.Context, m *BenchMain, p *pieces, topic string, events []commands.JournalEvent) error {
	bar := m.bar(int64(len(events)), "filling Kafka")
	defer bar.Done()
	if err := insertAccepted(ctx, p.pool, authdomain.Service, events); err != nil {
		return err
	}
	msgs, err := relayMessages(topic, p.ns, events)
	if err != nil {
		return err
	}
	w := kafka.NewWriter(p.brokers, "")
	defer w.Close()
	for i := 0; i < len(msgs); i += 10 * produceBatch {
		if _, err := bench.Produce(ctx, w, msgs[i:min(i+10*produceBatch, len(msgs))], produceBatch); err != nil {
			return err
		}
		bar.Set(int64(min(i+10*produceBatch, len(msgs))))
	}
	return nil
}

// projectAnalyzed applies the warm-up with one projector, analyzes the
// database (what autovacuum does within a minute of any live one, so the
// measured run uses the plans of a database in service, not those made for
// empty tables), then applies the rest with a second projector, which
// resumes from the first one's committed offsets. steady runs from the
// second projector's first applied event to its last; total over both
// runs, the analyze excluded.
func projectAnalyzed(ctx context.Context, m *BenchMain, p *pieces, pool *pgxpool.Pool, topic string, warm, n int) (steady, total bench.Rate, startup time.Duration, applied int64, err error) {
	warmSteady, first, a, err := project(ctx, m, p, pool, topic, int64(warm), "warm-up")
	if err != nil {
		return steady, total, 0, a, err
	}
	startup = first.Elapsed - warmSteady.Elapsed
	// The first projector has stopped: what it committed is in the read
	// model, one row per event (its counter may miss a commit that raced
	// the stop), and the second projector skips it.
	if err := p.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM auth_read.roles) + (SELECT count(*) FROM auth_read.role_permissions)`).Scan(&a); err != nil {
		return steady, total, startup, a, err
	}
	if _, err := p.pool.Exec(ctx, "ANALYZE"); err != nil {
		return steady, total, startup, a, fmt.Errorf("analyze after the warm-up: %w", err)
	}
	steady, second, b, err := project(ctx, m, p, pool, topic, int64(warm+n)-a, "projector")
	return steady, bench.Rate{N: first.N + second.N, Elapsed: first.Elapsed + second.Elapsed}, startup, a + b, err
}

// project runs the auth projection until it has applied target events.
// steady runs from the first poll that saw an event applied, total from
// the projector's start; polls are every 5ms.
func project(ctx context.Context, m *BenchMain, p *pieces, pool *pgxpool.Pool, topic string, target int64, label string) (steady, total bench.Rate, applied int64, err error) {
	proj := authread.Projection()
	if p.ns != authdomain.Service { // on a shared broker: the bench's topic and group
		cp := *proj
		cp.Name, cp.Topics = p.ns, []string{topic}
		proj = &cp
	}
	pr, err := projections.New(projections.Config{Projection: proj, Brokers: p.brokers, Pool: pool, Decoder: p.reg,
		Mark: commands.QueueMarkProjected, Logger: m.log})
	if err != nil {
		return steady, total, 0, err
	}
	bar := m.bar(target, label)
	defer bar.Done()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- pr.Run(rctx) }()
	defer func() { cancel(); <-done }()
	var t0 time.Time
	var a0 int64
	var st stall
	for {
		a, now := pr.Applied(), time.Now()
		if t0.IsZero() && a > 0 {
			t0, a0 = now, a
		}
		bar.Set(a)
		if a >= target {
			return bench.Rate{N: int(a - a0), Elapsed: now.Sub(t0)}, bench.Rate{N: int(a), Elapsed: now.Sub(start)}, a, nil
		}
		if st.stuck(a, now) {
			return steady, total, a, fmt.Errorf("projector: stuck at %d of %d events for %s", a, target, stallTimeout)
		}
		select {
		case <-ctx.Done():
			return steady, total, a, ctx.Err()
		case err := <-done:
			done <- err
			return steady, total, a, fmt.Errorf("projector stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
