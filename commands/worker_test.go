package commands

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// renames returns commands that create a role and rename it back and
// forth: deciding any of them a second time would append an event.
func (h *harness) renames(role string) []*Envelope {
	return []*Envelope{
		h.command(role, auth.CreateRole{Name: "first"}),
		h.command(role, auth.RenameRole{Name: "second"}),
		h.command(role, auth.RenameRole{Name: "first"}),
	}
}

// acceptedAt waits until each command is accepted and returns when each
// was decided.
func (h *harness) acceptedAt(envs []*Envelope) map[string]time.Time {
	h.t.Helper()
	at := map[string]time.Time{}
	for _, env := range envs {
		st := h.decided(env.ID)
		wantOutcome(h.t, st, StatusAccepted, "")
		at[env.ID] = *st.DecidedAt
	}
	return at
}

// wantAppliedOnce checks that the commands on one aggregate appended one
// event each, in order, in an intact chain, and that each is still the
// acceptance decided at decidedAt.
func (h *harness) wantAppliedOnce(id string, envs []*Envelope, decidedAt map[string]time.Time) {
	h.t.Helper()
	evs := h.events(id)
	if v, err := VerifyChain(evs); err != nil || v != 0 || len(evs) != len(envs) {
		h.t.Fatalf("journal: %d events, chain broken at %d (%v); want %d events, intact", len(evs), v, err, len(envs))
	}
	for i, e := range evs {
		if e.Version != int64(i+1) || e.Metadata.CommandID != envs[i].ID {
			h.t.Errorf("event %d: version %d of command %s, want version %d of %s", i, e.Version, e.Metadata.CommandID, i+1, envs[i].ID)
		}
	}
	for i, env := range envs {
		st := h.statusOf(env.ID)
		wantOutcome(h.t, st, StatusAccepted, "")
		if st.Version == nil || *st.Version != int64(i+1) || !st.DecidedAt.Equal(decidedAt[env.ID]) {
			h.t.Errorf("command %d was decided again: version %v at %v, want %d at %v", i, st.Version, st.DecidedAt, i+1, decidedAt[env.ID])
		}
	}
}

func TestWorkerRedeliveryChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.startWorker()
	role := NewID()
	envs := h.renames(role)
	// The same signed envelope twice in a row, most likely in one batch.
	h.submit(envs[0])
	h.send(envs[0])
	decidedAt := h.acceptedAt(envs[:1])
	for _, env := range envs[1:] {
		h.submit(env)
	}
	maps.Copy(decidedAt, h.acceptedAt(envs[1:]))
	// Duplicates of committed commands: surely batches of their own.
	h.send(envs[1])
	h.send(envs[0])
	h.drained()
	h.wantAppliedOnce(role, envs, decidedAt)
}

// caseVariants returns n spellings of name that differ only in letter case.
func caseVariants(name string, n int) []string {
	out := make([]string, n)
	for i := range out {
		b := []byte(name)
		for j := range b {
			if i&(1<<j) != 0 {
				b[j] = strings.ToUpper(string(b[j]))[0]
			}
		}
		out[i] = string(b)
	}
	return out
}

