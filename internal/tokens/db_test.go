package tokens

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
)

const testSchema = "auth"

// queryCounter is a pgx tracer counting every statement sent on a pool.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// testDB returns a pool on a fresh database holding the tables of Migration,
// and the counter of statements sent on it.
func testDB(t testing.TB) (*pgxpool.Pool, *queryCounter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	err = postgres.Migrate(ctx, pool, []postgres.Migration{{Component: "tokens", Version: 1, SQL: Migration(testSchema)}})
	if err != nil {
		t.Fatal(err)
	}
	return pool, counter
}

// testKeys returns a Keys on pool holding one key.
func testKeys(t testing.TB, pool *pgxpool.Pool) *Keys {
	t.Helper()
	k := NewKeys(pool, testSchema, nil)
	if err := k.EnsureOne(context.Background()); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMigration(t *testing.T) {
	pool, _ := testDB(t)
	ctx := context.Background()

	t.Run("CreatesTheTables", func(t *testing.T) {
		var got []string
		rows, err := pool.Query(ctx, `SELECT table_name || '.' || column_name FROM information_schema.columns
			WHERE table_schema = $1 ORDER BY table_name, ordinal_position`, testSchema)
		if err != nil {
			t.Fatal(err)
		}
		got, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"refresh_tokens.token_hash", "refresh_tokens.user_id", "refresh_tokens.family_id",
			"refresh_tokens.expires_at", "refresh_tokens.created_at", "refresh_tokens.used_at", "refresh_tokens.revoked_at",
			"revoked_sessions.family_id", "revoked_sessions.user_id", "revoked_sessions.revoked_at",
			"signing_keys.kid", "signing_keys.private_key", "signing_keys.public_key", "signing_keys.created_at",
		}
		if len(got) != len(want) {
			t.Fatalf("got columns %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("got columns %v, want %v", got, want)
			}
		}
	})

	t.Run("QuotesTheSchema", func(t *testing.T) {
		odd := `odd "schema"; DROP TABLE x`
		if _, err := pool.Exec(ctx, Migration(odd)); err != nil {
			t.Fatal(err)
		}
		k := NewKeys(pool, odd, nil)
		if err := k.EnsureOne(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := k.Current(); !ok {
			t.Fatal("no current key in the odd schema")
		}
	})
}
