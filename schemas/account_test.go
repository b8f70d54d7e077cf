package schemas

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/account"
)

// TestAmountSchema pins the spelling of an amount (defs/account.json
// #/$defs/amount): the gateway refuses anything else with 400 before a
// command is written.
func TestAmountSchema(t *testing.T) {
	r := mustLoad(t)
	for _, ok := range []string{`"100.25"`, `"1"`, `"0.00000001"`, `"12345678901234567890.12345678"`, `"0.10"`, `"7.00000000"`} {
		if fes, err := r.ValidateCommand("account.Deposit", []byte(`{"amount": `+ok+`}`)); err != nil || len(fes) > 0 {
			t.Errorf("amount %s refused: %v %v", ok, fes, err)
		}
	}
	for _, bad := range []string{`"-1"`, `"0"`, `"0.0"`, `"0.00000000"`, `"1e3"`, `"0.000000001"`, `" 1"`, `"1 "`, `"01"`, `"1."`, `".5"`,
		`"+1"`, `""`, `"123456789012345678901"`, `"1,5"`, `1.5`, `10`, `null`} {
		fes, err := r.ValidateCommand("account.Deposit", []byte(`{"amount": `+bad+`}`))
		if err != nil || len(fes) == 0 {
			t.Errorf("amount %s accepted (%v)", bad, err)
			continue
		}
		for _, fe := range fes {
			if fe.Field != "/amount" {
				t.Errorf("amount %s: error at %q, want /amount: %v", bad, fe.Field, fes)
			}
		}
	}
	// Zero is refused with a readable message, and a price may be zero.
	fes, _ := r.ValidateCommand("account.Withdraw", []byte(`{"amount": "0.0"}`))
	if want := []FieldError{{"/amount", "must not be zero"}}; !slices.Equal(fes, want) {
		t.Errorf("zero amount: got %q, want %q", fes, want)
	}
	if fes, err := r.ValidateCommand("account.ChangePayPlanPrice", []byte(`{"price": "0"}`)); err != nil || len(fes) > 0 {
		t.Errorf("price 0 refused: %v %v", fes, err)
	}
	// The schema and the domain agree on every spelling above.
	for _, s := range []string{"100.25", "1", "0.00000001", "12345678901234567890.12345678", "-1", "0", "0.0", "1e3", "0.000000001", " 1", "1 ", "01", "1.", ".5"} {
		raw, _ := json.Marshal(s)
		fes, _ := r.ValidateCommand("account.Deposit", []byte(`{"amount": `+string(raw)+`}`))
		_, err := account.ParseAmount(s)
		if (len(fes) == 0) != (err == nil) {
			t.Errorf("amount %q: schema errors %v, domain error %v", s, fes, err)
		}
	}
}

