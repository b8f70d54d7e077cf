package postgres_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// TestStatsKeeperAnalyzesTablesThatDoubled: a young table is analyzed once
// its changes since the last analyze reach its size then, and not before;
// one that was MaxRows or more at its last analyze is left to autovacuum.
func TestStatsKeeperAnalyzesTablesThatDoubled(t *testing.T) {
	pool := testkit.PostgresPool(t)
	ctx := t.Context()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		// Counters reach pg_stat_user_tables when the backend flushes them.
		if _, err := conn.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
	}
	insert := func(n int) { exec(`INSERT INTO grow.t (v) SELECT g FROM generate_series(1, $1) g`, n) }
	reltuples := func() float64 {
		var n float64
		if err := pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'grow.t'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	k := &postgres.StatsKeeper{Pool: pool}
	round := func(want bool) {
		t.Helper()
		got, err := k.Round(ctx)
		if err != nil {
			t.Fatalf("Round: %v", err)
		}
		if slices.Contains(got, "grow.t") != want {
			t.Fatalf("Round analyzed %v; want grow.t analyzed: %v", got, want)
		}
	}

	exec(`CREATE SCHEMA grow; CREATE TABLE grow.t (id bigserial PRIMARY KEY, v int) WITH (autovacuum_enabled = off)`)
	insert(999)
	round(false) // fewer than MinChanges
	if n := reltuples(); n != -1 {
		t.Fatalf("reltuples = %v before any analyze, want -1", n)
	}
	insert(4001)
	round(true)
	if n := reltuples(); n != 5000 {
		t.Fatalf("reltuples = %v after the analyze, want 5000", n)
	}
	round(false)
	insert(4999) // changes below the 5000 rows it held
	round(false)
	exec(`UPDATE grow.t SET v = 0 WHERE id = 1`) // the 5000th change
	round(true)
	if n := reltuples(); n != 9999 {
		t.Fatalf("reltuples = %v after the second analyze, want 9999", n)
	}
	k.MaxRows = 9999
	insert(20000)
	round(false)
	k.MaxRows = 0 // the default, 10,000
	round(true)
}

// TestStatsKeeperLeavesRoundsToTheLockHolder: while another process holds
// the round's lock, Round analyzes nothing and reports no error.
func TestStatsKeeperLeavesRoundsToTheLockHolder(t *testing.T) {
	pool := testkit.PostgresPool(t)
	ctx := t.Context()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`CREATE TABLE young (v int) WITH (autovacuum_enabled = off)`, `INSERT INTO young SELECT generate_series(1, 5000)`, `SELECT pg_stat_force_next_flush()`} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	conn.Release()
	k := &postgres.StatsKeeper{Pool: pool}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, postgres.StatsLockKey); err != nil { // same key space as the session lock
			return err
		}
		got, err := k.Round(ctx)
		if err != nil || got != nil {
			t.Errorf("Round while another holds the lock = %v, %v; want nil, nil", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Round(context.WithoutCancel(ctx))
	if err != nil || !slices.Contains(got, "public.young") {
		t.Fatalf("Round once the lock is free = %v, %v; want public.young analyzed", got, err)
	}
}
