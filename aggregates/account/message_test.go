package account_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/account"
)

// invalidTemplates are texts whose {{placeholder}} syntax is wrong.
var invalidTemplates = []string{
	"{{", "}}", "{{}}", "{{1x}}", "{{ }}", "Hi {{name", "name}} hi", "}} {{a}}", "{{a}} }}",
	"{{ a b }}", "{{a-b}}", "{{{{a}}}}", "{{ä}}", "{{" + strings.Repeat("a", 65) + "}}",
}

func TestPlaceholders(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Hi {{ name }}", []string{"name"}},
		{"Hi {{name}}, {{ name }} and {{b}}", []string{"name", "b"}},
		{"{{b}}{{a}}", []string{"b", "a"}},
		{"{{ user.first_name }} {{_x}} {{X9}}", []string{"user.first_name", "_x", "X9"}},
		{"{{" + strings.Repeat("a", 64) + "}}", []string{strings.Repeat("a", 64)}},
		{"{{\tname\n}}", []string{"name"}},
		{"plain text", nil},
		{"{ {single} } braces", nil},
		{"", nil},
	} {
		t.Run(fmt.Sprintf("%q", c.in), func(t *testing.T) {
			got, err := account.Placeholders(c.in)
			if err != nil {
				t.Fatalf("Placeholders(%q): %v", c.in, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Placeholders(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
	for _, in := range invalidTemplates {
		t.Run(fmt.Sprintf("Refuses%q", in), func(t *testing.T) {
			if got, err := account.Placeholders(in); err == nil {
				t.Errorf("Placeholders(%q) = %q, want an error", in, got)
			}
			if got, _, err := account.Render(in, map[string]string{"a": "x", "name": "x"}); err == nil {
				t.Errorf("Render(%q) = %q, want an error", in, got)
			}
		})
	}
}

func TestRender(t *testing.T) {
	for _, c := range []struct {
		name    string
		text    string
		vars    map[string]string
		want    string
		missing []string
	}{
		{"FillsPlaceholder", "Hi {{ name }}!", map[string]string{"name": "Ann"}, "Hi Ann!", nil},
		{"FillsRepeatedPlaceholder", "{{a}}-{{ a }}", map[string]string{"a": "1"}, "1-1", nil},
		{"IgnoresExtraVariables", "Hi {{name}}", map[string]string{"name": "Ann", "x": "y"}, "Hi Ann", nil},
		{"DoesNotRenderValues", "Hi {{name}}", map[string]string{"name": "{{code}}"}, "Hi {{code}}", nil},
		{"FillsEmptyValue", "[{{a}}]", map[string]string{"a": ""}, "[]", nil},
		{"KeepsPlainText", "no placeholders", nil, "no placeholders", nil},
		{"ReportsMissingInOrder", "{{b}} {{a}} {{b}}", map[string]string{}, "", []string{"b", "a"}},
		{"ReportsOnlyMissing", "{{a}} {{b}}", map[string]string{"a": "1"}, "", []string{"b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, missing, err := account.Render(c.text, c.vars)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != c.want || !reflect.DeepEqual(missing, c.missing) {
				t.Errorf("Render(%q) = %q, %q; want %q, %q", c.text, got, missing, c.want, c.missing)
			}
		})
	}
}

var (
	templateCreated = account.MessageTemplateCreated{Name: "Welcome", Channel: account.ChannelEmail,
		Subject: "Hello {{ name }}", Body: "Dear {{name}}, your code is {{code}}.", Placeholders: []string{"code", "name"}}
	smsCreated = account.MessageTemplateCreated{Name: "Code", Channel: account.ChannelSMS,
		Body: "Your code is {{code}}", Placeholders: []string{"code"}}
	templateUpdated = account.MessageTemplateUpdated{Name: "Welcome back", Subject: "Hi {{name}}",
		Body: "Again, {{name}}.", Placeholders: []string{"name"}}
	templateDeleted = account.MessageTemplateDeleted{Name: "Welcome"}
)

func TestMessageTemplateDecideCreate(t *testing.T) {
	create := func(channel, subject, body string) account.CreateMessageTemplate {
		return account.CreateMessageTemplate{Name: "T", Channel: channel, Subject: subject, Body: body}
	}
	specs := []spec{
		{
			name: "CreatesEmail",
			when: account.CreateMessageTemplate{Name: " Welcome ", Channel: "email", Subject: "Hello {{ name }}", Body: "Dear {{name}}, your code is {{code}}."},
			then: events{templateCreated},
		},
		{name: "CreatesSMS", when: account.CreateMessageTemplate{Name: "Code", Channel: "sms", Body: "Your code is {{code}}"}, then: events{smsCreated}},
		{
			name: "CreatesPushWithSubject", when: create("push", "{{b}} news", "{{a}} {{b}}"),
			then: events{account.MessageTemplateCreated{Name: "T", Channel: "push", Subject: "{{b}} news", Body: "{{a}} {{b}}", Placeholders: []string{"a", "b"}}},
		},
		{
			name: "CreatesPushWithoutSubject", when: create("push", "", "News"),
			then: events{account.MessageTemplateCreated{Name: "T", Channel: "push", Body: "News", Placeholders: []string{}}},
		},
		{
			name: "CreatesWithoutPlaceholders", when: create("email", "Hi", "Plain body"),
			then: events{account.MessageTemplateCreated{Name: "T", Channel: "email", Subject: "Hi", Body: "Plain body", Placeholders: []string{}}},
		},
		{
			name: "AcceptsLongestSubjectAndBody",
			when: create("email", strings.Repeat("s", account.MaxSubject), strings.Repeat("b", account.MaxBody)),
			then: events{account.MessageTemplateCreated{Name: "T", Channel: "email", Subject: strings.Repeat("s", account.MaxSubject),
				Body: strings.Repeat("b", account.MaxBody), Placeholders: []string{}}},
		},
		{name: "RejectsEmptyName", when: account.CreateMessageTemplate{Name: "", Channel: "sms", Body: "x"}, code: account.CodeInvalidName},
		{name: "RejectsNameOnTwoLines", when: account.CreateMessageTemplate{Name: "a\nb", Channel: "sms", Body: "x"}, code: account.CodeInvalidName},
		{name: "RejectsSMSWithSubject", when: create("sms", "Code", "Your code"), code: account.CodeInvalidTemplate},
		{name: "RejectsSMSWithBlankSubject", when: create("sms", " ", "Your code"), code: account.CodeInvalidTemplate},
		{name: "RejectsEmailWithoutSubject", when: create("email", "", "Body"), code: account.CodeInvalidTemplate},
		{name: "RejectsEmailWithBlankSubject", when: create("email", "  ", "Body"), code: account.CodeInvalidTemplate},
		{name: "RejectsSubjectOnTwoLines", when: create("email", "a\nb", "Body"), code: account.CodeInvalidTemplate},
		{name: "RejectsSubjectTooLong", when: create("email", strings.Repeat("s", account.MaxSubject+1), "Body"), code: account.CodeInvalidTemplate},
		{name: "RejectsEmptyBody", when: create("email", "Hi", ""), code: account.CodeInvalidTemplate},
		{name: "RejectsBlankBody", when: create("push", "", " \n "), code: account.CodeInvalidTemplate},
		{name: "RejectsBodyTooLong", when: create("push", "", strings.Repeat("b", account.MaxBody+1)), code: account.CodeInvalidTemplate},
	}
	for _, ch := range []string{"", "fax", "Email", "SMS", " push"} {
		specs = append(specs, spec{name: fmt.Sprintf("RejectsChannel%q", ch), when: create(ch, "", "Body"), code: account.CodeInvalidTemplate})
	}
	for _, text := range invalidTemplates {
		specs = append(specs,
			spec{name: fmt.Sprintf("RejectsBody%q", text), when: create("email", "Hi", text), code: account.CodeInvalidTemplate},
			spec{name: fmt.Sprintf("RejectsSubject%q", text), when: create("email", text, "Body"), code: account.CodeInvalidTemplate},
		)
	}
	run(t, definition(t, "message-template"), specs)
}

func TestMessageTemplateDecide(t *testing.T) {
	update := func(name, subject, body string) account.UpdateMessageTemplate {
		return account.UpdateMessageTemplate{Name: name, Subject: subject, Body: body}
	}
	run(t, definition(t, "message-template"), []spec{
		{
			name: "Updates", given: events{templateCreated},
			when: update(" Welcome back ", "Hi {{name}}", "Again, {{name}}."), then: events{templateUpdated},
		},
		{
			name: "UpdatesBodyOnly", given: events{templateCreated},
			when: update("Welcome", "Hello {{ name }}", "Bye {{name}}"),
			then: events{account.MessageTemplateUpdated{Name: "Welcome", Subject: "Hello {{ name }}", Body: "Bye {{name}}", Placeholders: []string{"name"}}},
		},
		{
			name: "UpdatesSMS", given: events{smsCreated},
			when: update("Code", "", "Code: {{code}} for {{user}}"),
			then: events{account.MessageTemplateUpdated{Name: "Code", Body: "Code: {{code}} for {{user}}", Placeholders: []string{"code", "user"}}},
		},
		{
			name: "RejectsSameText", given: events{templateCreated},
			when: update(" Welcome", "Hello {{ name }}", "Dear {{name}}, your code is {{code}}."), code: aggregates.CodeInvalid,
		},
		{name: "RejectsSubjectOnSMS", given: events{smsCreated}, when: update("Code", "Code", "x"), code: account.CodeInvalidTemplate},
		{name: "RejectsEmailWithoutSubject", given: events{templateCreated}, when: update("Welcome", "", "x"), code: account.CodeInvalidTemplate},
		{name: "RejectsInvalidPlaceholder", given: events{templateCreated}, when: update("Welcome", "Hi", "{{1x}}"), code: account.CodeInvalidTemplate},
		{name: "RejectsUnclosedPlaceholder", given: events{templateCreated}, when: update("Welcome", "Hi {{name", "x"), code: account.CodeInvalidTemplate},
		{name: "RejectsEmptyName", given: events{templateCreated}, when: update(" ", "Hi", "x"), code: account.CodeInvalidName},
		{name: "Deletes", given: events{templateCreated}, when: account.DeleteMessageTemplate{}, then: events{templateDeleted}},
		{
			name: "DeletesUnderCurrentName", given: events{templateCreated, templateUpdated}, when: account.DeleteMessageTemplate{},
			then: events{account.MessageTemplateDeleted{Name: "Welcome back"}},
		},
		{name: "RejectsUpdateWhenDeleted", given: events{templateCreated, templateDeleted}, when: update("New", "Hi", "x"), code: aggregates.CodeDeleted},
		{name: "RejectsDeleteWhenDeleted", given: events{templateCreated, templateDeleted}, when: account.DeleteMessageTemplate{}, code: aggregates.CodeDeleted},
		{
			name: "RejectsCreateWhenDeleted", given: events{templateCreated, templateDeleted},
			when: account.CreateMessageTemplate{Name: "Welcome", Channel: "sms", Body: "x"}, code: aggregates.CodeDeleted,
		},
		{name: "RejectsOtherCommands", given: events{templateCreated}, when: account.AddGroupMember{UserID: "u"}, code: aggregates.CodeInvalid},
	})
}

func TestMessageTemplateEvolve(t *testing.T) {
	welcome := account.MessageTemplate{Name: "Welcome", Channel: "email", Subject: "Hello {{ name }}",
		Body: "Dear {{name}}, your code is {{code}}.", Placeholders: []string{"code", "name"}}
	updated := account.MessageTemplate{Name: "Welcome back", Channel: "email", Subject: "Hi {{name}}",
		Body: "Again, {{name}}.", Placeholders: []string{"name"}}
	deleted := updated
	deleted.Deleted = true
	runFolds(t, definition(t, "message-template"), same, []fold{
		{name: "StartsEmpty", want: account.MessageTemplate{}},
		{name: "Created", given: events{templateCreated}, want: welcome},
		{name: "Updated", given: events{templateCreated, templateUpdated}, want: updated},
		{name: "Deleted", given: events{templateCreated, templateUpdated, templateDeleted}, want: deleted},
	})
}

func TestMessageTemplateKeys(t *testing.T) {
	key := func(k string) []aggregates.UniqueKey {
		return []aggregates.UniqueKey{{Scope: "message_template_name", Key: k, Code: account.CodeTemplateExists}}
	}
	runKeys(t, definition(t, "message-template"), []keys{
		{name: "NoneBeforeCreation"},
		{name: "ClaimsLowerCasedName", given: events{templateCreated}, want: key("welcome")},
		{name: "FollowsRename", given: events{templateCreated, templateUpdated}, want: key("welcome back")},
		{name: "ReleasesNameWhenDeleted", given: events{templateCreated, templateDeleted}},
		{name: "ReleasesRenamedNameWhenDeleted", given: events{templateCreated, templateUpdated, templateDeleted}},
	})
}

const (
	templateID = "0197b000-0000-7000-8000-0000000000e1"
	smsID      = "0197b000-0000-7000-8000-0000000000e2"
	deletedID  = "0197b000-0000-7000-8000-0000000000e3"
	user1      = "0197b000-0000-7000-8000-0000000000d1"
	user2      = "0197b000-0000-7000-8000-0000000000d2"
	user3      = "0197b000-0000-7000-8000-0000000000d3"
)

func templateRef(id string) aggregates.Ref { return aggregates.Ref{Type: "message-template", ID: id} }

var (
	groupCreated = account.MessageGroupCreated{Name: "Customers", Description: "all paying"}
	joined1      = account.GroupMemberAdded{UserID: user1}
	joined2      = account.GroupMemberAdded{UserID: user2}
	joined3      = account.GroupMemberAdded{UserID: user3}
	left1        = account.GroupMemberRemoved{UserID: user1}

	templates = map[aggregates.Ref][]aggregates.Event{
		templateRef(templateID): {templateCreated},
		templateRef(smsID):      {smsCreated},
		templateRef(deletedID):  {templateCreated, templateDeleted},
	}
	vars = map[string]string{"name": "Ann", "code": "42"}
)

func TestMessageGroupDecide(t *testing.T) {
	send := func(id string, vars map[string]string) account.SendGroupMessage {
		return account.SendGroupMessage{TemplateID: id, Variables: vars}
	}
	sent := func(recipients ...string) account.GroupMessageSent {
		return account.GroupMessageSent{TemplateID: templateID, Channel: "email", Subject: "Hello Ann",
			Body: "Dear Ann, your code is 42.", Recipients: recipients}
	}
	manyVars := map[string]string{"name": "Ann", "code": "42"}
	for i := range account.MaxVariables - len(manyVars) {
		manyVars[fmt.Sprintf("v%d", i)] = "x"
	}
	run(t, definition(t, "message-group"), []spec{
		{name: "Creates", when: account.CreateMessageGroup{Name: " Customers ", Description: " all paying\n"}, then: events{groupCreated}},
		{name: "CreatesWithoutDescription", when: account.CreateMessageGroup{Name: "G"}, then: events{account.MessageGroupCreated{Name: "G"}}},
		{name: "RejectsEmptyName", when: account.CreateMessageGroup{Name: "\t"}, code: account.CodeInvalidName},
		{name: "RejectsNameTooLong", when: account.CreateMessageGroup{Name: strings.Repeat("g", account.MaxName+1)}, code: account.CodeInvalidName},
		{
			name: "RejectsDescriptionTooLong",
			when: account.CreateMessageGroup{Name: "G", Description: strings.Repeat("d", account.MaxDescription+1)}, code: aggregates.CodeInvalid,
		},
		{name: "AddsMember", given: events{groupCreated}, when: account.AddGroupMember{UserID: user1}, then: events{joined1}},
		{name: "AddsSecondMember", given: events{groupCreated, joined1}, when: account.AddGroupMember{UserID: user2}, then: events{joined2}},
		{name: "RejectsMemberTwice", given: events{groupCreated, joined1, joined2}, when: account.AddGroupMember{UserID: user1}, code: account.CodeAlreadyMember},
		{name: "AddsFormerMemberAgain", given: events{groupCreated, joined1, left1}, when: account.AddGroupMember{UserID: user1}, then: events{joined1}},
		{name: "RemovesMember", given: events{groupCreated, joined1, joined2}, when: account.RemoveGroupMember{UserID: user1}, then: events{left1}},
		{name: "RejectsRemovingStranger", given: events{groupCreated, joined2}, when: account.RemoveGroupMember{UserID: user1}, code: account.CodeNotMember},
		{name: "RejectsRemovingTwice", given: events{groupCreated, joined1, left1}, when: account.RemoveGroupMember{UserID: user1}, code: account.CodeNotMember},
		{
			name: "SendsToMembersInJoinOrder", given: events{groupCreated, joined2, joined1, joined3}, related: templates,
			when: send(templateID, vars), then: events{sent(user2, user1, user3)},
		},
		{
			name: "SendsOnlyToCurrentMembers", given: events{groupCreated, joined1, joined2, joined3, left1, joined1}, related: templates,
			when: send(templateID, vars), then: events{sent(user2, user3, user1)},
		},
		{
			name: "IgnoresExtraVariables", given: events{groupCreated, joined1}, related: templates,
			when: send(templateID, map[string]string{"name": "Ann", "code": "42", "unused": "x"}), then: events{sent(user1)},
		},
		{
			name: "AcceptsMostVariables", given: events{groupCreated, joined1}, related: templates,
			when: send(templateID, manyVars), then: events{sent(user1)},
		},
		{
			name: "SendsSMS", given: events{groupCreated, joined1}, related: templates,
			when: send(smsID, map[string]string{"code": "{{name}}"}),
			then: events{account.GroupMessageSent{TemplateID: smsID, Channel: "sms", Body: "Your code is {{name}}", Recipients: []string{user1}}},
		},
		{
			name: "SendsWithUpdatedText", given: events{groupCreated, joined1},
			related: map[aggregates.Ref][]aggregates.Event{templateRef(templateID): {templateCreated, templateUpdated}},
			when:    send(templateID, map[string]string{"name": "Bo"}),
			then: events{account.GroupMessageSent{TemplateID: templateID, Channel: "email", Subject: "Hi Bo",
				Body: "Again, Bo.", Recipients: []string{user1}}},
		},
		{
			name: "RejectsMissingTemplate", given: events{groupCreated, joined1}, related: templates,
			when: send("0197b000-0000-7000-8000-0000000000ee", vars), code: account.CodeTemplateNotFound,
		},
		{
			name: "RejectsDeletedTemplate", given: events{groupCreated, joined1}, related: templates,
			when: send(deletedID, vars), code: account.CodeTemplateNotFound,
		},
		{
			name: "RejectsTemplateWithoutEvents", given: events{groupCreated, joined1},
			snapshots: map[aggregates.Ref]aggregates.Snapshot{templateRef(templateID): {State: account.MessageTemplate{Name: "x", Body: "x"}, Version: 0}},
			when:      send(templateID, vars), code: account.CodeTemplateNotFound,
		},
		{
			name: "RejectsDeletedTemplateSnapshot", given: events{groupCreated, joined1},
			snapshots: map[aggregates.Ref]aggregates.Snapshot{templateRef(templateID): {
				State: account.MessageTemplate{Name: "x", Channel: "sms", Body: "x", Deleted: true}, Version: 2}},
			when: send(templateID, vars), code: account.CodeTemplateNotFound,
		},
		{name: "RejectsEmptyGroup", given: events{groupCreated}, related: templates, when: send(templateID, vars), code: account.CodeNoMembers},
		{
			name: "RejectsGroupEmptiedByRemovals", given: events{groupCreated, joined1, left1}, related: templates,
			when: send(templateID, vars), code: account.CodeNoMembers,
		},
		{
			name: "RejectsMissingVariables", given: events{groupCreated, joined1}, related: templates,
			when: send(templateID, nil), code: account.CodeMissingVariable, reason: "code, name",
		},
		{
			name: "RejectsOneMissingVariable", given: events{groupCreated, joined1}, related: templates,
			when: send(templateID, map[string]string{"name": "Ann"}), code: account.CodeMissingVariable, reason: "code",
		},
		{
			name: "RejectsVariableMissingFromSubject", given: events{groupCreated, joined1}, related: templates,
			when: send(templateID, map[string]string{"code": "42"}), code: account.CodeMissingVariable, reason: "name",
		},
		{
			name: "RejectsTooManyVariables", given: events{groupCreated, joined1}, related: templates,
			when: send(templateID, func() map[string]string {
				m := map[string]string{"extra": "x"}
				for k, v := range manyVars {
					m[k] = v
				}
				return m
			}()),
			code: aggregates.CodeInvalid,
		},
		{
			name: "RejectsVariableTooLong", given: events{groupCreated, joined1}, related: templates,
			when: send(templateID, map[string]string{"name": strings.Repeat("n", account.MaxVariableValue+1), "code": "1"}),
			code: aggregates.CodeInvalid,
		},
		{name: "RejectsOtherCommands", given: events{groupCreated}, when: account.DeleteMessageTemplate{}, code: aggregates.CodeInvalid},
	})
}

func TestMessageGroupEvolve(t *testing.T) {
	sentEvent := account.GroupMessageSent{TemplateID: templateID, Channel: "sms", Body: "x", Recipients: []string{user1}}
	runFolds(t, definition(t, "message-group"), same, []fold{
		{name: "StartsEmpty", want: account.MessageGroup{}},
		{name: "Created", given: events{groupCreated}, want: account.MessageGroup{Name: "Customers"}},
		{name: "KeepsJoinOrder", given: events{groupCreated, joined2, joined1, joined3}, want: account.MessageGroup{Name: "Customers", Members: []string{user2, user1, user3}}},
		{name: "Removes", given: events{groupCreated, joined1, joined2, joined3, account.GroupMemberRemoved{UserID: user2}},
			want: account.MessageGroup{Name: "Customers", Members: []string{user1, user3}}},
		{name: "RejoinsAtTheEnd", given: events{groupCreated, joined1, joined2, left1, joined1},
			want: account.MessageGroup{Name: "Customers", Members: []string{user2, user1}}},
		{name: "SendingChangesNothing", given: events{groupCreated, joined1, sentEvent}, want: account.MessageGroup{Name: "Customers", Members: []string{user1}}},
	})
}

func TestMessageGroupEvolveLeavesPreviousStateAlone(t *testing.T) {
	base := account.EvolveMessageGroup(account.MessageGroup{}, groupCreated)
	// A members slice with spare capacity, as append leaves it.
	base.Members = append(make([]string, 0, 8), user1, user2)
	withThree := account.EvolveMessageGroup(base, joined3)
	withOther := account.EvolveMessageGroup(base, account.GroupMemberAdded{UserID: "u4"})
	removed := account.EvolveMessageGroup(withThree, account.GroupMemberRemoved{UserID: user1})

	sent, err := account.DecideMessageGroup(withThree, account.SendGroupMessage{TemplateID: templateID, Variables: vars},
		aggregates.Context{Related: map[aggregates.Ref]aggregates.Snapshot{
			templateRef(templateID): {State: account.EvolveMessageTemplate(account.MessageTemplate{}, templateCreated), Version: 1},
		}})
	if err != nil {
		t.Fatal(err)
	}
	recipients := sent[0].(account.GroupMessageSent).Recipients
	account.EvolveMessageGroup(withThree, account.GroupMemberRemoved{UserID: user2})

	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"Base", base.Members, []string{user1, user2}},
		{"AfterAdd", withThree.Members, []string{user1, user2, user3}},
		{"SiblingAdd", withOther.Members, []string{user1, user2, "u4"}},
		{"AfterRemove", removed.Members, []string{user2, user3}},
		{"Recipients", recipients, []string{user1, user2, user3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("members = %v, want %v", c.got, c.want)
			}
		})
	}
	recipients[0] = "changed"
	if withThree.Members[0] != user1 {
		t.Errorf("the event's recipients share the state's members")
	}
}

func TestMessageGroupKeys(t *testing.T) {
	key := func(k string) []aggregates.UniqueKey {
		return []aggregates.UniqueKey{{Scope: "message_group_name", Key: k, Code: account.CodeGroupExists}}
	}
	runKeys(t, definition(t, "message-group"), []keys{
		{name: "NoneBeforeCreation"},
		{name: "ClaimsLowerCasedName", given: events{groupCreated}, want: key("customers")},
		{name: "KeepsNameWithMembers", given: events{groupCreated, joined1, joined2, left1}, want: key("customers")},
	})
}
