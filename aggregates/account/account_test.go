package account_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/account"
)

type events = []aggregates.Event

const (
	ownerID = "0197b000-0000-7000-8000-000000000001"
	otherID = "0197b000-0000-7000-8000-000000000002"
	staffID = "0197b000-0000-7000-8000-000000000003"
)

// Actors: the owner of the accounts under test, another user, staff who may
// read or write every account, and the transfer process.
var (
	owner    = aggregates.Actor{UserID: ownerID, Grants: []string{"accounts:read", "accounts:write"}}
	stranger = aggregates.Actor{UserID: otherID, Grants: []string{"accounts:read", "accounts:write"}}
	reader   = aggregates.Actor{UserID: staffID, Grants: []string{"accounts:write", account.GrantReadAny}}
	admin    = aggregates.Actor{UserID: staffID, Grants: []string{"accounts:write", account.GrantWriteAny}}
	system   = aggregates.Actor{UserID: account.SystemActor}
)

// spec is one given/when/then case: given the aggregate's past events (and
// the histories or snapshots of related aggregates), when this command from
// this actor (the owner unless said), then these events or a rejection with
// this code (whose reason contains reason, when set).
type spec struct {
	name      string
	given     events
	related   map[aggregates.Ref][]aggregates.Event
	snapshots map[aggregates.Ref]aggregates.Snapshot
	actor     *aggregates.Actor
	when      aggregates.Command
	then      events
	code      string
	reason    string
}

func as(a aggregates.Actor) *aggregates.Actor { return &a }

// definition returns the registered definition of an account aggregate type.
func definition(t testing.TB, typ string) *aggregates.Definition {
	t.Helper()
	for _, d := range account.Definitions() {
		if d.Type == typ {
			return d
		}
	}
	t.Fatalf("account has no aggregate %q", typ)
	return nil
}

// contextFor builds what the runtime hands Decide: the snapshots of exactly
// the aggregates def.Needs declares, taken from the spec's snapshots or
// folded from its histories (version 0 and the zero state when there is none).
func contextFor(t testing.TB, def *aggregates.Definition, s spec) aggregates.Context {
	t.Helper()
	actor := owner
	if s.actor != nil {
		actor = *s.actor
	}
	ctx := aggregates.Context{
		Now:         time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		AggregateID: "0197b000-0000-7000-8000-0000000000ff",
		Actor:       actor,
	}
	for _, ref := range def.Needs(s.when) {
		if ctx.Related == nil {
			ctx.Related = map[aggregates.Ref]aggregates.Snapshot{}
		}
		if snap, ok := s.snapshots[ref]; ok {
			ctx.Related[ref] = snap
			continue
		}
		h := s.related[ref]
		ctx.Related[ref] = aggregates.Snapshot{State: definition(t, ref.Type).Fold(h...), Version: int64(len(h))}
	}
	return ctx
}

// run checks every spec against def through its registry form (Fold, then
// Decide). Accepted events must evolve the state and survive a JSON round
// trip through def.DecodeEvent.
func run(t *testing.T, def *aggregates.Definition, specs []spec) {
	t.Helper()
	for _, s := range specs {
		t.Run(s.name, func(t *testing.T) {
			if (s.code == "") == (s.then == nil) {
				t.Fatalf("a spec wants either events or a rejection code")
			}
			state := def.Fold(s.given...)
			got, err := def.Decide(state, s.when, contextFor(t, def, s))
			if s.code != "" {
				r, ok := aggregates.AsRejection(err)
				if !ok || r.Code != s.code {
					t.Fatalf("Decide(%T) = %#v, %v; want rejection %q", s.when, got, err, s.code)
				}
				if !strings.Contains(r.Reason, s.reason) {
					t.Errorf("reason %q does not contain %q", r.Reason, s.reason)
				}
				if got != nil {
					t.Errorf("a rejection came with events: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide(%T) error: %v", s.when, err)
			}
			if !reflect.DeepEqual(got, s.then) {
				t.Fatalf("Decide(%T)\n got %#v\nwant %#v", s.when, got, s.then)
			}
			for _, e := range got {
				roundTrip(t, def, e)
				state = def.Evolve(state, e)
			}
		})
	}
}

// roundTrip checks that e decodes from its JSON under its qualified type.
func roundTrip(t *testing.T, def *aggregates.Definition, e aggregates.Event) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("marshal %T: %v", e, err)
	}
	back, err := def.DecodeEvent(def.QualifiedEvent(e), data)
	if err != nil {
		t.Fatalf("DecodeEvent(%s, %s): %v", def.QualifiedEvent(e), data, err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Fatalf("round trip of %s\n got %#v\nwant %#v", data, back, e)
	}
}

