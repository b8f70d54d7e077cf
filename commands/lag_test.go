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
	// An older event already published (not in the outbox) does not count.
	if _, err := pool.Exec(ctx, `INSERT INTO auth.events (event_id, aggregate_type, aggregate_id, version, type, data,
		metadata, occurred_at, prev_hash, hash) VALUES ($1,'role',$2,1,'auth.RoleCreated.v1','{}','{}',
		now() - interval '1 hour', '\x00', '\x00')`, NewID(), NewID()); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `WITH e AS (INSERT INTO auth.events (event_id, aggregate_type, aggregate_id, version, type, data,
		metadata, occurred_at, prev_hash, hash) VALUES ($1,'role',$2,1,'auth.RoleCreated.v1','{}','{}',
		now() - interval '2 minutes', '\x00', '\x00') RETURNING position)
		INSERT INTO auth.outbox SELECT position FROM e`, NewID(), NewID()); err != nil {
		t.Fatal(err)
	}
	if got, err := ProjectionLag(ctx, pool); err != nil || got < time.Minute || got > 2*time.Minute {
		t.Fatalf("projection lag = %v, %v; want about 1m (the projected row does not count)", got, err)
	}
	if got, err := RelayLag(ctx, pool, "auth"); err != nil || got < 2*time.Minute || got > 3*time.Minute {
		t.Fatalf("relay lag = %v, %v; want about 2m", got, err)
	}
}

// TestOutboxMigration upgrades a journal that marked rows published in
// place: the rows not yet published move to the outbox, in position order,
// and the column and its index are gone.
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
	if err := postgres.Migrate(ctx, pool, Migrations("auth")); err != nil {
		t.Fatal(err)
	}
	var waiting []int64
	if err := pool.QueryRow(ctx, `SELECT array_agg(position ORDER BY position) FROM auth.outbox`).Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	if len(waiting) != 2 || waiting[0] != 2 || waiting[1] != 4 {
		t.Errorf("outbox after the migration = %v, want [2 4]", waiting)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_attribute WHERE attrelid = 'auth.events'::regclass
		AND attname = 'published_at' AND NOT attisdropped`).Scan(&left); err != nil || left != 0 {
		t.Errorf("published_at columns left: %d, %v", left, err)
	}
}
