package account_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	domain "github.com/strata-cqrs/strata/aggregates/account"
	authdomain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/projections"
	"github.com/strata-cqrs/strata/projections/account"
)

func registered(id, name string, minute int) *history {
	return aggregate(id).then(minute, authdomain.UserRegistered{Email: name + "@example.com", Name: name})
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	// Ada registers before her accounts open; Bob only after his did, in a
	// later batch; Cyd never.
	first := interleave(
		registered(ada, "Ada", 1),
		aggregate(basic).then(2, domain.PayPlanCreated{Name: "Basic", Price: "9", Currency: "EUR", Interval: "monthly"}),
		aggregate(acctA).
			then(10, domain.AssetAccountOpened{OwnerUserID: ada, Asset: "EUR", Name: "Main"}).
			then(11, domain.FundsDeposited{Amount: "0.1", Reference: "r1", Balance: "0.1"}).
			then(12, domain.FundsDeposited{Amount: "0.1", Reference: "r2", Balance: "0.2"}).
			then(13, domain.FundsDeposited{Amount: "0.1", Reference: "r3", Balance: "0.3"}).
			then(14, domain.PayPlanChanged{PayPlanID: basic}),
		aggregate(acctB).then(10, domain.AssetAccountOpened{OwnerUserID: bob, Asset: "EUR", Name: "Bob's"}),
		aggregate(acctC).
			then(10, domain.AssetAccountOpened{OwnerUserID: ada, Asset: "USD", Name: "Dollars"}).
			then(11, domain.FundsDeposited{Amount: "12345678901234567890.12345678", Balance: "12345678901234567890.12345678"}).
			then(12, domain.FundsWithdrawn{Amount: "0.00000001", Balance: "12345678901234567890.12345677"}),
		aggregate(acctD).
			then(10, domain.AssetAccountOpened{OwnerUserID: cyd, Asset: "EUR", Name: "Cyd's"}).
			then(11, domain.AccountFrozen{Reason: "audit"}).
			then(12, domain.AccountUnfrozen{}).
			then(13, domain.AccountFrozen{Reason: "again"}),
		aggregate(acctE).
			then(10, domain.AssetAccountOpened{OwnerUserID: ada, Asset: "EUR", Name: "Spare"}).
			then(11, domain.AccountClosed{}),
	)
	m := newModel(t, first)
	ctx := t.Context()

	t.Run("OwnerNameNullUntilRegistered", func(t *testing.T) {
		got, err := m.store.Account(ctx, acctB)
		if err != nil || got.OwnerName != nil {
			t.Fatalf("Account(B) = %+v, %v; want owner_name null before Bob registers", got, err)
		}
	})
	m.apply([]projections.Event{
		event(bob, 1, 20, authdomain.UserRegistered{Email: "bob@example.com", Name: "Bob"}),
		event(acctB, 2, 21, domain.FundsDeposited{Amount: "100", Reference: "salary", Balance: "100"}),
		event(acctB, 3, 22, domain.FundsWithdrawn{Amount: "99.5", Reference: "rent", Balance: "0.5"}),
	})

	t.Run("DepositsAddUpExactly", func(t *testing.T) {
		got, err := m.store.Account(ctx, acctA)
		want := account.Account{ID: acctA, OwnerUserID: ada, OwnerName: str("Ada"), Asset: "EUR", Name: "Main",
			Balance: "0.3", Status: "open", PayPlanID: str(basic), Version: 5, OpenedAt: at(10), UpdatedAt: at(14)}
		if err != nil || !sameAccount(got, want) {
			t.Fatalf("Account(A) = %s, %v\nwant %s", show(got), err, show(want))
		}
	})
	t.Run("OwnerNameFromLaterRegistration", func(t *testing.T) {
		got, err := m.store.Account(ctx, acctB)
		if err != nil || deref(got.OwnerName) != "Bob" || got.Balance != "0.5" || got.Version != 3 {
			t.Fatalf("Account(B) = %s, %v; want Bob's, balance 0.5 at version 3", show(got), err)
		}
	})
	t.Run("NeverRegisteredOwnerHasNoName", func(t *testing.T) {
		got, err := m.store.Account(ctx, acctD)
		if err != nil || got.OwnerName != nil || got.Status != "frozen" || got.Version != 4 || !got.UpdatedAt.Equal(at(13)) {
			t.Fatalf("Account(D) = %s, %v; want frozen at version 4 without owner name", show(got), err)
		}
	})
	t.Run("LargeBalanceIsExact", func(t *testing.T) {
		got, err := m.store.Account(ctx, acctC)
		if err != nil || got.Balance != "12345678901234567890.12345677" {
			t.Fatalf("Account(C) balance = %q, %v", got.Balance, err)
		}
	})
	t.Run("ClosedAndWithoutPayPlan", func(t *testing.T) {
		got, err := m.store.Account(ctx, acctE)
		if err != nil || got.Status != "closed" || got.PayPlanID != nil || got.Balance != "0" {
			t.Fatalf("Account(E) = %s, %v; want closed, balance 0, no pay plan", show(got), err)
		}
	})
	t.Run("MissingIsNotFound", func(t *testing.T) {
		for _, id := range []string{missing, "not-a-uuid", ""} {
			if _, err := m.store.Account(ctx, id); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("Account(%q) error = %v, want ErrNotFound", id, err)
			}
		}
	})
	t.Run("LedgerHasRunningBalances", func(t *testing.T) {
		got, err := m.store.Ledger(ctx, acctA, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []account.LedgerEntry{
			{AccountID: acctA, EventVersion: 2, Kind: "deposit", Amount: "0.1", RunningBalance: "0.1", Reference: "r1", OccurredAt: at(11)},
			{AccountID: acctA, EventVersion: 3, Kind: "deposit", Amount: "0.1", RunningBalance: "0.2", Reference: "r2", OccurredAt: at(12)},
			{AccountID: acctA, EventVersion: 4, Kind: "deposit", Amount: "0.1", RunningBalance: "0.3", Reference: "r3", OccurredAt: at(13)},
		}
		checkLedger(t, got, want)
	})
	t.Run("LedgerDebitsAreNegative", func(t *testing.T) {
		got, err := m.store.Ledger(ctx, acctB, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []account.LedgerEntry{
			{AccountID: acctB, EventVersion: 2, Kind: "deposit", Amount: "100", RunningBalance: "100", Reference: "salary", OccurredAt: at(21)},
			{AccountID: acctB, EventVersion: 3, Kind: "withdrawal", Amount: "-99.5", RunningBalance: "0.5", Reference: "rent", OccurredAt: at(22)},
		}
		checkLedger(t, got, want)
		got, err = m.store.Ledger(ctx, acctC, 0, 10)
		if err != nil || len(got) != 2 || got[1].Amount != "-0.00000001" || got[1].RunningBalance != "12345678901234567890.12345677" {
			t.Fatalf("Ledger(C) = %+v, %v", got, err)
		}
	})
	t.Run("LedgerPages", func(t *testing.T) {
		got, err := m.store.Ledger(ctx, acctA, 2, 1)
		if err != nil || len(got) != 1 || got[0].EventVersion != 3 {
			t.Fatalf("Ledger(A, after 2, limit 1) = %+v, %v; want version 3 only", got, err)
		}
		for _, id := range []string{missing, "not-a-uuid"} {
			if got, err := m.store.Ledger(ctx, id, 0, 10); err != nil || len(got) != 0 {
				t.Errorf("Ledger(%q) = %+v, %v; want none", id, got, err)
			}
		}
	})
	type list = account.AccountFilter
	lp := func(limit int, after string) projections.ListParams {
		return projections.ListParams{Limit: limit, After: after}
	}
	for _, c := range []struct {
		name   string
		filter list
		want   []string
	}{
		{"ListsInIDOrder", list{ListParams: lp(10, "")}, []string{acctA, acctB, acctC, acctD, acctE}},
		{"PagesByLimit", list{ListParams: lp(2, "")}, []string{acctA, acctB}},
		{"PagesAfterCursor", list{ListParams: lp(2, acctB)}, []string{acctC, acctD}},
		{"PagesPastTheEnd", list{ListParams: lp(2, acctE)}, nil},
		{"FiltersByOwner", list{ListParams: lp(10, ""), Owner: ada}, []string{acctA, acctC, acctE}},
		{"FiltersByOwnerAfterCursor", list{ListParams: lp(10, acctA), Owner: ada}, []string{acctC, acctE}},
		{"FiltersByAsset", list{ListParams: lp(10, ""), Asset: "USD"}, []string{acctC}},
		{"FiltersByStatus", list{ListParams: lp(10, ""), Status: "frozen"}, []string{acctD}},
		{"FiltersCombine", list{ListParams: lp(10, ""), Owner: ada, Asset: "EUR", Status: "open"}, []string{acctA}},
		{"UnknownOwnerHasNone", list{ListParams: lp(10, ""), Owner: missing}, nil},
		{"InvalidOwnerHasNone", list{ListParams: lp(10, ""), Owner: "nobody"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.store.Accounts(ctx, c.filter)
			if err != nil {
				t.Fatal(err)
			}
			if ids := idsOf(got, func(a account.Account) string { return a.ID }); !reflect.DeepEqual(ids, c.want) {
				t.Fatalf("Accounts(%+v) = %v, want %v", c.filter, ids, c.want)
			}
		})
	}
	t.Run("ListCarriesOwnerNames", func(t *testing.T) {
		got, err := m.store.Accounts(ctx, list{ListParams: lp(10, "")})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range got {
			names = append(names, deref(a.OwnerName))
		}
		if want := []string{"Ada", "Bob", "Ada", "<nil>", "Ada"}; !reflect.DeepEqual(names, want) {
			t.Fatalf("owner names = %v, want %v", names, want)
		}
	})
}

func TestTransfers(t *testing.T) {
	t.Parallel()
	accounts := interleave(
		registered(ada, "Ada", 1), registered(bob, "Bob", 1),
		aggregate(acctA).
			then(2, domain.AssetAccountOpened{OwnerUserID: ada, Asset: "EUR", Name: "A"}).
			then(3, domain.FundsDeposited{Amount: "50", Reference: "start", Balance: "50"}),
		aggregate(acctB).then(2, domain.AssetAccountOpened{OwnerUserID: bob, Asset: "EUR", Name: "B"}),
		aggregate(t1).then(10, domain.TransferRequested{FromAccountID: acctA, ToAccountID: acctB, Amount: "10", Asset: "EUR"}),
	)
	m := newModel(t, accounts)
	ctx := t.Context()

	t.Run("RequestedFirst", func(t *testing.T) {
		got, err := m.store.Transfer(ctx, t1)
		if err != nil || got.Status != "requested" || got.Code != nil || got.Reason != nil || got.Compensated ||
			got.Version != 1 || got.Amount != "10" || !got.RequestedAt.Equal(at(10)) || !got.UpdatedAt.Equal(at(10)) {
			t.Fatalf("Transfer(t1) = %s, %v; want requested at version 1", show(got), err)
		}
	})

	// t1 completes; t2's debit is reversed after its credit failed; t3 fails
	// before any debit; tX names accounts the read model never sees.
	m.apply(interleave(
		aggregate(acctA).from(3).
			then(11, domain.FundsWithdrawn{Amount: "10", Reference: "transfer " + t1, Balance: "40", TransferID: t1}).
			then(14, domain.TransferSettled{TransferID: t1}).
			then(20, domain.FundsWithdrawn{Amount: "5", Reference: "transfer " + t2, Balance: "35", TransferID: t2}).
			then(22, domain.TransferDebitReversed{TransferID: t2, Amount: "5", Balance: "40"}),
		aggregate(acctB).from(2).
			then(12, domain.FundsDeposited{Amount: "10", Reference: "transfer " + t1, Balance: "10", TransferID: t1}),
		aggregate(t1).from(2).then(13, domain.TransferCompleted{}),
		aggregate(t2).
			then(19, domain.TransferRequested{FromAccountID: acctA, ToAccountID: acctB, Amount: "5", Asset: "EUR"}).
			then(23, domain.TransferFailed{Code: "account_closed", Reason: "account B is closed", Compensated: true}),
		aggregate(t3).
			then(30, domain.TransferRequested{FromAccountID: acctB, ToAccountID: acctA, Amount: "1000", Asset: "EUR"}).
			then(31, domain.TransferFailed{Code: "insufficient_funds", Reason: "balance 10 EUR is less than 1000"}),
		aggregate(tX).then(40, domain.TransferRequested{FromAccountID: missing, ToAccountID: acctC, Amount: "1", Asset: "EUR"}),
	))

	t.Run("Completed", func(t *testing.T) {
		got, err := m.store.Transfer(ctx, t1)
		want := account.Transfer{ID: t1, FromAccountID: acctA, ToAccountID: acctB, Amount: "10", Asset: "EUR",
			Status: "completed", Version: 2, RequestedAt: at(10), UpdatedAt: at(13), FromOwner: ada, ToOwner: bob}
		if err != nil || !sameTransfer(got, want) {
			t.Fatalf("Transfer(t1) = %s, %v\nwant %s", show(got), err, show(want))
		}
	})
	t.Run("FailedCompensated", func(t *testing.T) {
		got, err := m.store.Transfer(ctx, t2)
		if err != nil || got.Status != "failed" || deref(got.Code) != "account_closed" ||
			deref(got.Reason) != "account B is closed" || !got.Compensated || got.Version != 2 || !got.UpdatedAt.Equal(at(23)) {
			t.Fatalf("Transfer(t2) = %s, %v; want failed, compensated", show(got), err)
		}
	})
	t.Run("FailedUncompensated", func(t *testing.T) {
		got, err := m.store.Transfer(ctx, t3)
		if err != nil || got.Status != "failed" || deref(got.Code) != "insufficient_funds" || got.Compensated ||
			got.FromOwner != bob || got.ToOwner != ada {
			t.Fatalf("Transfer(t3) = %s, %v; want failed, not compensated, from Bob to Ada", show(got), err)
		}
	})
	t.Run("UnknownAccountsHaveNoOwners", func(t *testing.T) {
		got, err := m.store.Transfer(ctx, tX)
		if err != nil || got.FromOwner != "" || got.ToOwner != "" || got.Status != "requested" {
			t.Fatalf("Transfer(tX) = %s, %v; want requested with no owners", show(got), err)
		}
	})
	t.Run("MissingIsNotFound", func(t *testing.T) {
		if _, err := m.store.Transfer(ctx, missing); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("Transfer(missing) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("SourceLedger", func(t *testing.T) {
		got, err := m.store.Ledger(ctx, acctA, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []account.LedgerEntry{
			{AccountID: acctA, EventVersion: 2, Kind: "deposit", Amount: "50", RunningBalance: "50", Reference: "start", OccurredAt: at(3)},
			{AccountID: acctA, EventVersion: 3, Kind: "transfer_debit", Amount: "-10", RunningBalance: "40", Reference: "transfer " + t1, TransferID: str(t1), OccurredAt: at(11)},
			{AccountID: acctA, EventVersion: 5, Kind: "transfer_debit", Amount: "-5", RunningBalance: "35", Reference: "transfer " + t2, TransferID: str(t2), OccurredAt: at(20)},
			{AccountID: acctA, EventVersion: 6, Kind: "transfer_reversal", Amount: "5", RunningBalance: "40", Reference: "transfer " + t2, TransferID: str(t2), OccurredAt: at(22)},
		}
		checkLedger(t, got, want)
		a, err := m.store.Account(ctx, acctA)
		if err != nil || a.Balance != "40" || a.Version != 6 || !a.UpdatedAt.Equal(at(22)) {
			t.Fatalf("Account(A) = %s, %v; want balance 40 at version 6", show(a), err)
		}
	})
	t.Run("TargetLedger", func(t *testing.T) {
		got, err := m.store.Ledger(ctx, acctB, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		checkLedger(t, got, []account.LedgerEntry{
			{AccountID: acctB, EventVersion: 2, Kind: "transfer_credit", Amount: "10", RunningBalance: "10", Reference: "transfer " + t1, TransferID: str(t1), OccurredAt: at(12)},
		})
	})
	type list = account.TransferFilter
	lp := func(limit int, after string) projections.ListParams {
		return projections.ListParams{Limit: limit, After: after}
	}
	for _, c := range []struct {
		name   string
		filter list
		want   []string
	}{
		{"ListsInIDOrder", list{ListParams: lp(10, "")}, []string{t1, t2, t3, tX}},
		{"PagesByLimit", list{ListParams: lp(2, "")}, []string{t1, t2}},
		{"PagesAfterCursor", list{ListParams: lp(10, t2)}, []string{t3, tX}},
		{"FiltersByAccount", list{ListParams: lp(10, ""), Account: acctB}, []string{t1, t2, t3}},
		{"FiltersByTargetAccount", list{ListParams: lp(10, ""), Account: acctC}, []string{tX}},
		{"FiltersByAccountAfterCursor", list{ListParams: lp(1, t1), Account: acctA}, []string{t2}},
		{"FiltersByOwner", list{ListParams: lp(10, ""), Owner: bob}, []string{t1, t2, t3}},
		{"OwnerOfNoAccountSeesNone", list{ListParams: lp(10, ""), Owner: cyd}, nil},
		{"FiltersCombine", list{ListParams: lp(10, ""), Account: acctC, Owner: ada}, nil},
		{"InvalidAccountHasNone", list{ListParams: lp(10, ""), Account: "x"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.store.Transfers(ctx, c.filter)
			if err != nil {
				t.Fatal(err)
			}
			if ids := idsOf(got, func(x account.Transfer) string { return x.ID }); !reflect.DeepEqual(ids, c.want) {
				t.Fatalf("Transfers(%+v) = %v, want %v", c.filter, ids, c.want)
			}
		})
	}
}

func TestPayPlans(t *testing.T) {
	t.Parallel()
	m := newModel(t, interleave(
		aggregate(basic).
			then(1, domain.PayPlanCreated{Name: "Basic", Price: "9.9", Currency: "EUR", Interval: "monthly", Features: []string{"ledger", "transfers"}}).
			then(2, domain.PayPlanPriceChanged{Price: "12.50", PreviousPrice: "9.9"}),
		aggregate(pro).
			then(1, domain.PayPlanCreated{Name: "Pro", Price: "0", Currency: "USD", Interval: "yearly"}).
			then(3, domain.PayPlanRetired{}),
	))
	ctx := t.Context()

	t.Run("PriceChanged", func(t *testing.T) {
		got, err := m.store.PayPlan(ctx, basic)
		want := account.PayPlan{ID: basic, Name: "Basic", Price: "12.5", Currency: "EUR", Interval: "monthly",
			Features: []string{"ledger", "transfers"}, Status: "active", Version: 2, CreatedAt: at(1), UpdatedAt: at(2)}
		if err != nil || !reflect.DeepEqual(norm(got), norm(want)) {
			t.Fatalf("PayPlan(basic) = %s, %v\nwant %s", show(got), err, show(want))
		}
	})
	t.Run("Retired", func(t *testing.T) {
		got, err := m.store.PayPlan(ctx, pro)
		if err != nil || got.Status != "retired" || got.Price != "0" || got.Version != 2 || got.Features == nil || len(got.Features) != 0 {
			t.Fatalf("PayPlan(pro) = %s, %v; want retired, free, with features []", show(got), err)
		}
	})
	t.Run("MissingIsNotFound", func(t *testing.T) {
		if _, err := m.store.PayPlan(ctx, missing); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("PayPlan(missing) error = %v, want ErrNotFound", err)
		}
	})
	for _, c := range []struct {
		name   string
		params projections.ListParams
		want   []string
	}{
		{"ListsRetiredToo", projections.ListParams{Limit: 10}, []string{basic, pro}},
		{"PagesByLimit", projections.ListParams{Limit: 1}, []string{basic}},
		{"PagesAfterCursor", projections.ListParams{Limit: 10, After: basic}, []string{pro}},
		{"FiltersByNameIgnoringCase", projections.ListParams{Limit: 10, Name: "pRO"}, []string{pro}},
		{"FiltersByWholeName", projections.ListParams{Limit: 10, Name: "Bas"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.store.PayPlans(ctx, c.params)
			if err != nil {
				t.Fatal(err)
			}
			if ids := idsOf(got, func(p account.PayPlan) string { return p.ID }); !reflect.DeepEqual(ids, c.want) {
				t.Fatalf("PayPlans(%+v) = %v, want %v", c.params, ids, c.want)
			}
		})
	}
}

func TestMessageTemplates(t *testing.T) {
	t.Parallel()
	m := newModel(t, interleave(
		aggregate(welcome).
			then(1, domain.MessageTemplateCreated{Name: "Welcome", Channel: "email", Subject: "Hi {{name}}", Body: "Welcome", Placeholders: []string{"name"}}).
			then(2, domain.MessageTemplateUpdated{Name: "Welcome!", Subject: "Hello {{name}}", Body: "Dear {{name}}, {{msg}}", Placeholders: []string{"msg", "name"}}),
		aggregate(sms).then(1, domain.MessageTemplateCreated{Name: "Ping", Channel: "sms", Body: "ping"}),
		aggregate(old).
			then(1, domain.MessageTemplateCreated{Name: "Old", Channel: "push", Body: "old", Placeholders: []string{}}).
			then(3, domain.MessageTemplateDeleted{Name: "Old"}),
	))
	ctx := t.Context()

	t.Run("Updated", func(t *testing.T) {
		got, err := m.store.MessageTemplate(ctx, welcome)
		want := account.MessageTemplate{ID: welcome, Name: "Welcome!", Channel: "email", Subject: "Hello {{name}}",
			Body: "Dear {{name}}, {{msg}}", Placeholders: []string{"msg", "name"}, Version: 2, CreatedAt: at(1), UpdatedAt: at(2)}
		if err != nil || !reflect.DeepEqual(norm(got), norm(want)) {
			t.Fatalf("MessageTemplate(welcome) = %s, %v\nwant %s", show(got), err, show(want))
		}
	})
	t.Run("NoPlaceholdersIsEmptyList", func(t *testing.T) {
		got, err := m.store.MessageTemplate(ctx, sms)
		if err != nil || got.Placeholders == nil || len(got.Placeholders) != 0 || got.Subject != "" {
			t.Fatalf("MessageTemplate(sms) = %s, %v; want placeholders []", show(got), err)
		}
	})
	t.Run("DeletedIsNotFound", func(t *testing.T) {
		if _, err := m.store.MessageTemplate(ctx, old); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("MessageTemplate(deleted) error = %v, want ErrNotFound", err)
		}
		if n := m.count(`SELECT count(*) FROM account_read.message_templates WHERE id=$1`, old); n != 0 {
			t.Fatalf("the deleted template's row remains (%d)", n)
		}
	})
	for _, c := range []struct {
		name   string
		params projections.ListParams
		want   []string
	}{
		{"ListsWithoutDeleted", projections.ListParams{Limit: 10}, []string{welcome, sms}},
		{"PagesAfterCursor", projections.ListParams{Limit: 10, After: welcome}, []string{sms}},
		{"FiltersByCurrentName", projections.ListParams{Limit: 10, Name: "WELCOME!"}, []string{welcome}},
		{"ForgetsOldName", projections.ListParams{Limit: 10, Name: "Welcome"}, nil},
		{"FiltersOutDeleted", projections.ListParams{Limit: 10, Name: "old"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.store.MessageTemplates(ctx, c.params)
			if err != nil {
				t.Fatal(err)
			}
			if ids := idsOf(got, func(x account.MessageTemplate) string { return x.ID }); !reflect.DeepEqual(ids, c.want) {
				t.Fatalf("MessageTemplates(%+v) = %v, want %v", c.params, ids, c.want)
			}
		})
	}
}

func TestMessageGroups(t *testing.T) {
	t.Parallel()
	send := func(recipients ...string) domain.GroupMessageSent {
		return domain.GroupMessageSent{TemplateID: welcome, Channel: "email", Subject: "Hello", Body: "Dear all", Recipients: recipients}
	}
	// Bob registers only after the sends, in a later batch.
	m := newModel(t, interleave(
		registered(ada, "Ada", 1),
		aggregate(team).
			then(2, domain.MessageGroupCreated{Name: "Team", Description: "everyone"}).
			then(3, domain.GroupMemberAdded{UserID: ada}).
			then(4, domain.GroupMemberAdded{UserID: cyd}).
			then(5, domain.GroupMemberAdded{UserID: bob}).
			then(6, domain.GroupMemberRemoved{UserID: cyd}).
			then(7, send(ada, bob)). // version 6
			then(8, domain.GroupMemberAdded{UserID: cyd}).
			then(9, send(ada, bob, cyd)), // version 8
		aggregate(quiet).then(2, domain.MessageGroupCreated{Name: "Quiet"}),
	), []projections.Event{event(bob, 1, 20, authdomain.UserRegistered{Email: "bob@example.com", Name: "Bob"})})
	ctx := t.Context()

	t.Run("MembersInJoinOrderWithNames", func(t *testing.T) {
		got, err := m.store.MessageGroup(ctx, team)
		if err != nil {
			t.Fatal(err)
		}
		want := []account.Member{{UserID: ada, Name: str("Ada"), AddedAt: at(3)}, {UserID: bob, Name: str("Bob"), AddedAt: at(5)},
			{UserID: cyd, AddedAt: at(8)}}
		if !reflect.DeepEqual(norm(got.Members), norm(want)) || got.Version != 8 || got.Name != "Team" ||
			got.Description != "everyone" || !got.CreatedAt.Equal(at(2)) || !got.UpdatedAt.Equal(at(9)) {
			t.Fatalf("MessageGroup(team) = %s\nwant members %s at version 8", show(got), show(want))
		}
	})
	t.Run("NoMembersIsEmptyList", func(t *testing.T) {
		got, err := m.store.MessageGroup(ctx, quiet)
		if err != nil || got.Members == nil || len(got.Members) != 0 {
			t.Fatalf("MessageGroup(quiet) = %s, %v; want members []", show(got), err)
		}
	})
	t.Run("MissingIsNotFound", func(t *testing.T) {
		if _, err := m.store.MessageGroup(ctx, missing); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("MessageGroup(missing) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("OneMessagePerRecipient", func(t *testing.T) {
		got, err := m.store.Messages(ctx, team, account.MessageCursor{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		msg := func(v int64, pos int, user string, name *string, minute int) account.Message {
			return account.Message{ID: account.MessageID(team, v, user), GroupID: team, SendVersion: v, Position: pos,
				TemplateID: welcome, RecipientUserID: user, RecipientName: name, Channel: "email", Subject: "Hello",
				Body: "Dear all", SentAt: at(minute)}
		}
		want := []account.Message{
			msg(6, 0, ada, str("Ada"), 7), msg(6, 1, bob, str("Bob"), 7),
			msg(8, 0, ada, str("Ada"), 9), msg(8, 1, bob, str("Bob"), 9), msg(8, 2, cyd, nil, 9),
		}
		if !reflect.DeepEqual(norm(got), norm(want)) {
			t.Fatalf("Messages(team) = %s\nwant %s", show(got), show(want))
		}
		ids := slices.Sorted(slices.Values(idsOf(got, func(x account.Message) string { return x.ID })))
		if len(slices.Compact(ids)) != len(got) {
			t.Fatalf("message ids %v are not distinct", ids)
		}
	})
	t.Run("MessagesPageByCursor", func(t *testing.T) {
		for _, c := range []struct {
			after account.MessageCursor
			limit int
			want  [][2]int64
		}{
			{account.MessageCursor{}, 2, [][2]int64{{6, 0}, {6, 1}}},
			{account.MessageCursor{Version: 6, Position: 1}, 2, [][2]int64{{8, 0}, {8, 1}}},
			{account.MessageCursor{Version: 8, Position: 1}, 10, [][2]int64{{8, 2}}},
			{account.MessageCursor{Version: 8, Position: 2}, 10, nil},
		} {
			got, err := m.store.Messages(ctx, team, c.after, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			var keys [][2]int64
			for _, x := range got {
				keys = append(keys, [2]int64{x.SendVersion, int64(x.Position)})
			}
			if !reflect.DeepEqual(keys, c.want) {
				t.Errorf("Messages(after %+v, limit %d) = %v, want %v", c.after, c.limit, keys, c.want)
			}
		}
		for _, id := range []string{quiet, missing, "nope"} {
			if got, err := m.store.Messages(ctx, id, account.MessageCursor{}, 10); err != nil || len(got) != 0 {
				t.Errorf("Messages(%q) = %v, %v; want none", id, got, err)
			}
		}
	})
	for _, c := range []struct {
		name   string
		params projections.ListParams
		want   []string
	}{
		{"ListsInIDOrder", projections.ListParams{Limit: 10}, []string{team, quiet}},
		{"PagesAfterCursor", projections.ListParams{Limit: 10, After: team}, []string{quiet}},
		{"FiltersByNameIgnoringCase", projections.ListParams{Limit: 10, Name: "quiet"}, []string{quiet}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.store.MessageGroups(ctx, c.params)
			if err != nil {
				t.Fatal(err)
			}
			if ids := idsOf(got, func(x account.MessageGroup) string { return x.ID }); !reflect.DeepEqual(ids, c.want) {
				t.Fatalf("MessageGroups(%+v) = %v, want %v", c.params, ids, c.want)
			}
		})
	}
	t.Run("ListCarriesMembers", func(t *testing.T) {
		got, err := m.store.MessageGroups(ctx, projections.ListParams{Limit: 1})
		if err != nil || len(got) != 1 || len(got[0].Members) != 3 {
			t.Fatalf("MessageGroups = %s, %v; want the team with its 3 members", show(got), err)
		}
	})
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	a := account.MessageID(team, 6, ada)
	if a != account.MessageID(team, 6, ada) {
		t.Fatal("MessageID is not deterministic")
	}
	if b := account.MessageID("0197B000-0000-7000-8000-000000000501", 6, "0197B000-0000-7000-8000-0000000000A1"); b != a {
		t.Errorf("MessageID of upper-case ids = %s, want %s", b, a)
	}
	for _, other := range []string{account.MessageID(team, 7, ada), account.MessageID(team, 6, bob), account.MessageID(quiet, 6, ada)} {
		if other == a {
			t.Errorf("MessageID collides: %s", other)
		}
	}
}

// TestReapplyingChangesNothing applies every batch twice, as a projector
// without its version bookkeeping would.
func TestReapplyingChangesNothing(t *testing.T) {
	t.Parallel()
	batch := interleave(
		registered(ada, "Ada", 1),
		aggregate(acctA).
			then(10, domain.AssetAccountOpened{OwnerUserID: ada, Asset: "EUR", Name: "Main"}).
			then(11, domain.FundsDeposited{Amount: "0.1", Balance: "0.1"}).
			then(12, domain.FundsWithdrawn{Amount: "0.05", Balance: "0.05", TransferID: t1}).
			then(13, domain.AccountFrozen{}),
		aggregate(t1).
			then(10, domain.TransferRequested{FromAccountID: acctA, ToAccountID: acctB, Amount: "0.05", Asset: "EUR"}).
			then(11, domain.TransferFailed{Code: "x", Reason: "y"}),
		aggregate(basic).then(1, domain.PayPlanCreated{Name: "Basic", Price: "1", Currency: "EUR", Interval: "monthly"}),
		aggregate(welcome).then(1, domain.MessageTemplateCreated{Name: "W", Channel: "sms", Body: "b"}),
		aggregate(team).
			then(2, domain.MessageGroupCreated{Name: "Team"}).
			then(3, domain.GroupMemberAdded{UserID: ada}).
			then(4, domain.GroupMessageSent{TemplateID: welcome, Channel: "sms", Body: "b", Recipients: []string{ada}}),
	)
	m := newModel(t, batch)
	snapshot := func() string {
		a, err1 := m.store.Account(t.Context(), acctA)
		l, err2 := m.store.Ledger(t.Context(), acctA, 0, 10)
		x, err3 := m.store.Transfer(t.Context(), t1)
		g, err4 := m.store.MessageGroup(t.Context(), team)
		ms, err5 := m.store.Messages(t.Context(), team, account.MessageCursor{}, 10)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			t.Fatal(err)
		}
		return show(a) + show(l) + show(x) + show(g) + show(ms)
	}
	before := snapshot()
	m.apply(batch, batch[:3])
	if after := snapshot(); after != before {
		t.Fatalf("reapplying changed the read model:\nbefore %s\nafter  %s", before, after)
	}
	if n := m.count(`SELECT count(*) FROM account_read.ledger_entries`); n != 2 {
		t.Fatalf("%d ledger entries, want 2", n)
	}
}

// TestJSONShapes checks the read models' JSON field names against the contract.
func TestJSONShapes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		v    any
		keys []string
	}{
		{account.Account{}, []string{"id", "owner_user_id", "owner_name", "asset", "name", "balance", "status", "pay_plan_id", "version", "opened_at", "updated_at"}},
		{account.LedgerEntry{}, []string{"account_id", "event_version", "kind", "amount", "running_balance", "reference", "transfer_id", "occurred_at"}},
		{account.Transfer{FromOwner: ada}, []string{"id", "from_account_id", "to_account_id", "amount", "asset", "status", "code", "reason", "compensated", "version", "requested_at", "updated_at"}},
		{account.PayPlan{}, []string{"id", "name", "price", "currency", "interval", "features", "status", "version", "created_at", "updated_at"}},
		{account.MessageTemplate{}, []string{"id", "name", "channel", "subject", "body", "placeholders", "version", "created_at", "updated_at"}},
		{account.MessageGroup{}, []string{"id", "name", "description", "members", "version", "created_at", "updated_at"}},
		{account.Member{}, []string{"user_id", "name", "added_at"}},
		{account.Message{}, []string{"id", "group_id", "send_version", "position", "template_id", "recipient_user_id", "recipient_name", "channel", "subject", "body", "sent_at"}},
	} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var got []string
		for k := range m {
			got = append(got, k)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(c.keys))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%T JSON keys = %v, want %v", c.v, got, want)
		}
	}
}

func checkLedger(t *testing.T, got, want []account.LedgerEntry) {
	t.Helper()
	if !reflect.DeepEqual(norm(got), norm(want)) {
		t.Fatalf("ledger = %s\nwant %s", show(got), show(want))
	}
}

func sameAccount(a, b account.Account) bool { return reflect.DeepEqual(norm(a), norm(b)) }

func sameTransfer(a, b account.Transfer) bool {
	return reflect.DeepEqual(norm(a), norm(b)) && a.FromOwner == b.FromOwner && a.ToOwner == b.ToOwner
}

// norm round-trips v through JSON with times in UTC, so values compare
// regardless of time zones and pointer identity.
func norm(v any) any {
	var out any
	if err := json.Unmarshal([]byte(show(v)), &out); err != nil {
		panic(err)
	}
	return out
}

// show renders v as JSON with every time in UTC.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		panic(err)
	}
	b, _ = json.Marshal(utc(x))
	return string(b)
}