// fold is one Evolve case: given these events, then this state.
type fold struct {
	name  string
	given events
	want  any
}

// runFolds checks that def.Fold of each case's events yields its state,
// seen through view (which makes decimals comparable).
func runFolds(t *testing.T, def *aggregates.Definition, view func(any) any, cases []fold) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := view(def.Fold(c.given...)); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Fold\n got %#v\nwant %#v", got, c.want)
			}
		})
	}
}

func same(s any) any { return s }

// keys is one Keys case: given these events, then the state holds these
// unique keys.
type keys struct {
	name  string
	given events
	want  []aggregates.UniqueKey
}

func runKeys(t *testing.T, def *aggregates.Definition, cases []keys) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := def.Keys(def.Fold(c.given...)); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Keys = %#v, want %#v", got, c.want)
			}
		})
	}
}

// refusedAmounts are spellings no amount or price may have.
var refusedAmounts = []string{
	"-1", "1e3", "0.000000001", " 1", "1 ", "01", "1.", ".5", "", "1,5", "NaN", "Infinity", "+1",
	"-0", "00", "1.2.3", "0x10", "1_000", "1\n", "\t1", "１", "1.123456789", "123456789012345678901",
	"1E3", "inf",
}

func TestParseAmount(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"100.25", "100.25"},
		{"1", "1"},
		{"0.00000001", "0.00000001"},
		{"12345678901234567890.12345678", "12345678901234567890.12345678"},
		{"99999999999999999999.99999999", "99999999999999999999.99999999"},
		{"1.50", "1.5"},
		{"10.00000000", "10"},
		{"0.5", "0.5"},
	} {
		t.Run("Accepts"+c.in, func(t *testing.T) {
			d, err := account.ParseAmount(c.in)
			if err != nil {
				t.Fatalf("ParseAmount(%q): %v", c.in, err)
			}
			if got := account.Format(d); got != c.want {
				t.Errorf("Format(ParseAmount(%q)) = %q, want %q", c.in, got, c.want)
			}
		})
	}
	for _, in := range append([]string{"0", "0.0", "0.00000000"}, refusedAmounts...) {
		t.Run("Refuses"+in, func(t *testing.T) {
			_, err := account.ParseAmount(in)
			if r, ok := aggregates.AsRejection(err); !ok || r.Code != account.CodeInvalidAmount {
				t.Errorf("ParseAmount(%q) error = %v, want %s", in, err, account.CodeInvalidAmount)
			}
		})
	}
}

func TestParsePrice(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"0", "0"},
		{"0.00", "0"},
		{"9.99", "9.99"},
		{"100", "100"},
		{"0.00000001", "0.00000001"},
	} {
		t.Run("Accepts"+c.in, func(t *testing.T) {
			d, err := account.ParsePrice(c.in)
			if err != nil {
				t.Fatalf("ParsePrice(%q): %v", c.in, err)
			}
			if got := account.Format(d); got != c.want {
				t.Errorf("Format(ParsePrice(%q)) = %q, want %q", c.in, got, c.want)
			}
		})
	}
	for _, in := range refusedAmounts {
		t.Run("Refuses"+in, func(t *testing.T) {
			_, err := account.ParsePrice(in)
			if r, ok := aggregates.AsRejection(err); !ok || r.Code != account.CodeInvalidAmount {
				t.Errorf("ParsePrice(%q) error = %v, want %s", in, err, account.CodeInvalidAmount)
			}
		})
	}
}

func TestFormatIsCanonical(t *testing.T) {
	d := func(s string) decimal.Decimal { return decimal.RequireFromString(s) }
	for _, c := range []struct {
		name string
		in   decimal.Decimal
		want string
	}{
		{"ExactSum", d("0.1").Add(d("0.2")), "0.3"},
		{"TrailingZeros", d("0.30000000"), "0.3"},
		{"Zero", d("1.5").Sub(d("1.5")), "0"},
		{"Integer", d("7.00"), "7"},
		{"Large", d("12345678901234567890.12345678").Add(d("0.00000001")), "12345678901234567890.12345679"},
		{"NoExponent", d("0.00000001"), "0.00000001"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := account.Format(c.in); got != c.want {
				t.Errorf("Format = %q, want %q", got, c.want)
			}
		})
	}
}

