package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// logged is a migration that appends its own name to migration_log.
func logged(component string, version int) postgres.Migration {
	return postgres.Migration{
		Component: component,
		Version:   version,
		SQL:       fmt.Sprintf("INSERT INTO migration_log (name) VALUES ('%s%d')", component, version),
	}
}

func migrationLog(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT name FROM migration_log ORDER BY id")
	if err != nil {
		t.Fatalf("read migration_log: %v", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func tracked(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(),
		"SELECT component || version::text FROM strata_meta.migrations WHERE applied_at IS NOT NULL ORDER BY 1")
	if err != nil {
		t.Fatalf("read strata_meta.migrations: %v", err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestMigrateOrderAndIdempotence(t *testing.T) {
	pool := testkit.PostgresPool(t)
	ms := []postgres.Migration{
		// Component "base" appears first, so all of it runs first, by version,
		// although its version 1 is listed last.
		logged("base", 2),
		logged("auth", 2),
		{Component: "base", Version: 1, SQL: `
			CREATE TABLE migration_log (id serial PRIMARY KEY, name text NOT NULL);
			INSERT INTO migration_log (name) VALUES ('base1');`},
		logged("auth", 1),
	}
	if err := postgres.Migrate(t.Context(), pool, ms); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	want := []string{"base1", "base2", "auth1", "auth2"}
	if got := migrationLog(t, pool); !slices.Equal(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
	if got, want := tracked(t, pool), []string{"auth1", "auth2", "base1", "base2"}; !slices.Equal(got, want) {
		t.Fatalf("tracked %v, want %v", got, want)
	}

	// Second run: nothing happens.
	if err := postgres.Migrate(t.Context(), pool, ms); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if got := migrationLog(t, pool); !slices.Equal(got, want) {
		t.Fatalf("after second run applied %v, want %v", got, want)
	}

	// A later release adds migrations: only those run.
	ms = append(ms, logged("auth", 3), logged("events", 1))
	if err := postgres.Migrate(t.Context(), pool, ms); err != nil {
		t.Fatalf("third Migrate: %v", err)
	}
	want = append(want, "auth3", "events1")
	if got := migrationLog(t, pool); !slices.Equal(got, want) {
		t.Fatalf("after adding migrations applied %v, want %v", got, want)
	}
}

func TestMigrateFailureIsAtomic(t *testing.T) {
	pool := testkit.PostgresPool(t)
	ms := []postgres.Migration{
		{Component: "c", Version: 1, SQL: "CREATE TABLE ok_table (id int)"},
		{Component: "c", Version: 2, SQL: "CREATE TABLE half_table (id int); SELECT 1/0;"},
		{Component: "c", Version: 3, SQL: "CREATE TABLE never_table (id int)"},
	}
	err := postgres.Migrate(t.Context(), pool, ms)
	if err == nil {
		t.Fatal("Migrate succeeded, want the division by zero")
	}
	if !strings.Contains(err.Error(), "c version 2") {
		t.Errorf("error %q does not name the failing migration", err)
	}
	exists := func(table string) bool {
		var ok bool
		if err := pool.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !exists("ok_table") {
		t.Error("migration 1 was rolled back, want it kept")
	}
	if exists("half_table") {
		t.Error("migration 2 left half_table behind, want it rolled back")
	}
	if exists("never_table") {
		t.Error("migration 3 ran after migration 2 failed")
	}
	if got, want := tracked(t, pool), []string{"c1"}; !slices.Equal(got, want) {
		t.Errorf("tracked %v, want %v", got, want)
	}

	// Fixing the migration lets the next run finish the job.
	ms[1].SQL = "CREATE TABLE half_table (id int)"
	if err := postgres.Migrate(t.Context(), pool, ms); err != nil {
		t.Fatalf("Migrate after fix: %v", err)
	}
	if !exists("half_table") || !exists("never_table") {
		t.Error("fixed migrations were not applied")
	}
}

func TestMigrateConcurrentMigrators(t *testing.T) {
	dbURL := testkit.Postgres(t)
	var ms []postgres.Migration
	ms = append(ms, postgres.Migration{Component: "x", Version: 1,
		SQL: "CREATE TABLE migration_log (id serial PRIMARY KEY, name text NOT NULL)"})
	for v := 2; v <= 10; v++ {
		// CREATE TABLE fails if the migration runs twice.
		ms = append(ms, postgres.Migration{Component: "x", Version: v, SQL: fmt.Sprintf(
			"CREATE TABLE t%d (id int); INSERT INTO migration_log (name) VALUES ('x%d')", v, v)})
	}
	const migrators = 6
	var wg sync.WaitGroup
	errs := make([]error, migrators)
	for i := range migrators {
		wg.Go(func() {
			// Each migrator has its own pool, as separate processes would.
			pool, err := postgres.Connect(context.Background(), dbURL)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			errs[i] = postgres.Migrate(context.Background(), pool, ms)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	pool, err := postgres.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var want []string
	for v := 2; v <= 10; v++ {
		want = append(want, fmt.Sprintf("x%d", v))
	}
	if got := migrationLog(t, pool); !slices.Equal(got, want) {
		t.Fatalf("applied %v, want each once in order %v", got, want)
	}
}

func TestMigrateRejectsBadInput(t *testing.T) {
	pool := testkit.PostgresPool(t)
	tests := map[string][]postgres.Migration{
		"duplicate":    {{Component: "a", Version: 1, SQL: "SELECT 1"}, {Component: "a", Version: 1, SQL: "SELECT 2"}},
		"no component": {{Component: "", Version: 1, SQL: "SELECT 1"}},
	}
	for name, ms := range tests {
		t.Run(name, func(t *testing.T) {
			if err := postgres.Migrate(t.Context(), pool, ms); err == nil {
				t.Fatal("Migrate accepted bad input")
			}
		})
	}
	var exists bool
	if err := pool.QueryRow(t.Context(), "SELECT to_regnamespace('strata_meta') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Error("Migrate touched the database before rejecting its input")
	}
}

func TestMigrateNothing(t *testing.T) {
	pool := testkit.PostgresPool(t)
	if err := postgres.Migrate(t.Context(), pool, nil); err != nil {
		t.Fatalf("Migrate(nil): %v", err)
	}
	if got := tracked(t, pool); len(got) != 0 {
		t.Errorf("tracked %v, want none", got)
	}
}
