package auth

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/strata-cqrs/strata/aggregates"
)

// Rejection codes of users.
const (
	CodeEmailTaken      = "email_taken"
	CodeInvalidEmail    = "invalid_email"
	CodeRoleNotFound    = "role_not_found"
	CodeAlreadyAssigned = "already_assigned"
	CodeNotAssigned     = "role_not_assigned"
	CodeAlreadyDisabled = "already_disabled"
	CodeAlreadyEnabled  = "already_enabled"
)

// Password bounds, in characters (enforced by the gateway, which hashes the
// password before anything is recorded).
const (
	MinPassword = 12
	MaxPassword = 128
	MaxUserName = 100
	MaxEmail    = 254
)

// SecretPassword is the secret kind of a user's argon2id password hash.
const SecretPassword = "password"

var emailShape = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

// ValidEmail reports whether e (normalized) has the shape of an address.
func ValidEmail(e string) bool { return len(e) <= MaxEmail && emailShape.MatchString(e) }

// NormalizeEmail trims and lower-cases an email address.
func NormalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// RegisterUser registers a user. The password is not part of the command:
// the gateway stages its hash as the command's secret.
type RegisterUser struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// ChangePassword replaces a user's password with the staged hash.
type ChangePassword struct{}

// AssignRole gives a user an existing role.
type AssignRole struct {
	RoleID string `json:"role_id"`
}

// RevokeRole takes a role from a user.
type RevokeRole struct {
	RoleID string `json:"role_id"`
}

// DisableUser stops a user from logging in; their tokens stop working.
type DisableUser struct{}

// EnableUser lets a disabled user log in again.
type EnableUser struct{}

func (RegisterUser) CommandType() string   { return "RegisterUser" }
func (ChangePassword) CommandType() string { return "ChangePassword" }
func (AssignRole) CommandType() string     { return "AssignRole" }
func (RevokeRole) CommandType() string     { return "RevokeRole" }
func (DisableUser) CommandType() string    { return "DisableUser" }
func (EnableUser) CommandType() string     { return "EnableUser" }

// SecretKind marks RegisterUser as carrying a staged password hash.
func (RegisterUser) SecretKind() string { return SecretPassword }

// SecretKind marks ChangePassword as carrying a staged password hash.
func (ChangePassword) SecretKind() string { return SecretPassword }

// UserRegistered records a new user. It never holds the password.
type UserRegistered struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// PasswordChanged records that the password changed; the hash stays out.
type PasswordChanged struct{}

// RoleAssigned records a role given to a user, with the role's name then.
type RoleAssigned struct {
	RoleID   string `json:"role_id"`
	RoleName string `json:"role_name"`
}

// RoleRevoked records a role taken from a user.
type RoleRevoked struct {
	RoleID string `json:"role_id"`
}

// UserDisabled records that a user may no longer log in.
type UserDisabled struct{}

// UserEnabled records that a user may log in again.
type UserEnabled struct{}

func (UserRegistered) EventType() string  { return "UserRegistered" }
func (PasswordChanged) EventType() string { return "PasswordChanged" }
func (RoleAssigned) EventType() string    { return "RoleAssigned" }
func (RoleRevoked) EventType() string     { return "RoleRevoked" }
func (UserDisabled) EventType() string    { return "UserDisabled" }
func (UserEnabled) EventType() string     { return "UserEnabled" }

// User is the state of one user.
type User struct {
	Email    string
	Name     string
	Roles    map[string]bool
	Disabled bool
}

// UserDefinition registers the User aggregate.
func UserDefinition() *aggregates.Definition {
	return aggregates.Define(aggregates.Spec[User]{
		Service: Service,
		Type:    "user",
		Commands: []aggregates.Command{
			RegisterUser{}, ChangePassword{}, AssignRole{}, RevokeRole{}, DisableUser{}, EnableUser{},
		},
		Events: []aggregates.Event{
			UserRegistered{}, PasswordChanged{}, RoleAssigned{}, RoleRevoked{}, UserDisabled{}, UserEnabled{},
		},
		Creates: func(c aggregates.Command) bool { _, ok := c.(RegisterUser); return ok },
		Needs: func(c aggregates.Command) []aggregates.Ref {
			if a, ok := c.(AssignRole); ok {
				return []aggregates.Ref{{Type: "role", ID: a.RoleID}}
			}
			return nil
		},
		Decide: DecideUser,
		Evolve: EvolveUser,
		Keys: func(u User) []aggregates.UniqueKey {
			if u.Email == "" {
				return nil
			}
			return []aggregates.UniqueKey{{Scope: "user_email", Key: NormalizeEmail(u.Email), Code: CodeEmailTaken}}
		},
	})
}

// DecideUser decides a command against a user's state.
func DecideUser(u User, c aggregates.Command, ctx aggregates.Context) ([]aggregates.Event, error) {
	switch c := c.(type) {
	case RegisterUser:
		email, name := NormalizeEmail(c.Email), strings.TrimSpace(c.Name)
		if !ValidEmail(email) {
			return nil, aggregates.Reject(CodeInvalidEmail, "%q is not an email address", c.Email)
		}
		if name == "" || utf8.RuneCountInString(name) > MaxUserName {
			return nil, aggregates.Reject(CodeInvalidName, "name must be 1-%d characters", MaxUserName)
		}
		return []aggregates.Event{UserRegistered{Email: email, Name: name}}, nil
	case ChangePassword:
		return []aggregates.Event{PasswordChanged{}}, nil
	case AssignRole:
		r, ok := aggregates.Related[Role](ctx, "role", c.RoleID)
		if !ok || r.Deleted {
			return nil, aggregates.Reject(CodeRoleNotFound, "role %s does not exist", c.RoleID)
		}
		if u.Roles[c.RoleID] {
			return nil, aggregates.Reject(CodeAlreadyAssigned, "user already has role %q", r.Name)
		}
		return []aggregates.Event{RoleAssigned{RoleID: c.RoleID, RoleName: r.Name}}, nil
	case RevokeRole:
		if !u.Roles[c.RoleID] {
			return nil, aggregates.Reject(CodeNotAssigned, "user does not have role %s", c.RoleID)
		}
		//lint:ignore S1016 a command and its event are distinct contracts that happen to share a shape
		return []aggregates.Event{RoleRevoked{RoleID: c.RoleID}}, nil
	case DisableUser:
		if u.Disabled {
			return nil, aggregates.Reject(CodeAlreadyDisabled, "user is already disabled")
		}
		return []aggregates.Event{UserDisabled{}}, nil
	case EnableUser:
		if !u.Disabled {
			return nil, aggregates.Reject(CodeAlreadyEnabled, "user is not disabled")
		}
		return []aggregates.Event{UserEnabled{}}, nil
	}
	return nil, aggregates.Reject(aggregates.CodeInvalid, "user does not handle %s", c.CommandType())
}

// EvolveUser applies one event to a user's state without mutating the map
// of the state it was given.
func EvolveUser(u User, e aggregates.Event) User {
	switch e := e.(type) {
	case UserRegistered:
		u.Email, u.Name = e.Email, e.Name
	case RoleAssigned:
		u.Roles = withPermission(u.Roles, e.RoleID, true)
	case RoleRevoked:
		u.Roles = withPermission(u.Roles, e.RoleID, false)
	case UserDisabled:
		u.Disabled = true
	case UserEnabled:
		u.Disabled = false
	}
	return u
}
