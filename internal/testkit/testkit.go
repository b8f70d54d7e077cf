// Package testkit provides test helpers for real infrastructure: a fresh
// Postgres database per test, an in-memory embedded Kafka broker per test,
// and polling assertions. Every helper registers its own cleanup.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/postgres"
)

// DatabaseURLEnv names the variable that points tests at a Postgres server.
const DatabaseURLEnv = "STRATA_TEST_DATABASE_URL"

// DefaultDatabaseURL is the server tests use when DatabaseURLEnv is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// startHint tells a developer how to start the default server.
const startHint = "start the local server with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start" +
	" (or point " + DatabaseURLEnv + " at a server whose user may CREATE DATABASE)"

// Postgres creates a fresh, empty database named strata_t_<random> on the
// server at $STRATA_TEST_DATABASE_URL (default DefaultDatabaseURL) and
// returns its URL. The database is dropped, with any sessions still in it,
// when the test ends. If the server does not answer, the test fails with a
// message saying how to start it.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(DatabaseURLEnv)
	if base == "" {
		base = DefaultDatabaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("testkit: %s must be a postgres:// URL, got %q", DatabaseURLEnv, base)
		return ""
	}
	name := "strata_t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := adminConn(ctx, base)
	if err != nil {
		t.Fatalf("testkit: Postgres at %s does not answer: %v\n%s", redacted(u), err, startHint)
		return ""
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testkit: create database %s on %s: %v", name, redacted(u), err)
		return ""
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := adminConn(ctx, base)
		if err != nil {
			t.Errorf("testkit: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testkit: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// adminConn connects to base with a short connect timeout.
func adminConn(ctx context.Context, base string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// redacted renders u without its password.
func redacted(u *url.URL) string { return u.Redacted() }

// PostgresPool returns a pool (postgres.Connect) on a fresh database from
// Postgres(t). The pool is closed, and then the database dropped, when the
// test ends.
func PostgresPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dbURL := Postgres(t)
	if dbURL == "" { // t.Fatalf did not stop a fake testing.TB
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("testkit: %v", err)
		return nil
	}
	t.Cleanup(pool.Close)
	return pool
}

// Kafka starts an in-memory embedded broker on a free 127.0.0.1 port and
// returns its bootstrap addresses. Topics must be created (kafka.EnsureTopics);
// the broker is closed when the test ends.
func Kafka(t testing.TB) []string {
	t.Helper()
	b, err := kafka.StartEmbedded(kafka.EmbeddedOptions{
		Addr:   "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("testkit: %v", err)
		return nil
	}
	t.Cleanup(b.Close)
	return []string{b.Addr()}
}

// Eventually calls cond every 10ms until it returns true, and fails the test
// with the formatted message if that has not happened within timeout. cond
// runs at least once, on the calling goroutine.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("testkit: condition not met within %v: %s", timeout, fmt.Sprintf(format, args...))
			return
		}
		<-tick.C
	}
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return strings.ToLower(hex.EncodeToString(b))
}
