package auth_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/aggregates"
	domain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
	"github.com/strata-cqrs/strata/projections"
	"github.com/strata-cqrs/strata/projections/auth"
)

// Ids sort in creation order, as UUIDv7s do.
const (
	read    = "0197a000-0000-7000-8000-000000000001" // roles:read
	write   = "0197a000-0000-7000-8000-000000000002" // roles:write
	users   = "0197a000-0000-7000-8000-000000000003" // users:read
	admins  = "0197a000-0000-7000-8000-000000000011"
	readers = "0197a000-0000-7000-8000-000000000012"
	temps   = "0197a000-0000-7000-8000-000000000013"
	ada     = "0197a000-0000-7000-8000-000000000021"
	missing = "0197a000-0000-7000-8000-0000000000ff"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is minute m after t0.
func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

// history builds the events of one aggregate: versions 1, 2, … at the
// given minutes.
type history struct {
	id     string
	events []projections.Event
}

func aggregate(id string) *history { return &history{id: id} }

func (h *history) then(minute int, e aggregates.Event) *history {
	h.events = append(h.events, event(h.id, int64(len(h.events))+1, minute, e))
	return h
}

// readModel migrates a fresh database for the auth projection and applies
// each batch of events in its own transaction, in order, through Apply.
func readModel(t *testing.T, batches ...[]projections.Event) (*auth.Store, *pgxpool.Pool) {
	t.Helper()
	pool := testkit.PostgresPool(t)
	ctx := t.Context()
	if err := postgres.Migrate(ctx, pool, auth.Projection().AllMigrations()); err != nil {
		t.Fatal(err)
	}
	for _, batch := range batches {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			b := &projections.Batch{}
			ptrs := make([]*projections.Event, len(batch))
			for i := range batch {
				ptrs[i] = &batch[i]
			}
			projections.MarkLast(ptrs, nil)
			for i := range batch {
				if err := auth.Apply(b, &batch[i]); err != nil {
					return err
				}
			}
			return b.Send(ctx, tx)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return auth.NewStore(pool), pool
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

func permissionsHistory() []*history {
	return []*history{
		aggregate(read).then(1, domain.PermissionCreated{Name: "roles:read", Description: "see roles"}),
		aggregate(write).then(2, domain.PermissionCreated{Name: "roles:write", Description: "change roles"}),
		aggregate(users).then(3, domain.PermissionCreated{Name: "users:read", Description: "see users"}),
	}
}

func TestPermissions(t *testing.T) {
	ps := permissionsHistory()
	store, _ := readModel(t, interleave(ps...), []projections.Event{event(users, 2, 9, domain.PermissionDeleted{Name: "users:read"})})
	ctx := t.Context()

	t.Run("GetsPermission", func(t *testing.T) {
		got, err := store.Permission(ctx, read)
		want := &auth.Permission{ID: read, Name: "roles:read", Description: "see roles", Version: 1, CreatedAt: at(1), UpdatedAt: at(1)}
		if err != nil || !samePermission(*got, *want) {
			t.Fatalf("Permission = %+v, %v; want %+v", got, err, want)
		}
	})
	t.Run("MissingIsNotFound", func(t *testing.T) {
		if _, err := store.Permission(ctx, missing); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("Permission(missing) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("DeletedIsNotFound", func(t *testing.T) {
		if _, err := store.Permission(ctx, users); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("Permission(deleted) error = %v, want ErrNotFound", err)
		}
	})
	for _, c := range []struct {
		name   string
		params auth.ListParams
		want   []string
	}{
		{"ListsInIDOrderWithoutDeleted", auth.ListParams{Limit: 10}, []string{read, write}},
		{"PagesByLimit", auth.ListParams{Limit: 1}, []string{read}},
		{"PagesAfterCursor", auth.ListParams{Limit: 10, After: read}, []string{write}},
		{"PagesPastTheEnd", auth.ListParams{Limit: 10, After: write}, nil},
		{"FiltersByName", auth.ListParams{Limit: 10, Name: "roles:write"}, []string{write}},
		{"FiltersByNameIgnoringCase", auth.ListParams{Limit: 10, Name: "Roles:Write"}, []string{write}},
		{"FiltersByNameAndCursor", auth.ListParams{Limit: 10, Name: "roles:read", After: read}, nil},
		{"FiltersOutDeleted", auth.ListParams{Limit: 10, Name: "users:read"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := store.Permissions(ctx, c.params)
			if err != nil {
				t.Fatal(err)
			}
			if ids := idsOf(got, func(p auth.Permission) string { return p.ID }); !reflect.DeepEqual(ids, c.want) {
				t.Fatalf("Permissions(%+v) = %v, want %v", c.params, ids, c.want)
			}
		})
	}
}

func TestRoles(t *testing.T) {
	ps := permissionsHistory()
	roles := []*history{
		aggregate(admins).
			then(10, domain.RoleCreated{Name: "Admins", Description: "everything"}).
			then(11, domain.PermissionGranted{PermissionID: write, PermissionName: "roles:write"}).
			then(12, domain.PermissionGranted{PermissionID: read, PermissionName: "roles:read"}).
			then(13, domain.PermissionGranted{PermissionID: users, PermissionName: "users:read"}),
		aggregate(readers).
			then(10, domain.RoleCreated{Name: "Readers", Description: "look only"}).
			then(11, domain.PermissionGranted{PermissionID: read, PermissionName: "roles:read"}).
			then(12, domain.PermissionGranted{PermissionID: write, PermissionName: "roles:write"}),
		aggregate(temps).
			then(10, domain.RoleCreated{Name: "Temps"}).
			then(11, domain.PermissionGranted{PermissionID: read, PermissionName: "roles:read"}),
		aggregate(ada).
			then(10, domain.UserRegistered{Email: "ada@example.com", Name: "Ada"}).
			then(14, domain.RoleAssigned{RoleID: admins, RoleName: "Admins"}).
			then(15, domain.RoleAssigned{RoleID: temps, RoleName: "Temps"}),
	}
	later := []projections.Event{
		event(admins, 5, 20, domain.RoleRenamed{Name: "Administrators", PreviousName: "Admins"}),
		event(readers, 4, 21, domain.PermissionRevoked{PermissionID: read}),
		event(temps, 3, 22, domain.RoleDeleted{Name: "Temps"}),
		event(users, 2, 23, domain.PermissionDeleted{Name: "users:read"}),
	}
	store, pool := readModel(t, interleave(append(ps, roles...)...), later)
	ctx := t.Context()

	t.Run("ListsPermissionsSortedByName", func(t *testing.T) {
		got := role(t, store, admins)
		if want := granted(read, "roles:read", write, "roles:write"); !reflect.DeepEqual(got.Permissions, want) {
			t.Fatalf("permissions = %v, want %v", got.Permissions, want)
		}
	})
	t.Run("RenameBumpsVersion", func(t *testing.T) {
		got := role(t, store, admins)
		if got.Name != "Administrators" || got.Description != "everything" || got.Version != 5 ||
			!got.CreatedAt.Equal(at(10)) || !got.UpdatedAt.Equal(at(20)) {
			t.Fatalf("role = %+v, want Administrators at version 5, created at %v, updated at %v", got, at(10), at(20))
		}
	})
	t.Run("PermissionDeletedLeavesRoleVersion", func(t *testing.T) {
		if got := role(t, store, admins); got.Version != 5 {
			t.Fatalf("version = %d, want 5: a permission's deletion is not an event of the role", got.Version)
		}
	})
	t.Run("PermissionDeletedGrantsNothing", func(t *testing.T) {
		// Its grant rows belong to the roles and stay; every read joins
		// the permissions, so neither a role nor a user shows it.
		for _, p := range role(t, store, admins).Permissions {
			if p.ID == users {
				t.Fatalf("the role still lists the deleted permission %v", p)
			}
		}
		if n := count(t, pool, `SELECT count(*) FROM auth_read.user_permissions WHERE permission_id=$1`, users); n != 0 {
			t.Fatalf("%d users still hold the deleted permission", n)
		}
	})
	t.Run("UsersSeeCurrentRolesAndGrants", func(t *testing.T) {
		// The rename, the role's deletion and the permission's deletion
		// touched none of Ada's rows: reads join the current roles and
		// permissions.
		u, err := store.User(ctx, ada)
		if err != nil {
			t.Fatal(err)
		}
		if want := []auth.UserRole{{ID: admins, Name: "Administrators"}}; !reflect.DeepEqual(u.Roles, want) {
			t.Fatalf("Ada's roles = %+v, want %+v", u.Roles, want)
		}
		a, err := store.Access(ctx, ada)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]bool{"roles:read": true, "roles:write": true}; !a.Active || !reflect.DeepEqual(a.Permissions, want) {
			t.Fatalf("Ada's access = %+v, want active with %v", a, want)
		}
	})
	t.Run("RevokeRemovesGrantAndBumpsVersion", func(t *testing.T) {
		got := role(t, store, readers)
		if want := granted(write, "roles:write"); !reflect.DeepEqual(got.Permissions, want) || got.Version != 4 ||
			!got.UpdatedAt.Equal(at(21)) {
			t.Fatalf("role = %+v, want only %v at version 4, updated at %v", got, want, at(21))
		}
	})
	t.Run("GrantsOfAMissingRoleGrantNothing", func(t *testing.T) {
		// A role row gone while its grants stay (deleted by a build from
		// before the foreign keys were dropped, or by hand): the
		// effective permissions join roles, so the grants count for
		// nothing. Readers grants roles:write; Ada does not hold Readers,
		// so give her the role's grants through a dangling assignment.
		if _, err := pool.Exec(ctx, `INSERT INTO auth_read.user_roles (user_id, role_id, role_name, assigned_at)
			VALUES ($1, $2, 'Readers', now())`, ada, readers); err != nil {
			t.Fatal(err)
		}
		defer pool.Exec(ctx, `DELETE FROM auth_read.user_roles WHERE user_id=$1 AND role_id=$2`, ada, readers) //nolint:errcheck
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		if _, err := tx.Exec(ctx, `DELETE FROM auth_read.roles WHERE id=$1`, admins); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM auth_read.user_permissions WHERE user_id=$1 AND permission_name='roles:read'`, ada).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("Ada holds roles:read through the grants of a role that is gone (%d rows)", n)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM auth_read.user_permissions WHERE user_id=$1 AND permission_name='roles:write'`, ada).Scan(&n); err != nil || n != 1 {
			t.Fatalf("Ada's roles:write through Readers: %d rows, %v; want 1", n, err)
		}
	})
	t.Run("RoleDeletedRemovesRoleAndGrants", func(t *testing.T) {
		if _, err := store.Role(ctx, temps); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("Role(deleted) error = %v, want ErrNotFound", err)
		}
		if n := count(t, pool, `SELECT count(*) FROM auth_read.role_permissions WHERE role_id=$1`, temps); n != 0 {
			t.Errorf("%d grants of the deleted role remain", n)
		}
	})
	t.Run("MissingIsNotFound", func(t *testing.T) {
		if _, err := store.Role(ctx, missing); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("Role(missing) error = %v, want ErrNotFound", err)
		}
	})
	for _, c := range []struct {
		name   string
		params auth.ListParams
		want   []string
	}{
		{"ListsInIDOrderWithoutDeleted", auth.ListParams{Limit: 10}, []string{admins, readers}},
		{"PagesByLimit", auth.ListParams{Limit: 1}, []string{admins}},
		{"PagesAfterCursor", auth.ListParams{Limit: 10, After: admins}, []string{readers}},
		{"FiltersByNameIgnoringCase", auth.ListParams{Limit: 10, Name: "rEADERS"}, []string{readers}},
		{"FiltersByCurrentName", auth.ListParams{Limit: 10, Name: "administrators"}, []string{admins}},
		{"ForgetsOldName", auth.ListParams{Limit: 10, Name: "Admins"}, nil},
		{"FiltersOutDeleted", auth.ListParams{Limit: 10, Name: "Temps"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := store.Roles(ctx, c.params)
			if err != nil {
				t.Fatal(err)
			}
			if ids := idsOf(got, func(r auth.Role) string { return r.ID }); !reflect.DeepEqual(ids, c.want) {
				t.Fatalf("Roles(%+v) = %v, want %v", c.params, ids, c.want)
			}
		})
	}
	t.Run("ListCarriesPermissions", func(t *testing.T) {
		got, err := store.Roles(ctx, auth.ListParams{Limit: 1})
		if err != nil || len(got) != 1 || len(got[0].Permissions) != 2 {
			t.Fatalf("Roles = %+v, %v; want the first role with its 2 permissions", got, err)
		}
	})
}

// event is version of aggregate id, at minute.
func event(id string, version int64, minute int, e aggregates.Event) projections.Event {
	return projections.Event{AggregateID: id, Version: version, Time: at(minute), Event: e}
}

func role(t *testing.T, store *auth.Store, id string) *auth.Role {
	t.Helper()
	r, err := store.Role(t.Context(), id)
	if err != nil {
		t.Fatalf("Role(%s): %v", id, err)
	}
	return r
}

// granted lists (id, name) pairs.
func granted(idName ...string) []auth.GrantedPermission {
	var out []auth.GrantedPermission
	for i := 0; i < len(idName); i += 2 {
		out = append(out, auth.GrantedPermission{ID: idName[i], Name: idName[i+1]})
	}
	return out
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
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

func samePermission(a, b auth.Permission) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Description == b.Description && a.Version == b.Version &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}
