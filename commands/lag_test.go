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
	if _, err := pool.Exec(ctx, `INSERT INTO auth.events (event_id, aggregate_type, aggregate_id, version, type, data,
		metadata, occurred_at, prev_hash, hash) VALUES ($1,'role',$2,1,'auth.RoleCreated.v1','{}','{}',
		now() - interval '2 minutes', '\x00', '\x00')`, NewID(), NewID()); err != nil {
		t.Fatal(err)
	}
	if got, err := ProjectionLag(ctx, pool); err != nil || got < time.Minute || got > 2*time.Minute {
		t.Fatalf("projection lag = %v, %v; want about 1m (the projected row does not count)", got, err)
	}
	if got, err := RelayLag(ctx, pool, "auth"); err != nil || got < 2*time.Minute || got > 3*time.Minute {
		t.Fatalf("relay lag = %v, %v; want about 2m", got, err)
	}
}
