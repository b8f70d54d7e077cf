package postgres_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/strata-cqrs/strata/internal/testkit"
)

// TestStringsTravelAsBinaryUUIDs: a pool's connections encode strings
// into uuid and uuid[] parameters in binary (pgx alone cannot, and paid an
// error per parameter before falling back to text); the values arrive
// intact, other spellings still reach Postgres as text, and a string that
// is no UUID is still Postgres's invalid_text_representation.
func TestStringsTravelAsBinaryUUIDs(t *testing.T) {
	pool := testkit.PostgresPool(t)
	ctx := t.Context()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	ids := []string{"0197a000-0000-7000-8000-000000000001", "0197A000-0000-7000-8000-0000000000FF"}

	m := conn.Conn().TypeMap()
	if _, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, ids, nil); err != nil {
		t.Fatalf("binary encoding of []string as uuid[]: %v", err)
	}
	if _, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, ids[0], nil); err != nil {
		t.Fatalf("binary encoding of a string as uuid: %v", err)
	}

	var got []string
	if err := conn.QueryRow(ctx, `SELECT array_agg(x::text ORDER BY o) FROM unnest($1::uuid[]) WITH ORDINALITY AS t(x, o)`, ids).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := []string{"0197a000-0000-7000-8000-000000000001", "0197a000-0000-7000-8000-0000000000ff"}; !slices.Equal(got, want) {
		t.Fatalf("uuid[] round trip = %v, want %v", got, want)
	}
	var braced []string
	if err := conn.QueryRow(ctx, `SELECT $1::uuid[]::text[]`, []string{"{0197a000-0000-7000-8000-000000000001}"}).Scan(&braced); err != nil ||
		len(braced) != 1 || braced[0] != ids[0] {
		t.Fatalf("a braced uuid in a uuid[] = %v, %v; want [%s] (sent as text, read by Postgres)", braced, err, ids[0])
	}
	var pgErr *pgconn.PgError
	_, err = conn.Exec(ctx, `SELECT $1::uuid[]`, []string{ids[0], "not-a-uuid"})
	if !errors.As(err, &pgErr) || pgErr.Code != "22P02" {
		t.Fatalf("a non-uuid in a uuid[]: err = %v, want Postgres's 22P02", err)
	}
}