func TestDefinitions(t *testing.T) {
	var topics []string
	for _, d := range account.Definitions() {
		topics = append(topics, d.Topic())
		if d.Service != account.Service {
			t.Errorf("%s: service %q, want %q", d.Type, d.Service, account.Service)
		}
	}
	want := []string{"account.asset-account", "account.transfer", "account.pay-plan",
		"account.message-template", "account.message-group"}
	if !reflect.DeepEqual(topics, want) {
		t.Errorf("topics = %v, want %v", topics, want)
	}
}

func TestCreates(t *testing.T) {
	for typ, creator := range map[string]string{
		"asset-account":    "OpenAssetAccount",
		"transfer":         "TransferFunds",
		"pay-plan":         "CreatePayPlan",
		"message-template": "CreateMessageTemplate",
		"message-group":    "CreateMessageGroup",
	} {
		def := definition(t, typ)
		for _, c := range def.Commands {
			if got, want := def.Creates(c), c.CommandType() == creator; got != want {
				t.Errorf("%s: Creates(%s) = %v, want %v", typ, c.CommandType(), got, want)
			}
			if def.Upserts(c) {
				t.Errorf("%s: Upserts(%s) = true", typ, c.CommandType())
			}
		}
	}
}

func TestNeeds(t *testing.T) {
	for _, c := range []struct {
		typ  string
		cmd  aggregates.Command
		want []aggregates.Ref
	}{
		{"asset-account", account.ChangePayPlan{PayPlanID: "p1"}, []aggregates.Ref{{Type: "pay-plan", ID: "p1"}}},
		{"asset-account", account.Deposit{Amount: "1"}, nil},
		{"asset-account", account.OpenAssetAccount{OwnerUserID: ownerID}, nil},
		{"asset-account", account.DebitTransfer{TransferID: "t1", Amount: "1"}, nil},
		{"transfer", account.TransferFunds{FromAccountID: "a", ToAccountID: "b", Amount: "1"},
			[]aggregates.Ref{{Type: "asset-account", ID: "a"}, {Type: "asset-account", ID: "b"}}},
		{"transfer", account.CompleteTransfer{}, nil},
		{"transfer", account.FailTransfer{}, nil},
		{"pay-plan", account.CreatePayPlan{Name: "x"}, nil},
		{"message-template", account.CreateMessageTemplate{Name: "x"}, nil},
		{"message-group", account.SendGroupMessage{TemplateID: "t"}, []aggregates.Ref{{Type: "message-template", ID: "t"}}},
		{"message-group", account.AddGroupMember{UserID: "u"}, nil},
	} {
		if got := definition(t, c.typ).Needs(c.cmd); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Needs(%s) = %v, want %v", c.typ, c.cmd.CommandType(), got, c.want)
		}
	}
}

// commandSamples holds, per aggregate type, a payload of every command as the
// gateway sends it and the command it decodes to.
var commandSamples = map[string][]struct {
	payload string
	want    aggregates.Command
}{
	"asset-account": {
		{`{"owner_user_id":"u1","asset":"BTC","name":"Savings"}`, account.OpenAssetAccount{OwnerUserID: "u1", Asset: "BTC", Name: "Savings"}},
		{`{"amount":"100.25","reference":"salary"}`, account.Deposit{Amount: "100.25", Reference: "salary"}},
		{`{"amount":"1","reference":"rent"}`, account.Withdraw{Amount: "1", Reference: "rent"}},
		{`{"reason":"audit"}`, account.FreezeAccount{Reason: "audit"}},
		{`{}`, account.UnfreezeAccount{}},
		{``, account.CloseAccount{}},
		{`{"pay_plan_id":"p1"}`, account.ChangePayPlan{PayPlanID: "p1"}},
		{`{"transfer_id":"t1","amount":"5"}`, account.DebitTransfer{TransferID: "t1", Amount: "5"}},
		{`{"transfer_id":"t1","amount":"5"}`, account.CreditTransfer{TransferID: "t1", Amount: "5"}},
		{`{"transfer_id":"t1"}`, account.ReverseTransferDebit{TransferID: "t1"}},
		{`{"transfer_id":"t1"}`, account.SettleTransfer{TransferID: "t1"}},
	},
	"transfer": {
		{`{"from_account_id":"a","to_account_id":"b","amount":"2.5"}`, account.TransferFunds{FromAccountID: "a", ToAccountID: "b", Amount: "2.5"}},
		{`{}`, account.CompleteTransfer{}},
		{`{"code":"account_frozen","reason":"frozen","compensated":true}`, account.FailTransfer{Code: "account_frozen", Reason: "frozen", Compensated: true}},
	},
	"pay-plan": {
		{`{"name":"Pro","price":"9.99","currency":"EUR","interval":"monthly","features":["API"]}`,
			account.CreatePayPlan{Name: "Pro", Price: "9.99", Currency: "EUR", Interval: "monthly", Features: []string{"API"}}},
		{`{"price":"12"}`, account.ChangePayPlanPrice{Price: "12"}},
		{`{}`, account.RetirePayPlan{}},
	},
	"message-template": {
		{`{"name":"Welcome","channel":"email","subject":"Hi","body":"Hello {{name}}"}`,
			account.CreateMessageTemplate{Name: "Welcome", Channel: "email", Subject: "Hi", Body: "Hello {{name}}"}},
		{`{"name":"Welcome","subject":"Hi","body":"Bye"}`, account.UpdateMessageTemplate{Name: "Welcome", Subject: "Hi", Body: "Bye"}},
		{`{}`, account.DeleteMessageTemplate{}},
	},
	"message-group": {
		{`{"name":"Customers","description":"all"}`, account.CreateMessageGroup{Name: "Customers", Description: "all"}},
		{`{"user_id":"u1"}`, account.AddGroupMember{UserID: "u1"}},
		{`{"user_id":"u1"}`, account.RemoveGroupMember{UserID: "u1"}},
		{`{"template_id":"t1","variables":{"name":"Ann"}}`, account.SendGroupMessage{TemplateID: "t1", Variables: map[string]string{"name": "Ann"}}},
	},
}

