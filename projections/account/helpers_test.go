package account_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
	"github.com/strata-cqrs/strata/projections"
	"github.com/strata-cqrs/strata/projections/account"
)

// Ids sort in creation order, as UUIDv7s do.
const (
	ada = "0197b000-0000-7000-8000-0000000000a1"
	bob = "0197b000-0000-7000-8000-0000000000a2"
	cyd = "0197b000-0000-7000-8000-0000000000a3" // never registered

	acctA = "0197b000-0000-7000-8000-000000000101"
	acctB = "0197b000-0000-7000-8000-000000000102"
	acctC = "0197b000-0000-7000-8000-000000000103"
	acctD = "0197b000-0000-7000-8000-000000000104"
	acctE = "0197b000-0000-7000-8000-000000000105"

	t1 = "0197b000-0000-7000-8000-000000000201"
	t2 = "0197b000-0000-7000-8000-000000000202"
	t3 = "0197b000-0000-7000-8000-000000000203"
	tX = "0197b000-0000-7000-8000-000000000204" // between accounts the read model never sees

	basic = "0197b000-0000-7000-8000-000000000301"
	pro   = "0197b000-0000-7000-8000-000000000302"

	welcome = "0197b000-0000-7000-8000-000000000401"
	sms     = "0197b000-0000-7000-8000-000000000402"
	old     = "0197b000-0000-7000-8000-000000000403"

	team  = "0197b000-0000-7000-8000-000000000501"
	quiet = "0197b000-0000-7000-8000-000000000502"

	missing = "0197b000-0000-7000-8000-0000000000ff"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is minute m after t0.
func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

// history builds the events of one aggregate: versions 1, 2, … at the
// given minutes.
type history struct {
	id     string
	next   int64
	events []projections.Event
}

func aggregate(id string) *history { return &history{id: id, next: 1} }

// from continues a history whose versions before v were applied earlier.
func (h *history) from(v int64) *history {
	h.next = v
	return h
}

func (h *history) then(minute int, e aggregates.Event) *history {
	h.events = append(h.events, event(h.id, h.next, minute, e))
	h.next++
	return h
}

// event is version of aggregate id, at minute.
func event(id string, version int64, minute int, e aggregates.Event) projections.Event {
	return projections.Event{AggregateID: id, Version: version, Time: at(minute), Event: e}
}

// interleave takes events from the histories round-robin, so a batch mixes
// aggregates as a Kafka batch does while keeping each one's order.
func interleave(hs ...*history) []projections.Event {
	var out []projections.Event
	for i := 0; ; i++ {
		n := len(out)
		for _, h := range hs {
			if i < len(h.events) {
				out = append(out, h.events[i])
			}
		}
		if len(out) == n {
			return out
		}
	}
}

// model is a fresh database migrated for the account projection.
type model struct {
	t     *testing.T
	pool  *pgxpool.Pool
	store *account.Store
}

func newModel(t *testing.T, batches ...[]projections.Event) *model {
	t.Helper()
	pool := testkit.PostgresPool(t)
	if err := postgres.Migrate(t.Context(), pool, account.Projection().AllMigrations()); err != nil {
		t.Fatal(err)
	}
	m := &model{t: t, pool: pool, store: account.NewStore(pool)}
	m.apply(batches...)
	return m
}

// apply applies each batch in its own transaction, in order, through
// Apply, with Last marked as the projector marks it.
func (m *model) apply(batches ...[]projections.Event) {
	m.t.Helper()
	ctx := m.t.Context()
	for _, batch := range batches {
		err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
			b := &projections.Batch{}
			ptrs := make([]*projections.Event, len(batch))
			for i := range batch {
				ptrs[i] = &batch[i]
			}
			projections.MarkLast(ptrs, nil)
			for _, e := range ptrs {
				if err := account.Apply(b, e); err != nil {
					return err
				}
			}
			return b.Send(ctx, tx)
		})
		if err != nil {
			m.t.Fatal(err)
		}
	}
}

func (m *model) count(sql string, args ...any) int {
	m.t.Helper()
	var n int
	if err := m.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		m.t.Fatal(err)
	}
	return n
}

func idsOf[T any](items []T, id func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

func str(s string) *string { return &s }

// deref renders a nullable string for messages.
func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// utc rewrites every RFC 3339 time in decoded JSON to UTC.
func utc(x any) any {
	switch x := x.(type) {
	case map[string]any:
		for k, v := range x {
			x[k] = utc(v)
		}
	case []any:
		for i, v := range x {
			x[i] = utc(v)
		}
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t.UTC().Format(time.RFC3339Nano)
		}
	}
	return x
}