func TestValidateAccountCommandsReportsFieldErrors(t *testing.T) {
	r := mustLoad(t)
	const id = "0193a1c2-4d5e-7f60-8a1b-2c3d4e5f6a7b"
	for _, tc := range []struct {
		name, typ, payload string
		want               []FieldError
	}{
		{"DepositWithoutReference", "account.Deposit", `{"amount": "5"}`, nil},
		{"DepositNeedsAmount", "account.Deposit", `{"reference": "x"}`, []FieldError{{"/amount", "is required"}}},
		{"ReferenceTooLong", "account.Withdraw", `{"amount": "5", "reference": "` + strings.Repeat("r", 201) + `"}`,
			[]FieldError{{"/reference", "must be at most 200 characters long"}}},
		{"FreezeWithoutReason", "account.FreezeAccount", `{}`, nil},
		{"CloseTakesNothing", "account.CloseAccount", `{"force": true}`, []FieldError{{"/force", "unknown field"}}},
		{"LowercaseAsset", "account.OpenAssetAccount", `{"owner_user_id": "` + id + `", "asset": "eur", "name": "Savings"}`,
			[]FieldError{{"/asset", "must match the pattern ^[A-Z0-9]{2,10}$"}}},
		{"BlankAccountName", "account.OpenAssetAccount", `{"owner_user_id": "` + id + `", "asset": "EUR", "name": "  "}`,
			[]FieldError{{"/name", "must match the pattern \\S"}}},
		{"TransferAmountIsAString", "account.TransferFunds", `{"from_account_id": "` + id + `", "to_account_id": "` + id + `", "amount": 25}`,
			[]FieldError{{"/amount", "must be a string"}}},
		{"FreePlanWithoutFeatures", "account.CreatePayPlan", `{"name": "Free", "price": "0", "currency": "EUR", "interval": "yearly"}`, nil},
		{"WeeklyPlan", "account.CreatePayPlan", `{"name": "W", "price": "1", "currency": "EUR", "interval": "weekly"}`,
			[]FieldError{{"/interval", "value must be one of 'monthly', 'yearly'"}}},
		{"RepeatedFeature", "account.CreatePayPlan", `{"name": "P", "price": "1", "currency": "EUR", "interval": "monthly", "features": ["a", "a"]}`,
			[]FieldError{{"/features", "items at 0 and 1 are equal"}}},
		{"TooManyFeatures", "account.CreatePayPlan", `{"name": "P", "price": "1", "currency": "EUR", "interval": "monthly", "features": [` +
			strings.TrimSuffix(strings.Repeat(`"f", `, 51), ", ") + `]}`,
			[]FieldError{{"/features", "items at 0 and 1 are equal"}, {"/features", "maxItems: got 51, want 50"}}},
		{"SmsTemplateWithoutSubject", "account.CreateMessageTemplate", `{"name": "Ping", "channel": "sms", "body": "Ping {{x}}"}`, nil},
		{"FaxTemplate", "account.CreateMessageTemplate", `{"name": "Fax", "channel": "fax", "body": "x"}`,
			[]FieldError{{"/channel", "value must be one of 'email', 'sms', 'push'"}}},
		{"EmptyBody", "account.UpdateMessageTemplate", `{"name": "T", "body": ""}`, []FieldError{{"/body", "must not be empty"}}},
		{"GroupWithoutDescription", "account.CreateMessageGroup", `{"name": "Beta"}`, nil},
		{"SendWithoutVariables", "account.SendGroupMessage", `{"template_id": "` + id + `"}`, nil},
		{"VariableNotAString", "account.SendGroupMessage", `{"template_id": "` + id + `", "variables": {"n": 1}}`,
			[]FieldError{{"/variables/n", "must be a string"}}},
		{"VariableTooLong", "account.SendGroupMessage", `{"template_id": "` + id + `", "variables": {"n": "` + strings.Repeat("v", 1001) + `"}}`,
			[]FieldError{{"/variables/n", "must be at most 1000 characters long"}}},
		{"MemberIsAUUID", "account.AddGroupMember", `{"user_id": "ada"}`,
			[]FieldError{{"/user_id", "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.ValidateCommand(tc.typ, []byte(tc.payload))
			if err != nil {
				t.Fatalf("ValidateCommand: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestInternalAccountCommandsSaySo: the transfer steps are never HTTP
// bodies, and their schemas say who issues them.
func TestInternalAccountCommandsSaySo(t *testing.T) {
	for _, c := range []string{"DebitTransfer", "CreditTransfer", "ReverseTransferDebit", "SettleTransfer", "CompleteTransfer", "FailTransfer"} {
		var doc struct {
			Description string `json:"description"`
		}
		if err := json.Unmarshal(readFS(t, "commands/account/"+c+".json"), &doc); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(doc.Description, "It is internal: only the transfer process manager issues it") {
			t.Errorf("account.%s does not say it is internal to the transfer process manager", c)
		}
	}
}

// TestDecidedAccountEventsValidate runs the account domain through every
// command and validates each event it decides against its schema, so the
// schemas describe what Decide emits (omitted transfer_id, [] rather than
// null, canonical decimals), not just the frozen samples.
func TestDecidedAccountEventsValidate(t *testing.T) {
	r := mustLoad(t)
	const (
		owner    = "0192f4a0-1e2d-7c3b-a4f5-6e7d8c9b0a1f"
		member   = "0192f4a0-9b8c-7d6e-a5f4-3e2d1c0b9a8f"
		accA     = "0193a1c2-4d5e-7f60-8a1b-2c3d4e5f6a7b"
		accB     = "0193a1c2-77aa-7b0c-9d1e-2f3a4b5c6d7e"
		t1       = "0193a1c3-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
		t2       = "0193a1c3-2b3c-7d4e-9f5a-6b7c8d9e0f1a"
		plan1    = "0193a1b0-5c6d-7e8f-9a0b-1c2d3e4f5a6b"
		plan2    = "0193a1b0-6d7e-7f80-8b1c-2d3e4f5a6b7c"
		template = "0193a1d4-2b3c-7d4e-9f5a-6b7c8d9e0f1a"
	)
	user := aggregates.Actor{UserID: owner}
	system := aggregates.Actor{UserID: account.SystemActor}
	staff := aggregates.Actor{UserID: member, Grants: []string{account.GrantWriteAny}}
	seen := map[string]bool{}
	check := func(events []aggregates.Event, err error) []aggregates.Event {
		t.Helper()
		if err != nil {
			t.Fatalf("decide: %v", err)
		}
		for _, e := range events {
			typ := "account." + e.EventType() + ".v1"
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.ValidateEvent(typ, b); err != nil {
				t.Errorf("%s %s: %v", typ, b, err)
			}
			seen[typ] = true
		}
		return events
	}

	// Two accounts, every movement, a reversed and a settled transfer.
	var a, b account.AssetAccount
	onA := func(c aggregates.Command, actor aggregates.Actor, related map[aggregates.Ref]aggregates.Snapshot) {
		t.Helper()
		for _, e := range check(account.DecideAssetAccount(a, c, aggregates.Context{AggregateID: accA, Actor: actor, Related: related})) {
			a = account.EvolveAssetAccount(a, e)
		}
	}
	onB := func(c aggregates.Command, actor aggregates.Actor) {
		t.Helper()
		for _, e := range check(account.DecideAssetAccount(b, c, aggregates.Context{AggregateID: accB, Actor: actor})) {
			b = account.EvolveAssetAccount(b, e)
		}
	}
	plan := func(id string) map[aggregates.Ref]aggregates.Snapshot {
		return map[aggregates.Ref]aggregates.Snapshot{{Type: "pay-plan", ID: id}: {State: account.PayPlan{Name: "Pro", Price: "9.99"}, Version: 1}}
	}
	onA(account.OpenAssetAccount{OwnerUserID: owner, Asset: "EUR", Name: "  Savings  "}, user, nil)
	onB(account.OpenAssetAccount{OwnerUserID: owner, Asset: "EUR", Name: "Spending"}, user)
	onA(account.Deposit{Amount: "100.10"}, user, nil)
	onA(account.Deposit{Amount: "0.00000001", Reference: "dust"}, user, nil)
	onA(account.Withdraw{Amount: "0.1", Reference: "fee"}, user, nil)
	onA(account.DebitTransfer{TransferID: t1, Amount: "25.50"}, system, nil)
	onA(account.ReverseTransferDebit{TransferID: t1}, system, nil)
	onA(account.DebitTransfer{TransferID: t2, Amount: "10"}, system, nil)
	onB(account.CreditTransfer{TransferID: t2, Amount: "10"}, system)
	onA(account.SettleTransfer{TransferID: t2}, system, nil)
	onA(account.FreezeAccount{}, staff, nil)
	onA(account.Deposit{Amount: "5"}, user, nil)
	onA(account.UnfreezeAccount{}, staff, nil)
	onA(account.ChangePayPlan{PayPlanID: plan1}, user, plan(plan1))
	onA(account.ChangePayPlan{PayPlanID: plan2}, user, plan(plan2))
	onB(account.Deposit{Amount: "12345678901234567890.12345678"}, user)
	onB(account.Deposit{Amount: "99999999999999999999.99999999"}, user)
	onA(account.Withdraw{Amount: account.Format(a.Balance)}, user, nil)
	onA(account.CloseAccount{}, user, nil)

	// Transfers: requested, then completed or failed.
	accounts := map[aggregates.Ref]aggregates.Snapshot{
		{Type: "asset-account", ID: accA}: {State: account.AssetAccount{Owner: owner, Asset: "EUR", Status: account.StatusOpen, Balance: b.Balance}, Version: 3},
		{Type: "asset-account", ID: accB}: {State: b, Version: 4},
	}
	for _, fail := range []bool{false, true} {
		var tr account.Transfer
		for _, e := range check(account.DecideTransfer(tr, account.TransferFunds{FromAccountID: accA, ToAccountID: accB, Amount: "1.50"},
			aggregates.Context{AggregateID: t1, Actor: user, Related: accounts})) {
			tr = account.EvolveTransfer(tr, e)
		}
		var end aggregates.Command = account.CompleteTransfer{}
		if fail {
			end = account.FailTransfer{Code: "account_closed", Reason: "account " + accB + " is closed", Compensated: true}
		}
		check(account.DecideTransfer(tr, end, aggregates.Context{AggregateID: t1, Actor: system}))
	}

	// Pay plans, with and without features.
	for _, features := range [][]string{nil, {" Unlimited projects ", "Priority support"}} {
		var p account.PayPlan
		ctx := aggregates.Context{AggregateID: plan1, Actor: user}
		for _, c := range []aggregates.Command{
			account.CreatePayPlan{Name: "Pro", Price: "9.990", Currency: "EUR", Interval: account.IntervalMonthly, Features: features},
			account.ChangePayPlanPrice{Price: "0"}, account.RetirePayPlan{},
		} {
			for _, e := range check(account.DecidePayPlan(p, c, ctx)) {
				p = account.EvolvePayPlan(p, e)
			}
		}
	}

	// Templates, with and without placeholders.
	var tmpl account.MessageTemplate
	for _, c := range []aggregates.Command{
		account.CreateMessageTemplate{Name: "Welcome", Channel: account.ChannelEmail, Subject: "Welcome, {{ first_name }}!", Body: "Hello {{first_name}}, {{plan.name}} is on."},
		account.UpdateMessageTemplate{Name: "Welcome", Subject: "Hi", Body: "Hello."},
		account.DeleteMessageTemplate{},
	} {
		for _, e := range check(account.DecideMessageTemplate(tmpl, c, aggregates.Context{AggregateID: template, Actor: user})) {
			tmpl = account.EvolveMessageTemplate(tmpl, e)
		}
	}
	var sms account.MessageTemplate
	for _, e := range check(account.DecideMessageTemplate(sms, account.CreateMessageTemplate{Name: "Ping", Channel: account.ChannelSMS, Body: "Ping."},
		aggregates.Context{AggregateID: template, Actor: user})) {
		sms = account.EvolveMessageTemplate(sms, e)
	}

	// A group: members, a send, a removal.
	var g account.MessageGroup
	sendCtx := map[aggregates.Ref]aggregates.Snapshot{{Type: "message-template", ID: template}: {State: sms, Version: 1}}
	for _, c := range []aggregates.Command{
		account.CreateMessageGroup{Name: " Beta ", Description: " first "}, account.AddGroupMember{UserID: owner},
		account.AddGroupMember{UserID: member}, account.SendGroupMessage{TemplateID: template}, account.RemoveGroupMember{UserID: owner},
	} {
		for _, e := range check(account.DecideMessageGroup(g, c, aggregates.Context{AggregateID: accA, Actor: user, Related: sendCtx})) {
			g = account.EvolveMessageGroup(g, e)
		}
	}

	for _, typ := range r.Events() {
		if strings.HasPrefix(typ, "account.") && !seen[typ] {
			t.Errorf("%s was never decided by this test", typ)
		}
	}
}
