package postgres_test

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
)

func TestConnectDefaultsToSixteenConns(t *testing.T) {
	dbURL := testkit.Postgres(t)
	pool, err := postgres.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer pool.Close()
	if got := pool.Config().MaxConns; got != postgres.DefaultMaxConns {
		t.Errorf("MaxConns = %d, want %d", got, postgres.DefaultMaxConns)
	}
	var one int
	if err := pool.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
}

func TestConnectHonoursPoolMaxConns(t *testing.T) {
	u, err := url.Parse(testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "3")
	u.RawQuery = q.Encode()
	pool, err := postgres.Connect(t.Context(), u.String())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer pool.Close()
	if got := pool.Config().MaxConns; got != 3 {
		t.Errorf("MaxConns = %d, want 3", got)
	}
}

func TestConnectErrors(t *testing.T) {
	closed := closedAddr(t)
	tests := []struct {
		name, url, want string
	}{
		{"empty", "", "empty database URL"},
		{"unparsable", "postgres://x:y@[::1/db", "parse database URL"},
		{"unreachable", "postgres://user:sekrit@" + closed + "/db?connect_timeout=2", "connect to " + closed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			pool, err := postgres.Connect(ctx, tc.url)
			if err == nil {
				pool.Close()
				t.Fatal("Connect succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sekrit") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestConnectPricesRandomReadsForCachedData: sessions plan with
// random_page_cost 1.1 unless the URL or the database sets it.
func TestConnectPricesRandomReadsForCachedData(t *testing.T) {
	dbURL := testkit.Postgres(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("random_page_cost", "2.5")
	u.RawQuery = q.Encode()
	for url, want := range map[string]string{dbURL: "1.1", u.String(): "2.5"} {
		checkRandomPageCost(t, url, want)
	}
	// A database's own setting stands.
	pool, err := postgres.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	_, err = pool.Exec(t.Context(), `ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET random_page_cost = 3`)
	pool.Close()
	if err != nil {
		t.Fatal(err)
	}
	checkRandomPageCost(t, dbURL, "3")
}

// checkRandomPageCost connects with url and compares the session's
// random_page_cost with want.
func checkRandomPageCost(t *testing.T, url, want string) {
	t.Helper()
	pool, err := postgres.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	var got string
	err = pool.QueryRow(t.Context(), `SHOW random_page_cost`).Scan(&got)
	pool.Close()
	if err != nil || got != want {
		t.Errorf("random_page_cost = %q, %v; want %q", got, err, want)
	}
}