func TestDecodeCommand(t *testing.T) {
	for _, def := range account.Definitions() {
		samples := commandSamples[def.Type]
		if len(samples) != len(def.Commands) {
			t.Errorf("%s: %d command samples for %d commands", def.Type, len(samples), len(def.Commands))
		}
		for i, proto := range def.Commands {
			if i >= len(samples) {
				break
			}
			s := samples[i]
			name := "account." + proto.CommandType()
			t.Run(name, func(t *testing.T) {
				if s.want.CommandType() != proto.CommandType() {
					t.Fatalf("sample %d is a %s, want %s", i, s.want.CommandType(), proto.CommandType())
				}
				if q := def.QualifiedCommand(proto); q != name {
					t.Errorf("QualifiedCommand = %q, want %q", q, name)
				}
				got, ok, err := def.DecodeCommand(name, []byte(s.payload))
				if !ok || err != nil {
					t.Fatalf("DecodeCommand(%s, %s) = %v, %v, %v", name, s.payload, got, ok, err)
				}
				if !reflect.DeepEqual(got, s.want) {
					t.Errorf("DecodeCommand(%s)\n got %#v\nwant %#v", name, got, s.want)
				}
				if _, ok, err := def.DecodeCommand(name, []byte(`{"bogus":1}`)); !ok || err == nil {
					t.Errorf("DecodeCommand(%s) of an unknown field: ok=%v err=%v, want an error", name, ok, err)
				}
			})
		}
	}
}

func TestDecodeCommandRefusesOtherNames(t *testing.T) {
	deposit := `{"amount":"1","reference":""}`
	for _, c := range []struct{ typ, name string }{
		{"asset-account", "Deposit"},
		{"asset-account", "auth.Deposit"},
		{"asset-account", "account.TransferFunds"},
		{"transfer", "account.Deposit"},
		{"pay-plan", "account.CreateMessageTemplate"},
		{"message-group", "account.CreateMessageTemplate"},
	} {
		if got, ok, err := definition(t, c.typ).DecodeCommand(c.name, []byte(deposit)); ok || err != nil || got != nil {
			t.Errorf("%s: DecodeCommand(%s) = %v, %v, %v; want not ours", c.typ, c.name, got, ok, err)
		}
	}
}

