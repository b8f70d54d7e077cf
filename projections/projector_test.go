package projections

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/testkit"
)

func TestProjectorAppliesDuplicatesOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, 3)
	a, b := newID(), newID()
	p := r.start()

	// Duplicates inside one batch...
	r.produce(record(a, 1), record(a, 2), record(a, 1), record(a, 2), record(b, 1))
	r.waitLogged(map[string]int{a: 2, b: 1})
	// ...and redeliveries of older versions in later batches, then one new
	// version per aggregate, which arrives after every duplicate.
	r.produce(record(a, 1), record(a, 3), record(a, 2), record(b, 1), record(b, 2), record(a, 4), record(b, 3))
	r.waitLogged(map[string]int{a: 4, b: 3})

	want := map[string][]int64{a: versions(4), b: versions(3)}
	if got := r.logged(); !reflect.DeepEqual(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	waitApplied(t, p, 7, "")
	if errs := r.failures.all(); len(errs) > 0 || !p.Ready() {
		t.Errorf("Ready() = %v with failures %v, want ready and none", p.Ready(), errs)
	}
}

// waitApplied waits until rn counts want applied events. The count goes up
// just after the commit that makes the rows visible, so a test that saw
// the rows may still read the count before it.
func waitApplied(t *testing.T, rn *running, want int64, why string) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool { return rn.Applied() == want },
		"Applied() = %v, want %d %s", lazy(func() any { return rn.Applied() }), want, why)
}

func TestProjectorSurvivesCrashBeforeOffsetCommit(t *testing.T) {
	t.Parallel()
	const partitions, aggregates, perAggregate = 3, 20, 5
	r := newRig(t, partitions)
	r.batchSize = 10
	ids, msgs := interleaved(aggregates, perAggregate)
	r.produce(msgs...)

	// The first projector "crashes" right after its first Postgres commit,
	// before it commits any offset.
	first := r.start(func(rn *running) { rn.afterCommit = rn.cancel })
	first.wait(t)
	applied := first.Applied()
	if applied == 0 || applied > 10 {
		t.Fatalf("first projector applied %d events before crashing, want one batch of 1..10", applied)
	}
	if got := len(flatten(r.logged())); int64(got) != applied {
		t.Fatalf("log holds %d events after the crash, want the %d of the committed batch", got, applied)
	}
	if got := r.committed(partitions); !slices.Equal(got, []int64{-1, -1, -1}) {
		t.Fatalf("committed offsets after the crash = %v, want none", got)
	}

	// A new member of the group gets everything again and skips what the
	// first one applied.
	second := r.start()
	want := map[string]int{}
	for _, id := range ids {
		want[id] = perAggregate
	}
	r.waitLogged(want)
	for id, got := range r.logged() {
		if !slices.Equal(got, versions(perAggregate)) {
			t.Errorf("aggregate %s: applied %v, want each of 1..%d once", id, got, perAggregate)
		}
	}
	waitApplied(t, second, int64(len(msgs))-applied, "the events the first did not apply")
	testkit.Eventually(t, 10*time.Second, func() bool { return committedTotal(r.committed(partitions)) == int64(len(msgs)) },
		"committed offsets %v, want them to cover all %d records", lazy(func() any { return r.committed(partitions) }), len(msgs))
}

