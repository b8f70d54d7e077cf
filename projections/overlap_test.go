package projections

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestOverlappingInstancesApplyOnce: after a rebalance the old owner of a
// partition may still be applying a batch while the new owner applies the
// same events. The partition is locked, so whichever commits second
// sees the first's versions: every event is applied once and the stored
// version never moves back.
func TestOverlappingInstancesApplyOnce(t *testing.T) {
	r, p, agg := overlapRig(t)
	ctx := context.Background()
	ev := func(v int64) *Event {
		return &Event{Type: tickedType, AggregateID: agg, Version: v, Event: ticked{N: v}}
	}
	newOwner, err := r.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.applyBatch(ctx, newOwner, []*Event{ev(1), ev(2), ev(3)}); err != nil {
		t.Fatal(err)
	}
	oldOwner := make(chan error, 1)
	go func() {
		tx, err := r.pool.Begin(ctx)
		if err == nil {
			if _, err = p.applyBatch(ctx, tx, []*Event{ev(1)}); err == nil {
				err = tx.Commit(ctx)
			} else {
				_ = tx.Rollback(ctx)
			}
		}
		oldOwner <- err
	}()
	time.Sleep(300 * time.Millisecond) // the old owner is now waiting on the lock
	if err := newOwner.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-oldOwner; err != nil {
		t.Fatalf("the overlapping batch failed: %v", err)
	}
	var applied, version int64
	if err := r.pool.QueryRow(ctx, `SELECT applied FROM ptest.counts WHERE aggregate_id=$1`, agg).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if err := r.pool.QueryRow(ctx, `SELECT version FROM ptest.projection_versions WHERE aggregate_id=$1`, agg).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if applied != 3 || version != 3 {
		t.Fatalf("applied %d times, stored version %d; want 3 and 3", applied, version)
	}
}

// TestMarkLastIgnoresRedeliveredCopies: the event that brings an aggregate
// to its highest version is the one marked, not a later duplicate.
func TestMarkLastIgnoresRedeliveredCopies(t *testing.T) {
	a := newID()
	v5, v6, v5dup, v6dup := &Event{AggregateID: a, Version: 5}, &Event{AggregateID: a, Version: 6},
		&Event{AggregateID: a, Version: 5}, &Event{AggregateID: a, Version: 6}
	MarkLast([]*Event{v5, v6, v5dup, v6dup}, map[string]int64{a: 4})
	if !v6.Last || v5.Last || v5dup.Last || v6dup.Last {
		t.Fatalf("marked v5=%v v6=%v dup5=%v dup6=%v; want only the first v6", v5.Last, v6.Last, v5dup.Last, v6dup.Last)
	}
}

// TestOverlapWithoutTheLockFailsTheSecond: two writers that do not share a
// partition lock (a build that locked version rows, or an aggregate whose
// partition changed) apply the same aggregate at once. The second stores
// its versions as a compare-and-set against what it read, finds the row
// moved, and fails with ErrOverlap instead of applying events twice; its
// retry then skips what the first applied.
func TestOverlapWithoutTheLockFailsTheSecond(t *testing.T) {
	r, p, agg := overlapRig(t)
	ctx := context.Background()
	ev := func(topic string, v int64) *Event {
		return &Event{Type: tickedType, AggregateID: agg, Version: v, Event: ticked{N: v}, topic: topic}
	}
	first, err := r.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.applyBatch(ctx, first, []*Event{ev("a", 1), ev("a", 2), ev("a", 3)}); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		tx, err := r.pool.Begin(ctx)
		if err == nil {
			if _, err = p.applyBatch(ctx, tx, []*Event{ev("b", 1)}); err == nil {
				err = tx.Commit(ctx)
			} else {
				_ = tx.Rollback(ctx)
			}
		}
		second <- err
	}()
	time.Sleep(300 * time.Millisecond) // the second now waits on the first's version row
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-second; !errors.Is(err, ErrOverlap) {
		t.Fatalf("the overlapping batch: err = %v, want ErrOverlap", err)
	}
	retry, err := r.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.applyBatch(ctx, retry, []*Event{ev("b", 1)}); err != nil || n != 0 {
		t.Fatalf("retry applied %d events, %v; want 0 (skipped)", n, err)
	}
	if err := retry.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var applied int64
	if err := r.pool.QueryRow(ctx, `SELECT applied FROM ptest.counts WHERE aggregate_id=$1`, agg).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 3 {
		t.Fatalf("applied %d times, want 3", applied)
	}
}

// overlapRig returns a rig, a projector on it and a fresh aggregate id.
func overlapRig(t *testing.T) (*rig, *Projector, string) {
	t.Helper()
	r := newRig(t, 1)
	p, err := New(Config{Projection: r.proj, Brokers: r.brokers, Pool: r.pool, Decoder: r.reg})
	if err != nil {
		t.Fatal(err)
	}
	return r, p, newID()
}
