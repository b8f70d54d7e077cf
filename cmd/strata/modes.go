package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	authdomain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/gateway"
	"github.com/strata-cqrs/strata/internal/config"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/tokens"
)

// proc holds what a running mode owns and closes it in reverse order.
type proc struct {
	cfg      config.Config
	log      *slog.Logger
	pool     *pgxpool.Pool
	bus      *commands.Bus
	srv      *http.Server
	httpAddr string
	gw       *gateway.Gateway // what launch serves; tests walk its routes
	cancel   context.CancelFunc
	group    *errgroup.Group
	closers  []func() error // run last, in reverse
}

// connect opens the pool and applies migrations.
func (p *proc) connect(ctx context.Context, url string) error {
	pool, err := postgres.Connect(ctx, url)
	if err != nil {
		return err
	}
	p.pool = pool
	return postgres.Migrate(ctx, pool, migrations())
}

// launch starts the node's components and, with an address, the gateway.
func (p *proc) launch(ctx context.Context, n *node, withGateway bool) error {
	if withGateway {
		g, bus, err := n.addGateway(ctx)
		if err != nil {
			return err
		}
		p.bus, p.gw = bus, g
		if p.srv, p.httpAddr, err = serve(p.log, p.cfg.HTTPAddr, g); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.group = n.start(ctx)
	return nil
}

// Close stops HTTP first, then the components, then the connections.
func (p *proc) Close() error {
	var errs []error
	if p.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, p.srv.Shutdown(ctx))
		cancel()
	}
	if p.cancel != nil {
		p.cancel()
		errs = append(errs, p.group.Wait())
	}
	if p.bus != nil {
		errs = append(errs, p.bus.Close())
	}
	if p.pool != nil {
		p.pool.Close()
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		errs = append(errs, p.closers[i]())
	}
	p.srv, p.cancel, p.bus, p.pool, p.closers = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}

// URL is the gateway's base URL once running.
func (p *proc) URL() string { return "http://" + p.httpAddr }

// Dev runs the whole platform in one process: an embedded Kafka-protocol
// broker, Postgres from the URL, the local server or a private cluster,
// every service and the gateway.
type Dev struct {
	proc
	out       io.Writer
	kafkaAddr string
	pgSource  string
}

// NewDev returns a dev platform for cfg; Run starts it.
func NewDev(cfg config.Config, out io.Writer) *Dev {
	return &Dev{proc: proc{cfg: cfg, log: cfg.Logger()}, out: out}
}

// KafkaAddr is the embedded broker's address once running.
func (d *Dev) KafkaAddr() string { return d.kafkaAddr }

// Run starts everything and returns once it is serving.
func (d *Dev) Run(ctx context.Context) error {
	dir, err := filepath.Abs(d.cfg.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	key, err := d.commandKey(dir)
	if err != nil {
		return err
	}
	broker, err := kafka.StartEmbedded(kafka.EmbeddedOptions{
		Addr: d.cfg.KafkaAddr, DataDir: filepath.Join(dir, "kafka"), Partitions: d.cfg.Partitions, Logger: d.log,
	})
	if err != nil {
		return err
	}
	d.closers = append(d.closers, func() error { broker.Close(); return nil })
	d.kafkaAddr = broker.Addr()
	pg, err := postgres.ResolveDev(ctx, postgres.DevOptions{URL: d.cfg.DatabaseURL, DataDir: dir, Logger: d.log})
	if err != nil {
		return err
	}
	d.closers = append(d.closers, pg.Close)
	d.pgSource = pg.Source
	if err := d.connect(ctx, pg.URL); err != nil {
		return err
	}
	brokers := []string{d.kafkaAddr}
	if err := kafka.EnsureTopics(ctx, brokers, topics(&d.cfg)); err != nil {
		return err
	}
	n, err := newNode(d.log, d.pool, brokers, key)
	if err != nil {
		return err
	}
	n.metrics.MustRegister(brokerConnections(broker, "tcp"), brokerConnections(broker, "memory"))
	for _, s := range services() {
		if err := n.addService(s); err != nil {
			return err
		}
	}
	if err := d.launch(ctx, n, true); err != nil {
		return err
	}
	res, err := n.bootstrap(ctx, d.bus, &d.cfg, true)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	fmt.Fprintf(d.out, "strata dev is running\n  HTTP      %s  (try %s/readyz)\n  Kafka     %s\n  Postgres  %s\n  Data dir  %s\n",
		d.URL(), d.URL(), d.kafkaAddr, d.pgSource, dir)
	switch {
	case res.GeneratedPassword != "":
		fmt.Fprintf(d.out, "  Admin     %s / %s  (generated now and shown once; set STRATA_ADMIN_PASSWORD to choose it)\n",
			d.cfg.AdminEmail, res.GeneratedPassword)
	case res.AdminCreated:
		fmt.Fprintf(d.out, "  Admin     %s (password from STRATA_ADMIN_PASSWORD)\n", d.cfg.AdminEmail)
	default:
		fmt.Fprintf(d.out, "  Admin     %s (created on the first start)\n", d.cfg.AdminEmail)
	}
	return nil
}

// brokerConnections counts the embedded broker's accepted connections of
// one transport: "memory" from this process's clients, "tcp" from others.
func brokerConnections(b *kafka.Broker, transport string) prometheus.CounterFunc {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "strata_embedded_kafka_connections_total",
		Help:        "Connections the embedded Kafka broker accepted: in memory from the platform's own clients, over TCP from other processes.",
		ConstLabels: prometheus.Labels{"transport": transport},
	}, func() float64 {
		tcp, mem := b.Connections()
		if transport == "tcp" {
			return float64(tcp)
		}
		return float64(mem)
	})
}