// eventSamples holds, per aggregate type, every event with its fields set
// and its JSON, in the order of Definition.Events.
var eventSamples = map[string][]struct {
	event aggregates.Event
	json  string
}{
	"asset-account": {
		{account.AssetAccountOpened{OwnerUserID: "u1", Asset: "BTC", Name: "Savings"}, `{"owner_user_id":"u1","asset":"BTC","name":"Savings"}`},
		{account.FundsDeposited{Amount: "0.2", Reference: "r", Balance: "0.3", TransferID: "t1"}, `{"amount":"0.2","reference":"r","balance":"0.3","transfer_id":"t1"}`},
		{account.FundsWithdrawn{Amount: "1", Reference: "r", Balance: "0"}, `{"amount":"1","reference":"r","balance":"0"}`},
		{account.TransferDebitReversed{TransferID: "t1", Amount: "40", Balance: "100"}, `{"transfer_id":"t1","amount":"40","balance":"100"}`},
		{account.TransferSettled{TransferID: "t1"}, `{"transfer_id":"t1"}`},
		{account.AccountFrozen{Reason: "audit"}, `{"reason":"audit"}`},
		{account.AccountUnfrozen{}, `{}`},
		{account.AccountClosed{}, `{}`},
		{account.PayPlanChanged{PayPlanID: "p2", PreviousPayPlanID: "p1"}, `{"pay_plan_id":"p2","previous_pay_plan_id":"p1"}`},
	},
	"transfer": {
		{account.TransferRequested{FromAccountID: "a", ToAccountID: "b", Amount: "2.5", Asset: "BTC"}, `{"from_account_id":"a","to_account_id":"b","amount":"2.5","asset":"BTC"}`},
		{account.TransferCompleted{}, `{}`},
		{account.TransferFailed{Code: "account_frozen", Reason: "frozen", Compensated: true}, `{"code":"account_frozen","reason":"frozen","compensated":true}`},
	},
	"pay-plan": {
		{account.PayPlanCreated{Name: "Pro", Price: "9.99", Currency: "EUR", Interval: "yearly", Features: []string{"API", "SSO"}},
			`{"name":"Pro","price":"9.99","currency":"EUR","interval":"yearly","features":["API","SSO"]}`},
		{account.PayPlanPriceChanged{Price: "12", PreviousPrice: "9.99"}, `{"price":"12","previous_price":"9.99"}`},
		{account.PayPlanRetired{}, `{}`},
	},
	"message-template": {
		{account.MessageTemplateCreated{Name: "W", Channel: "email", Subject: "Hi {{a}}", Body: "{{b}}", Placeholders: []string{"a", "b"}},
			`{"name":"W","channel":"email","subject":"Hi {{a}}","body":"{{b}}","placeholders":["a","b"]}`},
		{account.MessageTemplateUpdated{Name: "W", Subject: "S", Body: "B", Placeholders: []string{}},
			`{"name":"W","subject":"S","body":"B","placeholders":[]}`},
		{account.MessageTemplateDeleted{Name: "W"}, `{"name":"W"}`},
	},
	"message-group": {
		{account.MessageGroupCreated{Name: "G", Description: "d"}, `{"name":"G","description":"d"}`},
		{account.GroupMemberAdded{UserID: "u1"}, `{"user_id":"u1"}`},
		{account.GroupMemberRemoved{UserID: "u1"}, `{"user_id":"u1"}`},
		{account.GroupMessageSent{TemplateID: "t", Channel: "sms", Body: "hi", Recipients: []string{"u2", "u1"}},
			`{"template_id":"t","channel":"sms","subject":"","body":"hi","recipients":["u2","u1"]}`},
	},
}

func TestEventsRoundTrip(t *testing.T) {
	for _, def := range account.Definitions() {
		samples := eventSamples[def.Type]
		if len(samples) != len(def.Events) {
			t.Errorf("%s: %d event samples for %d events", def.Type, len(samples), len(def.Events))
		}
		for i, proto := range def.Events {
			if i >= len(samples) {
				break
			}
			s := samples[i]
			name := "account." + proto.EventType() + ".v1"
			t.Run(name, func(t *testing.T) {
				if s.event.EventType() != proto.EventType() {
					t.Fatalf("sample %d is a %s, want %s", i, s.event.EventType(), proto.EventType())
				}
				if q := def.QualifiedEvent(proto); q != name {
					t.Errorf("QualifiedEvent = %q, want %q", q, name)
				}
				data, err := json.Marshal(s.event)
				if err != nil {
					t.Fatal(err)
				}
				if string(data) != s.json {
					t.Errorf("JSON\n got %s\nwant %s", data, s.json)
				}
				got, err := def.DecodeEvent(name, data)
				if err != nil {
					t.Fatalf("DecodeEvent(%s, %s): %v", name, data, err)
				}
				if !reflect.DeepEqual(got, s.event) {
					t.Errorf("DecodeEvent\n got %#v\nwant %#v", got, s.event)
				}
				if _, err := def.DecodeEvent("account."+proto.EventType()+".v2", data); err == nil {
					t.Errorf("DecodeEvent of an unknown version succeeded")
				}
			})
		}
	}
}
