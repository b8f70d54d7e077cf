package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migration is one schema change of one component. Component names the owner
// (for example "auth" or "commands"); Version orders the migrations of a
// component; SQL may hold several statements and runs inside a transaction.
type Migration struct {
	Component string
	Version   int
	SQL       string
}

// migrateLockKey is the pg_advisory_xact_lock key that serialises migrators.
// It is an arbitrary constant ("strata" in ASCII, shifted).
const migrateLockKey int64 = 0x73747261746100

const migrationsDDL = `
CREATE SCHEMA IF NOT EXISTS strata_meta;
CREATE TABLE IF NOT EXISTS strata_meta.migrations (
	component  text        NOT NULL,
	version    int         NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (component, version)
);`

// Migrate applies every migration in ms that strata_meta.migrations does not
// list yet, creating that schema and table if missing.
//
// Guarantees:
//   - Order: components in the order they first appear in ms, and within a
//     component ascending Version, whatever the order of ms.
//   - Atomicity: each migration runs in its own transaction together with the
//     insert of its tracking row, so a migration is either applied and
//     recorded or neither. On the first failure Migrate stops and returns an
//     error naming the component and version; earlier migrations stay applied.
//   - Concurrency: every transaction first takes a transaction-scoped advisory
//     lock (pg_advisory_xact_lock) and re-checks the tracking table, so any
//     number of processes may migrate the same database at once and each
//     migration runs exactly once.
//   - Idempotence: running Migrate again with the same ms does nothing.
//
// ms is rejected before anything runs if a Component is empty or a
// (Component, Version) pair appears twice.
func Migrate(ctx context.Context, pool *pgxpool.Pool, ms []Migration) error {
	ordered, err := orderMigrations(ms)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	applied := make(map[migrationKey]bool)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, migrationsDDL); err != nil {
			return fmt.Errorf("create strata_meta.migrations: %w", err)
		}
		rows, err := tx.Query(ctx, "SELECT component, version FROM strata_meta.migrations")
		if err != nil {
			return fmt.Errorf("read strata_meta.migrations: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var k migrationKey
			if err := rows.Scan(&k.component, &k.version); err != nil {
				return fmt.Errorf("read strata_meta.migrations: %w", err)
			}
			applied[k] = true
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	for _, m := range ordered {
		if applied[migrationKey{m.Component, m.Version}] {
			continue
		}
		if err := applyMigration(ctx, pool, m); err != nil {
			return fmt.Errorf("postgres: migrate %s version %d: %w", m.Component, m.Version, err)
		}
	}
	return nil
}

type migrationKey struct {
	component string
	version   int
}

// applyMigration runs m and records it in one transaction, unless another
// migrator recorded it first.
func applyMigration(ctx context.Context, pool *pgxpool.Pool, m Migration) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		var done bool
		err := tx.QueryRow(ctx,
			"SELECT EXISTS (SELECT 1 FROM strata_meta.migrations WHERE component = $1 AND version = $2)",
			m.Component, m.Version).Scan(&done)
		if err != nil {
			return fmt.Errorf("check strata_meta.migrations: %w", err)
		}
		if done {
			return nil
		}
		// Exec without arguments uses the simple protocol, so SQL may hold
		// several statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return err
		}
		_, err = tx.Exec(ctx,
			"INSERT INTO strata_meta.migrations (component, version, applied_at) VALUES ($1, $2, now())",
			m.Component, m.Version)
		if err != nil {
			return fmt.Errorf("record migration: %w", err)
		}
		return nil
	})
}

// orderMigrations validates ms and returns it sorted by (position of the
// component's first appearance, version).
func orderMigrations(ms []Migration) ([]Migration, error) {
	rank := make(map[string]int)
	seen := make(map[migrationKey]bool)
	var errs []error
	for i, m := range ms {
		if m.Component == "" {
			errs = append(errs, fmt.Errorf("migration #%d (version %d) has no component", i, m.Version))
			continue
		}
		if _, ok := rank[m.Component]; !ok {
			rank[m.Component] = len(rank)
		}
		k := migrationKey{m.Component, m.Version}
		if seen[k] {
			errs = append(errs, fmt.Errorf("migration %s version %d appears twice", m.Component, m.Version))
		}
		seen[k] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := slices.Clone(ms)
	slices.SortStableFunc(out, func(a, b Migration) int {
		if c := rank[a.Component] - rank[b.Component]; c != 0 {
			return c
		}
		return cmp.Compare(a.Version, b.Version)
	})
	return out, nil
}
