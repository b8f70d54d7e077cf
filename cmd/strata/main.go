// Command strata is the one binary of the platform: `strata dev` runs
// everything in one process on an embedded Kafka-protocol broker; the other
// modes run one part against real Kafka and Postgres.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/strata-cqrs/strata/internal/config"
)

const usage = `strata — event-sourced CQRS platform

usage:
  strata dev      [flags]   everything in one process, embedded Kafka, local or private Postgres
  strata gateway  [flags]   the HTTP API (needs STRATA_DATABASE_URL, STRATA_KAFKA_BROKERS, STRATA_COMMAND_KEY)
  strata service NAME [flags]  one service's worker, relay and projectors (NAME: auth)
  strata migrate  [flags]   apply database migrations and exit
  strata admin rotate-keys  add a new JWT signing key (gateways pick it up without a restart)
  strata bench SCENARIO [flags]  measure the platform against raw baselines (e2e, relay, projector, replay, baseline)

Run "strata MODE -h" for a mode's flags. Every flag has a STRATA_* variable.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Main is what every mode implements: Run starts it and returns once it is
// serving; Close shuts it down gracefully.
type Main interface {
	Run(ctx context.Context) error
	Close() error
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "strata:", err)
		return 2
	}
	mode, rest := args[0], args[1:]
	if mode == config.ModeDev || mode == "bench" {
		tuneMemory()
	}
	var m Main
	switch mode {
	case config.ModeDev:
		m, err = parse(&cfg, mode, rest, stderr, func() Main { return NewDev(cfg, stdout) })
	case config.ModeGateway:
		m, err = parse(&cfg, mode, rest, stderr, func() Main { return NewGatewayMain(cfg) })
	case config.ModeService:
		if len(rest) == 0 {
			fmt.Fprintln(stderr, "strata service: name a service (auth)")
			return 2
		}
		name := rest[0]
		m, err = parse(&cfg, mode, rest[1:], stderr, func() Main { return NewServiceMain(cfg, name) })
	case config.ModeMigrate:
		m, err = parse(&cfg, mode, rest, stderr, func() Main { return NewMigrateMain(cfg) })
	case config.ModeAdmin:
		if len(rest) == 0 {
			fmt.Fprintln(stderr, "strata admin: name an action (rotate-keys)")
			return 2
		}
		action := rest[0]
		m, err = parse(&cfg, mode, rest[1:], stderr, func() Main { return NewAdminMain(cfg, action, stdout) })
	case "bench":
		m, err = parseBench(&cfg, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "strata: unknown mode %q\n\n%s", mode, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "strata:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "strata:", err)
		_ = m.Close()
		return 1
	}
	if once, ok := m.(interface{ Once() bool }); !ok || !once.Once() {
		<-ctx.Done()
	}
	if err := m.Close(); err != nil {
		fmt.Fprintln(stderr, "strata: shutdown:", err)
		return 1
	}
	return 0
}

// parse binds and parses a mode's flags, validates, then builds its Main.
func parse(cfg *config.Config, mode string, args []string, stderr io.Writer, build func() Main) (Main, error) {
	fs := flag.NewFlagSet("strata "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.Bind(fs, mode)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := cfg.Validate(mode); err != nil {
		return nil, err
	}
	return build(), nil
}

// tuneMemory sets the garbage collector for the all-in-one process (the
// platform, its broker and, for bench, the load generator); see gcSettings.
func tuneMemory() {
	percent, limit := gcSettings(os.Getenv)
	if limit != 0 { // first: the collector is never off without it
		debug.SetMemoryLimit(limit)
	}
	if percent != 0 {
		debug.SetGCPercent(percent)
	}
}

// memoryLimit is the all-in-one process's soft memory limit.
const memoryLimit = 350 << 20

// gcSettings returns the GOGC percent (-1: off) and the soft memory limit
// that tuneMemory sets; 0 leaves a setting to the environment. GOGC and
// GOMEMLIMIT, when set, win. Otherwise the heap may grow to a soft 350 MiB
// and is collected only as it nears that (GOGC off): with the live heap at
// 50-100 MB the collector then runs about a quarter as often as at
// GOGC=200, and each cycle stalls the requests in flight. At 3,000
// commands/s, five alternating pairs: accept p99 15.7-22.8 ms against
// 19.5-38.6 ms, and 7% less CPU for the box. (GOGC=200 had been +6%
// commands/s and half the command→projected p99 against the default 100,
// with the limit taking peak RSS from 447 to 368 MiB.) A GOMEMLIMIT set
// without GOGC keeps GOGC=200: with no limit of its own the collector must
// not be off.
func gcSettings(getenv func(string) string) (percent int, limit int64) {
	switch {
	case getenv("GOGC") != "":
	case getenv("GOMEMLIMIT") != "":
		percent = 200
	default:
		percent = -1
	}
	if getenv("GOMEMLIMIT") == "" {
		limit = memoryLimit
	}
	return percent, limit
}
