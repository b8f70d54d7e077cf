package auth_test

import (
	"strings"
	"testing"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/auth"
)

type events = []aggregates.Event

var (
	permissionCreated = auth.PermissionCreated{Name: "roles:read", Description: "see roles"}
	permissionDeleted = auth.PermissionDeleted{Name: "roles:read"}
)

func TestPermissionDecide(t *testing.T) {
	run(t, definition(t, "permission"), []spec{
		{
			name: "CreatesPermission",
			when: auth.CreatePermission{Name: "roles:read", Description: "  see roles \n"},
			then: events{auth.PermissionCreated{Name: "roles:read", Description: "see roles"}},
		},
		{
			name: "CreatesScopedPermission",
			when: auth.CreatePermission{Name: "accounts:read:any"},
			then: events{auth.PermissionCreated{Name: "accounts:read:any"}},
		},
		{
			name: "AcceptsDigitsAndDashes",
			when: auth.CreatePermission{Name: "pay-plans2:write"},
			then: events{auth.PermissionCreated{Name: "pay-plans2:write"}},
		},
		{
			name: "AcceptsDescriptionOfMaxLength",
			when: auth.CreatePermission{Name: "roles:read", Description: strings.Repeat("d", auth.MaxDescription)},
			then: events{auth.PermissionCreated{Name: "roles:read", Description: strings.Repeat("d", auth.MaxDescription)}},
		},
		{
			name: "CountsDescriptionInCharacters",
			when: auth.CreatePermission{Name: "roles:read", Description: strings.Repeat("é", auth.MaxDescription)},
			then: events{auth.PermissionCreated{Name: "roles:read", Description: strings.Repeat("é", auth.MaxDescription)}},
		},
		{
			name: "RejectsNameTooLong",
			when: auth.CreatePermission{Name: strings.Repeat("r", auth.MaxPermissionName/2) + ":" + strings.Repeat("w", auth.MaxPermissionName/2)},
			code: auth.CodeInvalidName,
		},
		{name: "RejectsUpperCaseName", when: auth.CreatePermission{Name: "Roles:Read"}, code: auth.CodeInvalidName},
		{name: "RejectsNameWithoutAction", when: auth.CreatePermission{Name: "roles"}, code: auth.CodeInvalidName},
		{name: "RejectsFourPartName", when: auth.CreatePermission{Name: "a:b:c:d"}, code: auth.CodeInvalidName},
		{name: "RejectsEmptyName", when: auth.CreatePermission{}, code: auth.CodeInvalidName},
		{name: "RejectsEmptyAction", when: auth.CreatePermission{Name: "roles:"}, code: auth.CodeInvalidName},
		{name: "RejectsLeadingDigit", when: auth.CreatePermission{Name: "1roles:read"}, code: auth.CodeInvalidName},
		{name: "RejectsSurroundingSpace", when: auth.CreatePermission{Name: " roles:read"}, code: auth.CodeInvalidName},
		{name: "RejectsTrailingNewline", when: auth.CreatePermission{Name: "roles:read\n"}, code: auth.CodeInvalidName},
		{
			name: "RejectsDescriptionTooLong",
			when: auth.CreatePermission{Name: "roles:read", Description: strings.Repeat("d", auth.MaxDescription+1)},
			code: aggregates.CodeInvalid,
		},
		{
			name:  "DeletesPermission",
			given: events{permissionCreated},
			when:  auth.DeletePermission{},
			then:  events{permissionDeleted},
		},
		{
			name:  "DeletedAcceptsNoDelete",
			given: events{permissionCreated, permissionDeleted},
			when:  auth.DeletePermission{},
			code:  aggregates.CodeDeleted,
		},
		{
			name:  "DeletedAcceptsNoCreate",
			given: events{permissionCreated, permissionDeleted},
			when:  auth.CreatePermission{Name: "roles:read"},
			code:  aggregates.CodeDeleted,
		},
		{
			name:  "RejectsRoleCommand",
			given: events{permissionCreated},
			when:  auth.RenameRole{Name: "x"},
			code:  aggregates.CodeInvalid,
		},
	})
}

func TestPermissionEvolve(t *testing.T) {
	runFolds(t, definition(t, "permission"), []fold{
		{name: "StartsEmpty", want: auth.Permission{}},
		{name: "RecordsCreation", given: events{permissionCreated}, want: auth.Permission{Name: "roles:read", Description: "see roles"}},
		{
			name:  "KeepsNameWhenDeleted",
			given: events{permissionCreated, permissionDeleted},
			want:  auth.Permission{Name: "roles:read", Description: "see roles", Deleted: true},
		},
	})
}

func TestPermissionKeys(t *testing.T) {
	runKeys(t, definition(t, "permission"), []keys{
		{name: "NoneBeforeCreation"},
		{
			name:  "ClaimsName",
			given: events{permissionCreated},
			want:  []aggregates.UniqueKey{{Scope: "permission_name", Key: "roles:read", Code: auth.CodePermissionExists}},
		},
		{name: "ReleasesNameWhenDeleted", given: events{permissionCreated, permissionDeleted}},
	})
}
