package projections

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-cqrs/strata/internal/testkit"
)

// TestInsertShapes: which statements a run may merge.
func TestInsertShapes(t *testing.T) {
	for _, c := range []struct {
		sql   string
		n     int
		merge bool
	}{
		{`INSERT INTO s.t (a, b) VALUES ($1,$2)`, 2, true},
		{`INSERT INTO s.t (a, b) VALUES ($1,$2) ON CONFLICT DO NOTHING`, 2, true},
		{"INSERT INTO s.t (a, b, c)\n\t\tVALUES ($1,NULLIF($2,'')::uuid,$1) ON CONFLICT (a) DO NOTHING", 2, true},
		{`INSERT INTO s.t (a, b) VALUES ($1,$2)`, 3, false}, // arguments that are not the row's
		{`INSERT INTO s.t (a, b) VALUES ($1,$2) ON CONFLICT (a) DO UPDATE SET b=EXCLUDED.b`, 2, false},
		{`INSERT INTO s.t (a, b) VALUES ($1,$2) RETURNING a`, 2, false},
		{`INSERT INTO s.t (a, b) VALUES ($1,(SELECT max(b) FROM s.t))`, 1, false},
		{`INSERT INTO s.t (a, b) VALUES ($1,$2), ($3,$4)`, 4, false},
		{`INSERT INTO s.t (a, b) SELECT a, $2 FROM unnest($1::uuid[]) AS a`, 2, false},
		{`UPDATE s.t SET b=$2 WHERE a=$1`, 2, false},
		{`INSERT INTO s.t (a, b) VALUES ($1,'costs $2')`, 1, false},
		{`INSERT INTO s.t (a, b) VALUES ($1, $2) -- note`, 2, false},
		{`INSERT INTO s.t (a, b) VALUES ($1,(WITH x AS (SELECT 1) TABLE x))`, 1, false},
	} {
		if got := shapeOf(c.sql, c.n) != nil; got != c.merge {
			t.Errorf("shapeOf(%q, %d) merges = %v, want %v", c.sql, c.n, got, c.merge)
		}
	}
}

// TestRunStatements: a run of n rows goes out as statements of
// power-of-two sizes whose parameters are renumbered row by row.
func TestRunStatements(t *testing.T) {
	sql := `INSERT INTO s.t (a, b, c) VALUES ($1,$2,$1) ON CONFLICT DO NOTHING`
	r := &run{sql: sql, shape: shapeOf(sql, 2)}
	for i := range 7 {
		r.args, r.rows = append(r.args, i, -i), r.rows+1
	}
	var sqls []string
	var sizes []int
	r.statements(func(q string, args []any) { sqls, sizes = append(sqls, q), append(sizes, len(args)) })
	if want := []int{8, 4, 2}; !slices.Equal(sizes, want) {
		t.Fatalf("argument counts = %v, want %v (rows 4+2+1)", sizes, want)
	}
	if want := `INSERT INTO s.t (a, b, c) VALUES ($1,$2,$1), ($3,$4,$3), ($5,$6,$5), ($7,$8,$7) ON CONFLICT DO NOTHING`; sqls[0] != want {
		t.Fatalf("merged statement = %q, want %q", sqls[0], want)
	}
	if sqls[2] != sql {
		t.Fatalf("a single row = %q, want the statement as queued", sqls[2])
	}
}

