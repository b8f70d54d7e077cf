package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/testkit"
	accountread "github.com/strata-cqrs/strata/projections/account"
)

// acctSuite is one running platform shared by the subtests of
// TestAccountService, with the users they act as. Alice, Bob and Carol
// hold a role with accounts:read and accounts:write only; the operator
// holds accounts:write:any besides, but not accounts:read:any.
type acctSuite struct {
	d                           *Dev
	admin                       *client
	alice, bob, carol, operator acctUser
}

type acctUser struct {
	c        *client
	id, name string
}

// in returns a copy of c that reports to t, so a subtest fails itself and
// not the test that made the client.
func (c *client) in(t testing.TB) *client {
	cc := *c
	cc.t = t
	return &cc
}

func (u acctUser) in(t testing.TB) *client { return u.c.in(t) }

// TestAccountService drives the account service through HTTP against one
// running `strata dev`: accounts and their object-level checks, amounts,
// concurrent withdrawals, versions, the account lifecycle, transfers, pay
// plans and group messages.
func TestAccountService(t *testing.T) {
	s := &acctSuite{d: startDev(t, t.TempDir(), testkit.Postgres(t))}
	defer s.d.Close()
	s.admin = admin(t, s.d)
	testkit.Eventually(t, 20*time.Second, func() bool { return s.admin.do("GET", "/readyz", "").Status == 200 }, "never ready")

	customers := s.role(t, "Customers", "accounts:read", "accounts:write")
	operators := s.role(t, "Operators", "accounts:read", "accounts:write", "accounts:write:any")
	s.alice = s.user(t, customers, "alice@example.com", "Alice Example")
	s.bob = s.user(t, customers, "bob@example.com", "Bob Example")
	s.carol = s.user(t, customers, "carol@example.com", "Carol Example")
	s.operator = s.user(t, operators, "operator@example.com", "Operator")

	t.Run("Accounts", s.accounts)
	t.Run("RejectsBadAmounts", s.badAmounts)
	t.Run("ConcurrentWithdrawals", s.concurrentWithdrawals)
	t.Run("IfMatch", s.ifMatch)
	t.Run("Lifecycle", s.lifecycle)
	t.Run("Transfers", s.transfers)
	t.Run("PayPlans", s.payPlans)
	t.Run("Messages", s.messages)
	t.Run("WriteAnyWithoutReadAny", s.writeAnyWithoutReadAny)
	t.Run("AcceptsUppercaseIDs", s.uppercaseIDs)
}

// role creates a role holding perms.
func (s *acctSuite) role(t *testing.T, name string, perms ...string) string {
	t.Helper()
	role := s.admin.wait("POST", "/roles", `{"name":"`+name+`"}`, 201).str("id")
	for _, perm := range perms {
		r := s.admin.do("GET", "/permissions?name="+perm, "")
		items, _ := r.Body["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("permission %s: %s", perm, r.Raw)
		}
		id := items[0].(map[string]any)["id"].(string)
		s.admin.wait("POST", "/roles/"+role+"/permissions", `{"permission_id":"`+id+`"}`, 200)
	}
	return role
}

// user registers a user with role and signs them in.
func (s *acctSuite) user(t *testing.T, role, email, name string) acctUser {
	t.Helper()
	const pw = "a long enough secret"
	id := s.admin.wait("POST", "/users", `{"email":"`+email+`","name":"`+name+`","password":"`+pw+`"}`, 201).str("id")
	s.admin.wait("POST", "/users/"+id+"/roles", `{"role_id":"`+role+`"}`, 200)
	c := &client{t: t, base: s.d.URL()}
	c.login(email, pw)
	return acctUser{c: c, id: id, name: name}
}

// open opens an account of asset for u with Prefer: wait.
func (s *acctSuite) open(t *testing.T, u acctUser, asset, name string) reply {
	t.Helper()
	return u.in(t).wait("POST", "/accounts", `{"owner_user_id":"`+u.id+`","asset":"`+asset+`","name":"`+name+`"}`, 201)
}

// fund opens an account of asset for u holding amount.
func (s *acctSuite) fund(t *testing.T, u acctUser, asset, name, amount string) string {
	t.Helper()
	id := s.open(t, u, asset, name).str("id")
	if amount != "" {
		if r := u.in(t).wait("POST", "/accounts/"+id+"/deposits", `{"amount":"`+amount+`"}`, 200); r.str("balance") != amount {
			t.Fatalf("deposit %s: %s", amount, r.Raw)
		}
	}
	return id
}

// account reads an account as the admin.
func (s *acctSuite) account(t *testing.T, id string) reply {
	t.Helper()
	r := s.admin.in(t).do("GET", "/accounts/"+id, "")
	if r.Status != 200 {
		t.Fatalf("account %s: %d %s", id, r.Status, r.Raw)
	}
	return r
}

// state is an account's balance and version, as the read model has them.
func (s *acctSuite) state(t *testing.T, id string) string {
	t.Helper()
	r := s.account(t, id)
	return fmt.Sprintf("balance %s version %v", r.str("balance"), r.Body["version"])
}

func (s *acctSuite) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.d.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// commandsFor counts the commands recorded for an aggregate.
func (s *acctSuite) commandsFor(t *testing.T, aggregateID string) int {
	t.Helper()
	return s.count(t, `SELECT count(*) FROM strata.commands WHERE aggregate_id=$1`, aggregateID)
}