func TestWorkerRoleNameRace(t *testing.T) {
	t.Parallel()
	const n = 20
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("%dWorkers", workers), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			batches := make([]atomic.Int64, workers)
			for i := range workers {
				w := h.newWorker(nil)
				w.afterCommit = func() { batches[i].Add(1) }
				h.start(h.ctx, w)
			}
			h.waitGroupAssigned(workers)
			before := make([]int64, workers)
			for i := range batches {
				before[i] = batches[i].Load()
			}

			envs := make([]*Envelope, n)
			for i, name := range caseVariants("admins", n) {
				envs[i] = h.command(NewID(), auth.CreateRole{Name: name})
			}
			var wg sync.WaitGroup
			for _, env := range envs {
				wg.Go(func() { h.submit(env) })
			}
			wg.Wait()

			accepted := ""
			for _, env := range envs {
				st := h.decided(env.ID)
				switch {
				case st.Status == StatusAccepted && accepted == "":
					accepted = env.AggregateID
				case st.Status == StatusAccepted:
					t.Errorf("a second CreateRole was accepted: %s", env.AggregateID)
				default:
					wantOutcome(t, st, StatusRejected, auth.CodeRoleExists)
				}
			}
			if accepted == "" {
				t.Fatal("no CreateRole was accepted")
			}
			if got := h.count(`SELECT count(*) FROM auth.events WHERE type = 'auth.RoleCreated.v1'`); got != 1 {
				t.Errorf("%d RoleCreated events, want 1", got)
			}
			if got := h.count(`SELECT count(*) FROM auth.unique_keys`); got != 1 {
				t.Errorf("%d unique keys, want 1", got)
			}
			if got := h.count(`SELECT count(*) FROM auth.unique_keys WHERE scope='role_name' AND key='admins' AND aggregate_id=$1`, accepted); got != 1 {
				t.Errorf("the role name is not held by the accepted role %s", accepted)
			}
			// A worker counts its batch just after the commit that made
			// the outcomes visible.
			for i := range batches {
				testkit.Eventually(t, 10*time.Second, func() bool { return batches[i].Load() > before[i] },
					"worker %d decided no batch: the race was not run by %d workers", i, workers)
			}
		})
	}
}

// waitGroupAssigned waits until the worker group is stable with n members,
// each of them holding partitions.
func (h *harness) waitGroupAssigned(n int) {
	h.t.Helper()
	testkit.Eventually(h.t, wait, func() bool {
		resp, err := h.admin.DescribeGroups(h.ctx, &kafkago.DescribeGroupsRequest{GroupIDs: []string{workerGroup}})
		if err != nil || len(resp.Groups) != 1 {
			return false
		}
		g := resp.Groups[0]
		if g.GroupState != "Stable" || len(g.Members) != n {
			return false
		}
		for _, m := range g.Members {
			if len(m.MemberAssignments.Topics) == 0 {
				return false
			}
		}
		return true
	}, "worker group is stable with %d assigned members", n)
}

func TestWorkerRefusesForgedCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.startWorker()
	other := Key(strings.Repeat("x", MinKeyBytes))

	unsigned := h.command(NewID(), auth.CreateRole{Name: "unsigned"})
	wrongKey := h.command(NewID(), auth.CreateRole{Name: "wrong-key"})
	h.produce(rawMessage(unsigned, nil), rawMessage(wrongKey, other))
	for _, env := range []*Envelope{unsigned, wrongKey} {
		wantOutcome(t, h.decided(env.ID), StatusRejected, aggregates.CodeForged)
		if evs := h.events(env.AggregateID); len(evs) != 0 {
			t.Errorf("forged command %s touched its aggregate: %d events", env.ID, len(evs))
		}
		refusals := h.logs.records(func(r map[string]any) bool { return r["security"] == true && r["command_id"] == env.ID })
		if len(refusals) != 1 {
			t.Errorf("forged command %s logged as a security event %d times, want 1", env.ID, len(refusals))
		}
	}
	if n := h.count(`SELECT count(*) FROM auth.unique_keys`); n != 0 {
		t.Errorf("forged commands claimed %d unique keys", n)
	}

	t.Run("DoesNotSettleAGenuinePendingCommand", func(t *testing.T) {
		genuine := h.command(NewID(), auth.CreateRole{Name: "genuine"})
		h.pending(genuine)
		forged := *genuine
		forged.Payload = []byte(`{"name":"forged"}`)
		h.produce(rawMessage(&forged, nil), rawMessage(&forged, other))
		h.drained()
		wantOutcome(t, h.statusOf(genuine.ID), StatusPending, "")
		if evs := h.events(genuine.AggregateID); len(evs) != 0 {
			t.Fatalf("forgeries touched the aggregate: %d events", len(evs))
		}

		h.send(genuine)
		wantOutcome(t, h.decided(genuine.ID), StatusAccepted, "")
		evs := h.events(genuine.AggregateID)
		if len(evs) != 1 || !strings.Contains(string(evs[0].Data), `"genuine"`) {
			t.Errorf("after the genuine command the role has %v, want one RoleCreated named genuine", evs)
		}
	})

	// The gateway produces a command while its pending row is written, so
	// a forged copy of it (its id read off the topic) may be refused and
	// recorded before the genuine command has a row. The refusal gives way:
	// to the gateway's pending row, and to the genuine decision, whether or
	// not that row was written.
	t.Run("GivesWayToTheGenuineCommand", func(t *testing.T) {
		withRow := h.command(NewID(), auth.CreateRole{Name: "produced-then-recorded"})
		withoutRow := h.command(NewID(), auth.CreateRole{Name: "produced-never-recorded"})
		for _, genuine := range []*Envelope{withRow, withoutRow} {
			forged := *genuine
			forged.Payload = []byte(`{"name":"forged first"}`)
			forged.Actor, forged.AggregateID = Actor{UserID: "forger"}, NewID()
			h.produce(rawMessage(&forged, nil))
			wantOutcome(t, h.decided(genuine.ID), StatusRejected, aggregates.CodeForged)
		}
		st, existing, err := h.status.InsertPending(h.ctx, Submission{Envelope: withRow, RequestHash: []byte("h")})
		if err != nil || existing || st.Status != StatusPending || st.Actor != withRow.Actor.UserID {
			t.Fatalf("pending row over a forgery: %+v, existing %v, %v; want the genuine command pending", st, existing, err)
		}
		for _, genuine := range []*Envelope{withRow, withoutRow} {
			h.send(genuine)
			testkit.Eventually(t, wait, func() bool {
				st, err := h.status.Get(h.ctx, genuine.ID)
				return err == nil && st.Status == StatusAccepted
			}, "the genuine command %s was not decided after its forgery", genuine.ID)
			// The row is the genuine command's, not the forger's: its
			// issuer sees it, and its aggregate's projection marks it.
			if st := h.statusOf(genuine.ID); st.Actor != genuine.Actor.UserID || st.AggregateID != genuine.AggregateID {
				t.Errorf("decided row of %s has actor %s and aggregate %s, want the genuine command's", genuine.ID, st.Actor, st.AggregateID)
			}
			evs := h.events(genuine.AggregateID)
			if len(evs) != 1 || !strings.Contains(string(evs[0].Data), `"produced-`) {
				t.Errorf("role %s has %v, want one RoleCreated of the genuine command", genuine.AggregateID, evs)
			}
		}
	})

	// A worker may decide a command before the gateway writes its pending
	// row: the row the worker wrote stands, and is what the gateway gets.
	t.Run("PendingRowAfterTheDecision", func(t *testing.T) {
		genuine := h.command(NewID(), auth.CreateRole{Name: "decided-first"})
		h.send(genuine)
		wantOutcome(t, h.decided(genuine.ID), StatusAccepted, "")
		st, existing, err := h.status.InsertPending(h.ctx, Submission{Envelope: genuine, RequestHash: []byte("h")})
		if err != nil || existing || st.Status != StatusAccepted || st.Version == nil || *st.Version != 1 {
			t.Fatalf("pending row after the decision: %+v, existing %v, %v; want the decision", st, existing, err)
		}
		wantOutcome(t, h.statusOf(genuine.ID), StatusAccepted, "")
	})
}

func TestWorkerDeadLettersUndecodableCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.startWorker()
	role := NewID()
	valid := h.command(role, auth.CreateRole{Name: "after-garbage"})
	garbage := [][]byte{
		[]byte("\x00\xffnot json at all"),
		[]byte(`{"id":"not-a-uuid","type":"auth.CreateRole","aggregate_id":"` + role + `","payload":{}}`),
	}
	// Same record key, one write: the garbage sits ahead of the valid
	// command in its partition.
	h.produce(signedValue(role, garbage[0], h.key), signedValue(role, garbage[1], h.key), rawMessage(valid, h.key))

	wantOutcome(t, h.decided(valid.ID), StatusAccepted, "")
	dead := h.consume(DLQTopic(auth.Service), len(garbage))
	for i, r := range dead {
		hs := headers(t, r)
		if string(r.Value) != string(garbage[i]) || string(r.Key) != role {
			t.Errorf("dead letter %d = %q key %q, want the original record", i, r.Value, r.Key)
		}
		if hs["strata-dlq-reason"] != "undecodable" || hs["strata-dlq-error"] == "" {
			t.Errorf("dead letter %d headers %v lack the reason", i, hs)
		}
		if !strings.HasPrefix(hs["strata-dlq-source"], CommandTopic(auth.Service)+"/") {
			t.Errorf("dead letter %d source %q", i, hs["strata-dlq-source"])
		}
		if hs[SignatureHeader] != h.key.Sign(garbage[i]) {
			t.Errorf("dead letter %d lost its signature header", i)
		}
	}
}

func TestWorkerKeepsDeadLettersWhileTheDLQIsDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DLQTopic(auth.Service))
	h.startWorker()
	role := NewID()
	valid := h.command(role, auth.CreateRole{Name: "behind-garbage"})
	h.pending(valid)
	h.produce(signedValue(role, []byte("garbage"), h.key), rawMessage(valid, h.key))

	// Two failed attempts: the retry after the first one still carries
	// the dead letter instead of dropping it.
	testkit.Eventually(t, wait, func() bool {
		return len(h.logs.records(func(r map[string]any) bool { return r["msg"] == "command batch failed, retrying" })) >= 2
	}, "the worker retries the batch while the DLQ is down")
	// The batch is retried as a whole: nothing of it commits meanwhile.
	wantOutcome(t, h.statusOf(valid.ID), StatusPending, "")
	h.createTopics(DLQTopic(auth.Service))
	wantOutcome(t, h.decided(valid.ID), StatusAccepted, "")
	if dead := h.consume(DLQTopic(auth.Service), 1); string(dead[0].Value) != "garbage" {
		t.Errorf("dead letter = %q", dead[0].Value)
	}
}

func TestWorkerCrashBetweenCommitAndOffsetCommit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	role := NewID()
	envs := h.renames(role)
	for _, env := range envs {
		h.submit(env)
	}

	crashing := h.newWorker(func(c *WorkerConfig) { c.BatchSize, c.BatchWait, c.BatchGap = len(envs), 5*time.Second, 5*time.Second })
	ctx, crash := context.WithCancel(h.ctx)
	crashing.afterCommit = crash
	r := h.start(ctx, crashing)
	testkit.Eventually(t, wait, r.stopped, "the worker stops after its first batch")
	decidedAt := h.acceptedAt(envs)
	committed, _ := h.committed()
	if len(committed) != testPartitions {
		t.Fatalf("offsets of %d partitions, want %d", len(committed), testPartitions)
	}
	for p, off := range committed {
		if off >= 0 {
			t.Errorf("partition %d has committed offset %d after the crash, want none", p, off)
		}
	}

	h.startWorker()
	h.drained()
	h.wantAppliedOnce(role, envs, decidedAt)
}

