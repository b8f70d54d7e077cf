package commands

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// lazyInt prints a counter's value when a failure message is formatted.
type lazyInt struct{ n *atomic.Int64 }

func (l lazyInt) String() string { return strconv.FormatInt(l.n.Load(), 10) }

// TestWorkerGroupCommits checks the group-commit path: a batch that mixes
// creations, renames, grants and rejections across aggregates is decided
// in one transaction with the same outcomes the per-command path gives,
// and a batch that contests a unique key falls back to that path.
func TestWorkerGroupCommits(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	perm, role, other := NewID(), NewID(), NewID()
	// The permission lives on another partition, whose order against the
	// role's is not defined: it exists before the batch.
	first := h.start(h.ctx, h.newWorker(nil))
	wantOutcome(t, h.do(h.command(perm, auth.CreatePermission{Name: "reports:read"})), StatusAccepted, "")
	first.stop()
	steps := []struct {
		env    *Envelope
		status string
		code   string
	}{
		{h.command(role, auth.CreateRole{Name: "Ops"}), StatusAccepted, ""},
		{h.command(role, auth.RenameRole{Name: "Operators"}), StatusAccepted, ""},
		{h.command(role, auth.GrantPermission{PermissionID: perm}), StatusAccepted, ""},
		{h.command(role, auth.GrantPermission{PermissionID: perm}), StatusRejected, auth.CodeAlreadyGranted},
		{h.command(other, auth.RenameRole{Name: "x"}), StatusRejected, "not_found"},
		{h.command(role, auth.GrantPermission{PermissionID: role}), StatusRejected, auth.CodePermissionNotFound},
	}
	for _, s := range steps {
		h.submit(s.env) // all produced before the worker starts: they arrive as one batch
	}
	w := h.newWorker(nil)
	h.start(h.ctx, w)
	for _, s := range steps {
		wantOutcome(t, h.decided(s.env.ID), s.status, s.code)
	}
	if got := h.eventTypes(role); len(got) != 3 {
		t.Fatalf("role events %v, want created, renamed, granted", got)
	}
	if ch, err := VerifyChain(h.events(role)); ch != 0 || err != nil {
		t.Fatalf("hash chain broken at %d: %v", ch, err)
	}
	// The counters go up just after the commit that made the outcomes
	// visible.
	testkit.Eventually(t, 10*time.Second, func() bool { return w.grouped.Load() > 0 }, "the batch was not group-committed")
	if n := w.oneByOne.Load(); n != 0 {
		t.Fatalf("one by one %d: want the batch group-committed", n)
	}

	t.Run("CachedStateCatchesUpWithOtherWriters", func(t *testing.T) {
		// Another writer appends to the role behind the worker's back.
		h.appendEvents(h.def("role"), role, auth.RoleRenamed{Name: "Elsewhere", PreviousName: "Operators"})
		wantOutcome(t, h.do(expecting(h.command(role, auth.RenameRole{Name: "Again"}), 4)), StatusAccepted, "")
		if got := h.events(role); len(got) != 5 || got[4].Version != 5 {
			t.Fatalf("role has %d events, want 5", len(got))
		}
	})
	t.Run("StaleCachedStateIsCaughtByItsInsert", func(t *testing.T) {
		// A group-committed rename leaves the worker trusting its cached
		// version 6. Then, unannounced again, another writer appends
		// version 7: the worker's next batch appends version 7 too, fails,
		// and is decided again on the journal's state.
		wantOutcome(t, h.do(h.command(role, auth.RenameRole{Name: "Between"})), StatusAccepted, "")
		h.appendEvents(h.def("role"), role, auth.RoleRenamed{Name: "Elsewhere", PreviousName: "Between"})
		slow := w.oneByOne.Load()
		wantOutcome(t, h.do(h.command(role, auth.RenameRole{Name: "Last"})), StatusAccepted, "")
		got := h.events(role)
		if len(got) != 8 || got[7].Version != 8 {
			t.Fatalf("role has %d events, want 8", len(got))
		}
		if ch, err := VerifyChain(got); ch != 0 || err != nil {
			t.Fatalf("hash chain broken at %d: %v", ch, err)
		}
		testkit.Eventually(t, 10*time.Second, func() bool { return w.oneByOne.Load() > slow },
			"the stale batch was not decided again one by one")
	})
}