// items returns a list's items.
func listItems(t *testing.T, r reply) []map[string]any {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("list: %d %s", r.Status, r.Raw)
	}
	raw, ok := r.Body["items"].([]any)
	if !ok {
		t.Fatalf("no items: %s", r.Raw)
	}
	out := make([]map[string]any, len(raw))
	for i, it := range raw {
		out[i] = it.(map[string]any)
	}
	return out
}

// ids returns the ids of a list's items.
func listIDs(t *testing.T, r reply) []string {
	t.Helper()
	var out []string
	for _, it := range listItems(t, r) {
		out = append(out, it["id"].(string))
	}
	slices.Sort(out)
	return out
}

// pages reads every page of a list, limit items at a time.
func allPages(t *testing.T, c *client, path string, limit int) []map[string]any {
	t.Helper()
	var out []map[string]any
	next := path + "?limit=" + strconv.Itoa(limit)
	for n := 0; next != ""; n++ {
		r := c.do("GET", next, "")
		page := listItems(t, r)
		if len(page) > limit || n > 100 {
			t.Fatalf("page %d of %s: %s", n, path, r.Raw)
		}
		out = append(out, page...)
		next = ""
		if cur, ok := r.Body["next_cursor"].(string); ok {
			if len(page) != limit {
				t.Fatalf("a short page with a next cursor: %s", r.Raw)
			}
			next = path + "?limit=" + strconv.Itoa(limit) + "&cursor=" + url.QueryEscape(cur)
		} else if r.Body["next_cursor"] != nil {
			t.Fatalf("next_cursor %v", r.Body["next_cursor"])
		}
	}
	return out
}

func sortedStrings(xs ...string) []string { slices.Sort(xs); return xs }

func decimalOf(t *testing.T, s any) decimal.Decimal {
	t.Helper()
	str, ok := s.(string)
	if !ok {
		t.Fatalf("%v (%T) is not a decimal string", s, s)
	}
	d, err := decimal.NewFromString(str)
	if err != nil {
		t.Fatalf("%q: %v", str, err)
	}
	return d
}

