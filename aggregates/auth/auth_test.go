package auth_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/auth"
)

// spec is one given/when/then case: given the aggregate's past events (and
// the histories of related aggregates), when this command, then these events
// or a rejection with this code.
type spec struct {
	name    string
	given   []aggregates.Event
	related map[aggregates.Ref][]aggregates.Event
	when    aggregates.Command
	then    []aggregates.Event
	code    string
}

// definition returns the registered definition of an auth aggregate type.
func definition(t testing.TB, typ string) *aggregates.Definition {
	t.Helper()
	for _, d := range auth.Definitions() {
		if d.Type == typ {
			return d
		}
	}
	t.Fatalf("auth has no aggregate %q", typ)
	return nil
}

// contextFor builds what the runtime hands Decide: the snapshots of exactly
// the aggregates def.Needs declares, folded from their histories (version 0
// and the zero state when there is none).
func contextFor(t testing.TB, def *aggregates.Definition, cmd aggregates.Command, histories map[aggregates.Ref][]aggregates.Event) aggregates.Context {
	t.Helper()
	ctx := aggregates.Context{Now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), AggregateID: "aggregate-under-test"}
	for _, ref := range def.Needs(cmd) {
		if ctx.Related == nil {
			ctx.Related = map[aggregates.Ref]aggregates.Snapshot{}
		}
		h := histories[ref]
		ctx.Related[ref] = aggregates.Snapshot{State: definition(t, ref.Type).Fold(h...), Version: int64(len(h))}
	}
	return ctx
}

// run checks every spec against def through its registry form (Fold, then
// Decide), and checks that the events it decides evolve the state.
func run(t *testing.T, def *aggregates.Definition, specs []spec) {
	t.Helper()
	for _, s := range specs {
		t.Run(s.name, func(t *testing.T) {
			state := def.Fold(s.given...)
			got, err := def.Decide(state, s.when, contextFor(t, def, s.when, s.related))
			if s.code != "" {
				r, ok := aggregates.AsRejection(err)
				if !ok || r.Code != s.code {
					t.Fatalf("Decide(%T) = %v, %v; want rejection %q", s.when, got, err, s.code)
				}
				if got != nil {
					t.Errorf("a rejection came with events: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide(%T) error: %v", s.when, err)
			}
			if !reflect.DeepEqual(got, s.then) {
				t.Fatalf("Decide(%T)\n got %#v\nwant %#v", s.when, got, s.then)
			}
			for _, e := range got {
				state = def.Evolve(state, e)
			}
		})
	}
}

// fold is one Evolve case: given these events, then this state.
type fold struct {
	name  string
	given []aggregates.Event
	want  any
}

// runFolds checks that def.Fold of each case's events yields its state.
func runFolds(t *testing.T, def *aggregates.Definition, cases []fold) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := def.Fold(c.given...); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Fold\n got %#v\nwant %#v", got, c.want)
			}
		})
	}
}

// keys is one Keys case: given these events, then the state holds these
// unique keys.
type keys struct {
	name  string
	given []aggregates.Event
	want  []aggregates.UniqueKey
}

func runKeys(t *testing.T, def *aggregates.Definition, cases []keys) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := def.Keys(def.Fold(c.given...)); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Keys = %#v, want %#v", got, c.want)
			}
		})
	}
}

func BenchmarkDecide(b *testing.B) {
	roles := definition(b, "role")
	permission := aggregates.Ref{Type: "permission", ID: "0197a000-0000-7000-8000-000000000001"}
	cases := []struct {
		name    string
		given   []aggregates.Event
		related map[aggregates.Ref][]aggregates.Event
		when    aggregates.Command
	}{
		{name: "CreateRole", when: auth.CreateRole{Name: "Support agents", Description: "first line"}},
		{
			name:    "GrantPermission",
			given:   []aggregates.Event{auth.RoleCreated{Name: "Support"}, auth.PermissionGranted{PermissionID: "other", PermissionName: "users:read"}},
			related: map[aggregates.Ref][]aggregates.Event{permission: {auth.PermissionCreated{Name: "roles:read"}}},
			when:    auth.GrantPermission{PermissionID: permission.ID},
		},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			state := roles.Fold(c.given...)
			ctx := contextFor(b, roles, c.when, c.related)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := roles.Decide(state, c.when, ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
