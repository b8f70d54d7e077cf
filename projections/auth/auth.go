// Package auth holds the auth service's read models (schema auth_read):
// permissions and roles with their granted permissions. It applies auth
// events and answers the gateway's queries.
package auth

import (
	domain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/projections"
)

// Schema is the read schema of the auth service.
const Schema = "auth_read"

// Projection returns the auth read-model projection.
func Projection() *projections.Projection {
	return &projections.Projection{
		Name:   "auth",
		Schema: Schema,
		Topics: []string{"auth.permission", "auth.role", "auth.user"},
		Migrations: []postgres.Migration{{Component: Schema, Version: 1, SQL: schemaV1}, {Component: Schema, Version: 2, SQL: schemaV2},
			{Component: Schema, Version: 3, SQL: schemaV3}},
		Apply:         Apply,
		MarksCommands: true,
		Service:       domain.Service,
		// Every statement writes rows of the event's own aggregate: names
		// of roles and permissions are joined when read, never copied.
		Partitioned: true,
	}
}

const schemaV1 = `
CREATE TABLE auth_read.permissions (
	id          uuid PRIMARY KEY,
	name        text NOT NULL,
	description text NOT NULL,
	version     bigint NOT NULL,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);
CREATE INDEX permissions_name ON auth_read.permissions (name);
CREATE TABLE auth_read.roles (
	id          uuid PRIMARY KEY,
	name        text NOT NULL,
	description text NOT NULL,
	version     bigint NOT NULL,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);
CREATE INDEX roles_name ON auth_read.roles (lower(name));
CREATE TABLE auth_read.role_permissions (
	role_id         uuid NOT NULL REFERENCES auth_read.roles (id) ON DELETE CASCADE,
	permission_id   uuid NOT NULL,
	permission_name text NOT NULL,
	granted_at      timestamptz NOT NULL,
	PRIMARY KEY (role_id, permission_id)
);
CREATE INDEX role_permissions_permission ON auth_read.role_permissions (permission_id);
`

// schemaV2 adds users, their roles, and user_permissions: the effective
// permissions the gateway authorises with. It is a view, so it never
// disagrees with the tables it is made of, and it joins permissions, so a
// grant applied after its permission's deletion (the two arrive on
// different topics, in no mutual order) grants nothing.
const schemaV2 = `
CREATE TABLE auth_read.users (
	id         uuid PRIMARY KEY,
	email      text NOT NULL,
	name       text NOT NULL,
	status     text NOT NULL CHECK (status IN ('active','disabled')),
	version    bigint NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email ON auth_read.users (lower(email));
CREATE TABLE auth_read.user_roles (
	user_id     uuid NOT NULL REFERENCES auth_read.users (id) ON DELETE CASCADE,
	role_id     uuid NOT NULL,
	role_name   text NOT NULL,
	assigned_at timestamptz NOT NULL,
	PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role ON auth_read.user_roles (role_id);
CREATE VIEW auth_read.user_permissions AS
	SELECT DISTINCT ur.user_id, p.id AS permission_id, p.name AS permission_name
	FROM auth_read.user_roles ur
	JOIN auth_read.role_permissions rp ON rp.role_id = ur.role_id
	JOIN auth_read.permissions p ON p.id = rp.permission_id;
`