func (s *acctSuite) accounts(t *testing.T) {
	alice, bob, admin := s.alice.in(t), s.bob.in(t), s.admin.in(t)

	r := s.open(t, s.alice, "EUR", "Savings")
	id := r.str("id")
	keys := make([]string, 0, len(r.Body))
	for k := range r.Body {
		keys = append(keys, k)
	}
	if want := sortedStrings("id", "owner_user_id", "owner_name", "asset", "name", "balance", "status", "pay_plan_id",
		"version", "opened_at", "updated_at"); fmt.Sprint(sortedStrings(keys...)) != fmt.Sprint(want) {
		t.Fatalf("account keys %v, want %v: %s", sortedStrings(keys...), want, r.Raw)
	}
	if r.str("owner_user_id") != s.alice.id || r.str("asset") != "EUR" || r.str("name") != "Savings" ||
		r.str("balance") != "0" || r.str("status") != "open" || r.Body["pay_plan_id"] != nil || r.Body["version"] != 1.0 ||
		r.str("opened_at") == "" || r.str("updated_at") == "" {
		t.Fatalf("opened account %s", r.Raw)
	}
	if n, ok := r.Body["owner_name"].(string); r.Body["owner_name"] != nil && (!ok || n != s.alice.name) {
		t.Fatalf("owner_name %v", r.Body["owner_name"])
	}
	if r.Header.Get("ETag") != `"1"` || r.Header.Get("Location") != "/accounts/"+id {
		t.Fatalf("headers %v", r.Header)
	}
	// The owner's name arrives from auth.user on its own schedule.
	testkit.Eventually(t, 10*time.Second, func() bool { return alice.do("GET", "/accounts/"+id, "").str("owner_name") == s.alice.name },
		"owner_name never became %q", s.alice.name)

	before := s.count(t, `SELECT count(*) FROM strata.commands`)
	expectCode(t, alice.do("POST", "/accounts", `{"owner_user_id":"`+s.bob.id+`","asset":"EUR","name":"Theirs"}`, "Prefer", "wait=5"), 403, "forbidden")
	expectCode(t, alice.do("POST", "/accounts", `{"owner_user_id":"`+s.alice.id+`","asset":"EUR","name":"Rich","balance":"1000"}`), 400, "validation_failed")
	expectCode(t, admin.do("POST", "/accounts", `{"owner_user_id":"`+commands.NewID()+`","asset":"EUR","name":"Nobody's"}`), 422, "owner_not_found")
	if after := s.count(t, `SELECT count(*) FROM strata.commands`); after != before {
		t.Fatalf("refused openings recorded %d commands", after-before)
	}

	r = alice.wait("POST", "/accounts/"+id+"/deposits", `{"amount":"100.5","reference":"salary"}`, 200)
	if r.str("balance") != "100.5" || r.Body["version"] != 2.0 || r.Header.Get("ETag") != `"2"` {
		t.Fatalf("deposit %s", r.Raw)
	}
	// Without Prefer: wait a write is accepted for later.
	r = alice.do("POST", "/accounts/"+id+"/deposits", `{"amount":"1"}`)
	if r.Status != 202 || r.str("aggregate_id") != id || r.Header.Get("Location") != r.str("status_url") {
		t.Fatalf("asynchronous deposit: %d %s", r.Status, r.Raw)
	}
	if st := alice.do("GET", r.str("status_url")+"?wait=10", ""); st.str("status") != "projected" || st.Body["version"] != 3.0 {
		t.Fatalf("asynchronous deposit's status %s", st.Raw)
	}
	alice.wait("POST", "/accounts/"+id+"/withdrawals", `{"amount":"1"}`, 200)
	expectCode(t, alice.wait("POST", "/accounts/"+id+"/withdrawals", `{"amount":"100.50000001"}`, 422), 422, "insufficient_funds")
	r = alice.wait("POST", "/accounts/"+id+"/withdrawals", `{"amount":"0.5"}`, 200)
	if r.str("balance") != "100" || r.Body["version"] != 5.0 {
		t.Fatalf("withdrawal %s", r.Raw)
	}

	second := s.open(t, s.alice, "USD", "Travel").str("id")
	bobs := s.open(t, s.bob, "EUR", "Bob's").str("id")
	if got, want := listIDs(t, alice.do("GET", "/accounts", "")), sortedStrings(id, second); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("alice lists %v, want %v", got, want)
	}
	if got := listIDs(t, bob.do("GET", "/accounts", "")); fmt.Sprint(got) != fmt.Sprint([]string{bobs}) {
		t.Fatalf("bob lists %v", got)
	}
	if got := listIDs(t, alice.do("GET", "/accounts?asset=USD", "")); fmt.Sprint(got) != fmt.Sprint([]string{second}) {
		t.Fatalf("alice's USD accounts %v", got)
	}
	expectCode(t, alice.do("GET", "/accounts?owner_user_id="+s.bob.id, ""), 403, "forbidden")
	all := listIDs(t, admin.do("GET", "/accounts?limit=200", ""))
	for _, want := range []string{id, second, bobs} {
		if !slices.Contains(all, want) {
			t.Fatalf("the admin's list %v lacks %s", all, want)
		}
	}
	if got, want := listIDs(t, admin.do("GET", "/accounts?owner_user_id="+s.alice.id, "")), sortedStrings(id, second); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("admin lists alice's %v, want %v", got, want)
	}
	if got := listIDs(t, admin.do("GET", "/accounts?owner_user_id="+s.bob.id+"&status=open", "")); fmt.Sprint(got) != fmt.Sprint([]string{bobs}) {
		t.Fatalf("admin lists bob's %v", got)
	}
	expectCode(t, admin.do("GET", "/accounts?status=weird", ""), 400, "invalid_query")
	expectCode(t, admin.do("GET", "/accounts?owner_user_id=nope", ""), 400, "invalid_query")

	// Another user sees nothing of alice's account and changes nothing.
	state, cmds := s.state(t, id), s.commandsFor(t, id)
	expectCode(t, bob.do("GET", "/accounts/"+id, ""), 404, "not_found")
	expectCode(t, bob.do("GET", "/accounts/"+id+"/ledger", ""), 404, "not_found")
	expectCode(t, bob.do("POST", "/accounts/"+id+"/deposits", `{"amount":"1"}`, "Prefer", "wait=5"), 404, "not_found")
	expectCode(t, bob.do("POST", "/accounts/"+id+"/withdrawals", `{"amount":"1"}`, "Prefer", "wait=5"), 404, "not_found")
	expectCode(t, bob.do("POST", "/accounts/"+id+"/close", "", "Prefer", "wait=5"), 404, "not_found")
	// A stale If-Match does not tell a stranger the version either: the
	// owner is checked first.
	expectCode(t, bob.do("POST", "/accounts/"+id+"/deposits", `{"amount":"1"}`, "Prefer", "wait=5", "If-Match", `"1"`), 404, "not_found")
	missing := bob.do("GET", "/accounts/"+commands.NewID(), "")
	expectCode(t, missing, 404, "not_found")
	if hidden := bob.do("GET", "/accounts/"+id, ""); hidden.str("detail") != missing.str("detail") {
		t.Fatalf("another user's account is distinguishable from none: %s / %s", hidden.Raw, missing.Raw)
	}
	if got := s.state(t, id); got != state {
		t.Fatalf("another user's requests changed the account: %s → %s", state, got)
	}
	// The aggregate refused them, as it refuses a command to no account:
	// four rejected not_found rows and nothing else.
	if n := s.commandsFor(t, id); n != cmds+4 {
		t.Fatalf("another user's requests recorded %d commands, want 4 rejections", n-cmds)
	}
	if n := s.count(t, `SELECT count(*) FROM strata.commands WHERE aggregate_id=$1 AND actor=$2
		AND NOT (status='rejected' AND code='not_found')`, id, s.bob.id); n != 0 {
		t.Fatalf("%d of another user's commands were not refused as not_found", n)
	}
	if n := s.count(t, `SELECT count(*) FROM account.events WHERE aggregate_id=$1`, id); n != 5 {
		t.Fatalf("alice's account has %d events, want 5", n)
	}
}