func TestProjectorStopsAtGap(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1) // one partition: the records after the gap queue behind it
	a, b := newID(), newID()
	p := r.start()
	r.produce(record(a, 1))
	r.waitLogged(map[string]int{a: 1})

	r.produce(record(a, 3))
	testkit.Eventually(t, 10*time.Second, func() bool { return !p.Ready() }, "projector still ready after a gap")
	errs := r.failures.all()
	if len(errs) == 0 || !errors.Is(errs[0], ErrGap) {
		t.Fatalf("logged failures %v, want ErrGap", errs)
	}

	// The missing version arrives too late: it is behind version 3 in the
	// partition. The projector keeps retrying the same batch and applies
	// nothing more, on any aggregate.
	r.produce(record(b, 1), record(a, 2), record(a, 4))
	seen := len(errs)
	testkit.Eventually(t, 20*time.Second, func() bool { return len(r.failures.all()) >= seen+3 },
		"projector stopped retrying the failed batch")
	want := map[string][]int64{a: {1}}
	if got := r.logged(); !reflect.DeepEqual(got, want) {
		t.Errorf("applied %v while stuck, want only %v", got, want)
	}
	for _, err := range r.failures.all() {
		if !errors.Is(err, ErrGap) {
			t.Errorf("failure %v, want only gaps", err)
		}
	}
	if p.Ready() || p.Applied() != 1 {
		t.Errorf("Ready() = %v, Applied() = %d; want unready with 1 applied", p.Ready(), p.Applied())
	}
}

func TestProjectorRetriesFailedCommit(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1)
	// The first commit fails on a deferred check; a sequence is not rolled
	// back, so every later commit passes.
	r.exec(`CREATE SEQUENCE ptest.commits;
		CREATE FUNCTION ptest.fail_first_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('ptest.commits') = 1 THEN RAISE EXCEPTION 'first commit fails'; END IF;
			RETURN NULL;
		END $$;
		CREATE CONSTRAINT TRIGGER fail_first_commit AFTER INSERT ON ptest.log
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ptest.fail_first_commit();`)
	a := newID()
	p := r.start()
	r.produce(record(a, 1), record(a, 2))
	r.waitLogged(map[string]int{a: 2})
	if got, want := r.logged(), map[string][]int64{a: {1, 2}}; !reflect.DeepEqual(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	waitApplied(t, p, 2, "the batch whose commit failed does not count")
	if errs := r.failures.all(); len(errs) != 1 {
		t.Errorf("logged failures %v, want the one failed commit", errs)
	}
	testkit.Eventually(t, 10*time.Second, p.Ready, "projector not ready again after a successful retry")
}

func TestProjectorSkipsForeignRecords(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1)
	a := newID()
	p := r.start()
	noVersion := record(a, 1)
	noVersion.Headers = withoutHeader(noVersion.Headers, "strataversion")
	zeroVersion := record(a, 1, func(e *commands.JournalEvent) { e.Version = 0 })
	noSubject := record(a, 1, func(e *commands.JournalEvent) { e.AggregateID = "" })
	r.produce(
		kafkago.Message{Topic: testTopic, Key: []byte(a), Value: []byte("not an event")},
		noVersion, zeroVersion, noSubject,
		record(a, 1),
	)
	r.waitLogged(map[string]int{a: 1})
	if got, want := r.logged(), map[string][]int64{a: {1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	if errs := r.failures.all(); len(errs) > 0 || !p.Ready() {
		t.Errorf("Ready() = %v with failures %v, want ready and none", p.Ready(), errs)
	}
}

func TestProjectorAdvancesPastUnknownEventTypes(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1)
	a := newID()
	p := r.start()
	r.produce(record(a, 1), record(a, 2, ofType("ptest.Ticked.v2")), record(a, 3))
	r.waitLogged(map[string]int{a: 2})
	if got, want := r.logged(), map[string][]int64{a: {1, 3}}; !reflect.DeepEqual(got, want) {
		t.Errorf("applied %v, want %v (version 2 is of a type this build does not know)", got, want)
	}
	waitApplied(t, p, 3, "the unknown event still counts as seen")
}