// commandKey takes STRATA_COMMAND_KEY, or one kept under the data dir.
func (d *Dev) commandKey(dir string) (commands.Key, error) {
	if d.cfg.CommandKey != "" {
		return commands.ParseKey(d.cfg.CommandKey)
	}
	return commands.LoadOrCreateKey(filepath.Join(dir, "command.key"))
}

// GatewayMain runs only the HTTP API against real Kafka and Postgres.
type GatewayMain struct{ proc }

// NewGatewayMain returns the gateway mode.
func NewGatewayMain(cfg config.Config) *GatewayMain {
	return &GatewayMain{proc{cfg: cfg, log: cfg.Logger()}}
}

// Run connects and starts serving.
func (m *GatewayMain) Run(ctx context.Context) error {
	n, err := m.prepare(ctx)
	if err != nil {
		return err
	}
	if err := m.launch(ctx, n, true); err != nil {
		return err
	}
	m.log.Info("gateway serving", "url", m.URL())
	return nil
}

// prepare connects to Postgres and Kafka and builds an empty node.
func (p *proc) prepare(ctx context.Context) (*node, error) {
	key, err := commands.ParseKey(p.cfg.CommandKey)
	if err != nil {
		return nil, err
	}
	if err := p.connect(ctx, p.cfg.DatabaseURL); err != nil {
		return nil, err
	}
	if err := kafka.EnsureTopics(ctx, p.cfg.KafkaBrokers, topics(&p.cfg)); err != nil {
		// With broker ACLs or pre-created topics this may be refused; the
		// deploy scripts create them.
		p.log.Warn("could not ensure topics", "err", err)
	}
	return newNode(p.log, p.pool, p.cfg.KafkaBrokers, key)
}

// ServiceMain runs one service's worker, relay and projectors.
type ServiceMain struct {
	proc
	name string
}

// NewServiceMain returns the service mode for a service name.
func NewServiceMain(cfg config.Config, name string) *ServiceMain {
	return &ServiceMain{proc: proc{cfg: cfg, log: cfg.Logger().With("service", name)}, name: name}
}

// Run connects and starts the service's components.
func (m *ServiceMain) Run(ctx context.Context) error {
	s, ok := findService(m.name)
	if !ok {
		return fmt.Errorf("unknown service %q", m.name)
	}
	n, err := m.prepare(ctx)
	if err != nil {
		return err
	}
	if err := n.addService(s); err != nil {
		return err
	}
	if err := m.launch(ctx, n, false); err != nil {
		return err
	}
	if m.cfg.OpsAddr != "" {
		if m.srv, m.httpAddr, err = serve(m.log, m.cfg.OpsAddr, gateway.OpsHandler(n.checks, n.metrics)); err != nil {
			return err
		}
	}
	if s.Name == authdomain.Service {
		if err := m.bootstrapAuth(ctx, n); err != nil {
			return err
		}
	}
	m.log.Info("service running")
	return nil
}

// bootstrapAuth runs the auth bootstrap with a bus of its own.
func (m *ServiceMain) bootstrapAuth(ctx context.Context, n *node) error {
	bus, err := commands.NewBus(commands.BusConfig{Brokers: n.brokers, Key: n.key, Logger: m.log})
	if err != nil {
		return err
	}
	defer bus.Close()
	res, err := n.bootstrap(ctx, bus, &m.cfg, false)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	m.log.Info("bootstrap done", "commands", res.Created, "admin_created", res.AdminCreated)
	return nil
}

// AdminMain runs one administrative action and exits.
type AdminMain struct {
	proc
	action string
	out    io.Writer
}

// NewAdminMain returns the admin mode for an action (rotate-keys).
func NewAdminMain(cfg config.Config, action string, out io.Writer) *AdminMain {
	return &AdminMain{proc: proc{cfg: cfg, log: cfg.Logger()}, action: action, out: out}
}

// Run performs the action.
func (m *AdminMain) Run(ctx context.Context) error {
	if m.action != "rotate-keys" {
		return fmt.Errorf("unknown admin action %q (known: rotate-keys)", m.action)
	}
	if err := m.connect(ctx, m.cfg.DatabaseURL); err != nil {
		return err
	}
	kid, err := tokens.NewKeys(m.pool, authdomain.Service, m.log).Rotate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.out, "new signing key %s; gateways use it within 5 s, and tokens of the previous key stay valid until they expire\n", kid)
	return nil
}

// Once tells main not to wait for a signal.
func (m *AdminMain) Once() bool { return true }

// MigrateMain applies migrations and exits.
type MigrateMain struct{ proc }

// NewMigrateMain returns the migrate mode.
func NewMigrateMain(cfg config.Config) *MigrateMain {
	return &MigrateMain{proc{cfg: cfg, log: cfg.Logger()}}
}

// Run applies every migration.
func (m *MigrateMain) Run(ctx context.Context) error {
	if err := m.connect(ctx, m.cfg.DatabaseURL); err != nil {
		return err
	}
	m.log.Info("migrations applied")
	return nil
}

// Once tells main not to wait for a signal.
func (m *MigrateMain) Once() bool { return true }
