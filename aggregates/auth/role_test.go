package auth_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/auth"
)

const (
	readID  = "0197a000-0000-7000-8000-0000000000a1"
	writeID = "0197a000-0000-7000-8000-0000000000a2"
)

var (
	roleCreated  = auth.RoleCreated{Name: "Support", Description: "first line"}
	roleDeleted  = auth.RoleDeleted{Name: "Support"}
	readGranted  = auth.PermissionGranted{PermissionID: readID, PermissionName: "roles:read"}
	readRevoked  = auth.PermissionRevoked{PermissionID: readID}
	writeGranted = auth.PermissionGranted{PermissionID: writeID, PermissionName: "roles:write"}

	// permissions are the histories of the permissions roles may be granted.
	permissions = map[aggregates.Ref][]aggregates.Event{
		{Type: "permission", ID: readID}:  {permissionCreated},
		{Type: "permission", ID: writeID}: {auth.PermissionCreated{Name: "roles:write"}, auth.PermissionDeleted{Name: "roles:write"}},
	}
)

func TestRoleDecide(t *testing.T) {
	run(t, definition(t, "role"), []spec{
		{
			name: "CreatesRole",
			when: auth.CreateRole{Name: "  Support ", Description: " first line "},
			then: events{roleCreated},
		},
		{
			name: "AcceptsUnicodeNameOfMaxLength",
			when: auth.CreateRole{Name: "Ä" + strings.Repeat("b", 63)},
			then: events{auth.RoleCreated{Name: "Ä" + strings.Repeat("b", 63)}},
		},
		{name: "RejectsEmptyName", when: auth.CreateRole{Name: "   "}, code: auth.CodeInvalidName},
		{name: "RejectsNameStartingWithPunctuation", when: auth.CreateRole{Name: "-admins"}, code: auth.CodeInvalidName},
		{name: "RejectsNameWithSlash", when: auth.CreateRole{Name: "ops/admins"}, code: auth.CodeInvalidName},
		{name: "RejectsNameWithTab", when: auth.CreateRole{Name: "ops\tadmins"}, code: auth.CodeInvalidName},
		{name: "RejectsNameTooLong", when: auth.CreateRole{Name: strings.Repeat("a", 65)}, code: auth.CodeInvalidName},
		{
			name: "RejectsDescriptionTooLong",
			when: auth.CreateRole{Name: "Support", Description: strings.Repeat("d", auth.MaxDescription+1)},
			code: aggregates.CodeInvalid,
		},
		{
			name:  "RenamesRole",
			given: events{roleCreated},
			when:  auth.RenameRole{Name: " Helpdesk "},
			then:  events{auth.RoleRenamed{Name: "Helpdesk", PreviousName: "Support"}},
		},
		{
			name:  "RenamesChangingOnlyCase",
			given: events{roleCreated},
			when:  auth.RenameRole{Name: "SUPPORT"},
			then:  events{auth.RoleRenamed{Name: "SUPPORT", PreviousName: "Support"}},
		},
		{name: "RejectsRenameToSameName", given: events{roleCreated}, when: auth.RenameRole{Name: " Support "}, code: aggregates.CodeInvalid},
		{name: "RejectsRenameToInvalidName", given: events{roleCreated}, when: auth.RenameRole{Name: "a|b"}, code: auth.CodeInvalidName},
		{
			name:    "GrantsPermission",
			given:   events{roleCreated},
			related: permissions,
			when:    auth.GrantPermission{PermissionID: readID},
			then:    events{readGranted},
		},
		{
			name:    "GrantsAgainAfterRevoke",
			given:   events{roleCreated, readGranted, readRevoked},
			related: permissions,
			when:    auth.GrantPermission{PermissionID: readID},
			then:    events{readGranted},
		},
		{
			name:    "RejectsDuplicateGrant",
			given:   events{roleCreated, readGranted},
			related: permissions,
			when:    auth.GrantPermission{PermissionID: readID},
			code:    auth.CodeAlreadyGranted,
		},
		{
			name:    "RejectsGrantOfMissingPermission",
			given:   events{roleCreated},
			related: permissions,
			when:    auth.GrantPermission{PermissionID: "0197a000-0000-7000-8000-0000000000ff"},
			code:    auth.CodePermissionNotFound,
		},
		{
			name:    "RejectsGrantOfDeletedPermission",
			given:   events{roleCreated},
			related: permissions,
			when:    auth.GrantPermission{PermissionID: writeID},
			code:    auth.CodePermissionNotFound,
		},
		{
			name:  "RevokesPermission",
			given: events{roleCreated, readGranted},
			when:  auth.RevokePermission{PermissionID: readID},
			then:  events{readRevoked},
		},
		{
			name:  "RevokesPermissionDeletedSinceGrant",
			given: events{roleCreated, writeGranted},
			when:  auth.RevokePermission{PermissionID: writeID},
			then:  events{auth.PermissionRevoked{PermissionID: writeID}},
		},
		{name: "RejectsRevokeOfUngranted", given: events{roleCreated}, when: auth.RevokePermission{PermissionID: readID}, code: auth.CodeNotGranted},
		{
			name:  "RejectsSecondRevoke",
			given: events{roleCreated, readGranted, readRevoked},
			when:  auth.RevokePermission{PermissionID: readID},
			code:  auth.CodeNotGranted,
		},
		{name: "DeletesRole", given: events{roleCreated, readGranted}, when: auth.DeleteRole{}, then: events{roleDeleted}},
		{name: "DeletedAcceptsNoRename", given: events{roleCreated, roleDeleted}, when: auth.RenameRole{Name: "Other"}, code: aggregates.CodeDeleted},
		{
			name:    "DeletedAcceptsNoGrant",
			given:   events{roleCreated, roleDeleted},
			related: permissions,
			when:    auth.GrantPermission{PermissionID: readID},
			code:    aggregates.CodeDeleted,
		},
		{
			name:  "DeletedAcceptsNoRevoke",
			given: events{roleCreated, readGranted, roleDeleted},
			when:  auth.RevokePermission{PermissionID: readID},
			code:  aggregates.CodeDeleted,
		},
		{name: "DeletedAcceptsNoDelete", given: events{roleCreated, roleDeleted}, when: auth.DeleteRole{}, code: aggregates.CodeDeleted},
		{name: "DeletedAcceptsNoCreate", given: events{roleCreated, roleDeleted}, when: auth.CreateRole{Name: "Support"}, code: aggregates.CodeDeleted},
		{name: "RejectsPermissionCommand", given: events{roleCreated}, when: auth.DeletePermission{}, code: aggregates.CodeInvalid},
	})
}

