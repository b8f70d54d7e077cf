package auth

import (
	"regexp"
	"strings"

	"github.com/strata-cqrs/strata/aggregates"
)

// roleName allows letters, digits, spaces and -_. and must start with a letter or digit.
var roleName = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,63}$`)

// CreateRole creates a role; its name is unique case-insensitively.
type CreateRole struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// RenameRole gives a role a new unique name.
type RenameRole struct {
	Name string `json:"name"`
}

// GrantPermission adds an existing permission to a role.
type GrantPermission struct {
	PermissionID string `json:"permission_id"`
}

// RevokePermission removes a granted permission from a role.
type RevokePermission struct {
	PermissionID string `json:"permission_id"`
}

// DeleteRole deletes a role; a deleted role accepts nothing.
type DeleteRole struct{}

func (CreateRole) CommandType() string       { return "CreateRole" }
func (RenameRole) CommandType() string       { return "RenameRole" }
func (GrantPermission) CommandType() string  { return "GrantPermission" }
func (RevokePermission) CommandType() string { return "RevokePermission" }
func (DeleteRole) CommandType() string       { return "DeleteRole" }

// RoleCreated records a new role.
type RoleCreated struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// RoleRenamed records a role's new name.
type RoleRenamed struct {
	Name         string `json:"name"`
	PreviousName string `json:"previous_name"`
}

// PermissionGranted records a permission added to a role. The name is the
// permission's name at the time of the grant, for consumers' convenience.
type PermissionGranted struct {
	PermissionID   string `json:"permission_id"`
	PermissionName string `json:"permission_name"`
}

// PermissionRevoked records a permission removed from a role.
type PermissionRevoked struct {
	PermissionID string `json:"permission_id"`
}

// RoleDeleted records that a role no longer exists.
type RoleDeleted struct {
	Name string `json:"name"`
}

func (RoleCreated) EventType() string       { return "RoleCreated" }
func (RoleRenamed) EventType() string       { return "RoleRenamed" }
func (PermissionGranted) EventType() string { return "PermissionGranted" }
func (PermissionRevoked) EventType() string { return "PermissionRevoked" }
func (RoleDeleted) EventType() string       { return "RoleDeleted" }

// Role is the state of one role.
type Role struct {
	Name        string
	Description string
	Permissions map[string]bool // permission id → granted
	Deleted     bool
}

// RoleDefinition registers the Role aggregate.
func RoleDefinition() *aggregates.Definition {
	return aggregates.Define(aggregates.Spec[Role]{
		Service: Service,
		Type:    "role",
		Commands: []aggregates.Command{
			CreateRole{}, RenameRole{}, GrantPermission{}, RevokePermission{}, DeleteRole{},
		},
		Events: []aggregates.Event{
			RoleCreated{}, RoleRenamed{}, PermissionGranted{}, PermissionRevoked{}, RoleDeleted{},
		},
		Creates: func(c aggregates.Command) bool { _, ok := c.(CreateRole); return ok },
		Needs: func(c aggregates.Command) []aggregates.Ref {
			if g, ok := c.(GrantPermission); ok {
				return []aggregates.Ref{{Type: "permission", ID: g.PermissionID}}
			}
			return nil
		},
		Decide: DecideRole,
		Evolve: EvolveRole,
		Keys: func(r Role) []aggregates.UniqueKey {
			if r.Name == "" || r.Deleted {
				return nil
			}
			return []aggregates.UniqueKey{{Scope: "role_name", Key: strings.ToLower(r.Name), Code: CodeRoleExists}}
		},
	})
}

// DecideRole decides a command against a role's state.
func DecideRole(r Role, c aggregates.Command, ctx aggregates.Context) ([]aggregates.Event, error) {
	if r.Deleted {
		return nil, aggregates.Reject(aggregates.CodeDeleted, "role %q is deleted", r.Name)
	}
	switch c := c.(type) {
	case CreateRole:
		name := strings.TrimSpace(c.Name)
		if err := checkRoleName(name); err != nil {
			return nil, err
		}
		if err := checkDescription(c.Description); err != nil {
			return nil, err
		}
		return []aggregates.Event{RoleCreated{Name: name, Description: strings.TrimSpace(c.Description)}}, nil
	case RenameRole:
		name := strings.TrimSpace(c.Name)
		if err := checkRoleName(name); err != nil {
			return nil, err
		}
		if name == r.Name {
			return nil, aggregates.Reject(aggregates.CodeInvalid, "role is already named %q", name)
		}
		return []aggregates.Event{RoleRenamed{Name: name, PreviousName: r.Name}}, nil
	case GrantPermission:
		p, ok := aggregates.Related[Permission](ctx, "permission", c.PermissionID)
		if !ok || p.Deleted {
			return nil, aggregates.Reject(CodePermissionNotFound, "permission %s does not exist", c.PermissionID)
		}
		if r.Permissions[c.PermissionID] {
			return nil, aggregates.Reject(CodeAlreadyGranted, "role %q already has %q", r.Name, p.Name)
		}
		return []aggregates.Event{PermissionGranted{PermissionID: c.PermissionID, PermissionName: p.Name}}, nil
	case RevokePermission:
		if !r.Permissions[c.PermissionID] {
			return nil, aggregates.Reject(CodeNotGranted, "role %q does not hold permission %s", r.Name, c.PermissionID)
		}
		//lint:ignore S1016 a command and its event are distinct contracts that happen to share a shape
		return []aggregates.Event{PermissionRevoked{PermissionID: c.PermissionID}}, nil
	case DeleteRole:
		return []aggregates.Event{RoleDeleted{Name: r.Name}}, nil
	}
	return nil, aggregates.Reject(aggregates.CodeInvalid, "role does not handle %s", c.CommandType())
}

// EvolveRole applies one event to a role's state. It never mutates the map
// of the state it was given.
func EvolveRole(r Role, e aggregates.Event) Role {
	switch e := e.(type) {
	case RoleCreated:
		r.Name, r.Description = e.Name, e.Description
	case RoleRenamed:
		r.Name = e.Name
	case PermissionGranted:
		r.Permissions = withPermission(r.Permissions, e.PermissionID, true)
	case PermissionRevoked:
		r.Permissions = withPermission(r.Permissions, e.PermissionID, false)
	case RoleDeleted:
		r.Deleted = true
	}
	return r
}

func withPermission(m map[string]bool, id string, granted bool) map[string]bool {
	out := make(map[string]bool, len(m)+1)
	for k := range m {
		out[k] = true
	}
	if granted {
		out[id] = true
	} else {
		delete(out, id)
	}
	return out
}

func checkRoleName(name string) error {
	if !roleName.MatchString(name) {
		return aggregates.Reject(CodeInvalidName, "role name %q must be 1-64 letters, digits, spaces or ._-", name)
	}
	return nil
}