func (s *acctSuite) badAmounts(t *testing.T) {
	alice := s.alice.in(t)
	id := s.fund(t, s.alice, "EUR", "Amounts", "5")
	other := s.fund(t, s.alice, "EUR", "Amounts 2", "")
	state, cmds := s.state(t, id), s.commandsFor(t, id)
	actorCmds := s.count(t, `SELECT count(*) FROM strata.commands WHERE actor=$1`, s.alice.id)
	for _, amount := range []string{
		`"-1"`, `"0"`, `"1e3"`, `"0.000000001"`, `10.5`, `10`, `" 1"`, `"1 "`, `""`, `"abc"`,
		`"0.0"`, `"01"`, `"1."`, `".5"`, `"+1"`, `"100000000000000000000"`, `null`, `["1"]`,
	} {
		for _, path := range []string{"/deposits", "/withdrawals"} {
			r := alice.do("POST", "/accounts/"+id+path, `{"amount":`+amount+`}`, "Prefer", "wait=5")
			if r.Status != 400 || r.str("code") != "validation_failed" {
				t.Errorf("%s of %s: %d %s", path, amount, r.Status, r.Raw)
			}
		}
		r := alice.do("POST", "/transfers", `{"from_account_id":"`+id+`","to_account_id":"`+other+`","amount":`+amount+`}`, "Prefer", "wait=5")
		if r.Status != 400 || r.str("code") != "validation_failed" {
			t.Errorf("transfer of %s: %d %s", amount, r.Status, r.Raw)
		}
	}
	expectCode(t, alice.do("POST", "/accounts/"+id+"/deposits", `{}`), 400, "validation_failed")
	expectCode(t, alice.do("POST", "/accounts/"+id+"/deposits", `{"amount":"1","reference":"x","extra":1}`), 400, "validation_failed")
	if got := s.state(t, id); got != state {
		t.Fatalf("bad amounts changed the account: %s → %s", state, got)
	}
	if n := s.commandsFor(t, id); n != cmds {
		t.Fatalf("bad amounts recorded %d commands for the account", n-cmds)
	}
	if n := s.count(t, `SELECT count(*) FROM strata.commands WHERE actor=$1`, s.alice.id); n != actorCmds {
		t.Fatalf("bad amounts recorded %d commands", n-actorCmds)
	}
	// The longest amounts the contract allows are accepted, canonically.
	if r := alice.wait("POST", "/accounts/"+id+"/deposits", `{"amount":"0.00000001"}`, 200); r.str("balance") != "5.00000001" {
		t.Fatalf("smallest deposit %s", r.Raw)
	}
	if r := alice.wait("POST", "/accounts/"+id+"/deposits", `{"amount":"2.10"}`, 200); r.str("balance") != "7.10000001" {
		t.Fatalf("deposit with a trailing zero %s", r.Raw)
	}
}

func (s *acctSuite) concurrentWithdrawals(t *testing.T) {
	const n = 50
	id := s.fund(t, s.alice, "EUR", "Contended", "100")
	answers := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			r := s.alice.c.do("POST", "/accounts/"+id+"/withdrawals", `{"amount":"10"}`, "Prefer", "wait=30")
			answers <- strconv.Itoa(r.Status) + " " + r.str("code")
		})
	}
	wg.Wait()
	close(answers)
	got := map[string]int{}
	for a := range answers {
		got[a]++
	}
	if got["200 "] != 10 || got["422 insufficient_funds"] != 40 {
		t.Fatalf("50 withdrawals of 10 from 100 were answered %v; want 10 × 200 and 40 × 422 insufficient_funds", got)
	}
	if r := s.account(t, id); r.str("balance") != "0" || r.Body["version"] != 12.0 {
		t.Fatalf("after the withdrawals: %s", r.Raw)
	}

	entries := allPages(t, s.alice.in(t), "/accounts/"+id+"/ledger", 4)
	if len(entries) != 11 {
		t.Fatalf("%d ledger entries, want 11", len(entries))
	}
	running := decimal.Zero
	for i, e := range entries {
		for _, k := range []string{"account_id", "event_version", "kind", "amount", "running_balance", "reference", "transfer_id", "occurred_at"} {
			if _, ok := e[k]; !ok {
				t.Fatalf("entry %d lacks %q: %v", i, k, e)
			}
		}
		if e["account_id"] != id || e["event_version"] != float64(i+2) || e["transfer_id"] != nil {
			t.Fatalf("entry %d: %v", i, e)
		}
		if _, err := time.Parse(time.RFC3339Nano, e["occurred_at"].(string)); err != nil {
			t.Fatalf("entry %d occurred_at: %v", i, err)
		}
		running = running.Add(decimalOf(t, e["amount"]))
		balance := decimalOf(t, e["running_balance"])
		if balance.IsNegative() || !balance.Equal(running) {
			t.Fatalf("entry %d: running balance %s, the amounts add up to %s", i, balance, running)
		}
		wantKind, wantAmount := "withdrawal", "-10"
		if i == 0 {
			wantKind, wantAmount = "deposit", "100"
		}
		if e["kind"] != wantKind || e["amount"] != wantAmount {
			t.Fatalf("entry %d: %v", i, e)
		}
	}
	if !running.IsZero() {
		t.Fatalf("the ledger adds up to %s", running)
	}
	expectCode(t, s.alice.in(t).do("GET", "/accounts/"+id+"/ledger?cursor=bm90LWEtbnVtYmVy", ""), 400, "invalid_query")
	expectCode(t, s.alice.in(t).do("GET", "/accounts/"+id+"/ledger?limit=0", ""), 400, "invalid_query")
}

func (s *acctSuite) ifMatch(t *testing.T) {
	alice := s.alice.in(t)
	id := s.fund(t, s.alice, "EUR", "Versioned", "10") // version 2
	expectCode(t, alice.wait("POST", "/accounts/"+id+"/deposits", `{"amount":"1"}`, 412, "If-Match", `"1"`), 412, "version_conflict")
	if got := s.state(t, id); got != "balance 10 version 2" {
		t.Fatalf("a stale If-Match changed the account: %s", got)
	}
	tag := alice.do("GET", "/accounts/"+id, "").Header.Get("ETag")
	if tag != `"2"` {
		t.Fatalf("ETag %q", tag)
	}
	r := alice.wait("POST", "/accounts/"+id+"/deposits", `{"amount":"1"}`, 200, "If-Match", tag)
	if r.str("balance") != "11" || r.Header.Get("ETag") != `"3"` {
		t.Fatalf("deposit with the current ETag: %s %v", r.Raw, r.Header)
	}
	expectCode(t, alice.do("POST", "/accounts/"+id+"/deposits", `{"amount":"1"}`, "If-Match", "soon"), 400, "invalid_header")
	if g := alice.do("GET", "/accounts/"+id, "", "If-None-Match", `"3"`); g.Status != 304 {
		t.Fatalf("If-None-Match of the current ETag: %d", g.Status)
	}
}