func TestRoleEvolve(t *testing.T) {
	runFolds(t, definition(t, "role"), []fold{
		{name: "StartsEmpty", want: auth.Role{}},
		{
			name:  "TracksGrantsAndRevokes",
			given: events{roleCreated, readGranted, writeGranted, readRevoked},
			want:  auth.Role{Name: "Support", Description: "first line", Permissions: map[string]bool{writeID: true}},
		},
		{
			name:  "TracksRenames",
			given: events{roleCreated, auth.RoleRenamed{Name: "Helpdesk", PreviousName: "Support"}},
			want:  auth.Role{Name: "Helpdesk", Description: "first line"},
		},
		{
			name:  "MarksDeleted",
			given: events{roleCreated, readGranted, roleDeleted},
			want:  auth.Role{Name: "Support", Description: "first line", Permissions: map[string]bool{readID: true}, Deleted: true},
		},
	})
}

func TestRoleEvolveLeavesPreviousStateAlone(t *testing.T) {
	one := auth.EvolveRole(auth.EvolveRole(auth.Role{}, roleCreated), readGranted)
	two := auth.EvolveRole(one, writeGranted)
	three := auth.EvolveRole(two, readRevoked)

	for _, c := range []struct {
		name      string
		got, want map[string]bool
	}{
		{"AfterGrant", one.Permissions, map[string]bool{readID: true}},
		{"AfterSecondGrant", two.Permissions, map[string]bool{readID: true, writeID: true}},
		{"AfterRevoke", three.Permissions, map[string]bool{writeID: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("permissions = %v, want %v", c.got, c.want)
			}
		})
	}
}

func TestRoleKeys(t *testing.T) {
	key := func(k string) []aggregates.UniqueKey {
		return []aggregates.UniqueKey{{Scope: "role_name", Key: k, Code: auth.CodeRoleExists}}
	}
	runKeys(t, definition(t, "role"), []keys{
		{name: "NoneBeforeCreation"},
		{name: "ClaimsLowerCasedName", given: events{roleCreated}, want: key("support")},
		{
			name:  "FollowsRename",
			given: events{roleCreated, auth.RoleRenamed{Name: "Help Desk", PreviousName: "Support"}},
			want:  key("help desk"),
		},
		{name: "ReleasesNameWhenDeleted", given: events{roleCreated, readGranted, roleDeleted}},
	})
}

func TestRoleNeedsGrantedPermission(t *testing.T) {
	roles := definition(t, "role")
	for _, c := range []struct {
		name string
		cmd  aggregates.Command
		want []aggregates.Ref
	}{
		{"Grant", auth.GrantPermission{PermissionID: readID}, []aggregates.Ref{{Type: "permission", ID: readID}}},
		{"Revoke", auth.RevokePermission{PermissionID: readID}, nil},
		{"Create", auth.CreateRole{Name: "x"}, nil},
	} {
		if got := roles.Needs(c.cmd); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Needs = %v, want %v", c.name, got, c.want)
		}
	}
}
