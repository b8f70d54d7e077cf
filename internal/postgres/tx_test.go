package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// trips records what a connection sends: each batch, and each statement
// sent on its own (a round trip each).
type trips struct {
	mu   sync.Mutex
	sent []string
}

func (t *trips) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent = append(t.sent, s)
}

func (t *trips) take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sent
	t.sent = nil
	return s
}

func (t *trips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.add("query: " + strings.ToLower(strings.Fields(d.SQL)[0]))
	return ctx
}
func (t *trips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (t *trips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	t.add("batch")
	return ctx
}
func (t *trips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (t *trips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// tracedPool is a pool on a fresh database whose statements tr records,
// with a table t(n int primary key).
func tracedPool(t *testing.T, tr *trips) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(t.Context(), `CREATE TABLE t (n int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	tr.take()
	return pool
}

func count(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInTxBeginsWithTheFirstBatch: InTx's transaction costs the round
// trips of its statements plus the COMMIT, no more: the BEGIN and the
// setup travel with the first batch. The setup holds inside the
// transaction and not after it, and what the transaction wrote is there.
func TestInTxBeginsWithTheFirstBatch(t *testing.T) {
	tr := &trips{}
	pool := tracedPool(t, tr)
	ctx := t.Context()
	var inside string
	err := postgres.InTx(ctx, pool, []string{postgres.GenericPlans}, func(tx *postgres.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO t VALUES (1)`)
		b.Queue(`SELECT current_setting('plan_cache_mode')`)
		res := tx.SendBatch(ctx, b)
		if tag, err := res.Exec(); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("insert in the first batch: %v, %v", tag, err)
		}
		if err := res.QueryRow().Scan(&inside); err != nil {
			t.Fatal(err)
		}
		if err := res.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO t VALUES (2)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tr.take(), ", "), "batch, query: insert, query: commit"; got != want {
		t.Fatalf("sent %s; want %s", got, want)
	}
	if inside != "force_generic_plan" {
		t.Fatalf("plan_cache_mode in the transaction = %q, want the setup's force_generic_plan", inside)
	}
	if n := count(t, pool); n != 2 {
		t.Fatalf("%d rows after commit, want 2", n)
	}
	if n := pool.Stat().TotalConns(); n != 1 {
		t.Fatalf("%d connections, want the transaction's one, asked again below", n)
	}
	var after string
	if err := pool.QueryRow(ctx, `SELECT current_setting('plan_cache_mode')`).Scan(&after); err != nil || after != "auto" {
		t.Fatalf("plan_cache_mode after the transaction = %q, %v; want auto (the setup is local)", after, err)
	}
}

// TestInTxRollsBack: a failing statement, or fn's own error after
// statements that succeeded, leaves nothing written and the connection
// back in the pool outside any transaction; a transaction that sent
// nothing never began.
func TestInTxRollsBack(t *testing.T) {
	tr := &trips{}
	pool := tracedPool(t, tr)
	ctx := t.Context()
	mine := errors.New("decided against it")
	err := postgres.InTx(ctx, pool, nil, func(tx *postgres.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (1)`); err != nil {
			return err
		}
		return mine
	})
	if !errors.Is(err, mine) {
		t.Fatalf("err = %v, want fn's", err)
	}
	err = postgres.InTx(ctx, pool, nil, func(tx *postgres.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO t VALUES (2)`)
		b.Queue(`INSERT INTO t VALUES (2)`)
		return tx.SendBatch(ctx, b).Close()
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("err = %v, want the duplicate key", err)
	}
	if n := count(t, pool); n != 0 {
		t.Fatalf("%d rows after the rollbacks, want 0", n)
	}
	tr.take()
	if err := postgres.InTx(ctx, pool, nil, func(*postgres.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if sent := tr.take(); len(sent) != 0 {
		t.Fatalf("an empty transaction sent %v, want nothing", sent)
	}
	if s := pool.Stat(); s.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired", s.AcquiredConns())
	}
	var one int
	if err := pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		t.Fatalf("pool unusable after the rollbacks: %v", err)
	}
}

// TestInTxSetupFailure: a setup statement that fails fails the first
// batch with an error naming it, and nothing of the batch is written.
func TestInTxSetupFailure(t *testing.T) {
	t.Run("a statement of the first batch that does not prepare", func(t *testing.T) {
		pool := tracedPool(t, &trips{})
		err := postgres.InTx(t.Context(), pool, []string{postgres.GenericPlans}, func(tx *postgres.Tx) error {
			_, err := tx.Exec(t.Context(), `INSERT INTO t (nope) VALUES (1)`)
			return err
		})
		if err == nil || !strings.HasPrefix(err.Error(), "first batch: ") {
			t.Fatalf("err = %v, want it reported as the first batch's, not the setup's", err)
		}
	})
	pool := tracedPool(t, &trips{})
	ctx := t.Context()
	err := postgres.InTx(ctx, pool, []string{`SELECT set_config('plan_cache_mode', 'sometimes', true)`}, func(tx *postgres.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO t VALUES (1)`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "begin, statement 2") {
		t.Fatalf("err = %v, want the setup's failure", err)
	}
	if n := count(t, pool); n != 0 {
		t.Fatalf("%d rows, want 0", n)
	}
}

// TestInTxPanic: a panic in fn after it wrote rolls the transaction back
// and gives the connection back; the panic goes on to the caller.
func TestInTxPanic(t *testing.T) {
	pool := tracedPool(t, &trips{})
	ctx := t.Context()
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the panic of fn", r)
			}
		}()
		_ = postgres.InTx(ctx, pool, nil, func(tx *postgres.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (1)`); err != nil {
				t.Fatal(err)
			}
			panic("boom")
		})
	}()
	if s := pool.Stat(); s.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired after the panic", s.AcquiredConns())
	}
	if n := count(t, pool); n != 0 {
		t.Fatalf("%d rows after the panic, want 0", n)
	}
}