// TestBatchMergesInsertsAsSentOneByOne: merged inserts leave the rows
// that the statements one by one would: a duplicate later in a DO NOTHING
// run is skipped, statements between runs keep their place, and a DO
// UPDATE run applies every row in order.
func TestBatchMergesInsertsAsSentOneByOne(t *testing.T) {
	pool := testkit.PostgresPool(t)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `CREATE TABLE m (k int PRIMARY KEY, v text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	ins := `INSERT INTO m (k, v) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	upd := `INSERT INTO m (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = m.v || EXCLUDED.v`
	b := &Batch{}
	for k := range 5 {
		b.Queue(ins, k, "first")
	}
	b.Queue(ins, 2, "again") // skipped, as alone
	b.Queue(`DELETE FROM m WHERE k = $1`, 4)
	b.Queue(ins, 4, "second")
	b.Queue(ins, 5, "second")
	b.Queue(upd, 1, "+a")
	b.Queue(upd, 1, "+b") // twice in a row: must not be one statement
	b.flushRun()
	if got := b.b.Len(); got != 6 { // 6 rows as 4+2, the delete, 2 rows, two updates
		t.Fatalf("%d statements for 11 queued, want 6", got)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return b.Send(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	rows, _ := pool.Query(ctx, `SELECT k, v FROM m ORDER BY k`)
	type row struct {
		K int
		V string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"first", "first+a+b", "first", "first", "second", "second"}
	if len(got) != len(want) {
		t.Fatalf("rows = %v, want values %v", got, want)
	}
	for i, r := range got {
		if r.K != i || r.V != want[i] {
			t.Fatalf("rows = %v, want values %v", got, want)
		}
	}
}

// TestTouchFinalWritesARowOnce: of the TouchFinal assignments to a row in
// a batch only the last is sent, the entries between them merge into
// multi-row inserts, and a held touch still lands before a later touch of
// its row that sets something else: the rows end as the touches one by
// one would leave them.
func TestTouchFinalWritesARowOnce(t *testing.T) {
	pool := testkit.PostgresPool(t)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `CREATE TABLE acct (id uuid PRIMARY KEY, version bigint NOT NULL,
		updated_at timestamptz, balance numeric NOT NULL, status text NOT NULL);
		CREATE TABLE entries (account uuid, v bigint, balance numeric);
		INSERT INTO acct VALUES ('00000000-0000-7000-8000-00000000000a', 1, now(), 0, 'open'),
			('00000000-0000-7000-8000-00000000000b', 1, now(), 0, 'open')`); err != nil {
		t.Fatal(err)
	}
	const a, c = "00000000-0000-7000-8000-00000000000a", "00000000-0000-7000-8000-00000000000b"
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ev := func(id string, v int64) *Event { return &Event{AggregateID: id, Version: v, Time: at} }
	deposit := func(b *Batch, id string, v int64) {
		e := ev(id, v)
		TouchFinal(b, e, "acct", `balance=$4::numeric`, strconv.FormatInt(v*10, 10))
		b.Queue(`INSERT INTO entries (account, v, balance) VALUES ($1, $2, $3::numeric)`, id, v, strconv.FormatInt(v*10, 10))
	}
	b := &Batch{}
	for v := int64(2); v <= 6; v++ {
		deposit(b, a, v)
	}
	deposit(b, c, 2)
	Touch(b, ev(c, 3), "acct", `status='frozen'`) // c's held balance goes first
	Touch(b, ev(a, 7), "acct", `status='frozen'`)
	deposit(b, a, 8)
	deposit(b, a, 9)
	last := ev(a, 10)
	last.Last = true
	Touch(b, last, "acct", ``)
	b.queueTouches()
	// a's entries 2-6 and c's entry 2 (4+2 rows), a's balance at 6, c's at
	// 2, both freezes, a's entries 8-9, a's balance at 9, the version touch.
	if got := b.b.Len(); got != 9 {
		for _, q := range b.b.QueuedQueries {
			t.Log(q.SQL, q.Arguments)
		}
		t.Fatalf("%d statements, want 9", got)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return b.Send(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID      string
		Version int64
		Balance string
		Status  string
	}
	rows, _ := pool.Query(ctx, `SELECT id::text, version, balance::text, status FROM acct ORDER BY id`)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	want := []row{{a, 10, "90", "frozen"}, {c, 3, "20", "frozen"}}
	if !slices.Equal(got, want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM entries`).Scan(&n); err != nil || n != 8 {
		t.Fatalf("%d entries (%v), want 8", n, err)
	}
}
