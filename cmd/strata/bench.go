package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/strata-cqrs/strata/internal/bench"
	"github.com/strata-cqrs/strata/internal/config"
)

const benchUsage = `usage: strata bench SCENARIO [flags]

Scenarios:
  e2e        authorised HTTP writes (CreateRole, GrantPermission) through the whole platform:
             commands/s, accept and command→projected latency, errors by code, peak RSS
  relay      journal → Kafka: N events pre-filled in the journal, relayed; vs raw kafka-go produce
  projector  Kafka → read model: N auth events pre-filled in Kafka, projected; vs raw batched upsert
  replay     projection rebuild from offset 0 (not available yet: arrives with audit/replay)
  baseline   raw kafka-go produce and consume, pgx COPY, batched upsert, single-row commits

Every scenario starts its own platform (embedded broker, a scratch database
it drops at the end) unless --url / --kafka point it elsewhere. With --json
it prints one JSON object: {"scenario","machine","params","metrics","ratios"}.
It exits 1 if any request failed unexpectedly.

Flags:
`

// benchOptions are the flags of `strata bench`.
type benchOptions struct {
	scenario      string
	duration      time.Duration
	concurrency   int
	rate          float64
	warmup        time.Duration
	events        int
	json          bool
	jsonOut       string
	quiet         bool
	url           string
	kafka         string
	databaseURL   string
	adminEmail    string
	adminPassword string
	mix           string
	accounts      int
	partitions    int
	drainTimeout  time.Duration
	cpuProfile    string
	memProfile    string
	logLevel      string
}

// scenario runs one benchmark. It returns the report to print (nil when
// nothing was measured) and an error when the run failed or any request
// failed unexpectedly; a report and an error may come together.
type scenario func(ctx context.Context, m *BenchMain) (*bench.Report, error)

func scenarios() map[string]scenario {
	return map[string]scenario{
		"e2e":       runE2E,
		"relay":     runRelay,
		"projector": runProjector,
		"replay":    runReplay,
		"baseline":  runBaseline,
	}
}

// BenchMain runs one `strata bench` scenario and exits. Whatever it set up
// (temp dirs, brokers, scratch databases, platforms) is registered with
// onClose and removed by Close.
type BenchMain struct {
	cfg     config.Config
	opts    benchOptions
	out     io.Writer
	errOut  io.Writer
	log     *slog.Logger
	closers []func() error
	profile *os.File
}

// parseBench parses `strata bench SCENARIO [flags]`.
func parseBench(cfg *config.Config, args []string, stdout, stderr io.Writer) (Main, error) {
	m := &BenchMain{cfg: *cfg, out: stdout, errOut: stderr}
	fs := flag.NewFlagSet("strata bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	o := &m.opts
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "e2e: how long to send writes after the warm-up")
	fs.IntVar(&o.concurrency, "concurrency", 64, "e2e: concurrent writers (with --rate: most requests in flight)")
	fs.Float64Var(&o.rate, "rate", 0, "e2e: writes per second, open loop (latency from each write's scheduled time); 0 = closed loop")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "e2e: unrecorded load before measuring")
	fs.IntVar(&o.events, "events", 200_000, "relay, projector, baseline: events per measurement")
	fs.BoolVar(&o.json, "json", false, "print one JSON object instead of the table")
	fs.StringVar(&o.jsonOut, "json-out", "", "also append the JSON object, as one line, to this file")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.StringVar(&o.url, "url", "", "e2e: an existing gateway to load instead of an embedded platform")
	fs.StringVar(&o.kafka, "kafka", "", "relay, projector, baseline: existing brokers (comma-separated) instead of the embedded one; topics get a bench prefix and are deleted")
	fs.StringVar(&o.databaseURL, "database-url", cfg.DatabaseURL,
		"embedded runs: a Postgres server (postgres:// URL) to create the scratch database on; with --url: the target's database, read for command timestamps (STRATA_DATABASE_URL)")
	fs.StringVar(&o.adminEmail, "admin-email", cfg.AdminEmail, "e2e: the admin to log in as (STRATA_ADMIN_EMAIL)")
	fs.StringVar(&o.adminPassword, "admin-password", cfg.AdminPassword, "e2e: the admin's password; embedded runs generate one when empty (STRATA_ADMIN_PASSWORD)")
	fs.StringVar(&o.mix, "mix", "create_role=1,grant_permission=1,deposit=1", "e2e: relative weights of the write kinds (create_role, grant_permission, deposit)")
	fs.IntVar(&o.accounts, "accounts", 1000, "e2e: accounts opened before the run that the deposits spread over (1: one hot account)")
	fs.IntVar(&o.partitions, "partitions", cfg.Partitions, "partitions of the topics the bench creates (STRATA_TOPIC_PARTITIONS)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 2*time.Minute, "e2e: how long to wait for the last commands to be projected")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured phase to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile to this file at the end")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level of the embedded platform")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		fs.Usage()
		return nil, errors.New("name a scenario")
	}
	o.scenario = args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	m.cfg.LogLevel = o.logLevel
	m.log = m.cfg.Logger()
	return m, nil
}

