package auth

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/strata-cqrs/strata/aggregates"
)

// permissionName is the resource:action[:scope] grammar from DOMAIN.md.
var permissionName = regexp.MustCompile(`^[a-z][a-z0-9-]*(:[a-z][a-z0-9-]*){1,2}$`)

// Length limits, in characters; the command schemas say the same.
const (
	MaxDescription    = 1000
	MaxPermissionName = 100
)

// CreatePermission creates a permission with a unique resource:action name.
type CreatePermission struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// DeletePermission deletes a permission. Roles that held it stop granting it.
type DeletePermission struct{}

func (CreatePermission) CommandType() string { return "CreatePermission" }
func (DeletePermission) CommandType() string { return "DeletePermission" }

// PermissionCreated records a new permission.
type PermissionCreated struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// PermissionDeleted records that a permission no longer exists.
type PermissionDeleted struct {
	Name string `json:"name"`
}

func (PermissionCreated) EventType() string { return "PermissionCreated" }
func (PermissionDeleted) EventType() string { return "PermissionDeleted" }

// Permission is the state of one permission.
type Permission struct {
	Name        string
	Description string
	Deleted     bool
}

// PermissionDefinition registers the Permission aggregate.
func PermissionDefinition() *aggregates.Definition {
	return aggregates.Define(aggregates.Spec[Permission]{
		Service:  Service,
		Type:     "permission",
		Commands: []aggregates.Command{CreatePermission{}, DeletePermission{}},
		Events:   []aggregates.Event{PermissionCreated{}, PermissionDeleted{}},
		Creates:  func(c aggregates.Command) bool { _, ok := c.(CreatePermission); return ok },
		Decide:   DecidePermission,
		Evolve:   EvolvePermission,
		Keys: func(p Permission) []aggregates.UniqueKey {
			if p.Name == "" || p.Deleted {
				return nil
			}
			return []aggregates.UniqueKey{{Scope: "permission_name", Key: p.Name, Code: CodePermissionExists}}
		},
	})
}

// DecidePermission decides a command against a permission's state.
func DecidePermission(p Permission, c aggregates.Command, _ aggregates.Context) ([]aggregates.Event, error) {
	if p.Deleted {
		return nil, aggregates.Reject(aggregates.CodeDeleted, "permission %q is deleted", p.Name)
	}
	switch c := c.(type) {
	case CreatePermission:
		if len(c.Name) > MaxPermissionName || !permissionName.MatchString(c.Name) {
			return nil, aggregates.Reject(CodeInvalidName, "permission name %q must look like resource:action", c.Name)
		}
		if err := checkDescription(c.Description); err != nil {
			return nil, err
		}
		return []aggregates.Event{PermissionCreated{Name: c.Name, Description: strings.TrimSpace(c.Description)}}, nil
	case DeletePermission:
		return []aggregates.Event{PermissionDeleted{Name: p.Name}}, nil
	}
	return nil, aggregates.Reject(aggregates.CodeInvalid, "permission does not handle %s", c.CommandType())
}

// EvolvePermission applies one event to a permission's state.
func EvolvePermission(p Permission, e aggregates.Event) Permission {
	switch e := e.(type) {
	case PermissionCreated:
		p.Name, p.Description = e.Name, e.Description
	case PermissionDeleted:
		p.Deleted = true
	}
	return p
}

// checkDescription counts characters after trimming, as the schema does.
func checkDescription(d string) error {
	if utf8.RuneCountInString(strings.TrimSpace(d)) > MaxDescription {
		return aggregates.Reject(aggregates.CodeInvalid, "description is longer than %d characters", MaxDescription)
	}
	return nil
}
