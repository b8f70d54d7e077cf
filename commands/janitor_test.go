package commands

import (
	"testing"
	"time"

	"github.com/strata-cqrs/strata/aggregates/auth"
)

// TestJanitorFailsCommandsThatNeverReachedKafka: a pending command whose
// gateway died before producing it is failed once the worker group has
// passed the janitor's snapshot of the command topic; one still queued in
// Kafka is left alone however old, and is decided when a worker comes.
func TestJanitorFailsCommandsThatNeverReachedKafka(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	j, err := NewJanitor(JanitorConfig{Service: auth.Service, Brokers: h.brokers, Pool: h.pool, Age: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	lost := h.command(NewID(), auth.CreateRole{Name: "Lost"})
	queued := h.command(NewID(), auth.CreateRole{Name: "Queued"})
	fresh := h.command(NewID(), auth.CreateRole{Name: "Fresh"})
	h.pending(lost)
	h.submit(queued) // recorded and produced, but no worker runs yet
	h.pending(fresh)
	if _, err := h.pool.Exec(h.ctx, `UPDATE strata.commands SET recorded_at = now() - interval '20 minutes'
		WHERE id = ANY($1::uuid[])`, []string{lost.ID, queued.ID}); err != nil {
		t.Fatal(err)
	}

	if n, err := j.Sweep(h.ctx); err != nil || n != 0 { // the first round only takes a snapshot
		t.Fatalf("first Sweep = %d, %v; want 0", n, err)
	}
	if n, err := j.Sweep(h.ctx); err != nil || n != 0 {
		t.Fatalf("with a command queued in Kafka, Sweep = %d, %v; want 0 and nothing touched", n, err)
	}
	w := h.start(h.ctx, h.newWorker(nil))
	wantOutcome(t, h.decided(queued.ID), StatusAccepted, "")
	h.drained()
	if n, err := j.Sweep(h.ctx); err != nil || n != 1 {
		t.Fatalf("with the topic consumed, Sweep = %d, %v; want the 1 lost command", n, err)
	}
	st, err := h.status.Get(h.ctx, lost.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, st, StatusFailed, "unavailable")
	if st, err := h.status.Get(h.ctx, fresh.ID); err != nil || st.Status != StatusPending {
		t.Fatalf("a command younger than Age: %v %v, want still pending", st, err)
	}
	// Produced after all (a gateway's late retry), the failed command is
	// skipped: what the client was told stands.
	h.send(lost)
	w.stop()
	h.start(h.ctx, h.newWorker(nil))
	h.drained()
	if got := h.events(lost.AggregateID); len(got) != 0 {
		t.Fatalf("a failed command took effect: %d events", len(got))
	}
}
