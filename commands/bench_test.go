package commands

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// benchValue is a signed command's value with a 1 KiB payload.
func benchValue(b *testing.B) []byte {
	payload, _ := json.Marshal(auth.CreateRole{Name: "bench", Description: strings.Repeat("d", 1024-len(`{"name":"bench","description":""}`))})
	env := &Envelope{ID: NewID(), Type: "auth.CreateRole", AggregateID: NewID(), Actor: Actor{UserID: testActor}, CorrelationID: NewID(), Payload: payload}
	v, err := json.Marshal(env)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

func BenchmarkEnvelopeSign(b *testing.B) {
	v := benchValue(b)
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		_ = testKey.Sign(v)
	}
}

func BenchmarkEnvelopeVerify(b *testing.B) {
	v := benchValue(b)
	sig := testKey.Sign(v)
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if !testKey.Verify(v, sig) {
			b.Fatal("signature does not verify")
		}
	}
}

// eventsPerRole is how many events each benchmark role gets.
const eventsPerRole = 100

// fillJournal appends n events through Journal.Append, one transaction per
// role of up to eventsPerRole events, and returns the roles' ids.
func fillJournal(h *harness, n int) []string {
	role := h.def("role")
	var ids []string
	for n > 0 {
		id := NewID()
		events := []aggregates.Event{auth.RoleCreated{Name: "role " + id, Description: "benchmark role"}}
		for len(events) < min(n, eventsPerRole) {
			events = append(events, auth.PermissionGranted{PermissionID: NewID(), PermissionName: "things:read"})
		}
		h.appendEvents(role, id, events...)
		ids, n = append(ids, id), n-len(events)
	}
	return ids
}

// BenchmarkRelay times the relay publishing b.N journal events (written
// beforehand, untimed) to the in-process broker and marking them.
func BenchmarkRelay(b *testing.B) {
	h := newHarness(b)
	fillJournal(h, b.N)
	r := h.newRelay()
	b.ResetTimer()
	h.start(h.ctx, r)
	testkit.Eventually(b, 10*wait, func() bool {
		return h.count(`SELECT count(*) FROM auth.outbox`) == 0
	}, "relay publishes %d events", b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRawKafkaProduce produces the records the relay would for b.N
// journal events, in the relay's batches (1000), with a plain writer of
// the same settings: the ceiling BenchmarkRelay can be compared with.
func BenchmarkRawKafkaProduce(b *testing.B) {
	h := newHarness(b)
	shape := &Relay{cfg: RelayConfig{Service: auth.Service, DataSchema: testDataSchema}}
	shape.cfg.setDefaults()
	var msgs []kafkago.Message
	for _, id := range fillJournal(h, b.N) {
		for _, e := range h.events(id) {
			m, err := shape.message(&e)
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, m)
		}
	}
	w := kafka.NewWriter(h.brokers, "")
	defer w.Close()
	b.ResetTimer()
	for batch := range slices.Chunk(msgs, shape.cfg.BatchSize) {
		if err := w.WriteMessages(h.ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkEventEncode measures what appending costs per event in the
// worker: canonical JSON of the data and the chained SHA-256.
func BenchmarkEventEncode(b *testing.B) {
	e := auth.PermissionGranted{PermissionID: NewID(), PermissionName: "reports:read"}
	b.ReportAllocs()
	for b.Loop() {
		data, err := CanonicalJSONOf(e)
		if err != nil {
			b.Fatal(err)
		}
		r := JournalEvent{EventID: NewID(), AggregateType: "role", AggregateID: NewID(), Version: 7,
			Type: "auth.PermissionGranted.v1", Data: data, OccurredAt: time.Now(), PrevHash: GenesisHash, canonicalData: true}
		if _, err := r.ComputeHash(); err != nil {
			b.Fatal(err)
		}
	}
}