func (m *BenchMain) validate() error {
	o := m.opts
	var errs []error
	if _, ok := scenarios()[o.scenario]; !ok {
		names := make([]string, 0, 5)
		for n := range scenarios() {
			names = append(names, n)
		}
		slices.Sort(names)
		errs = append(errs, fmt.Errorf("unknown scenario %q (known: %s)", o.scenario, strings.Join(names, ", ")))
	}
	if o.duration <= 0 || o.warmup < 0 || o.drainTimeout <= 0 {
		errs = append(errs, errors.New("--duration and --drain-timeout must be positive, --warmup not negative"))
	}
	if o.concurrency < 1 || o.rate < 0 || o.events < 1 || o.partitions < 1 || o.accounts < 1 {
		errs = append(errs, errors.New("--concurrency, --events, --partitions and --accounts must be at least 1, --rate not negative"))
	}
	if _, err := parseMix(o.mix); err != nil {
		errs = append(errs, err)
	}
	c := config.Config{LogLevel: o.logLevel}
	if _, err := c.Level(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Run runs the scenario and prints its report.
func (m *BenchMain) Run(ctx context.Context) error {
	rep, err := scenarios()[m.opts.scenario](ctx, m)
	if perr := m.stopProfile(); perr != nil {
		err = errors.Join(err, perr)
	}
	if rep != nil {
		err = errors.Join(err, m.print(rep))
	}
	return err
}

// print writes the report as JSON or as a table, and appends it to
// --json-out.
func (m *BenchMain) print(rep *bench.Report) error {
	var errs []error
	if m.opts.json {
		errs = append(errs, rep.WriteJSON(m.out))
	} else {
		errs = append(errs, rep.WriteTable(m.out))
	}
	if m.opts.jsonOut != "" {
		f, err := os.OpenFile(m.opts.jsonOut, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			err = errors.Join(rep.WriteJSON(f), f.Close())
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Close removes everything the scenario set up, last first.
func (m *BenchMain) Close() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i]())
	}
	m.closers = nil
	return errors.Join(errs...)
}

// Once tells main not to wait for a signal.
func (m *BenchMain) Once() bool { return true }

// onClose registers f to run at Close, before everything registered earlier.
func (m *BenchMain) onClose(f func() error) { m.closers = append(m.closers, f) }

// tempDir makes a directory removed at Close.
func (m *BenchMain) tempDir() (string, error) {
	dir, err := os.MkdirTemp("", "strata-bench-")
	if err != nil {
		return "", err
	}
	m.onClose(func() error { return os.RemoveAll(dir) })
	return dir, nil
}

// report returns a report for the scenario with the common parameters.
func (m *BenchMain) report() *bench.Report {
	rep := bench.NewReport(m.opts.scenario)
	rep.Params.Set("partitions", m.opts.partitions)
	return rep
}

// bar returns a progress bar on stderr, unless --quiet or stderr is not a
// terminal.
func (m *BenchMain) bar(max int64, desc string) *bench.Bar {
	return bench.NewBar(m.errOut, m.opts.quiet, max, desc)
}

// startProfile starts the CPU profile, if asked for, at the start of the
// measured phase.
func (m *BenchMain) startProfile() error {
	if m.opts.cpuProfile == "" || m.profile != nil {
		return nil
	}
	f, err := os.Create(m.opts.cpuProfile)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	m.profile = f
	return nil
}

// stopProfile ends the CPU profile at the end of the measured phase, and
// writes the allocation profile; calling it again does nothing.
func (m *BenchMain) stopProfile() error {
	var errs []error
	if m.profile != nil {
		pprof.StopCPUProfile()
		errs = append(errs, m.profile.Close())
		m.profile = nil
	}
	if m.opts.memProfile != "" {
		f, err := os.Create(m.opts.memProfile)
		if err == nil {
			runtime.GC()
			err = errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
		}
		errs = append(errs, err)
		m.opts.memProfile = ""
	}
	return errors.Join(errs...)
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// runReplay reports that replay is not available yet.
func runReplay(_ context.Context, m *BenchMain) (*bench.Report, error) {
	rep := m.report()
	rep.Available = false
	rep.Notes = append(rep.Notes, "replay (rebuilding a projection from offset 0) arrives with the audit/replay work")
	return rep, nil
}
