// Package auth is the pure domain of the auth service: permissions, roles,
// users and login attempts. It decides commands and evolves state; it does no I/O.
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

// BuiltinPermissions are the permissions every installation has (DOMAIN.md);
// bootstrap creates them and grants them all to the role AdminRole.
var BuiltinPermissions = []string{
	"users:read", "users:write",
	"roles:read", "roles:write", "roles:assign",
	"permissions:read", "permissions:write",
	"accounts:read", "accounts:write", "accounts:read:any", "accounts:write:any",
	"payplans:read", "payplans:write",
	"messages:read", "messages:write",
	"clients:read", "clients:write", "clients:read:any",
	"events:read", "events:write",
	"brokers:write",
	"items:read", "items:write", "stock:write", "codes:write",
	"audit:read",
	"commands:read:any",
}

// AdminRole is the role bootstrap creates with every built-in permission.
const AdminRole = "admin"