func (s *acctSuite) lifecycle(t *testing.T) {
	alice, admin := s.alice.in(t), s.admin.in(t)
	id := s.fund(t, s.alice, "EUR", "Lifecycle", "50")

	r := admin.wait("POST", "/accounts/"+id+"/freeze", `{"reason":"chargeback under review"}`, 200)
	if r.str("status") != "frozen" {
		t.Fatalf("freeze %s", r.Raw)
	}
	expectCode(t, admin.wait("POST", "/accounts/"+id+"/freeze", "", 409), 409, "already_frozen")
	expectCode(t, alice.wait("POST", "/accounts/"+id+"/withdrawals", `{"amount":"1"}`, 409), 409, "account_frozen")
	if r := alice.wait("POST", "/accounts/"+id+"/deposits", `{"amount":"1"}`, 200); r.str("balance") != "51" || r.str("status") != "frozen" {
		t.Fatalf("deposit on a frozen account %s", r.Raw)
	}
	before := s.commandsFor(t, id)
	expectCode(t, alice.do("POST", "/accounts/"+id+"/unfreeze", "", "Prefer", "wait=5"), 403, "forbidden")
	expectCode(t, alice.do("POST", "/accounts/"+id+"/freeze", "", "Prefer", "wait=5"), 403, "forbidden")
	if n := s.commandsFor(t, id); n != before {
		t.Fatalf("the owner's freeze recorded %d commands", n-before)
	}
	if r := admin.wait("POST", "/accounts/"+id+"/unfreeze", "", 200); r.str("status") != "open" {
		t.Fatalf("unfreeze %s", r.Raw)
	}
	expectCode(t, admin.wait("POST", "/accounts/"+id+"/unfreeze", "", 409), 409, "not_frozen")
	if r := admin.wait("POST", "/accounts/"+id+"/freeze", "", 200); r.str("status") != "frozen" { // no body at all
		t.Fatalf("freeze without a body %s", r.Raw)
	}
	admin.wait("POST", "/accounts/"+id+"/unfreeze", "", 200)

	expectCode(t, alice.wait("POST", "/accounts/"+id+"/close", "", 409), 409, "balance_not_zero")
	alice.wait("POST", "/accounts/"+id+"/withdrawals", `{"amount":"51"}`, 200)
	r = alice.wait("POST", "/accounts/"+id+"/close", "", 200)
	if r.str("status") != "closed" || r.str("balance") != "0" {
		t.Fatalf("close %s", r.Raw)
	}
	expectCode(t, alice.wait("POST", "/accounts/"+id+"/deposits", `{"amount":"1"}`, 409), 409, "account_closed")
	expectCode(t, alice.wait("POST", "/accounts/"+id+"/close", "", 409), 409, "account_closed")
	expectCode(t, admin.wait("POST", "/accounts/"+id+"/freeze", "", 409), 409, "account_closed")
	if got := listIDs(t, alice.do("GET", "/accounts?status=closed", "")); fmt.Sprint(got) != fmt.Sprint([]string{id}) {
		t.Fatalf("alice's closed accounts %v", got)
	}
}

