package commands

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/internal/testkit"
)

func TestRelayPublishesTheJournalInOrder(t *testing.T) {
	t.Parallel()
	// With batches of 3 the relay reads the next batch while the last is
	// being marked, leaving its rows out (the statement on a custom plan).
	for _, batch := range []int{0, 3} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			t.Parallel()
			relayInOrder(t, batch)
		})
	}
}

func relayInOrder(t *testing.T, batch int) {
	h := newHarness(t)
	role, perm := h.def("role"), h.def("permission")
	p1, r1, r2 := NewID(), NewID(), NewID()
	// Interleaved transactions, so positions of the aggregates interleave.
	var written []JournalEvent
	written = append(written, h.appendEvents(perm, p1, auth.PermissionCreated{Name: "roles:write"})...)
	written = append(written, h.appendEvents(role, r1, auth.RoleCreated{Name: "one"})...)
	written = append(written, h.appendEvents(role, r2, auth.RoleCreated{Name: "two"})...)
	written = append(written, h.appendEvents(role, r1, auth.PermissionGranted{PermissionID: p1, PermissionName: "roles:write"},
		auth.RoleRenamed{Name: "uno", PreviousName: "one"})...)
	written = append(written, h.appendEvents(role, r2, auth.RoleDeleted{Name: "two"})...)
	written = append(written, h.appendEvents(perm, p1, auth.PermissionDeleted{Name: "roles:write"})...)
	written = append(written, h.appendEvents(role, r1, auth.RoleRenamed{Name: "eins", PreviousName: "uno"})...)
	byID := map[string]JournalEvent{}
	for _, e := range written {
		byID[e.EventID] = e
	}

	metrics := prometheus.NewRegistry()
	r := h.newRelayWith(metrics)
	r.cfg.BatchSize = cmp.Or(batch, r.cfg.BatchSize)
	h.start(h.ctx, r)
	records := append(h.consume(role.Topic(), 6), h.consume(perm.Topic(), 2)...)
	if len(records) != len(written) {
		t.Fatalf("%d records, want %d", len(records), len(written))
	}
	next := map[string]int64{} // aggregate id → next version expected
	for _, r := range records {
		hs := headers(t, r)
		e, ok := byID[hs["ce_id"]]
		if !ok {
			t.Fatalf("record with unknown ce_id %q", hs["ce_id"])
		}
		next[e.AggregateID]++
		if e.Version != next[e.AggregateID] {
			t.Errorf("%s: version %d arrived when %d was due", e.AggregateID, e.Version, next[e.AggregateID])
		}
		if string(r.Key) != e.AggregateID || r.Topic != "auth."+e.AggregateType {
			t.Errorf("record of %s v%d: key %q on %s", e.AggregateID, e.Version, r.Key, r.Topic)
		}
		if string(r.Value) != string(e.Data) {
			t.Errorf("value %s, want %s", r.Value, e.Data)
		}
		// Kafka keeps milliseconds: the record's timestamp is the event's
		// time, for consumers that seek or window by time.
		if want := e.OccurredAt.Truncate(time.Millisecond); !r.Timestamp.Equal(want) {
			t.Errorf("record of %s v%d: timestamp %s, want its occurred_at %s", e.AggregateID, e.Version, r.Timestamp, want)
		}
		wantHeaders(t, hs, e)
	}
	h.allPublished()
	// Every published event is observed once, with the service's label.
	families, err := metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var observed uint64
	for _, f := range families {
		if f.GetName() == "strata_relay_publish_delay_seconds" {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "service" && l.GetValue() == auth.Service {
						observed += m.GetHistogram().GetSampleCount()
					}
				}
				// Every delay is positive and, in this test, under a minute.
				if h := m.GetHistogram(); h.GetSampleSum() <= 0 || h.GetSampleSum() > 60*float64(h.GetSampleCount()) {
					t.Errorf("delays sum to %vs over %d events", h.GetSampleSum(), h.GetSampleCount())
				}
			}
		}
	}
	if observed != uint64(len(written)) {
		t.Errorf("strata_relay_publish_delay_seconds{service=%q} counted %d events, want %d", auth.Service, observed, len(written))
	}
	// A relay that failed restarts and publishes what is left, so the
	// records alone would not show a failing read.
	if errs := h.logs.records(func(r map[string]any) bool { return r["level"] == "ERROR" }); len(errs) > 0 {
		t.Fatalf("the relay logged errors: %v", errs)
	}
}

// allPublished waits until the outbox is empty.
func (h *harness) allPublished() {
	h.t.Helper()
	testkit.Eventually(h.t, wait, func() bool {
		return h.count(`SELECT count(*) FROM auth.outbox`) == 0
	}, "the relay empties the outbox")
}

