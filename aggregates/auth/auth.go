// Package auth is the pure domain of the auth service: permissions, roles
// and (later) users. It decides commands and evolves state; it does no I/O.
package auth

import "github.com/strata-cqrs/strata/aggregates"

// Service is the service name used in topics and event types.
const Service = "auth"

// Rejection codes of the auth service.
const (
	CodePermissionExists   = "permission_exists"
	CodePermissionNotFound = "permission_not_found"
	CodeRoleExists         = "role_exists"
	CodeAlreadyGranted     = "already_granted"
	CodeNotGranted         = "not_granted"
	CodeInvalidName        = "invalid_name"
)

// Definitions returns the aggregates of the auth service, for the registry.
func Definitions() []*aggregates.Definition {
	return []*aggregates.Definition{PermissionDefinition(), RoleDefinition(), UserDefinition(), LoginDefinition()}
}
