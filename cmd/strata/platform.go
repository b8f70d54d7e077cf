package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/strata-cqrs/strata/aggregates"
	accountdomain "github.com/strata-cqrs/strata/aggregates/account"
	authdomain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
	accountcmd "github.com/strata-cqrs/strata/commands/account"
	authcmd "github.com/strata-cqrs/strata/commands/auth"
	"github.com/strata-cqrs/strata/gateway"
	"github.com/strata-cqrs/strata/internal/config"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/password"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/tokens"
	"github.com/strata-cqrs/strata/projections"
	accountread "github.com/strata-cqrs/strata/projections/account"
	authread "github.com/strata-cqrs/strata/projections/auth"
	"github.com/strata-cqrs/strata/schemas"
)

// service is what one service contributes: its aggregates, projections
// and process managers.
type service struct {
	Name        string
	Aggregates  []*aggregates.Definition
	Projections []*projections.Projection
	// Processes adds the service's process managers to a node.
	Processes func(n *node) error
}

// services lists every service the binary runs, in start order.
func services() []service {
	return []service{
		{Name: authdomain.Service, Aggregates: authdomain.Definitions(), Projections: []*projections.Projection{authread.Projection()}},
		{Name: accountdomain.Service, Aggregates: accountdomain.Definitions(), Projections: []*projections.Projection{accountread.Projection()},
			Processes: func(n *node) error {
				m, err := accountcmd.NewTransferManager(accountcmd.TransferManagerConfig{
					Brokers: n.brokers, Pool: n.pool, Registry: n.reg, Logger: n.log,
				})
				if err != nil {
					return err
				}
				n.add("account.transfers", m)
				n.checks = append(n.checks, lagCheck("account.transfers.lag", func(ctx context.Context) (time.Duration, error) {
					return accountread.NewStore(n.pool).TransferLag(ctx)
				}))
				return nil
			}},
	}
}

func findService(name string) (service, bool) {
	for _, s := range services() {
		if s.Name == name {
			return s, true
		}
	}
	return service{}, false
}

// registry registers every aggregate of every service.
func registry() (*commands.Registry, error) {
	var defs []*aggregates.Definition
	for _, s := range services() {
		defs = append(defs, s.Aggregates...)
	}
	return commands.NewRegistry(defs...)
}

// migrations returns every schema migration, journal first.
func migrations() []postgres.Migration {
	var names []string
	for _, s := range services() {
		names = append(names, s.Name)
	}
	ms := commands.Migrations(names...)
	ms = append(ms, postgres.Migration{Component: "auth.tokens", Version: 1, SQL: tokens.Migration(authdomain.Service)})
	for _, s := range services() {
		for _, p := range s.Projections {
			ms = append(ms, p.AllMigrations()...)
		}
	}
	return ms
}

// topics returns every topic of every service: commands, DLQ and one per
// aggregate, all with infinite retention.
func topics(c *config.Config) []kafka.Topic {
	cfg := map[string]string{"retention.ms": "-1", "min.insync.replicas": fmt.Sprint(c.MinISR)}
	t := func(name string) kafka.Topic {
		return kafka.Topic{Name: name, Partitions: c.Partitions, ReplicationFactor: c.ReplicationFactor, Configs: cfg}
	}
	var out []kafka.Topic
	for _, s := range services() {
		out = append(out, t(commands.CommandTopic(s.Name)), t(commands.DLQTopic(s.Name)))
		for _, d := range s.Aggregates {
			out = append(out, t(d.Topic()))
		}
	}
	return out
}

// runner is a long-running component.
type runner interface {
	Run(ctx context.Context) error
}

// readiness is a component that can say whether it is serving.
type readiness interface {
	Ready() bool
}

// node is the set of components one process runs, and their checks.
type node struct {
	log     *slog.Logger
	pool    *pgxpool.Pool
	brokers []string
	key     commands.Key
	reg     *commands.Registry
	metrics *prometheus.Registry
	runners []runner
	checks  []gateway.Check
	hasher  *password.Hasher
}

func newNode(log *slog.Logger, pool *pgxpool.Pool, brokers []string, key commands.Key) (*node, error) {
	reg, err := registry()
	if err != nil {
		return nil, err
	}
	m := prometheus.NewRegistry()
	m.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n := &node{log: log, pool: pool, brokers: brokers, key: key, reg: reg, metrics: m,
		hasher: password.NewHasher(password.OWASP, runtime.NumCPU())}
	n.checks = []gateway.Check{
		{Name: "postgres", Check: func(ctx context.Context) error { return pool.Ping(ctx) }},
		{Name: "kafka", Check: func(ctx context.Context) error { return kafka.Ping(ctx, brokers) }},
		lagCheck("projection.lag", func(ctx context.Context) (time.Duration, error) { return commands.ProjectionLag(ctx, pool) }),
	}
	// Until autovacuum's first visit, young tables are analyzed as they
	// grow (see postgres.StatsKeeper); every process runs one, one acts.
	n.runners = append(n.runners, &postgres.StatsKeeper{Pool: pool, Logger: log})
	return n, nil
}

// MaxLag is how far behind the relay or the projections may fall before
// /readyz reports the platform not ready.
const MaxLag = 30 * time.Second