func TestProjectorMarksCommands(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1)
	r.migrate(commands.Migrations()...)
	r.proj.MarksCommands = true
	x := newID()
	accepted, rejected := newID(), newID()
	insert := `INSERT INTO strata.commands (id, service, type, aggregate_id, actor, status, version)
		VALUES ($1, 'ptest', 'ptest.Tick', $2, 'tester', $3, $4)`
	r.exec(insert, accepted, x, commands.StatusAccepted, 2)
	r.exec(insert, rejected, x, commands.StatusRejected, 3)
	listener := r.listen(commands.NotifyChannel)
	r.start()

	// One command produced versions 1 and 2; it is projected only when 2 is.
	r.produce(record(x, 1, byCommand(accepted)))
	r.waitLogged(map[string]int{x: 1})
	if st := r.status(accepted); st.Status != commands.StatusAccepted || st.ProjectedAt != nil {
		t.Fatalf("after version 1: %s projected at %v, want accepted until version 2", st.Status, st.ProjectedAt)
	}
	r.produce(record(x, 2, byCommand(accepted)), record(x, 3, byCommand(rejected)))
	r.waitLogged(map[string]int{x: 3})
	if st := r.status(accepted); st.Status != commands.StatusProjected || st.ProjectedAt == nil {
		t.Errorf("after version 2: %s projected at %v, want projected with a time", st.Status, st.ProjectedAt)
	}
	if got := listener(); got != accepted {
		t.Errorf("notified %q, want %q", got, accepted)
	}
	if st := r.status(rejected); st.Status != commands.StatusRejected || st.ProjectedAt != nil {
		t.Errorf("rejected command became %s projected at %v, want untouched", st.Status, st.ProjectedAt)
	}
}

// status reads a command's row.
func (r *rig) status(id string) *commands.Status {
	r.t.Helper()
	st, err := commands.NewStatusStore(r.pool).Get(timeout(r.t, 10*time.Second), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// listen listens on channel from now on; the returned func waits for the
// next notification and returns its payload.
func (r *rig) listen(channel string) func() string {
	r.t.Helper()
	conn, err := r.pool.Acquire(timeout(r.t, 10*time.Second))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(conn.Release)
	if _, err := conn.Exec(timeout(r.t, 10*time.Second), "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		r.t.Fatal(err)
	}
	return func() string {
		n, err := conn.Conn().WaitForNotification(timeout(r.t, 10*time.Second))
		if err != nil {
			r.t.Fatalf("no notification on %s: %v", channel, err)
		}
		return n.Payload
	}
}

func withoutHeader(hs []kafkago.Header, key string) []kafkago.Header {
	return slices.DeleteFunc(slices.Clone(hs), func(h kafkago.Header) bool { return h.Key == key })
}

func flatten(m map[string][]int64) []int64 {
	var out []int64
	for _, vs := range m {
		out = append(out, vs...)
	}
	return out
}

// committedTotal adds up committed offsets, counting partitions without
// one as 0.
func committedTotal(offsets []int64) int64 {
	var s int64
	for _, o := range offsets {
		s += max(o, 0)
	}
	return s
}

// TestProjectorAppliesPartsOnce splits every batch into parallel
// transactions by partition and crashes after the first batch committed:
// every event is still applied exactly once, in order per aggregate.
func TestProjectorAppliesPartsOnce(t *testing.T) {
	t.Parallel()
	const partitions, aggregates, perAggregate = 3, 30, 6
	r := newRig(t, partitions)
	r.batchSize, r.splitAbove = 40, 1
	r.proj.Partitioned = true
	ids, msgs := interleaved(aggregates, perAggregate)
	r.produce(msgs...)
	first := r.start(func(rn *running) { rn.afterCommit = rn.cancel })
	first.wait(t)
	r.start()
	want := map[string]int{}
	for _, id := range ids {
		want[id] = perAggregate
	}
	r.waitLogged(want)
	for id, got := range r.logged() {
		if !slices.Equal(got, versions(perAggregate)) {
			t.Errorf("aggregate %s: applied %v, want each of 1..%d once, in order", id, got, perAggregate)
		}
	}
	if errs := r.failures.all(); len(errs) > 0 {
		t.Errorf("failures: %v", errs)
	}
}

// interleaved returns n new aggregates and their versions 1..per as
// records, version by version across the aggregates.
func interleaved(n, per int) ([]string, []kafkago.Message) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newID()
	}
	var msgs []kafkago.Message
	for v := int64(1); v <= int64(per); v++ {
		for _, id := range ids {
			msgs = append(msgs, record(id, v))
		}
	}
	return ids, msgs
}