// schemaV3 drops write costs that bought nothing:
//   - the foreign keys of grants and assignments to their role and user.
//     The projector alone writes these tables, one aggregate's rows
//     together, so the keys guarded nothing, and their checks (a lookup and
//     a row lock on the parent for every grant) cost about 4µs of the 11µs
//     a grant insert took. A role's deletion deletes its grants itself;
//   - the index of grants by permission, which no query uses (reads go
//     from a role or a user to its permissions).
//
// Without the cascade, the effective permissions no longer rely on a
// deleted role's grants being gone: the view joins roles, so grants left
// behind (a role deleted by a build from before this migration, or by
// hand) grant nothing; and the migration removes any already orphaned.
const schemaV3 = `
ALTER TABLE auth_read.role_permissions DROP CONSTRAINT role_permissions_role_id_fkey;
ALTER TABLE auth_read.user_roles DROP CONSTRAINT user_roles_user_id_fkey;
DROP INDEX auth_read.role_permissions_permission;
CREATE OR REPLACE VIEW auth_read.user_permissions AS
	SELECT DISTINCT ur.user_id, p.id AS permission_id, p.name AS permission_name
	FROM auth_read.user_roles ur
	JOIN auth_read.roles r ON r.id = ur.role_id
	JOIN auth_read.role_permissions rp ON rp.role_id = ur.role_id
	JOIN auth_read.permissions p ON p.id = rp.permission_id;
DELETE FROM auth_read.role_permissions rp
	WHERE NOT EXISTS (SELECT 1 FROM auth_read.roles r WHERE r.id = rp.role_id);
`

// Apply queues the statements of one auth event on the projector's batch.
func Apply(b *projections.Batch, e *projections.Event) error {
	id, v, at := e.AggregateID, e.Version, e.Time
	switch ev := e.Event.(type) {
	case domain.PermissionCreated:
		b.Queue(`INSERT INTO auth_read.permissions (id, name, description, version, created_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,$5)`, id, ev.Name, ev.Description, v, at)
	case domain.PermissionDeleted:
		// Grants of it stay in role_permissions (other roles' rows): every
		// read joins permissions, so a deleted permission grants nothing.
		b.Queue(`DELETE FROM auth_read.permissions WHERE id=$1`, id)
	case domain.RoleCreated:
		b.Queue(`INSERT INTO auth_read.roles (id, name, description, version, created_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,$5)`, id, ev.Name, ev.Description, v, at)
	case domain.RoleRenamed:
		touch(b, e, "roles", `name=$4`, ev.Name) // users' role names are joined when read
	case domain.PermissionGranted:
		touch(b, e, "roles", ``)
		b.Queue(`INSERT INTO auth_read.role_permissions (role_id, permission_id, permission_name, granted_at)
			VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING`, id, ev.PermissionID, ev.PermissionName, at)
	case domain.PermissionRevoked:
		touch(b, e, "roles", ``)
		b.Queue(`DELETE FROM auth_read.role_permissions WHERE role_id=$1 AND permission_id=$2`, id, ev.PermissionID)
	case domain.RoleDeleted:
		// Its grants go with it; its assignments stay in user_roles (users'
		// rows), and every read joins roles.
		b.Queue(`DELETE FROM auth_read.role_permissions WHERE role_id=$1`, id)
		b.Queue(`DELETE FROM auth_read.roles WHERE id=$1`, id)
	case domain.UserRegistered:
		b.Queue(`INSERT INTO auth_read.users (id, email, name, status, version, created_at, updated_at)
			VALUES ($1,$2,$3,'active',$4,$5,$5)`, id, ev.Email, ev.Name, v, at)
	case domain.PasswordChanged:
		touch(b, e, "users", ``)
	case domain.RoleAssigned:
		touch(b, e, "users", ``)
		b.Queue(`INSERT INTO auth_read.user_roles (user_id, role_id, role_name, assigned_at)
			VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING`, id, ev.RoleID, ev.RoleName, at)
	case domain.RoleRevoked:
		touch(b, e, "users", ``)
		b.Queue(`DELETE FROM auth_read.user_roles WHERE user_id=$1 AND role_id=$2`, id, ev.RoleID)
	case domain.UserDisabled:
		touch(b, e, "users", `status='disabled'`)
	case domain.UserEnabled:
		touch(b, e, "users", `status='active'`)
	}
	return nil
}

// touch sets the version and update time of the event's row of table (see
// projections.Touch).
func touch(b *projections.Batch, e *projections.Event, table, set string, args ...any) {
	projections.Touch(b, e, "auth_read."+table, set, args...)
}
