package auth

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/projections"
)

// ErrNotFound is returned by Get methods when no row has the id.
var ErrNotFound = projections.ErrNotFound

// Permission is the read model of a permission.
type Permission struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// GrantedPermission is a permission as listed on a role.
type GrantedPermission struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Role is the read model of a role with its granted permissions.
type Role struct {
	ID          string              `json:"id"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Permissions []GrantedPermission `json:"permissions"`
	Version     int64               `json:"version"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
}

// ListParams pages a list (projections.ListParams).
type ListParams = projections.ListParams

// Store answers queries on the auth read models.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const permissionCols = `id::text, name, description, version, created_at, updated_at`

// Permission returns one permission or ErrNotFound.
func (s *Store) Permission(ctx context.Context, id string) (*Permission, error) {
	return projections.One[Permission](ctx, s.pool, `SELECT `+permissionCols+` FROM auth_read.permissions WHERE id=$1`, id)
}

// Permissions lists permissions in id (creation) order. Permission names
// are lower-case by grammar, so comparing with the lower-cased filter is the
// case-insensitive match ListParams promises, and keeps the name index.
func (s *Store) Permissions(ctx context.Context, p ListParams) ([]Permission, error) {
	return projections.Many[Permission](ctx, s.pool, `SELECT `+permissionCols+` FROM auth_read.permissions
		WHERE ($1 = '' OR id > $1::uuid) AND ($2 = '' OR name = lower($2)) ORDER BY id LIMIT $3`,
		p.After, p.Name, p.Limit)
}

// roleCols lists a role's granted permissions with their current names;
// a deleted permission's grant is not listed.
const roleCols = `r.id::text, r.name, r.description,
	COALESCE((SELECT json_agg(json_build_object('id', p.id, 'name', p.name) ORDER BY p.name)
		FROM auth_read.role_permissions rp JOIN auth_read.permissions p ON p.id = rp.permission_id
		WHERE rp.role_id = r.id), '[]'::json),
	r.version, r.created_at, r.updated_at`

// Role returns one role with its permissions, or ErrNotFound.
func (s *Store) Role(ctx context.Context, id string) (*Role, error) {
	return projections.One[Role](ctx, s.pool, `SELECT `+roleCols+` FROM auth_read.roles r WHERE r.id=$1`, id)
}

// Roles lists roles with their permissions in id (creation) order.
func (s *Store) Roles(ctx context.Context, p ListParams) ([]Role, error) {
	return projections.Many[Role](ctx, s.pool, `SELECT `+roleCols+` FROM auth_read.roles r
		WHERE ($1 = '' OR r.id > $1::uuid) AND ($2 = '' OR lower(r.name) = lower($2)) ORDER BY r.id LIMIT $3`,
		p.After, p.Name, p.Limit)
}

// UserRole is a role as listed on a user.
type UserRole struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// User is the read model of a user. It never holds a password.
type User struct {
	ID        string     `json:"id"`
	Email     string     `json:"email"`
	Name      string     `json:"name"`
	Status    string     `json:"status"`
	Roles     []UserRole `json:"roles"`
	Version   int64      `json:"version"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// userCols lists a user's roles with their current names; an assignment
// of a deleted role is not listed.
const userCols = `u.id::text, u.email, u.name, u.status,
	COALESCE((SELECT json_agg(json_build_object('id', r.id, 'name', r.name) ORDER BY r.name)
		FROM auth_read.user_roles ur JOIN auth_read.roles r ON r.id = ur.role_id
		WHERE ur.user_id = u.id), '[]'::json),
	u.version, u.created_at, u.updated_at`

// User returns one user with their roles, or ErrNotFound.
func (s *Store) User(ctx context.Context, id string) (*User, error) {
	return projections.One[User](ctx, s.pool, `SELECT `+userCols+` FROM auth_read.users u WHERE u.id=$1`, id)
}

// Users lists users in id (creation) order; Name filters by email here.
func (s *Store) Users(ctx context.Context, p ListParams) ([]User, error) {
	return projections.Many[User](ctx, s.pool, `SELECT `+userCols+` FROM auth_read.users u
		WHERE ($1 = '' OR u.id > $1::uuid) AND ($2 = '' OR lower(u.email) = lower($2)) ORDER BY u.id LIMIT $3`,
		p.After, p.Name, p.Limit)
}

// Access is what the gateway needs to authorise a user's request.
type Access struct {
	Active      bool
	Permissions map[string]bool
}

// Access returns a user's status and effective permissions; a user the
// read model does not know is inactive with none.
func (s *Store) Access(ctx context.Context, userID string) (Access, error) {
	var a Access
	var perms []string
	err := s.pool.QueryRow(ctx, `SELECT u.status = 'active',
		COALESCE((SELECT array_agg(DISTINCT up.permission_name) FROM auth_read.user_permissions up
			WHERE up.user_id = u.id), '{}')
		FROM auth_read.users u WHERE u.id = $1`, userID).Scan(&a.Active, &perms)
	if errors.Is(err, pgx.ErrNoRows) {
		return Access{}, nil
	}
	a.Permissions = make(map[string]bool, len(perms))
	for _, p := range perms {
		a.Permissions[p] = true
	}
	return a, err
}