// wantHeaders checks a record's headers against its journal row: the
// CloudEvents binary binding and the strata extensions, and nothing else.
func wantHeaders(t *testing.T, got map[string]string, e JournalEvent) {
	t.Helper()
	want := map[string]string{
		"ce_specversion":      "1.0",
		"ce_id":               e.EventID,
		"ce_source":           "/strata/auth",
		"ce_type":             e.Type,
		"ce_subject":          e.AggregateID,
		"ce_time":             got["ce_time"], // compared as a time below
		"ce_dataschema":       testDataSchema(e.Type),
		"content-type":        "application/json",
		"strataversion":       strconv.FormatInt(e.Version, 10),
		"stratacommandid":     e.Metadata.CommandID,
		"stratacorrelationid": e.Metadata.CorrelationID,
		"stratacausationid":   e.Metadata.CausationID,
		"strataactor":         testActor,
		"stratahash":          hex.EncodeToString(e.Hash),
		"strataprevhash":      hex.EncodeToString(e.PrevHash),
	}
	if !maps.Equal(got, want) {
		t.Errorf("headers of %s v%d:\n got %v\nwant %v", e.AggregateID, e.Version, got, want)
	}
	if at, err := time.Parse(time.RFC3339Nano, got["ce_time"]); err != nil || !at.Equal(e.OccurredAt) {
		t.Errorf("ce_time %q, want %v", got["ce_time"], e.OccurredAt)
	}
}

func TestRelayLeaderElection(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := h.newRelay(), h.newRelay()
	runA, runB := h.start(h.ctx, a), h.start(h.ctx, b)
	testkit.Eventually(t, wait, func() bool { return a.Leader() != b.Leader() && a.Ready() && b.Ready() },
		"exactly one of two relays leads")
	leader, standby, runLeader := a, b, runA
	if b.Leader() {
		leader, standby, runLeader = b, a, runB
	}

	role := h.def("role")
	id := NewID()
	h.appendEvents(role, id, auth.RoleCreated{Name: "before"})
	if rs := h.consume(role.Topic(), 1); headers(t, rs[0])["ce_subject"] != id {
		t.Fatalf("the leader published %v", rs[0])
	}
	h.allPublished()
	if standby.Leader() {
		t.Fatal("the standby took the lock while the leader holds it")
	}

	runLeader.stop()
	if leader.Leader() {
		t.Error("a stopped relay still says it leads")
	}
	testkit.Eventually(t, wait, standby.Leader, "the standby takes over when the leader dies")
	h.appendEvents(role, id, auth.RoleRenamed{Name: "after", PreviousName: "before"})
	rs := h.consume(role.Topic(), 2)
	versions := []string{headers(t, rs[0])["strataversion"], headers(t, rs[1])["strataversion"]}
	if !slices.Equal(versions, []string{"1", "2"}) {
		t.Errorf("versions on Kafka = %v, want [1 2]", versions)
	}
	h.allPublished()
}

func TestEventHeadersOmitAnUnknownDataSchema(t *testing.T) {
	e := JournalEvent{EventID: NewID(), AggregateID: NewID(), Version: 1, Type: "auth.RoleCreated.v1", OccurredAt: time.Now()}
	for _, hd := range EventHeaders(auth.Service, &e, "") {
		if hd.Key == "ce_dataschema" {
			t.Errorf("ce_dataschema %q without a schema", hd.Value)
		}
	}
}

// TestRelayPlans: on the relay's generic-plan session the read that
// leaves out rows being marked still runs on a custom plan (Postgres hashes
// its constant array), the plain read on the generic one; a mark runs on
// the generic plan and leaves no setting on the pooled connection.
func TestRelayPlans(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := h.ctx
	r := h.newRelay()
	cfg := h.pool.Config()
	cfg.MaxConns = 1
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	r.cfg.Pool = one
	conn, err := one.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := r.unpublished(ctx, conn.Conn(), []int64{1, 2}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.unpublished(ctx, conn.Conn(), nil); err != nil {
			t.Fatal(err)
		}
	}
	plans := func(like, notLike string) (custom, generic int64) {
		t.Helper()
		if err := conn.QueryRow(ctx, `SELECT coalesce(sum(custom_plans), 0), coalesce(sum(generic_plans), 0)
			FROM pg_prepared_statements WHERE statement LIKE $1 AND statement NOT LIKE $2`, like, notLike).Scan(&custom, &generic); err != nil {
			t.Fatal(err)
		}
		return custom, generic
	}
	if c, g := plans("%position <> ALL%", "-"); c != 2 || g != 0 {
		t.Errorf("the read leaving out marked rows: %d custom and %d generic plans, want 2 and 0", c, g)
	}
	if c, g := plans("%FROM \"auth\".outbox o JOIN%", "%<> ALL%"); c != 0 || g != 2 {
		t.Errorf("the plain read: %d custom and %d generic plans, want 0 and 2", c, g)
	}
	if _, err := conn.Exec(ctx, `RESET plan_cache_mode`); err != nil {
		t.Fatal(err)
	}
	conn.Release()
	for range 2 {
		if err := r.mark(ctx, []int64{1}); err != nil {
			t.Fatal(err)
		}
	}
	var mode string
	var custom, generic int64
	if err := one.QueryRow(ctx, `SELECT current_setting('plan_cache_mode'),
		(SELECT coalesce(sum(custom_plans), 0) FROM pg_prepared_statements WHERE statement LIKE 'DELETE FROM %.outbox%'),
		(SELECT coalesce(sum(generic_plans), 0) FROM pg_prepared_statements WHERE statement LIKE 'DELETE FROM %.outbox%')`).
		Scan(&mode, &custom, &generic); err != nil {
		t.Fatal(err)
	}
	if mode != "auto" || custom != 0 || generic != 2 {
		t.Fatalf("after two marks: plan_cache_mode %q, %d custom and %d generic plans of the mark; want auto, 0 and 2", mode, custom, generic)
	}
}
