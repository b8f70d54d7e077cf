package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	authdomain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/bench"
	"github.com/strata-cqrs/strata/internal/config"
	"github.com/strata-cqrs/strata/internal/postgres"
)

// e2eTarget is the platform the e2e load drives.
type e2eTarget struct {
	url      string
	email    string
	password string
	statuses func(*apiClient) statusReader
	rss      *bench.RSS    // nil when the platform runs in another process
	pool     *pgxpool.Pool // the platform's database, nil when unreachable
}

// pgActivity is the database's cumulative work, to divide by the writes.
type pgActivity struct {
	xacts, rows int64
	lsn         string
}

func readPGActivity(ctx context.Context, pool *pgxpool.Pool) (pgActivity, error) {
	var a pgActivity
	err := pool.QueryRow(ctx, `SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted,
		pg_current_wal_lsn()::text FROM pg_stat_database WHERE datname = current_database()`).Scan(&a.xacts, &a.rows, &a.lsn)
	return a, err
}

// pgMetrics reports the database work per accepted write between two
// readings: transactions, reads included (the sampler's polls add about
// 3/sampleEvery), and rows written, from pg_stat_database, whose counters
// lag up to about a second; and WAL (exact, but server-wide).
func pgMetrics(ctx context.Context, rep *bench.Report, pool *pgxpool.Pool, before pgActivity, writes int) error {
	after, err := readPGActivity(ctx, pool)
	if err != nil {
		return err
	}
	var wal float64
	if err := pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)`, after.lsn, before.lsn).Scan(&wal); err != nil {
		return err
	}
	n := float64(max(writes, 1))
	rep.Metric("pg_xacts_per_write", float64(after.xacts-before.xacts)/n)
	rep.Metric("pg_rows_written_per_write", float64(after.rows-before.rows)/n)
	rep.Metric("pg_wal_kib_per_write", wal/1024/n)
	return nil
}

// sampleEvery is how many accepted writes there are per polled sample.
const sampleEvery = 20

// samplesInFlight bounds the sampler's concurrent long polls. It is high
// on purpose: a sample dropped because too many polls are waiting is
// dropped exactly when latency is high, which biases the sampled
// percentiles low (the report counts and flags such drops).
const samplesInFlight = 2048

// runE2E drives authorised HTTP writes through the whole platform.
func runE2E(ctx context.Context, m *BenchMain) (*bench.Report, error) {
	o := m.opts
	rep := m.report()
	tgt, err := m.e2eTarget(ctx, rep)
	if err != nil {
		return nil, err
	}
	client := newAPIClient(tgt.url, o.concurrency)
	defer client.close()
	if err := client.login(ctx, tgt.email, tgt.password); err != nil {
		return nil, err
	}
	loginCtx, stopLogin := context.WithCancel(ctx)
	defer stopLogin()
	go client.keepLoggedIn(loginCtx, tgt.email, tgt.password, 10*time.Minute, func(err error) { m.log.Warn("bench: login again", "err", err) })
	if err := client.waitServing(ctx, time.Minute); err != nil {
		return nil, err
	}
	perms, err := builtinPermissions(ctx, client, m.opts.url == "")
	if err != nil {
		return nil, err
	}
	mix, _ := parseMix(o.mix)
	var accounts []string
	if mix["deposit"] > 0 {
		if accounts, err = openAccounts(ctx, client, o.accounts, o.concurrency); err != nil {
			return nil, err
		}
	}
	pollCtx, stopPolls := context.WithCancel(ctx)
	defer stopPolls()
	load := &loadRun{client: client, work: newWorkload(mix, perms, accounts), concurrency: o.concurrency, rate: o.rate,
		sampler: newSampler(pollCtx, client.sibling(samplesInFlight), sampleEvery, samplesInFlight)}
	defer load.sampler.client.close()
	setE2EParams(rep, o, tgt, len(perms))

	if o.warmup > 0 {
		_ = load.run(ctx, o.warmup, false, m.bar(o.warmup.Milliseconds(), "warm-up"))
	}
	if tgt.pool != nil {
		// What autovacuum does within its first minute on any live
		// database. Without it, a run on a fresh database measures plans
		// Postgres chose for tables it has never seen: a cached generic
		// plan, made while a table was nearly empty, seq-scans it for the
		// whole run (strata.commands, the journals, projection_versions).
		if _, err := tgt.pool.Exec(ctx, "ANALYZE"); err != nil {
			return nil, fmt.Errorf("analyze after the warm-up: %w", err)
		}
		rep.Params.Set("analyzed_after_warmup", true)
	}
	delay0, delayErr := scrapeHistogram(ctx, client, relayDelayMetric)
	if err := m.startProfile(); err != nil {
		return nil, err
	}
	var mem0, mem1 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	var pg0 pgActivity
	if tgt.pool != nil {
		if pg0, err = readPGActivity(ctx, tgt.pool); err != nil {
			return nil, err
		}
	}
	cpu0 := bench.ReadCPU()
	st := load.run(ctx, o.duration, true, m.bar(o.duration.Milliseconds(), "e2e"))
	loadEnd := time.Now()
	cpu1 := bench.ReadCPU()
	runtime.ReadMemStats(&mem1)
	if err := m.stopProfile(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	ids := st.cmds
	statuses := tgt.statuses(client)
	rep.Params.Set("statuses_from", statuses.source())
	done, unfinished, lastSeen, err := drain(ctx, statuses, ids, o.drainTimeout, m.bar(int64(len(ids)), "projecting"))
	if err != nil {
		return nil, fmt.Errorf("read command statuses: %w", err)
	}
	time.AfterFunc(time.Until(loadEnd.Add(o.drainTimeout)), stopPolls)
	load.sampler.wait()
	if tgt.rss != nil {
		tgt.rss.Stop()
	}
	failed := e2eMetrics(rep, st, done, unfinished, lastSeen.Sub(loadEnd), load.sampler, tgt.rss)
	delay, err := scrapeHistogram(ctx, client, relayDelayMetric)
	relayMetrics(rep, delay0, delay, errors.Join(delayErr, err))
	allocs := float64(mem1.TotalAlloc-mem0.TotalAlloc) / float64(max(st.accepted, 1))
	rep.Metric("alloc_kib_per_write", allocs/1024)
	rep.Metric("gc_cycles", float64(mem1.NumGC-mem0.NumGC))
	cpuMetrics(rep, cpu0, cpu1, st.elapsed, st.accepted, tgt.rss != nil)
	if tgt.pool != nil {
		if err := pgMetrics(ctx, rep, tgt.pool, pg0, st.accepted); err != nil {
			return nil, err
		}
		if err := stageMetrics(ctx, rep, tgt.pool, ids); err != nil {
			return nil, err
		}
	}
	if st.firstErr != nil {
		failed = errors.Join(failed, fmt.Errorf("first transport error: %w", st.firstErr))
	}
	return rep, failed
}

// builtinPermissions returns the ids of the built-in permissions, waiting
// for all of them on an embedded platform (the bootstrap projects them).
func builtinPermissions(ctx context.Context, c *apiClient, all bool) ([]string, error) {
	var ids []string
	err := eventually(ctx, time.Minute, func() error {
		var err error
		if ids, err = c.permissionIDs(ctx, authdomain.BuiltinPermissions); err != nil {
			return err
		}
		if len(ids) == 0 || (all && len(ids) < len(authdomain.BuiltinPermissions)) {
			return fmt.Errorf("found %d of the %d built-in permissions", len(ids), len(authdomain.BuiltinPermissions))
		}
		return nil
	})
	return ids, err
}

func setE2EParams(rep *bench.Report, o benchOptions, tgt *e2eTarget, perms int) {
	rep.Params.Set("duration_s", o.duration.Seconds())
	rep.Params.Set("warmup_s", o.warmup.Seconds())
	rep.Params.Set("concurrency", o.concurrency)
	rep.Params.Set("rate", o.rate)
	rep.Params.Set("mix", o.mix)
	rep.Params.Set("accounts", o.accounts)
	rep.Params.Set("grantable_permissions", perms)
	rep.Params.Set("sample_every", sampleEvery)
	if o.url != "" {
		rep.Params.Set("target", o.url)
	} else {
		rep.Params.Set("target", "embedded")
	}
}

// stageMetrics splits command→projected into its stages, from the status
// row: submitted→decided (gateway + Kafka + worker) and decided→projected
// (relay + Kafka + projector). decided_at and projected_at are now() of
// the transaction that wrote them, i.e. its start. The journal keeps no
// publish time (its rows are never updated); relay_delay_* (relayMetrics)
// gives the relay's share.
func stageMetrics(ctx context.Context, rep *bench.Report, pool *pgxpool.Pool, ids []string) error {
	ms := func(col string) string {
		return `percentile_disc(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM ` + col + `) * 1000)`
	}
	var decided, projected []float64
	err := pool.QueryRow(ctx, `SELECT `+ms("decided_at - submitted_at")+`, `+ms("projected_at - decided_at")+`
		FROM strata.commands WHERE id = ANY($1::uuid[]) AND status = 'projected'`, ids).Scan(&decided, &projected)
	if err != nil {
		return fmt.Errorf("stage latencies: %w", err)
	}
	for _, st := range []struct {
		name string
		q    []float64
	}{{"decided", decided}, {"projected", projected}} {
		if len(st.q) == 2 {
			rep.Metric("stage_"+st.name+"_p50_ms", st.q[0])
			rep.Metric("stage_"+st.name+"_p99_ms", st.q[1])
		}
	}
	rep.Notes = append(rep.Notes, "stage_* split projected_* by the status timestamps: submitted→decided (gateway, Kafka, worker), decided→projected (relay, Kafka, projector)")
	return nil
}

// relayMetrics reports the relay's share of command→projected, from its
// histogram on /metrics over the measured phase and the drain (scrapes
// before and after, and their error): the worker's decision → Kafka's
// acknowledgement per event, interpolated within buckets 1.5× wide. When
// the target does not serve it, a note says so and the run stands.
func relayMetrics(rep *bench.Report, before, after histogram, err error) {
	delay, ok := after.since(before)
	switch {
	case err != nil:
		rep.Notes = append(rep.Notes, "relay_delay_* unavailable: "+err.Error())
		return
	case !ok:
		rep.Notes = append(rep.Notes, "relay_delay_* unavailable: "+relayDelayMetric+" went down between the scrapes (a restart, or another instance answered)")
		return
	case delay.total() == 0:
		rep.Notes = append(rep.Notes, "relay_delay_* unavailable: the target's /metrics counted no "+relayDelayMetric+
			" (a gateway without a relay in its process: scrape a service's ops address instead)")
		return
	}
	rep.Metric("relay_delay_p50_ms", delay.quantile(0.5)*1000)
	rep.Metric("relay_delay_p99_ms", delay.quantile(0.99)*1000)
	rep.Metric("relay_delay_events", float64(delay.total()))
	rep.Notes = append(rep.Notes, "relay_delay_* come from "+relayDelayMetric+" on /metrics: the worker's decision (occurred_at) → Kafka's acknowledgement, interpolated within its buckets (1.5× wide)")
}

// e2eTarget starts the embedded platform or points at --url.
func (m *BenchMain) e2eTarget(ctx context.Context, rep *bench.Report) (*e2eTarget, error) {
	o := m.opts
	if o.url != "" {
		if o.adminPassword == "" {
			return nil, errors.New("--url needs --admin-password (or STRATA_ADMIN_PASSWORD)")
		}
		t := &e2eTarget{url: o.url, email: o.adminEmail, password: o.adminPassword,
			statuses: func(c *apiClient) statusReader { return httpStatuses{client: c, conns: o.concurrency} }}
		if o.databaseURL != "" {
			pool, err := postgres.Connect(ctx, o.databaseURL)
			if err != nil {
				return nil, err
			}
			m.onClose(func() error { pool.Close(); return nil })
			rep.Machine.Postgres = bench.ServerVersion(ctx, pool)
			t.statuses = func(*apiClient) statusReader { return pgStatuses{pool} }
			t.pool = pool
		}
		return t, nil
	}
	rss := bench.StartRSS(100 * time.Millisecond)
	m.onClose(func() error { rss.Stop(); return nil })
	dir, db, err := m.scratch(ctx, rep)
	if err != nil {
		return nil, err
	}
	cfg := m.cfg
	cfg.HTTPAddr, cfg.KafkaAddr, cfg.DataDir, cfg.DatabaseURL = "127.0.0.1:0", "127.0.0.1:0", filepath.Join(dir, "dev"), db.URL
	cfg.Partitions = o.partitions
	cfg.AdminEmail, cfg.AdminPassword = o.adminEmail, o.adminPassword
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = randomHex(12)
	}
	if err := cfg.Validate(config.ModeDev); err != nil {
		return nil, err
	}
	d := NewDev(cfg, io.Discard)
	m.onClose(d.Close)
	if err := d.Run(ctx); err != nil {
		return nil, fmt.Errorf("embedded platform: %w", err)
	}
	pool, err := postgres.Connect(ctx, db.URL)
	if err != nil {
		return nil, err
	}
	m.onClose(func() error { pool.Close(); return nil })
	rep.Machine.Postgres = bench.ServerVersion(ctx, pool)
	return &e2eTarget{url: d.URL(), email: cfg.AdminEmail, password: cfg.AdminPassword, rss: rss, pool: pool,
		statuses: func(*apiClient) statusReader { return pgStatuses{pool} }}, nil
}

// scratch makes the temp dir and the scratch database of an embedded run.
func (m *BenchMain) scratch(ctx context.Context, rep *bench.Report) (string, *bench.Database, error) {
	dir, err := m.tempDir()
	if err != nil {
		return "", nil, err
	}
	db, err := bench.OpenDatabase(ctx, m.opts.databaseURL, dir, m.log)
	if err != nil {
		return "", nil, err
	}
	m.onClose(db.Close)
	rep.Params.Set("database", db.Name)
	rep.Params.Set("database_source", db.Source)
	return dir, db, nil
}

// e2eMetrics fills the report and returns an error if any write failed,
// was rejected or never finished.
func e2eMetrics(rep *bench.Report, st *loadStats, done *outcomes, unfinished []string,
	drained time.Duration, s *sampler, rss *bench.RSS) error {
	ms := func(d time.Duration) float64 { return bench.Millis(d) }
	nErrors := 0
	for _, n := range st.errors {
		nErrors += n
	}
	rep.Metric("commands_per_sec", bench.Rate{N: st.accepted, Elapsed: st.elapsed}.PerSec())
	rep.Metric("projected_per_sec", bench.Rate{N: done.statuses[commands.StatusProjected], Elapsed: st.elapsed + drained}.PerSec())
	rep.Metric("sent", float64(st.sent))
	rep.Metric("accepted", float64(st.accepted))
	rep.Metric("errors", float64(nErrors))
	for _, code := range slices.Sorted(maps.Keys(st.errors)) {
		rep.Metric("errors_"+code, float64(st.errors[code]))
	}
	for _, kind := range slices.Sorted(maps.Keys(st.kinds)) {
		rep.Metric("writes_"+kind, float64(st.kinds[kind]))
	}
	rep.Metric("accept_p50_ms", ms(st.accept.Quantile(0.50)))
	rep.Metric("accept_p99_ms", ms(st.accept.Quantile(0.99)))
	rep.Metric("accept_p999_ms", ms(st.accept.Quantile(0.999)))
	rep.Metric("accept_mean_ms", ms(st.accept.Mean()))
	rep.Metric("accept_max_ms", ms(st.accept.Max()))

	statuses, projected := done.statuses, &done.projected
	rep.Metric("projected", float64(statuses["projected"]))
	nRejected := 0
	for _, k := range slices.Sorted(maps.Keys(statuses)) {
		if k != "projected" {
			rep.Metric("status_"+k, float64(statuses[k]))
			nRejected += statuses[k]
		}
	}
	rep.Metric("unfinished", float64(len(unfinished)))
	rep.Metric("projected_p50_ms", ms(projected.Quantile(0.50)))
	rep.Metric("projected_p99_ms", ms(projected.Quantile(0.99)))
	rep.Metric("projected_p999_ms", ms(projected.Quantile(0.999)))
	rep.Metric("projected_max_ms", ms(projected.Max()))
	rep.Metric("drain_ms", ms(drained))

	s.mu.Lock()
	rep.Metric("projected_sampled_p50_ms", ms(s.lat.Quantile(0.50)))
	rep.Metric("projected_sampled_p99_ms", ms(s.lat.Quantile(0.99)))
	rep.Metric("projected_sampled_p999_ms", ms(s.lat.Quantile(0.999)))
	rep.Metric("projected_samples", float64(s.lat.Len()))
	rep.Metric("projected_samples_skipped", float64(s.skipped))
	if s.skipped > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d samples were skipped with %d polls in flight: projected_sampled_* are biased low", s.skipped, samplesInFlight))
	}
	notFinal := 0
	for _, n := range s.notFinal {
		notFinal += n
	}
	s.mu.Unlock()

	peak := -1.0
	if rss != nil {
		peak = rss.PeakMiB()
		rep.Notes = append(rep.Notes, "peak_rss_mib is this process: the embedded platform and the load generator together")
	}
	rep.Metric("peak_rss_mib", peak)
	rep.Notes = append(rep.Notes,
		"projected_per_sec = writes projected / (load + drain time); below commands_per_sec, the pipeline fell behind the gateway and a backlog grew",
		"projected_* come from strata.commands (projected_at - submitted_at); projected_at is the projector transaction's now(), i.e. its start, not its commit",
		fmt.Sprintf("projected_sampled_* long-poll GET /commands/{id}?wait=10 for 1 in %d writes: client send → answer 'projected'", sampleEvery))
	var errs []error
	if nErrors > 0 {
		errs = append(errs, fmt.Errorf("%d of %d writes were not accepted: %v", nErrors, st.sent, st.errors))
	}
	if nRejected > 0 {
		errs = append(errs, fmt.Errorf("%d accepted writes did not get projected: %v", nRejected, statuses))
	}
	if len(unfinished) > 0 {
		errs = append(errs, fmt.Errorf("%d accepted writes were still not projected after the drain timeout", len(unfinished)))
	}
	if notFinal > 0 {
		errs = append(errs, fmt.Errorf("%d sampled commands did not become projected: %v", notFinal, s.notFinal))
	}
	return errors.Join(errs...)
}

// cpuMetrics reports the CPU used while the writes were sent: this
// process's and the machine's, in cores, and the machine's per accepted
// write. Where /proc cannot be read they are -1.
func cpuMetrics(rep *bench.Report, c0, c1 bench.CPU, elapsed time.Duration, accepted int, embedded bool) {
	cores := func(a, b float64) float64 {
		if a < 0 || b < 0 || elapsed <= 0 {
			return -1
		}
		return (b - a) / elapsed.Seconds()
	}
	rep.Metric("process_cpu_cores", cores(c0.Process, c1.Process))
	host := cores(c0.Host, c1.Host)
	rep.Metric("host_cpu_busy_cores", host)
	perWrite := -1.0
	if host >= 0 && accepted > 0 {
		perWrite = (c1.Host - c0.Host) * 1000 / float64(accepted)
	}
	rep.Metric("host_cpu_ms_per_write", perWrite)
	who := "the load generator"
	if embedded {
		who = "the embedded platform and the load generator"
	}
	rep.Notes = append(rep.Notes, "process_cpu_cores is this process ("+who+"); host_cpu_* are the whole machine's busy CPU "+
		"(/proc/stat), Postgres included when it runs here: at low load a write costs several times its CPU at saturation, "+
		"because every stage batches only what has queued")
}
