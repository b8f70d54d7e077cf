package testkit_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// fakeTB records failures instead of stopping the goroutine, and runs its
// cleanups on demand.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	failures []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) { f.record(format, args...) }
func (f *fakeTB) Errorf(format string, args ...any) { f.record(format, args...) }

func (f *fakeTB) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func dbExists(t *testing.T, name string) bool {
	t.Helper()
	base := os.Getenv(testkit.DatabaseURLEnv)
	if base == "" {
		base = testkit.DefaultDatabaseURL
	}
	conn, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestPostgresFreshDatabaseDroppedAtCleanup(t *testing.T) {
	var first, second string
	var open *pgx.Conn
	t.Run("inner", func(t *testing.T) {
		first, second = testkit.Postgres(t), testkit.Postgres(t)
		if first == second {
			t.Fatalf("two calls returned the same database %s", first)
		}
		conn, err := pgx.Connect(context.Background(), first)
		if err != nil {
			t.Fatalf("connect %s: %v", first, err)
		}
		// Left open on purpose: cleanup must drop the database anyway.
		open = conn
		var tables int
		err = conn.QueryRow(t.Context(),
			"SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").Scan(&tables)
		if err != nil || tables != 0 {
			t.Errorf("fresh database has %d tables (%v), want 0", tables, err)
		}
	})
	if open != nil {
		defer open.Close(context.Background())
	}
	for _, u := range []string{first, second} {
		name := u[strings.LastIndex(u, "/")+1:]
		if !strings.HasPrefix(name, "strata_t_") {
			t.Errorf("database %q, want strata_t_<random>", name)
		}
		if dbExists(t, name) {
			t.Errorf("database %s still exists after cleanup", name)
		}
	}
}

func TestPostgresPool(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		pool := testkit.PostgresPool(t)
		if err := pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "strata_t_") {
			t.Errorf("pool is on %q, want a fresh strata_t_ database", name)
		}
	})
	if dbExists(t, name) {
		t.Errorf("database %s still exists after cleanup", name)
	}
}

func TestPostgresServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv(testkit.DatabaseURLEnv, "postgres://postgres@"+addr+"/postgres")
	f := &fakeTB{TB: t}
	if got := testkit.Postgres(f); got != "" {
		t.Errorf("returned %q with the server down", got)
	}
	f.runCleanups()
	if len(f.failures) != 1 || !strings.Contains(f.failures[0], "pg_ctlcluster") || !strings.Contains(f.failures[0], addr) {
		t.Errorf("failures %q, want one naming %s and how to start the server", f.failures, addr)
	}
}

func TestKafka(t *testing.T) {
	var brokers []string
	t.Run("inner", func(t *testing.T) {
		brokers = testkit.Kafka(t)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := kafka.Ping(ctx, brokers); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if err := kafka.EnsureTopics(ctx, brokers, []kafka.Topic{{Name: "t"}}); err != nil {
			t.Fatalf("EnsureTopics: %v", err)
		}
	})
	if len(brokers) != 1 || !strings.HasPrefix(brokers[0], "127.0.0.1:") {
		t.Fatalf("brokers %v, want one on 127.0.0.1", brokers)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := kafka.Ping(ctx, brokers); err == nil {
		t.Error("broker still answers after cleanup")
	}
}

func TestEventually(t *testing.T) {
	calls := 0
	testkit.Eventually(t, 5*time.Second, func() bool { calls++; return calls == 3 }, "never reached 3")
	if calls != 3 {
		t.Errorf("cond called %d times, want 3 (it stops once true)", calls)
	}

	f := &fakeTB{TB: t}
	testkit.Eventually(f, 50*time.Millisecond, func() bool { return false }, "projection %s not caught up", "auth")
	if len(f.failures) != 1 || !strings.Contains(f.failures[0], "projection auth not caught up") {
		t.Errorf("failures %q, want the formatted message", f.failures)
	}
}
