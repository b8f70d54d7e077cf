package commands

import (
	"context"
	"testing"
	"time"

	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
)

func TestLag(t *testing.T) {
	ctx := context.Background()
	pool := testkit.PostgresPool(t)
	if err := postgres.Migrate(ctx, pool, Migrations("auth")); err != nil {
		t.Fatal(err)
	}
	for name, lag := range map[string]func() (time.Duration, error){
		"projection": func() (time.Duration, error) { return ProjectionLag(ctx, pool) },
		"relay":      func() (time.Duration, error) { return RelayLag(ctx, pool, "auth") },
	} {
		if got, err := lag(); err != nil || got != 0 {
			t.Fatalf("%s lag with nothing waiting = %v, %v", name, got, err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO strata.commands (id, service, type, aggregate_id, actor, status, decided_at)
		VALUES ($1,'auth','auth.CreateRole',$2,'u','accepted', now() - interval '1 minute'),
		       ($3,'auth','auth.CreateRole',$4,'u','projected', now() - interval '1 hour')`,
		NewID(), NewID(), NewID(), NewID()); err != nil {
		t.Fatal(err)
	}
	// An older event already published (taken off the outbox) does not
	// count.
	insert := func(age string) int64 {
		var pos int64
		if err := pool.QueryRow(ctx, `INSERT INTO auth.events (event_id, aggregate_type, aggregate_id, version, type, data,
			metadata, occurred_at, prev_hash, hash) VALUES ($1,'role',$2,1,'auth.RoleCreated.v1','{}','{}',
			now() - $3::interval, '\x00', '\x00') RETURNING position`, NewID(), NewID(), age).Scan(&pos); err != nil {
			t.Fatal(err)
		}
		return pos
	}
	published := insert("1 hour")
	if _, err := pool.Exec(ctx, `DELETE FROM auth.outbox WHERE position = $1`, published); err != nil {
		t.Fatal(err)
	}
	insert("2 minutes")
	if got, err := ProjectionLag(ctx, pool); err != nil || got < time.Minute || got > 2*time.Minute {
		t.Fatalf("projection lag = %v, %v; want about 1m (the projected row does not count)", got, err)
	}
	if got, err := RelayLag(ctx, pool, "auth"); err != nil || got < 2*time.Minute || got > 3*time.Minute {
		t.Fatalf("relay lag = %v, %v; want about 2m", got, err)
	}
}

// TestOutboxMigration upgrades a journal that marked rows published in
// place: the rows not yet published move to the outbox, the column and its
// index are gone, and any later insert lists its rows in the outbox.
func TestOutboxMigration(t *testing.T) {
	ctx := context.Background()
	pool := testkit.PostgresPool(t)
	var before []postgres.Migration
	for _, m := range Migrations("auth") {
		if m.Component != "auth.journal" || m.Version < 3 {
			before = append(before, m)
		}
	}
	if err := postgres.Migrate(ctx, pool, before); err != nil {
		t.Fatal(err)
	}
	for i, published := range []bool{true, false, true, false} {
		if _, err := pool.Exec(ctx, `INSERT INTO auth.events (event_id, aggregate_type, aggregate_id, version, type, data,
			metadata, occurred_at, prev_hash, hash, published_at) VALUES ($1,'role',$2,1,'auth.RoleCreated.v1','{}','{}',
			now(), '\x00', '\x00', CASE WHEN $3 THEN now() END)`, NewID(), NewID(), published); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	// An insert in flight when the migration starts: the migration waits
	// for it and moves its row over too.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `INSERT INTO auth.events (event_id, aggregate_type, aggregate_id, version, type, data,
		metadata, occurred_at, prev_hash, hash) VALUES ($1,'role',$2,1,'auth.RoleCreated.v1','{}','{}',
		now(), '\x00', '\x00')`, NewID(), NewID()); err != nil {
		t.Fatal(err)
	}
	migrated := make(chan error, 1)
	go func() { migrated <- postgres.Migrate(ctx, pool, Migrations("auth")) }()
	testkit.Eventually(t, 10*time.Second, func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'auth.events'::regclass`).Scan(&n)
		return n > 0
	}, "the migration waits for the insert in flight")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-migrated; err != nil {
		t.Fatal(err)
	}
	var waiting []int64
	if err := pool.QueryRow(ctx, `SELECT array_agg(position ORDER BY position) FROM auth.outbox`).Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	if len(waiting) != 3 || waiting[0] != 2 || waiting[1] != 4 || waiting[2] != 5 {
		t.Errorf("outbox after the migration = %v, want [2 4 5]", waiting)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = 'auth.events'::regclass
		AND attname = 'published_at' AND NOT attisdropped) + (SELECT count(*) FROM pg_indexes
		WHERE schemaname = 'auth' AND indexname = 'events_unpublished')`).Scan(&left); err != nil || left != 0 {
		t.Errorf("published_at columns and indexes left: %d, %v", left, err)
	}
	// A writer that knows nothing of the outbox (the release before, still
	// running) gets its rows listed all the same.
	var pos int64
	if err := pool.QueryRow(ctx, `INSERT INTO auth.events (event_id, aggregate_type, aggregate_id, version, type, data,
		metadata, occurred_at, prev_hash, hash) VALUES ($1,'role',$2,1,'auth.RoleCreated.v1','{}','{}',
		now(), '\x00', '\x00') RETURNING position`, NewID(), NewID()).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM auth.outbox WHERE position = $1`, pos).Scan(&left); err != nil || left != 1 {
		t.Errorf("a plain insert after the migration: %d outbox rows, %v; want 1", left, err)
	}
}
