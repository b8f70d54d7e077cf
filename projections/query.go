package projections

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// ErrNotFound is returned by One when no row matches.
var ErrNotFound = errors.New("not found")

// Querier runs a query; pools, connections and transactions implement it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// One scans the single row of a read-model query into T by column position,
// or returns ErrNotFound.
func One[T any](ctx context.Context, q Querier, sql string, args ...any) (*T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	t, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[T])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return t, err
}

// Many scans every row of a read-model query into T by column position.
func Many[T any](ctx context.Context, q Querier, sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[T])
}

// ListParams pages a list: ids after After, at most Limit, optionally
// filtered by exact name (case-insensitive) or whatever single filter the
// list documents.
type ListParams struct {
	Limit int
	After string
	Name  string
}