func (s *acctSuite) transfers(t *testing.T) {
	alice, bob, carol, admin := s.alice.in(t), s.bob.in(t), s.carol.in(t), s.admin.in(t)
	from := s.fund(t, s.alice, "EUR", "Transfers out", "100")
	to := s.fund(t, s.bob, "EUR", "Transfers in", "1")
	usd := s.fund(t, s.alice, "USD", "Dollars", "")
	body := func(from, to, amount string) string {
		return `{"from_account_id":"` + from + `","to_account_id":"` + to + `","amount":"` + amount + `"}`
	}

	r := alice.wait("POST", "/transfers", body(from, to, "30.25"), 201)
	id := r.str("id")
	if st := r.str("status"); (st != "requested" && st != "completed") || r.Header.Get("Location") != "/transfers/"+id {
		t.Fatalf("transfer %s %v", r.Raw, r.Header)
	}
	if r.str("from_account_id") != from || r.str("to_account_id") != to || r.str("amount") != "30.25" || r.str("asset") != "EUR" {
		t.Fatalf("transfer %s", r.Raw)
	}
	testkit.Eventually(t, 20*time.Second, func() bool { return alice.do("GET", "/transfers/"+id, "").str("status") == "completed" },
		"transfer %s never completed", id)
	r = alice.do("GET", "/transfers/"+id, "")
	if r.Body["code"] != nil || r.Body["reason"] != nil || r.Body["compensated"] != false {
		t.Fatalf("completed transfer %s", r.Raw)
	}
	// The transfer completes after the source's hold is settled; the read
	// models of the two aggregates catch up on their own schedules.
	testkit.Eventually(t, 10*time.Second, func() bool {
		return s.state(t, from) == "balance 69.75 version 4" && s.state(t, to) == "balance 31.25 version 3"
	}, "balances after the transfer")
	if f, to := s.state(t, from), s.state(t, to); f != "balance 69.75 version 4" || to != "balance 31.25 version 3" {
		t.Fatalf("after the transfer: %s / %s", f, to)
	}
	if r := bob.do("GET", "/transfers/"+id, ""); r.Status != 200 || r.str("status") != "completed" {
		t.Fatalf("the recipient reads the transfer: %d %s", r.Status, r.Raw)
	}
	expectCode(t, carol.do("GET", "/transfers/"+id, ""), 404, "not_found")

	last := func(c *client, acct string) map[string]any {
		es := allPages(t, c, "/accounts/"+acct+"/ledger", 50)
		return es[len(es)-1]
	}
	if e := last(alice, from); e["kind"] != "transfer_debit" || e["amount"] != "-30.25" || e["running_balance"] != "69.75" || e["transfer_id"] != id {
		t.Fatalf("source ledger %v", e)
	}
	if e := last(bob, to); e["kind"] != "transfer_credit" || e["amount"] != "30.25" || e["running_balance"] != "31.25" || e["transfer_id"] != id {
		t.Fatalf("target ledger %v", e)
	}

	expectCode(t, alice.wait("POST", "/transfers", body(from, to, "69.76"), 422), 422, "insufficient_funds")
	expectCode(t, alice.wait("POST", "/transfers", body(from, usd, "1"), 422), 422, "asset_mismatch")
	expectCode(t, alice.wait("POST", "/transfers", body(from, from, "1"), 422), 422, "same_account")
	expectCode(t, alice.wait("POST", "/transfers", body(to, from, "1"), 422), 422, "account_not_found")
	expectCode(t, alice.wait("POST", "/transfers", body(from, commands.NewID(), "1"), 422), 422, "account_not_found")
	if got := s.state(t, from); got != "balance 69.75 version 4" { // opened, deposit, debit, settled
		t.Fatalf("refused transfers changed the source: %s", got)
	}

	if got := listIDs(t, alice.do("GET", "/transfers", "")); fmt.Sprint(got) != fmt.Sprint([]string{id}) {
		t.Fatalf("alice lists transfers %v", got)
	}
	if got := listIDs(t, bob.do("GET", "/transfers", "")); fmt.Sprint(got) != fmt.Sprint([]string{id}) {
		t.Fatalf("bob lists transfers %v", got)
	}
	if got := listItems(t, carol.do("GET", "/transfers", "")); len(got) != 0 {
		t.Fatalf("carol lists transfers %v", got)
	}
	if got := listIDs(t, admin.do("GET", "/transfers?account_id="+to, "")); fmt.Sprint(got) != fmt.Sprint([]string{id}) {
		t.Fatalf("the admin lists the target's transfers %v", got)
	}
	if got := listItems(t, admin.do("GET", "/transfers?account_id="+usd, "")); len(got) != 0 {
		t.Fatalf("transfers of an account without any: %v", got)
	}
}

func (s *acctSuite) payPlans(t *testing.T) {
	admin, alice := s.admin.in(t), s.alice.in(t)
	r := admin.wait("POST", "/pay-plans", `{"name":"Pro","price":"9.90","currency":"EUR","interval":"monthly","features":["Support","API"]}`, 201)
	plan := r.str("id")
	if r.str("name") != "Pro" || r.str("price") != "9.9" || r.str("currency") != "EUR" || r.str("interval") != "monthly" ||
		fmt.Sprint(r.Body["features"]) != "[Support API]" || r.str("status") != "active" || r.Body["version"] != 1.0 ||
		r.Header.Get("Location") != "/pay-plans/"+plan {
		t.Fatalf("pay plan %s", r.Raw)
	}
	expectCode(t, admin.wait("POST", "/pay-plans", `{"name":"pRO","price":"1","currency":"EUR","interval":"yearly","features":[]}`, 409), 409, "pay_plan_exists")
	if r := admin.wait("POST", "/pay-plans/"+plan+"/price", `{"price":"12"}`, 200); r.str("price") != "12" || r.Body["version"] != 2.0 {
		t.Fatalf("price change %s", r.Raw)
	}
	if got := listIDs(t, admin.do("GET", "/pay-plans?name=pro", "")); fmt.Sprint(got) != fmt.Sprint([]string{plan}) {
		t.Fatalf("pay plans named pro: %v", got)
	}
	expectCode(t, alice.do("GET", "/pay-plans", ""), 403, "forbidden")

	acct := s.open(t, s.alice, "EUR", "Subscribed").str("id")
	other := s.open(t, s.alice, "EUR", "Unsubscribed").str("id")
	if r := alice.wait("POST", "/accounts/"+acct+"/pay-plan", `{"pay_plan_id":"`+plan+`"}`, 200); r.str("pay_plan_id") != plan {
		t.Fatalf("change pay plan %s", r.Raw)
	}
	expectCode(t, alice.wait("POST", "/accounts/"+acct+"/pay-plan", `{"pay_plan_id":"`+commands.NewID()+`"}`, 422), 422, "pay_plan_not_found")
	if r := admin.wait("POST", "/pay-plans/"+plan+"/retire", "", 200); r.str("status") != "retired" {
		t.Fatalf("retire %s", r.Raw)
	}
	expectCode(t, alice.wait("POST", "/accounts/"+other+"/pay-plan", `{"pay_plan_id":"`+plan+`"}`, 422), 422, "pay_plan_not_found")
	expectCode(t, admin.wait("POST", "/pay-plans/"+plan+"/price", `{"price":"13"}`, 409), 409, "pay_plan_retired")
	expectCode(t, admin.wait("POST", "/pay-plans/"+plan+"/retire", "", 409), 409, "pay_plan_retired")
	if r := admin.do("GET", "/pay-plans/"+plan, ""); r.str("price") != "12" || r.str("status") != "retired" || r.Header.Get("ETag") != `"3"` {
		t.Fatalf("retired plan %s", r.Raw)
	}
	if r := s.account(t, other); r.Body["pay_plan_id"] != nil {
		t.Fatalf("account moved onto a retired plan: %s", r.Raw)
	}
}

