package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	domain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/password"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// failingBus refuses every command, like a bus whose broker is down.
type failingBus struct{}

func (failingBus) Send(context.Context, *commands.Envelope) error { return errors.New("broker down") }

// TestBootstrapRecoversAndIsIdempotent: a first run whose produce failed
// leaves pending rows; the next run re-sends them with its own password,
// which is the one that works; a third run sends nothing.
func TestBootstrapRecoversAndIsIdempotent(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := testkit.PostgresPool(t)
	if err := postgres.Migrate(ctx, pool, commands.Migrations(domain.Service)); err != nil {
		t.Fatal(err)
	}
	reg, err := commands.NewRegistry(domain.Definitions()...)
	if err != nil {
		t.Fatal(err)
	}
	brokers := testkit.Kafka(t)
	topics := []kafka.Topic{{Name: commands.CommandTopic(domain.Service), Partitions: 2}, {Name: commands.DLQTopic(domain.Service), Partitions: 1}}
	if err := kafka.EnsureTopics(ctx, brokers, topics); err != nil {
		t.Fatal(err)
	}
	key := commands.Key(make([]byte, 32))
	w, err := commands.NewWorker(commands.WorkerConfig{Service: domain.Service, Brokers: brokers, Pool: pool, Registry: reg, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.Run(ctx) }()
	bus, err := commands.NewBus(commands.BusConfig{Brokers: brokers, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	hasher := password.NewHasher(password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)
	run := func(b Sender, pw string) (BootstrapResult, error) {
		return Bootstrap(ctx, BootstrapConfig{Pool: pool, Registry: reg, Bus: b, Hasher: hasher,
			AdminEmail: "root@example.com", AdminPassword: pw, Wait: 20 * time.Second})
	}

	if _, err := run(failingBus{}, "first password!"); err == nil {
		t.Fatal("bootstrap with a dead bus succeeded")
	}
	// The ids are deterministic, so forged copies may be refused under
	// them first: such a record is no decision, and gives way.
	tag, err := pool.Exec(ctx, `UPDATE strata.commands SET status = 'rejected', code = 'forged_command',
		actor = 'forger', decided_at = now() WHERE status IN ('pending', 'failed')`)
	if err != nil || tag.RowsAffected() == 0 {
		t.Fatalf("forging the first run's commands: %v, %d rows", err, tag.RowsAffected())
	}
	res, err := run(bus, "second password")
	if err != nil {
		t.Fatalf("bootstrap after a failed run: %v", err)
	}
	if !res.AdminCreated {
		t.Fatal("the admin was not created")
	}
	checkLogin(t, ctx, pool, reg, hasher, "second password", true)
	checkLogin(t, ctx, pool, reg, hasher, "first password!", false)
	var forged int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM strata.commands WHERE actor = 'forger' OR code = 'forged_command'`).Scan(&forged); err != nil || forged != 0 {
		t.Fatalf("%d commands still carry the forgeries' actor or code: %v", forged, err)
	}

	before := count(t, pool)
	again, err := run(bus, "third password!")
	if err != nil || again.Created != 0 || again.AdminCreated {
		t.Fatalf("a third run = %+v, %v; want nothing sent", again, err)
	}
	if after := count(t, pool); after != before {
		t.Fatalf("a third run wrote %d events", after-before)
	}
	checkLogin(t, ctx, pool, reg, hasher, "second password", true)
}

func checkLogin(t *testing.T, ctx context.Context, pool *pgxpool.Pool, reg *commands.Registry, h *password.Hasher, pw string, want bool) {
	t.Helper()
	c, found, err := NewLogins(pool, reg, nil).Lookup(ctx, "root@example.com")
	if err != nil || !found {
		t.Fatalf("admin credentials: found=%v, %v", found, err)
	}
	if ok, err := h.Verify(ctx, pw, c.Hash); err != nil || ok != want {
		t.Fatalf("password %q verifies = %v, %v; want %v", pw, ok, err, want)
	}
}

func count(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM auth.events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
