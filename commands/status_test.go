package commands

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// TestPendingRowsAreBatched: with Run going, concurrent submissions are
// written together, each caller gets its own row back, and a row that
// cannot be written fails alone.
func TestPendingRowsAreBatched(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := testkit.PostgresPool(t)
	if err := postgres.Migrate(ctx, pool, Migrations("auth")); err != nil {
		t.Fatal(err)
	}
	s := NewStatusStore(pool)
	go func() { _ = s.Run(ctx) }()
	testkit.Eventually(t, 5*time.Second, s.running.Load, "the batcher runs")

	dup := &Envelope{ID: NewID(), Type: "auth.CreateRole", AggregateID: NewID(), Actor: Actor{UserID: "u"}, IssuedAt: time.Now()}
	if _, _, err := s.InsertPending(ctx, Submission{Envelope: dup}); err != nil {
		t.Fatal(err)
	}
	const n = 60
	envs := make([]*Envelope, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range envs {
		envs[i] = &Envelope{ID: NewID(), Type: "auth.CreateRole", AggregateID: NewID(), Actor: Actor{UserID: "u"}, IssuedAt: time.Now()}
		switch i {
		case n / 3:
			envs[i] = dup // its id has a row: that row is the answer
		case n / 2:
			envs[i].Type = "auth.\x00" // Postgres refuses it: only it may fail
		}
		wg.Go(func() {
			st, _, err := s.InsertPending(ctx, Submission{Envelope: envs[i], RequestHash: []byte{byte(i)}})
			if err == nil && (st.ID != envs[i].ID || st.Status != StatusPending) {
				err = errors.New("got another command's row: " + st.ID)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == n/2) {
			t.Errorf("submission %d: %v", i, err)
		}
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM strata.commands`).Scan(&rows); err != nil || rows != n-1 {
		t.Fatalf("%d rows, want %d: %v", rows, n-1, err)
	}
}

// TestPendingBatchCommitsAsynchronously: the pipeline that writes pending
// rows commits with synchronous_commit off, and the setting ends with it
// (the pooled connection's next transaction commits durably again).
func TestPendingBatchCommitsAsynchronously(t *testing.T) {
	ctx := t.Context()
	pool := testkit.PostgresPool(t)
	if err := postgres.Migrate(ctx, pool, Migrations("auth")); err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	env := &Envelope{ID: NewID(), Type: "auth.CreateRole", AggregateID: NewID(), Actor: Actor{UserID: "u"}, IssuedAt: time.Now()}
	b := pendingBatch([]pendingInsert{{env: env}})
	b.Queue(`SELECT current_setting('synchronous_commit')`) // a probe at the end of the same pipeline
	res := conn.SendBatch(ctx, b)
	var during, after, status string
	if _, err := res.Exec(); err != nil {
		t.Fatal(err)
	}
	if err := res.QueryRow().Scan(new(string), new(string), new(string), new(string), &status, new(*string), new(*string),
		new(*int64), new(time.Time), new(*time.Time), new(*time.Time)); err != nil {
		t.Fatal(err)
	}
	if err := res.QueryRow().Scan(&during); err != nil {
		t.Fatal(err)
	}
	if err := res.Close(); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if status != StatusPending || during != "off" || after != "on" {
		t.Fatalf("row %q; synchronous_commit in the pipeline = %q, after it = %q; want pending, off, then on", status, during, after)
	}
}

// TestPendingRowsAndDecisionsShareOneOrder: a batch of pending rows and a
// group commit may record some of the same commands at the same time (the
// gateway produces a command while its row is written). Both write their
// rows in command id order, so they wait for each other in one direction
// only; in opposite orders each could hold a row the other wants, and
// Postgres would break the deadlock after a second (deadlock_timeout),
// which bench runs showed as 1.9 s stalls.
func TestPendingRowsAndDecisionsShareOneOrder(t *testing.T) {
	var pending []pendingInsert
	var outcomes []outcome
	for range 20 {
		env := &Envelope{ID: NewID(), Type: "auth.CreateRole", AggregateID: NewID(), Actor: Actor{UserID: "u"}, IssuedAt: time.Now()}
		pending = append([]pendingInsert{{env: env}}, pending...) // newest first: against the ids' order
		outcomes = append([]outcome{{env: env, status: StatusAccepted}}, outcomes...)
	}
	rows := pendingBatch(pending).QueuedQueries[1].Arguments[0].([]string)
	decisions := outcomeColumns(outcomes)[0].([]string)
	if !slices.IsSorted(rows) || !slices.IsSorted(decisions) || len(rows) != 20 || len(decisions) != 20 {
		t.Fatalf("pending rows in order %v, decisions in order %v; want both sorted by id", rows, decisions)
	}
	if pending[0].env.ID != outcomes[0].env.ID || slices.IsSortedFunc(pending, func(a, b pendingInsert) int { return strings.Compare(a.env.ID, b.env.ID) }) {
		t.Fatal("the callers' slices were reordered")
	}
}