func (s *acctSuite) messages(t *testing.T) {
	admin := s.admin.in(t)
	r := admin.wait("POST", "/message-templates", `{"name":"Welcome","channel":"email","subject":"Hi {{name}}","body":"Hello {{ name }}"}`, 201)
	tpl := r.str("id")
	if fmt.Sprint(r.Body["placeholders"]) != "[name]" || r.str("channel") != "email" || r.str("subject") != "Hi {{name}}" {
		t.Fatalf("template %s", r.Raw)
	}
	expectCode(t, admin.wait("POST", "/message-templates", `{"name":"Text","channel":"sms","subject":"no","body":"Hello"}`, 422), 422, "invalid_template")
	expectCode(t, admin.wait("POST", "/message-templates", `{"name":"Bad","channel":"email","subject":"s","body":"Hello {{ 1name }}"}`, 422), 422, "invalid_template")
	expectCode(t, admin.wait("POST", "/message-templates", `{"name":"Unclosed","channel":"email","subject":"s","body":"Hello {{ name"}`, 422), 422, "invalid_template")
	expectCode(t, admin.wait("POST", "/message-templates", `{"name":"welcome","channel":"push","subject":"","body":"Hi"}`, 409), 409, "template_exists")

	g := admin.wait("POST", "/message-groups", `{"name":"Customers","description":"everyone who pays"}`, 201)
	group := g.str("id")
	if g.str("description") != "everyone who pays" || fmt.Sprint(g.Body["members"]) != "[]" {
		t.Fatalf("group %s", g.Raw)
	}
	expectCode(t, admin.wait("POST", "/message-groups/"+group+"/messages", `{"template_id":"`+tpl+`","variables":{"name":"Ada"}}`, 422), 422, "no_members")
	r = admin.wait("POST", "/message-groups/"+group+"/members", `{"user_id":"`+s.alice.id+`"}`, 200)
	members, _ := r.Body["members"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["user_id"] != s.alice.id {
		t.Fatalf("add member %s", r.Raw)
	}
	expectCode(t, admin.wait("POST", "/message-groups/"+group+"/members", `{"user_id":"`+s.alice.id+`"}`, 409), 409, "already_member")
	expectCode(t, admin.do("POST", "/message-groups/"+group+"/members", `{"user_id":"`+commands.NewID()+`"}`), 422, "user_not_found")

	admin.wait("POST", "/message-groups/"+group+"/messages", `{"template_id":"`+tpl+`","variables":{"name":"Ada","unused":"x"}}`, 200)
	msgs := listItems(t, admin.do("GET", "/message-groups/"+group+"/messages", ""))
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1: %v", len(msgs), msgs)
	}
	m := msgs[0]
	if m["recipient_user_id"] != s.alice.id || m["subject"] != "Hi Ada" || m["body"] != "Hello Ada" || m["channel"] != "email" ||
		m["group_id"] != group || m["template_id"] != tpl || m["position"] != 0.0 || m["recipient_name"] != s.alice.name {
		t.Fatalf("message %v", m)
	}
	if m["send_version"] != 3.0 || m["id"] != accountread.MessageID(group, 3, s.alice.id) || m["sent_at"] == nil {
		t.Fatalf("message %v: want id %s", m, accountread.MessageID(group, 3, s.alice.id))
	}
	expectCode(t, admin.wait("POST", "/message-groups/"+group+"/messages", `{"template_id":"`+tpl+`"}`, 422), 422, "missing_variable")
	expectCode(t, admin.wait("POST", "/message-groups/"+group+"/messages", `{"template_id":"`+commands.NewID()+`","variables":{"name":"Ada"}}`, 422), 422, "template_not_found")

	// A second member and a second send: the delivery log pages across sends.
	admin.wait("POST", "/message-groups/"+group+"/members", `{"user_id":"`+s.bob.id+`"}`, 200)
	admin.wait("POST", "/message-groups/"+group+"/messages", `{"template_id":"`+tpl+`","variables":{"name":"all"}}`, 200)
	all := allPages(t, admin, "/message-groups/"+group+"/messages", 1)
	var got []string
	for _, m := range all {
		got = append(got, fmt.Sprintf("%v/%v %v %v", m["send_version"], m["position"], m["recipient_user_id"] == s.bob.id, m["body"]))
	}
	if fmt.Sprint(got) != "[3/0 false Hello Ada 5/0 false Hello all 5/1 true Hello all]" {
		t.Fatalf("delivery log %q", got)
	}
	expectCode(t, admin.do("GET", "/message-groups/"+group+"/messages?cursor=bm9wZQ", ""), 400, "invalid_query")
	expectCode(t, admin.do("GET", "/message-groups/"+commands.NewID()+"/messages", ""), 404, "not_found")
	expectCode(t, s.alice.in(t).do("GET", "/message-groups/"+group+"/messages", ""), 403, "forbidden")

	r = admin.wait("PUT", "/message-templates/"+tpl, `{"name":"Welcome","subject":"Dear {{title}}","body":"Hello again"}`, 200)
	if r.str("subject") != "Dear {{title}}" || fmt.Sprint(r.Body["placeholders"]) != "[title]" || r.str("channel") != "email" {
		t.Fatalf("update %s", r.Raw)
	}
	admin.wait("DELETE", "/message-templates/"+tpl, "", 204)
	expectCode(t, admin.do("GET", "/message-templates/"+tpl, ""), 404, "not_found")
	expectCode(t, admin.wait("DELETE", "/message-templates/"+tpl, "", 409), 409, "aggregate_deleted")
	expectCode(t, admin.wait("POST", "/message-groups/"+group+"/messages", `{"template_id":"`+tpl+`","variables":{"title":"x"}}`, 422), 422, "template_not_found")

	r = admin.wait("DELETE", "/message-groups/"+group+"/members/"+s.alice.id, "", 200)
	members, _ = r.Body["members"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["user_id"] != s.bob.id {
		t.Fatalf("remove member %s", r.Raw)
	}
	expectCode(t, admin.wait("DELETE", "/message-groups/"+group+"/members/"+s.alice.id, "", 409), 409, "not_member")
}

// writeAnyWithoutReadAny: accounts:write:any lets the operator act on
// anyone's account, and the answer shows what the write changed; reading
// other users' accounts still needs accounts:read:any.
func (s *acctSuite) writeAnyWithoutReadAny(t *testing.T) {
	op := s.operator.in(t)
	acct := s.fund(t, s.alice, "EUR", "Operated", "20")
	bobs := s.fund(t, s.bob, "EUR", "Operated too", "")

	r := op.wait("POST", "/accounts/"+acct+"/freeze", `{"reason":"review"}`, 200)
	if r.str("id") != acct || r.str("status") != "frozen" || r.Header.Get("ETag") != `"3"` {
		t.Fatalf("freeze by the operator %s", r.Raw)
	}
	op.wait("POST", "/accounts/"+acct+"/unfreeze", "", 200)
	if r := op.wait("POST", "/accounts/"+acct+"/deposits", `{"amount":"1"}`, 200); r.str("balance") != "21" {
		t.Fatalf("deposit by the operator %s", r.Raw)
	}
	r = op.wait("POST", "/transfers", `{"from_account_id":"`+acct+`","to_account_id":"`+bobs+`","amount":"1"}`, 201)
	if r.str("status") != "completed" && r.str("status") != "requested" {
		t.Fatalf("transfer by the operator %s", r.Raw)
	}
	r = op.wait("POST", "/accounts", `{"owner_user_id":"`+s.bob.id+`","asset":"EUR","name":"Opened for Bob"}`, 201)
	if r.str("owner_user_id") != s.bob.id {
		t.Fatalf("opened for bob %s", r.Raw)
	}
	expectCode(t, op.do("GET", "/accounts/"+acct, ""), 404, "not_found")
	expectCode(t, op.do("GET", "/accounts/"+acct+"/ledger", ""), 404, "not_found")
	expectCode(t, op.do("GET", "/accounts?owner_user_id="+s.alice.id, ""), 403, "forbidden")
	if got := listItems(t, op.do("GET", "/accounts", "")); len(got) != 0 {
		t.Fatalf("the operator lists %v", got)
	}
	if got := listItems(t, op.do("GET", "/transfers", "")); len(got) != 0 {
		t.Fatalf("the operator lists transfers %v", got)
	}
}

// uppercaseIDs: a UUID names the same resource however its hex digits are
// cased, in a path and in a body, as the reads already do.
func (s *acctSuite) uppercaseIDs(t *testing.T) {
	alice := s.alice.in(t)
	r := alice.wait("POST", "/accounts", `{"owner_user_id":"`+strings.ToUpper(s.alice.id)+`","asset":"EUR","name":"Shouted"}`, 201)
	id := r.str("id")
	if r.str("owner_user_id") != s.alice.id {
		t.Fatalf("opened with an upper-case owner id: %s", r.Raw)
	}
	if got := listIDs(t, alice.do("GET", "/accounts?owner_user_id="+strings.ToUpper(s.alice.id)+"&asset=EUR&status=open", "")); !slices.Contains(got, id) {
		t.Fatalf("alice's accounts by her upper-case id: %v", got)
	}
	if r := alice.do("GET", "/accounts/"+strings.ToUpper(id), ""); r.Status != 200 || r.str("id") != id {
		t.Fatalf("GET by an upper-case id: %d %s", r.Status, r.Raw)
	}
	other := s.fund(t, s.alice, "EUR", "Shouted too", "")
	alice.wait("POST", "/accounts/"+id+"/deposits", `{"amount":"3"}`, 200)
	var errs []string
	if r := alice.do("POST", "/accounts/"+strings.ToUpper(id)+"/deposits", `{"amount":"1"}`, "Prefer", "wait=10"); r.Status != 200 || r.str("balance") != "4" {
		errs = append(errs, fmt.Sprintf("deposit through an upper-case path id: %d %s", r.Status, r.Raw))
	}
	if r := alice.do("POST", "/transfers", `{"from_account_id":"`+strings.ToUpper(id)+`","to_account_id":"`+strings.ToUpper(other)+`","amount":"1"}`,
		"Prefer", "wait=10"); r.Status != 201 || r.str("from_account_id") != id {
		errs = append(errs, fmt.Sprintf("transfer between upper-case account ids: %d %s", r.Status, r.Raw))
	}
	for _, e := range errs {
		t.Error(e)
	}
}