func TestWorkerDecidesAgainstTheJournal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.startWorker()
	perm, role, renamedFrom := NewID(), NewID(), NewID()
	type step struct {
		name    string
		env     *Envelope
		status  string
		code    string
		version int64 // of the aggregate after an accepted command
	}
	steps := []step{
		{name: "CreatePermission", env: h.command(perm, auth.CreatePermission{Name: "roles:write"}), status: StatusAccepted, version: 1},
		{name: "CreateRole", env: h.command(role, auth.CreateRole{Name: "ops"}), status: StatusAccepted, version: 1},
		{name: "CreateExistingRole", env: h.command(role, auth.CreateRole{Name: "other"}), status: StatusRejected, code: aggregates.CodeAlreadyExists},
		{name: "GrantMissingPermission", env: h.command(role, auth.GrantPermission{PermissionID: NewID()}), status: StatusRejected, code: auth.CodePermissionNotFound},
		{name: "GrantNonUUIDPermission", env: h.command(role, auth.GrantPermission{PermissionID: "nope"}), status: StatusRejected, code: auth.CodePermissionNotFound},
		{name: "GrantRoleAsPermission", env: h.command(role, auth.GrantPermission{PermissionID: role}), status: StatusRejected, code: auth.CodePermissionNotFound},
		{name: "Grant", env: h.command(role, auth.GrantPermission{PermissionID: perm}), status: StatusAccepted, version: 2},
		{name: "GrantAgain", env: h.command(role, auth.GrantPermission{PermissionID: perm}), status: StatusRejected, code: auth.CodeAlreadyGranted},
		{name: "StaleExpectedVersion", env: expecting(h.command(role, auth.RenameRole{Name: "ops-2"}), 1), status: StatusRejected, code: aggregates.CodeVersionConflict},
		{name: "MissingAggregate", env: h.command(NewID(), auth.RenameRole{Name: "ghost"}), status: StatusRejected, code: aggregates.CodeNotFound},
		{name: "PermissionIDAsRole", env: h.command(perm, auth.RenameRole{Name: "ghost"}), status: StatusRejected, code: aggregates.CodeNotFound},
		{name: "UnknownCommandType", env: func() *Envelope { e := h.command(role, auth.DeleteRole{}); e.Type = "auth.Explode"; return e }(), status: StatusRejected, code: aggregates.CodeInvalid},
		{name: "UnknownPayloadField", env: func() *Envelope { e := h.command(role, auth.DeleteRole{}); e.Payload = []byte(`{"x":1}`); return e }(), status: StatusRejected, code: aggregates.CodeInvalid},
		{name: "Rename", env: expecting(h.command(role, auth.RenameRole{Name: "ops-renamed"}), 2), status: StatusAccepted, version: 3},
		{name: "OldNameIsFree", env: h.command(renamedFrom, auth.CreateRole{Name: "OPS"}), status: StatusAccepted, version: 1},
		{name: "NewNameIsTaken", env: h.command(NewID(), auth.CreateRole{Name: "Ops-Renamed"}), status: StatusRejected, code: auth.CodeRoleExists},
	}
	for _, s := range steps {
		st := h.do(s.env)
		wantOutcome(t, st, s.status, s.code)
		if s.status == StatusAccepted && (st.Version == nil || *st.Version != s.version) {
			t.Errorf("%s: version %v, want %d", s.name, st.Version, s.version)
		}
		if s.status == StatusRejected && st.Version != nil {
			t.Errorf("%s: a rejection carries version %d", s.name, *st.Version)
		}
	}
	if got, want := h.eventTypes(role), []string{"auth.RoleCreated.v1", "auth.PermissionGranted.v1", "auth.RoleRenamed.v1"}; !slices.Equal(got, want) {
		t.Errorf("role events = %v, want %v", got, want)
	}
	keys := map[string]string{}
	rows, err := h.pool.Query(h.ctx, `SELECT key, aggregate_id::text FROM auth.unique_keys WHERE scope='role_name'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k, id string
		if err := rows.Scan(&k, &id); err != nil {
			t.Fatal(err)
		}
		keys[k] = id
	}
	if want := map[string]string{"ops-renamed": role, "ops": renamedFrom}; !maps.Equal(keys, want) {
		t.Errorf("role names held = %v, want %v", keys, want)
	}
}