// lagCheck fails when a lag exceeds MaxLag.
func lagCheck(name string, lag func(context.Context) (time.Duration, error)) gateway.Check {
	return gateway.Check{Name: name, Check: func(ctx context.Context) error {
		d, err := lag(ctx)
		if err == nil && d > MaxLag {
			err = fmt.Errorf("%s behind (more than %s)", d.Round(time.Second), MaxLag)
		}
		return err
	}}
}

// add registers a component and, when it can say so, its readiness.
func (n *node) add(name string, r runner) {
	n.runners = append(n.runners, r)
	if rd, ok := r.(readiness); ok {
		n.checks = append(n.checks, gateway.Check{Name: name, Check: func(context.Context) error {
			if !rd.Ready() {
				return errors.New("not serving")
			}
			return nil
		}})
	}
}

// addService adds a service's worker, relay and projectors.
func (n *node) addService(s service) error {
	w, err := commands.NewWorker(commands.WorkerConfig{
		Service: s.Name, Brokers: n.brokers, Pool: n.pool, Registry: n.reg, Key: n.key, Logger: n.log,
	})
	if err != nil {
		return err
	}
	n.add(s.Name+".worker", w)
	r, err := commands.NewRelay(commands.RelayConfig{
		Service: s.Name, Brokers: n.brokers, Pool: n.pool, Registry: n.reg, Logger: n.log,
		DataSchema: schemas.DataSchemaURI, Metrics: n.metrics,
	})
	if err != nil {
		return err
	}
	n.add(s.Name+".relay", r)
	j, err := commands.NewJanitor(commands.JanitorConfig{Service: s.Name, Brokers: n.brokers, Pool: n.pool, Logger: n.log})
	if err != nil {
		return err
	}
	n.add(s.Name+".janitor", j)
	n.checks = append(n.checks, lagCheck(s.Name+".relay.lag", func(ctx context.Context) (time.Duration, error) {
		return commands.RelayLag(ctx, n.pool, s.Name)
	}))
	for _, p := range s.Projections {
		pr, err := projections.New(projections.Config{
			Projection: p, Brokers: n.brokers, Pool: n.pool, Decoder: n.reg, Mark: commands.QueueMarkProjected, Logger: n.log,
		})
		if err != nil {
			return err
		}
		n.add("projection."+p.Name, pr)
	}
	if s.Processes != nil {
		return s.Processes(n)
	}
	return nil
}

// addGateway builds the gateway and its bus; the caller closes the bus.
func (n *node) addGateway(ctx context.Context) (*gateway.Gateway, *commands.Bus, error) {
	sch, err := schemas.Load()
	if err != nil {
		return nil, nil, err
	}
	keys := tokens.NewKeys(n.pool, authdomain.Service, n.log)
	if err := keys.EnsureOne(ctx); err != nil {
		return nil, nil, err
	}
	if err := keys.Refresh(ctx); err != nil {
		return nil, nil, err
	}
	n.runners = append(n.runners, keys)
	tcfg := tokens.Config{}.WithDefaults()
	sessions := tokens.NewSessions(n.pool, authdomain.Service, tcfg)
	reads := authread.NewStore(n.pool)
	bus, err := commands.NewBus(commands.BusConfig{Brokers: n.brokers, Key: n.key, Logger: n.log})
	if err != nil {
		return nil, nil, err
	}
	statuses := commands.NewStatusStore(n.pool)
	n.runners = append(n.runners, statuses)
	g, err := gateway.New(gateway.Config{
		Pool:      n.pool,
		Bus:       bus,
		Statuses:  statuses,
		Schemas:   sch,
		Auth:      reads,
		Accounts:  accountread.NewStore(n.pool),
		Checks:    n.checks,
		Metrics:   n.metrics,
		OpenAPI:   schemas.FS,
		Logger:    n.log,
		Tokens:    tokens.NewVerifier(keys, tcfg),
		Issuer:    tokens.NewIssuer(keys, tcfg),
		Keys:      keys,
		Sessions:  sessions,
		Access:    accessSource{reads, sessions},
		Passwords: n.hasher,
		Logins:    authcmd.NewLogins(n.pool, n.reg, n.log),
	})
	if err != nil {
		_ = bus.Close()
		return nil, nil, err
	}
	n.runners = append(n.runners, g)
	return g, bus, nil
}

// accessSource joins the read model's permissions and the revoked sessions.
type accessSource struct {
	*authread.Store
	*tokens.Sessions
}

// bootstrap creates the built-in permissions, the admin role and the admin
// user through ordinary commands; it is idempotent.
func (n *node) bootstrap(ctx context.Context, bus *commands.Bus, cfg *config.Config, generate bool) (authcmd.BootstrapResult, error) {
	return authcmd.Bootstrap(ctx, authcmd.BootstrapConfig{
		Pool: n.pool, Registry: n.reg, Bus: bus, Hasher: n.hasher, Logger: n.log,
		AdminEmail: cfg.AdminEmail, AdminPassword: cfg.AdminPassword, GeneratePassword: generate,
	})
}

// start runs every component in the background until ctx is done.
func (n *node) start(ctx context.Context) *errgroup.Group {
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range n.runners {
		g.Go(func() error { return r.Run(ctx) })
	}
	return g
}

// serve starts an HTTP server for h on addr and returns it and its
// listener's real address.
func serve(log *slog.Logger, addr string, h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("http listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      45 * time.Second, // above the 30 s maximum wait
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	return srv, ln.Addr().String(), nil
}
