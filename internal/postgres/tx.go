package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Batcher sends statements: a pgx.Tx, a connection or a *Tx.
type Batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// GenericPlans makes a transaction's prepared statements run on their
// generic plan. Postgres plans a prepared statement afresh on every call
// while a plan for its parameters looks cheaper than the generic one, and
// for a statement over unnest($1::uuid[]) or = ANY($1) it always does: it
// knows the array's length only from the value. The runtime's batch
// statements look rows up by key, where the generic plan is the plan; a
// custom plan cost 60-150 µs each (a third of the worker's statement time
// at 500 commands/s). Not for queries with optional filters (a filter
// that applies only when its parameter is set), which need the value to
// use an index.
const GenericPlans = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`

// InTx runs fn in a transaction on a connection of pool and commits it if
// fn returns nil, else rolls it back. The BEGIN, and the setup statements
// after it (such as GenericPlans), travel in the pipeline of fn's first
// batch (pgx's Batch.BeginTx) instead of in round trips of their own. A
// transaction in which fn sent nothing is never begun. As with any
// pipeline, an argument of the first batch that cannot be encoded costs
// the connection (the pool opens another).
func InTx(ctx context.Context, pool *pgxpool.Pool, setup []string, fn func(*Tx) error) error {
	t := &Tx{pool: pool, setup: setup}
	defer func() {
		// After a commit a no-op; after a failure, or a panic in fn, it
		// ends the transaction and frees the connection (on a failed
		// rollback pgx closes it, and the pool drops it). Not bound to ctx,
		// which may be what failed: a cancelled ctx would cost the
		// connection.
		if t.tx != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = t.tx.Rollback(rctx)
		}
	}()
	if err := fn(t); err != nil || t.tx == nil {
		return err
	}
	return t.tx.Commit(ctx)
}

// Tx is a transaction of InTx.
type Tx struct {
	pool  *pgxpool.Pool
	setup []string
	tx    pgx.Tx // once begun
}

// SendBatch sends b in the transaction; the transaction's first batch
// begins it and runs the setup first.
func (t *Tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.tx != nil {
		return t.tx.SendBatch(ctx, b)
	}
	first := &pgx.Batch{}
	first.BeginTx(pgx.TxOptions{})
	for _, sql := range t.setup {
		first.Queue(sql)
	}
	n := first.Len()
	first.QueuedQueries = append(first.QueuedQueries, b.QueuedQueries...)
	res := t.pool.SendBatch(ctx, first)
	t.tx = res.Tx()
	for i := range n {
		if _, err := res.Exec(); err != nil {
			// Postgres's error names the BEGIN or setup statement that
			// failed; anything else (no connection, a statement of b that
			// did not prepare, an argument that did not encode) failed
			// the whole batch before it ran.
			if _, ok := errors.AsType[*pgconn.PgError](err); ok && !isPrepareError(err) {
				err = fmt.Errorf("begin, statement %d: %w", i+1, err)
			} else {
				err = fmt.Errorf("first batch: %w", err)
			}
			_ = res.Close()
			return pgx.FailedBatchResults(b, err)
		}
	}
	return res
}

func isPrepareError(err error) bool {
	_, ok := errors.AsType[pgx.ErrPreprocessingBatch](err)
	return ok
}

// Exec runs one statement in the transaction.
func (t *Tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.tx != nil {
		return t.tx.Exec(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	res := t.SendBatch(ctx, b)
	tag, err := res.Exec()
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	return tag, err
}