// TestWorkerContestedKeyFallsBackToOneByOne: two creations of one name in
// one batch cannot be group-committed; the per-command path decides them,
// one winner and one role_exists.
func TestWorkerContestedKeyFallsBackToOneByOne(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := h.command(NewID(), auth.CreateRole{Name: "Twins"}), h.command(NewID(), auth.CreateRole{Name: "twins"})
	h.submit(a)
	h.submit(b)
	w := h.newWorker(nil)
	h.start(h.ctx, w)
	sa, sb := h.decided(a.ID), h.decided(b.ID)
	if sa.Status == StatusAccepted { // the two partitions come in no set order
		sa, sb = sb, sa
	}
	wantOutcome(t, sb, StatusAccepted, "")
	wantOutcome(t, sa, StatusRejected, auth.CodeRoleExists)
	testkit.Eventually(t, 10*time.Second, func() bool { return w.oneByOne.Load() == 1 },
		"one-by-one batches %v, want 1", lazyInt{&w.oneByOne})
}

// TestWorkerPoisonCommandDoesNotBlock: a value Postgres refuses (NUL in
// jsonb) fails the grouped transaction; the per-command path rejects that
// command alone and decides the rest of the batch.
func TestWorkerPoisonCommandDoesNotBlock(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	poison := h.command(NewID(), auth.CreateRole{Name: "Poison", Description: "a\u0000b"})
	fine := h.command(NewID(), auth.CreateRole{Name: "Fine"})
	h.submit(poison)
	h.submit(fine)
	h.start(h.ctx, h.newWorker(nil))
	wantOutcome(t, h.decided(poison.ID), StatusRejected, "invalid_command")
	wantOutcome(t, h.decided(fine.ID), StatusAccepted, "")
}

// TestWorkerOneByOneGivesWayToTheGenuineCommand: the command-by-command
// path, too, takes a forged_command record as no decision. A forged copy
// of command a is refused and recorded first; then a and b, whose names
// contest one unique key, arrive in one batch, which is decided command by
// command: the genuine a decides over the forgery's record.
func TestWorkerOneByOneGivesWayToTheGenuineCommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := h.command(NewID(), auth.CreateRole{Name: "Contested"}), h.command(NewID(), auth.CreateRole{Name: "contested"})
	forged := *a
	forged.Actor = Actor{UserID: "forger"}
	first := h.startWorker()
	h.produce(rawMessage(&forged, nil))
	wantOutcome(t, h.decided(a.ID), StatusRejected, aggregates.CodeForged)
	first.stop()

	// Both produced before the next worker starts, so they arrive as one
	// batch; a without its pending row (the gateway's write of it failed),
	// so that the worker finds the forgery's record.
	h.send(a)
	h.submit(b)
	w := h.newWorker(nil)
	h.start(h.ctx, w)
	var sa, sb *Status
	testkit.Eventually(t, wait, func() bool {
		var errA, errB error
		sa, errA = h.status.Get(h.ctx, a.ID)
		sb, errB = h.status.Get(h.ctx, b.ID)
		return errA == nil && errB == nil && sb.Status != StatusPending &&
			(sa.Code == nil || *sa.Code != aggregates.CodeForged)
	}, "the genuine command a was not decided over its forgery")
	if sa.Actor != a.Actor.UserID {
		t.Errorf("a's row has actor %s, want the genuine %s", sa.Actor, a.Actor.UserID)
	}
	if sa.Status == StatusAccepted { // the two partitions come in no set order
		wantOutcome(t, sb, StatusRejected, auth.CodeRoleExists)
	} else {
		wantOutcome(t, sa, StatusRejected, auth.CodeRoleExists)
		wantOutcome(t, sb, StatusAccepted, "")
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return w.oneByOne.Load() > 0 },
		"the batch was not decided command by command")
}
