package account_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/account"
)

const (
	transferID  = "0197b000-0000-7000-8000-0000000000t1"
	transfer2ID = "0197b000-0000-7000-8000-0000000000t2"
	planID      = "0197b000-0000-7000-8000-0000000000p1"
	plan2ID     = "0197b000-0000-7000-8000-0000000000p2"
)

var (
	opened      = account.AssetAccountOpened{OwnerUserID: ownerID, Asset: "BTC", Name: "Savings"}
	deposited   = account.FundsDeposited{Amount: "100", Reference: "salary", Balance: "100"}
	frozen      = account.AccountFrozen{Reason: "audit"}
	unfrozen    = account.AccountUnfrozen{}
	closed      = account.AccountClosed{}
	debited     = account.FundsWithdrawn{Amount: "40", Reference: "transfer " + transferID, Balance: "60", TransferID: transferID}
	reversed    = account.TransferDebitReversed{TransferID: transferID, Amount: "40", Balance: "100"}
	settled     = account.TransferSettled{TransferID: transferID}
	planChanged = account.PayPlanChanged{PayPlanID: planID}

	planRef  = aggregates.Ref{Type: "pay-plan", ID: planID}
	plan2Ref = aggregates.Ref{Type: "pay-plan", ID: plan2ID}
	// activePlans are snapshots of two active pay plans.
	activePlans = map[aggregates.Ref]aggregates.Snapshot{
		planRef:  {State: account.PayPlan{Name: "Pro", Price: "9.99"}, Version: 1},
		plan2Ref: {State: account.PayPlan{Name: "Team", Price: "19.99"}, Version: 2},
	}
)

// rejectAmounts turns every refused amount spelling into a spec.
func rejectAmounts(prefix string, given events, actor aggregates.Actor, cmd func(amount string) aggregates.Command) []spec {
	var out []spec
	for _, a := range append([]string{"0", "0.0"}, refusedAmounts...) {
		out = append(out, spec{
			name: fmt.Sprintf("%sRejectsAmount%q", prefix, a), given: given, actor: as(actor),
			when: cmd(a), code: account.CodeInvalidAmount,
		})
	}
	return out
}

func TestAssetAccountDecideOpen(t *testing.T) {
	open := func(owner, asset, name string) account.OpenAssetAccount {
		return account.OpenAssetAccount{OwnerUserID: owner, Asset: asset, Name: name}
	}
	specs := []spec{
		{name: "OpensOwnAccount", when: open(ownerID, "BTC", "  Savings "), then: events{opened}},
		{
			name: "OpensForAnotherUserWithGrant", actor: as(admin),
			when: open(ownerID, "BTC", "Savings"), then: events{opened},
		},
		{name: "RejectsOpeningForAnotherUser", actor: as(stranger), when: open(ownerID, "BTC", "Savings"), code: aggregates.CodeForbidden},
		{name: "RejectsOpeningForAnotherUserWithReadAny", actor: as(reader), when: open(ownerID, "BTC", "Savings"), code: aggregates.CodeForbidden},
		{name: "RejectsOpeningForNobody", when: open("", "BTC", "Savings"), code: aggregates.CodeInvalid},
		{name: "ChecksOwnershipBeforeAsset", actor: as(stranger), when: open(ownerID, "btc", "Savings"), code: aggregates.CodeForbidden},
		{
			name: "AcceptsLongestAsset",
			when: open(ownerID, "ABCDEFGH12", "Savings"),
			then: events{account.AssetAccountOpened{OwnerUserID: ownerID, Asset: "ABCDEFGH12", Name: "Savings"}},
		},
		{
			name: "AcceptsNameOfMaxLength",
			when: open(ownerID, "EUR", strings.Repeat("Ä", account.MaxName)),
			then: events{account.AssetAccountOpened{OwnerUserID: ownerID, Asset: "EUR", Name: strings.Repeat("Ä", account.MaxName)}},
		},
		{name: "RejectsEmptyName", when: open(ownerID, "BTC", "   "), code: account.CodeInvalidName},
		{name: "RejectsNameTooLong", when: open(ownerID, "BTC", strings.Repeat("a", account.MaxName+1)), code: account.CodeInvalidName},
		{name: "RejectsNameOnTwoLines", when: open(ownerID, "BTC", "Sav\nings"), code: account.CodeInvalidName},
	}
	for _, asset := range []string{"", "B", "btc", "Btc", "BT-C", "BT C", "ABCDEFGHIJK", "€UR", " BTC"} {
		specs = append(specs, spec{
			name: fmt.Sprintf("RejectsAsset%q", asset), when: open(ownerID, asset, "Savings"), code: account.CodeInvalidAsset,
		})
	}
	run(t, definition(t, "asset-account"), specs)
}

func TestAssetAccountDecideDeposit(t *testing.T) {
	deposit := func(amount string) aggregates.Command { return account.Deposit{Amount: amount, Reference: "salary"} }
	specs := []spec{
		{
			name: "Deposits", given: events{opened},
			when: account.Deposit{Amount: "100.25", Reference: "salary"},
			then: events{account.FundsDeposited{Amount: "100.25", Reference: "salary", Balance: "100.25"}},
		},
		{
			name:  "AddsExactly",
			given: events{opened, account.FundsDeposited{Amount: "0.1", Reference: "a", Balance: "0.1"}},
			when:  account.Deposit{Amount: "0.2", Reference: "b"},
			then:  events{account.FundsDeposited{Amount: "0.2", Reference: "b", Balance: "0.3"}},
		},
		{
			name: "WritesCanonicalAmounts", given: events{opened, deposited},
			when: account.Deposit{Amount: "1.50000000", Reference: "r"},
			then: events{account.FundsDeposited{Amount: "1.5", Reference: "r", Balance: "101.5"}},
		},
		{
			name: "DepositsSmallestAmount", given: events{opened, deposited},
			when: account.Deposit{Amount: "0.00000001"},
			then: events{account.FundsDeposited{Amount: "0.00000001", Balance: "100.00000001"}},
		},
		{
			name: "DepositsLargestAmount", given: events{opened},
			when: account.Deposit{Amount: "99999999999999999999.99999999"},
			then: events{account.FundsDeposited{Amount: "99999999999999999999.99999999", Balance: "99999999999999999999.99999999"}},
		},
		{
			name:  "DepositsUpToLargestBalance",
			given: events{opened, account.FundsDeposited{Amount: "9999999999999999999999999998.99999999"}},
			when:  account.Deposit{Amount: "1"},
			then:  events{account.FundsDeposited{Amount: "1", Balance: "9999999999999999999999999999.99999999"}},
		},
		{
			name:  "RejectsBalanceBeyondLargest",
			given: events{opened, account.FundsDeposited{Amount: "9999999999999999999999999999.99999999"}},
			when:  account.Deposit{Amount: "0.00000001"},
			code:  account.CodeInvalidAmount,
		},
		{
			name: "AcceptsReferenceOfMaxLength", given: events{opened},
			when: account.Deposit{Amount: "1", Reference: strings.Repeat("r", account.MaxReference)},
			then: events{account.FundsDeposited{Amount: "1", Reference: strings.Repeat("r", account.MaxReference), Balance: "1"}},
		},
		{
			name: "RejectsReferenceTooLong", given: events{opened},
			when: account.Deposit{Amount: "1", Reference: strings.Repeat("r", account.MaxReference+1)},
			code: aggregates.CodeInvalid,
		},
		{
			name: "AcceptsDepositOnFrozenAccount", given: events{opened, deposited, frozen},
			when: deposit("5"),
			then: events{account.FundsDeposited{Amount: "5", Reference: "salary", Balance: "105"}},
		},
		{
			name: "AcceptsDepositFromGrantHolder", given: events{opened}, actor: as(admin),
			when: deposit("5"),
			then: events{account.FundsDeposited{Amount: "5", Reference: "salary", Balance: "5"}},
		},
		{name: "HidesAccountFromStranger", given: events{opened}, actor: as(stranger), when: deposit("5"), code: aggregates.CodeNotFound},
		{name: "HidesAccountFromReadAnyHolder", given: events{opened}, actor: as(reader), when: deposit("5"), code: aggregates.CodeNotFound},
		{name: "HidesAccountFromTransferProcess", given: events{opened}, actor: as(system), when: deposit("5"), code: aggregates.CodeNotFound},
		{name: "RejectsDepositOnClosedAccount", given: events{opened, closed}, when: deposit("5"), code: account.CodeAccountClosed},
	}
	specs = append(specs, rejectAmounts("", events{opened}, owner, deposit)...)
	run(t, definition(t, "asset-account"), specs)
}

func TestAssetAccountDecideWithdraw(t *testing.T) {
	withdraw := func(amount string) aggregates.Command { return account.Withdraw{Amount: amount, Reference: "rent"} }
	specs := []spec{
		{
			name: "Withdraws", given: events{opened, deposited},
			when: withdraw("40.5"),
			then: events{account.FundsWithdrawn{Amount: "40.5", Reference: "rent", Balance: "59.5"}},
		},
		{
			name: "WithdrawsExactBalance", given: events{opened, deposited},
			when: withdraw("100.00"),
			then: events{account.FundsWithdrawn{Amount: "100", Reference: "rent", Balance: "0"}},
		},
		{
			name: "SubtractsExactly",
			given: events{opened, account.FundsDeposited{Amount: "0.1", Balance: "0.1"},
				account.FundsDeposited{Amount: "0.2", Balance: "0.3"}},
			when: withdraw("0.3"),
			then: events{account.FundsWithdrawn{Amount: "0.3", Reference: "rent", Balance: "0"}},
		},
		{name: "RejectsOverdraft", given: events{opened, deposited}, when: withdraw("100.00000001"), code: account.CodeInsufficientFunds},
		{name: "RejectsWithdrawalFromEmptyAccount", given: events{opened}, when: withdraw("1"), code: account.CodeInsufficientFunds},
		{
			name: "CountsHeldTransfersAsGone", given: events{opened, deposited, debited},
			when: withdraw("61"), code: account.CodeInsufficientFunds,
		},
		{name: "RejectsWithdrawalFromFrozenAccount", given: events{opened, deposited, frozen}, when: withdraw("1"), code: account.CodeAccountFrozen},
		{
			name: "WithdrawsAfterUnfreeze", given: events{opened, deposited, frozen, unfrozen},
			when: withdraw("1"),
			then: events{account.FundsWithdrawn{Amount: "1", Reference: "rent", Balance: "99"}},
		},
		{
			name: "RejectsReferenceTooLong", given: events{opened, deposited},
			when: account.Withdraw{Amount: "1", Reference: strings.Repeat("r", account.MaxReference+1)},
			code: aggregates.CodeInvalid,
		},
		{
			name: "AcceptsWithdrawalByGrantHolder", given: events{opened, deposited}, actor: as(admin),
			when: withdraw("1"),
			then: events{account.FundsWithdrawn{Amount: "1", Reference: "rent", Balance: "99"}},
		},
		{name: "HidesAccountFromStranger", given: events{opened, deposited}, actor: as(stranger), when: withdraw("1"), code: aggregates.CodeNotFound},
		{name: "HidesAccountFromReadAnyHolder", given: events{opened, deposited}, actor: as(reader), when: withdraw("1"), code: aggregates.CodeNotFound},
		{name: "RejectsWithdrawalFromClosedAccount", given: events{opened, closed}, when: withdraw("1"), code: account.CodeAccountClosed},
	}
	specs = append(specs, rejectAmounts("", events{opened, deposited}, owner, withdraw)...)
	run(t, definition(t, "asset-account"), specs)
}

func TestAssetAccountDecideFreeze(t *testing.T) {
	freeze := account.FreezeAccount{Reason: "audit"}
	run(t, definition(t, "asset-account"), []spec{
		{name: "Freezes", actor: as(admin), given: events{opened, deposited}, when: freeze, then: events{frozen}},
		{name: "FreezesWithoutReason", actor: as(admin), given: events{opened}, when: account.FreezeAccount{}, then: events{account.AccountFrozen{}}},
		{name: "FreezesAgainAfterUnfreeze", actor: as(admin), given: events{opened, frozen, unfrozen}, when: freeze, then: events{frozen}},
		{name: "RejectsFreezingTwice", actor: as(admin), given: events{opened, frozen}, when: freeze, code: account.CodeAlreadyFrozen},
		{
			name: "RejectsReasonTooLong", actor: as(admin), given: events{opened},
			when: account.FreezeAccount{Reason: strings.Repeat("r", account.MaxReference+1)}, code: aggregates.CodeInvalid,
		},
		{name: "AcceptsFreezeByGrantHolder", given: events{opened}, actor: as(admin), when: freeze, then: events{frozen}},
		{name: "HidesAccountFromStranger", given: events{opened}, actor: as(stranger), when: freeze, code: aggregates.CodeNotFound},
		{name: "RejectsFreezingClosedAccount", actor: as(admin), given: events{opened, closed}, when: freeze, code: account.CodeAccountClosed},
	})
}

func TestAssetAccountDecideUnfreeze(t *testing.T) {
	unfreeze := account.UnfreezeAccount{}
	run(t, definition(t, "asset-account"), []spec{
		{name: "Unfreezes", actor: as(admin), given: events{opened, frozen}, when: unfreeze, then: events{unfrozen}},
		{name: "RejectsUnfreezingOpenAccount", actor: as(admin), given: events{opened}, when: unfreeze, code: account.CodeNotFrozen},
		{name: "RejectsUnfreezingTwice", actor: as(admin), given: events{opened, frozen, unfrozen}, when: unfreeze, code: account.CodeNotFrozen},
		{name: "AcceptsUnfreezeByGrantHolder", given: events{opened, frozen}, actor: as(admin), when: unfreeze, then: events{unfrozen}},
		{name: "HidesAccountFromStranger", given: events{opened, frozen}, actor: as(stranger), when: unfreeze, code: aggregates.CodeNotFound},
		{name: "RefusesOwnerLiftingTheirFreeze", given: events{opened, frozen}, when: unfreeze, code: aggregates.CodeForbidden},
		{name: "RejectsUnfreezingClosedAccount", actor: as(admin), given: events{opened, frozen, closed}, when: unfreeze, code: account.CodeAccountClosed},
	})
}

func TestAssetAccountDecideClose(t *testing.T) {
	closeAccount := account.CloseAccount{}
	run(t, definition(t, "asset-account"), []spec{
		{name: "ClosesEmptyAccount", given: events{opened}, when: closeAccount, then: events{closed}},
		{
			name:  "ClosesEmptiedAccount",
			given: events{opened, deposited, account.FundsWithdrawn{Amount: "100", Balance: "0"}},
			when:  closeAccount, then: events{closed},
		},
		{name: "RejectsClosingWithBalance", given: events{opened, deposited}, when: closeAccount, code: account.CodeBalanceNotZero, reason: "100 BTC"},
		{
			name:  "RejectsClosingWithSmallestBalance",
			given: events{opened, account.FundsDeposited{Amount: "0.00000001"}},
			when:  closeAccount, code: account.CodeBalanceNotZero,
		},
		{
			name:  "RejectsClosingWithTransferInFlight",
			given: events{opened, account.FundsDeposited{Amount: "40", Balance: "40"}, debited},
			when:  closeAccount, code: account.CodeTransferInFlight,
		},
		{
			name:  "ClosesOnceTransferSettled",
			given: events{opened, account.FundsDeposited{Amount: "40", Balance: "40"}, debited, settled},
			when:  closeAccount, then: events{closed},
		},
		{
			name:  "RejectsClosingOnceTransferReversed",
			given: events{opened, account.FundsDeposited{Amount: "40", Balance: "40"}, debited, reversed},
			when:  closeAccount, code: account.CodeBalanceNotZero,
		},
		{name: "AcceptsCloseByGrantHolder", given: events{opened}, actor: as(admin), when: closeAccount, then: events{closed}},
		{name: "HidesAccountFromStranger", given: events{opened}, actor: as(stranger), when: closeAccount, code: aggregates.CodeNotFound},
		{name: "RejectsClosingTwice", given: events{opened, closed}, when: closeAccount, code: account.CodeAccountClosed},
	})
}

func TestAssetAccountDecideChangePayPlan(t *testing.T) {
	change := account.ChangePayPlan{PayPlanID: planID}
	run(t, definition(t, "asset-account"), []spec{
		{
			name: "PutsAccountOnPlan", given: events{opened}, snapshots: activePlans,
			when: change, then: events{account.PayPlanChanged{PayPlanID: planID, PreviousPayPlanID: ""}},
		},
		{
			name: "MovesAccountToOtherPlan", given: events{opened, planChanged}, snapshots: activePlans,
			when: account.ChangePayPlan{PayPlanID: plan2ID},
			then: events{account.PayPlanChanged{PayPlanID: plan2ID, PreviousPayPlanID: planID}},
		},
		{
			name: "SeesPlanFromItsHistory", given: events{opened},
			related: map[aggregates.Ref][]aggregates.Event{planRef: {
				account.PayPlanCreated{Name: "Pro", Price: "9.99", Currency: "EUR", Interval: "monthly"},
				account.PayPlanPriceChanged{Price: "12", PreviousPrice: "9.99"},
			}},
			when: change, then: events{account.PayPlanChanged{PayPlanID: planID}},
		},
		{name: "RejectsMissingPlan", given: events{opened}, when: change, code: account.CodePayPlanNotFound},
		{
			name: "RejectsPlanWithoutEvents", given: events{opened},
			snapshots: map[aggregates.Ref]aggregates.Snapshot{planRef: {State: account.PayPlan{}, Version: 0}},
			when:      change, code: account.CodePayPlanNotFound,
		},
		{
			name: "RejectsRetiredPlan", given: events{opened},
			snapshots: map[aggregates.Ref]aggregates.Snapshot{planRef: {State: account.PayPlan{Name: "Old", Price: "1", Retired: true}, Version: 2}},
			when:      change, code: account.CodePayPlanNotFound,
		},
		{
			name: "RejectsPlanRetiredInItsHistory", given: events{opened},
			related: map[aggregates.Ref][]aggregates.Event{planRef: {
				account.PayPlanCreated{Name: "Old", Price: "1", Currency: "EUR", Interval: "monthly"}, account.PayPlanRetired{},
			}},
			when: change, code: account.CodePayPlanNotFound,
		},
		{name: "RejectsCurrentPlan", given: events{opened, planChanged}, snapshots: activePlans, when: change, code: aggregates.CodeInvalid},
		{
			name: "AcceptsOnFrozenAccount", given: events{opened, frozen}, snapshots: activePlans,
			when: change, then: events{planChanged},
		},
		{
			name: "AcceptsChangeByGrantHolder", given: events{opened}, snapshots: activePlans, actor: as(admin),
			when: change, then: events{planChanged},
		},
		{name: "HidesAccountFromStranger", given: events{opened}, snapshots: activePlans, actor: as(stranger), when: change, code: aggregates.CodeNotFound},
		{name: "RejectsChangeOnClosedAccount", given: events{opened, closed}, snapshots: activePlans, when: change, code: account.CodeAccountClosed},
	})
}

func TestAssetAccountDecideDebitTransfer(t *testing.T) {
	debit := func(amount string) aggregates.Command {
		return account.DebitTransfer{TransferID: transferID, Amount: amount}
	}
	specs := []spec{
		{name: "DebitsAndHolds", given: events{opened, deposited}, actor: as(system), when: debit("40"), then: events{debited}},
		{
			name: "DebitsWholeBalance", given: events{opened, deposited}, actor: as(system),
			when: debit("100.0"),
			then: events{account.FundsWithdrawn{Amount: "100", Reference: "transfer " + transferID, Balance: "0", TransferID: transferID}},
		},
		{name: "RejectsSecondDebitOfSameTransfer", given: events{opened, deposited, debited}, actor: as(system), when: debit("40"), code: aggregates.CodeAlreadyExists},
		{
			name: "DebitsAnotherTransferWhileOneIsHeld", given: events{opened, deposited, debited}, actor: as(system),
			when: account.DebitTransfer{TransferID: transfer2ID, Amount: "60"},
			then: events{account.FundsWithdrawn{Amount: "60", Reference: "transfer " + transfer2ID, Balance: "0", TransferID: transfer2ID}},
		},
		{name: "RejectsOverdraft", given: events{opened, deposited}, actor: as(system), when: debit("100.00000001"), code: account.CodeInsufficientFunds},
		{name: "RejectsDebitOfFrozenAccount", given: events{opened, deposited, frozen}, actor: as(system), when: debit("1"), code: account.CodeAccountFrozen},
		{name: "HidesAccountFromOwner", given: events{opened, deposited}, when: debit("1"), code: aggregates.CodeNotFound},
		{name: "HidesAccountFromGrantHolder", given: events{opened, deposited}, actor: as(admin), when: debit("1"), code: aggregates.CodeNotFound},
		{name: "RejectsDebitOfClosedAccount", given: events{opened, closed}, actor: as(system), when: debit("1"), code: account.CodeAccountClosed},
	}
	specs = append(specs, rejectAmounts("", events{opened, deposited}, system, debit)...)
	run(t, definition(t, "asset-account"), specs)
}

func TestAssetAccountDecideCreditTransfer(t *testing.T) {
	credit := func(amount string) aggregates.Command {
		return account.CreditTransfer{TransferID: transferID, Amount: amount}
	}
	credited := account.FundsDeposited{Amount: "40", Reference: "transfer " + transferID, Balance: "140", TransferID: transferID}
	specs := []spec{
		{name: "Credits", given: events{opened, deposited}, actor: as(system), when: credit("40.00"), then: events{credited}},
		{name: "CreditsFrozenAccount", given: events{opened, deposited, frozen}, actor: as(system), when: credit("40"), then: events{credited}},
		{
			name:  "RejectsBalanceBeyondLargest",
			given: events{opened, account.FundsDeposited{Amount: "9999999999999999999999999999"}}, actor: as(system),
			when: credit("1"), code: account.CodeInvalidAmount,
		},
		{name: "HidesAccountFromOwner", given: events{opened}, when: credit("1"), code: aggregates.CodeNotFound},
		{name: "HidesAccountFromGrantHolder", given: events{opened}, actor: as(admin), when: credit("1"), code: aggregates.CodeNotFound},
		{name: "RejectsCreditOfClosedAccount", given: events{opened, closed}, actor: as(system), when: credit("1"), code: account.CodeAccountClosed},
	}
	specs = append(specs, rejectAmounts("", events{opened}, system, credit)...)
	run(t, definition(t, "asset-account"), specs)
}

func TestAssetAccountDecideReverseTransferDebit(t *testing.T) {
	reverse := account.ReverseTransferDebit{TransferID: transferID}
	run(t, definition(t, "asset-account"), []spec{
		{name: "GivesDebitBack", given: events{opened, deposited, debited}, actor: as(system), when: reverse, then: events{reversed}},
		{
			name:  "GivesDebitBackExactly",
			given: events{opened, account.FundsDeposited{Amount: "0.3"}, account.FundsWithdrawn{Amount: "0.1", TransferID: transferID}},
			actor: as(system), when: reverse,
			then: events{account.TransferDebitReversed{TransferID: transferID, Amount: "0.1", Balance: "0.3"}},
		},
		{name: "GivesDebitBackToFrozenAccount", given: events{opened, deposited, debited, frozen}, actor: as(system), when: reverse, then: events{reversed}},
		{name: "RejectsWithoutHold", given: events{opened, deposited}, actor: as(system), when: reverse, code: account.CodeTransferSettled},
		{
			name: "RejectsOtherTransfer", given: events{opened, deposited, debited}, actor: as(system),
			when: account.ReverseTransferDebit{TransferID: transfer2ID}, code: account.CodeTransferSettled,
		},
		{name: "RejectsTwice", given: events{opened, deposited, debited, reversed}, actor: as(system), when: reverse, code: account.CodeTransferSettled},
		{name: "RejectsAfterSettle", given: events{opened, deposited, debited, settled}, actor: as(system), when: reverse, code: account.CodeTransferSettled},
		{name: "HidesAccountFromOwner", given: events{opened, deposited, debited}, when: reverse, code: aggregates.CodeNotFound},
		{name: "HidesAccountFromGrantHolder", given: events{opened, deposited, debited}, actor: as(admin), when: reverse, code: aggregates.CodeNotFound},
		{name: "RejectsOnClosedAccount", given: events{opened, closed}, actor: as(system), when: reverse, code: account.CodeAccountClosed},
	})
}

func TestAssetAccountDecideSettleTransfer(t *testing.T) {
	settle := account.SettleTransfer{TransferID: transferID}
	run(t, definition(t, "asset-account"), []spec{
		{name: "ReleasesHold", given: events{opened, deposited, debited}, actor: as(system), when: settle, then: events{settled}},
		{name: "ReleasesHoldOnFrozenAccount", given: events{opened, deposited, debited, frozen}, actor: as(system), when: settle, then: events{settled}},
		{name: "RejectsWithoutHold", given: events{opened, deposited}, actor: as(system), when: settle, code: account.CodeTransferSettled},
		{name: "RejectsTwice", given: events{opened, deposited, debited, settled}, actor: as(system), when: settle, code: account.CodeTransferSettled},
		{name: "RejectsAfterReverse", given: events{opened, deposited, debited, reversed}, actor: as(system), when: settle, code: account.CodeTransferSettled},
		{
			name: "RejectsCreditedTransfer", actor: as(system),
			given: events{opened, account.FundsDeposited{Amount: "40", Reference: "transfer " + transferID, Balance: "40", TransferID: transferID}},
			when:  settle, code: account.CodeTransferSettled,
		},
		{name: "HidesAccountFromOwner", given: events{opened, deposited, debited}, when: settle, code: aggregates.CodeNotFound},
		{name: "HidesAccountFromGrantHolder", given: events{opened, deposited, debited}, actor: as(admin), when: settle, code: aggregates.CodeNotFound},
		{name: "RejectsOnClosedAccount", given: events{opened, closed}, actor: as(system), when: settle, code: account.CodeAccountClosed},
	})
}

// isTransferStep reports whether only the transfer process may issue c.
func isTransferStep(c aggregates.Command) bool {
	switch c.(type) {
	case account.DebitTransfer, account.CreditTransfer, account.ReverseTransferDebit, account.SettleTransfer:
		return true
	}
	return false
}

func TestAssetAccountClosedAcceptsNothing(t *testing.T) {
	cmds := []aggregates.Command{
		account.Deposit{Amount: "1"}, account.Withdraw{Amount: "1"}, account.FreezeAccount{},
		account.UnfreezeAccount{}, account.CloseAccount{}, account.ChangePayPlan{PayPlanID: planID},
		account.DebitTransfer{TransferID: transferID, Amount: "1"}, account.CreditTransfer{TransferID: transferID, Amount: "1"},
		account.ReverseTransferDebit{TransferID: transferID}, account.SettleTransfer{TransferID: transferID},
	}
	def := definition(t, "asset-account")
	if len(cmds) != len(def.Commands)-1 {
		t.Fatalf("%d commands tried, the account has %d besides OpenAssetAccount", len(cmds), len(def.Commands)-1)
	}
	var specs []spec
	for _, c := range cmds {
		// The actor who may issue c, and one who may not.
		actor, outsider := owner, system
		switch c.(type) {
		case account.FreezeAccount, account.UnfreezeAccount:
			actor = admin // an owner cannot freeze or lift a freeze
		}
		if isTransferStep(c) {
			actor, outsider = system, admin
		}
		var plans map[aggregates.Ref]aggregates.Snapshot
		if _, ok := c.(account.ChangePayPlan); ok {
			plans = activePlans
		}
		specs = append(specs,
			spec{name: c.CommandType(), given: events{opened, closed}, snapshots: plans, actor: as(actor), when: c, code: account.CodeAccountClosed},
			spec{name: c.CommandType() + "WithHistory", given: events{opened, deposited, frozen, account.FundsWithdrawn{Amount: "100"}, closed},
				snapshots: plans, actor: as(actor), when: c, code: account.CodeAccountClosed},
			spec{name: c.CommandType() + "HiddenFromOutsider", given: events{opened, closed}, snapshots: plans, actor: as(outsider), when: c, code: aggregates.CodeNotFound},
		)
	}
	run(t, def, specs)
}

func TestAssetAccountRejectsOtherCommands(t *testing.T) {
	run(t, definition(t, "asset-account"), []spec{
		{name: "FromOwner", given: events{opened}, when: account.CompleteTransfer{}, code: aggregates.CodeInvalid},
		{name: "FromGrantHolder", given: events{opened}, actor: as(admin), when: account.RetirePayPlan{}, code: aggregates.CodeInvalid},
	})
}

// accountView is an AssetAccount with its decimals spelled out.
type accountView struct {
	Owner, Asset, Name, Balance, Status, PayPlanID string
	Holds                                          map[string]string
}

func viewAccount(s any) any {
	a := s.(account.AssetAccount)
	v := accountView{Owner: a.Owner, Asset: a.Asset, Name: a.Name, Balance: account.Format(a.Balance), Status: a.Status, PayPlanID: a.PayPlanID}
	if a.Holds != nil {
		v.Holds = map[string]string{}
		for id, amount := range a.Holds {
			v.Holds[id] = account.Format(amount)
		}
	}
	return v
}

func TestAssetAccountEvolve(t *testing.T) {
	open := accountView{Owner: ownerID, Asset: "BTC", Name: "Savings", Balance: "0", Status: account.StatusOpen}
	with := func(f func(*accountView)) accountView { v := open; f(&v); return v }
	runFolds(t, definition(t, "asset-account"), viewAccount, []fold{
		{name: "StartsEmpty", want: accountView{Balance: "0"}},
		{name: "Opens", given: events{opened}, want: open},
		{name: "AddsDeposits", given: events{opened, deposited}, want: with(func(v *accountView) { v.Balance = "100" })},
		{
			name:  "AddsExactly",
			given: events{opened, account.FundsDeposited{Amount: "0.1"}, account.FundsDeposited{Amount: "0.2"}},
			want:  with(func(v *accountView) { v.Balance = "0.3" }),
		},
		{
			name:  "TakesBalanceFromAmountsNotFromReportedBalance",
			given: events{opened, account.FundsDeposited{Amount: "10", Balance: "999"}, account.FundsWithdrawn{Amount: "4", Balance: "0"}},
			want:  with(func(v *accountView) { v.Balance = "6" }),
		},
		{
			name:  "SubtractsWithdrawalsWithoutHold",
			given: events{opened, deposited, account.FundsWithdrawn{Amount: "100", Reference: "rent", Balance: "0"}},
			want:  with(func(v *accountView) { v.Balance = "0" }),
		},
		{
			name:  "HoldsTransferDebits",
			given: events{opened, deposited, debited},
			want:  with(func(v *accountView) { v.Balance = "60"; v.Holds = map[string]string{transferID: "40"} }),
		},
		{
			name:  "DoesNotHoldTransferCredits",
			given: events{opened, account.FundsDeposited{Amount: "5", TransferID: transferID}},
			want:  with(func(v *accountView) { v.Balance = "5" }),
		},
		{name: "ReversesDebit", given: events{opened, deposited, debited, reversed}, want: with(func(v *accountView) { v.Balance = "100" })},
		{name: "SettlesDebit", given: events{opened, deposited, debited, settled}, want: with(func(v *accountView) { v.Balance = "60" })},
		{
			name: "KeepsOtherHolds",
			given: events{opened, deposited, debited,
				account.FundsWithdrawn{Amount: "10", TransferID: transfer2ID}, settled},
			want: with(func(v *accountView) { v.Balance = "50"; v.Holds = map[string]string{transfer2ID: "10"} }),
		},
		{name: "Freezes", given: events{opened, frozen}, want: with(func(v *accountView) { v.Status = account.StatusFrozen })},
		{name: "Unfreezes", given: events{opened, frozen, unfrozen}, want: open},
		{name: "Closes", given: events{opened, frozen, closed}, want: with(func(v *accountView) { v.Status = account.StatusClosed })},
		{
			name:  "TracksPayPlan",
			given: events{opened, planChanged, account.PayPlanChanged{PayPlanID: plan2ID, PreviousPayPlanID: planID}},
			want:  with(func(v *accountView) { v.PayPlanID = plan2ID }),
		},
	})
}

func TestAssetAccountEvolveLeavesPreviousStateAlone(t *testing.T) {
	funded := account.EvolveAssetAccount(account.EvolveAssetAccount(account.AssetAccount{}, opened), deposited)
	one := account.EvolveAssetAccount(funded, debited)
	two := account.EvolveAssetAccount(one, account.FundsWithdrawn{Amount: "10", TransferID: transfer2ID})
	three := account.EvolveAssetAccount(two, settled)
	four := account.EvolveAssetAccount(three, account.TransferDebitReversed{TransferID: transfer2ID, Amount: "10", Balance: "60"})
	// A sibling of two, evolved from one: it must not see two's hold.
	sibling := account.EvolveAssetAccount(one, account.FundsWithdrawn{Amount: "1", TransferID: "t3"})

	for _, c := range []struct {
		name    string
		state   account.AssetAccount
		holds   map[string]string
		balance string
	}{
		{"Funded", funded, nil, "100"},
		{"AfterFirstDebit", one, map[string]string{transferID: "40"}, "60"},
		{"AfterSecondDebit", two, map[string]string{transferID: "40", transfer2ID: "10"}, "50"},
		{"AfterSettle", three, map[string]string{transfer2ID: "10"}, "50"},
		{"AfterReverse", four, nil, "60"},
		{"Sibling", sibling, map[string]string{transferID: "40", "t3": "1"}, "59"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := viewAccount(c.state).(accountView)
			if !reflect.DeepEqual(v.Holds, c.holds) {
				t.Errorf("holds = %v, want %v", v.Holds, c.holds)
			}
			if v.Balance != c.balance {
				t.Errorf("balance = %s, want %s", v.Balance, c.balance)
			}
		})
	}
}

func TestAssetAccountHoldsNoKeys(t *testing.T) {
	runKeys(t, definition(t, "asset-account"), []keys{
		{name: "NoneBeforeOpening"},
		{name: "NoneWhenOpen", given: events{opened, deposited}},
	})
}

// TestTransferHoldLifecycle runs a debit, its reversal and a second debit
// and settle through Decide and Evolve alone, as the transfer process does.
func TestTransferHoldLifecycle(t *testing.T) {
	def := definition(t, "asset-account")
	ctx := aggregates.Context{AggregateID: "a1", Actor: system}
	state := def.Fold(opened, deposited)
	step := func(c aggregates.Command) {
		t.Helper()
		got, err := def.Decide(state, c, ctx)
		if err != nil {
			t.Fatalf("%s: %v", c.CommandType(), err)
		}
		for _, e := range got {
			state = def.Evolve(state, e)
		}
	}
	balance := func() string { return account.Format(state.(account.AssetAccount).Balance) }

	step(account.DebitTransfer{TransferID: transferID, Amount: "40"})
	if balance() != "60" || len(state.(account.AssetAccount).Holds) != 1 {
		t.Fatalf("after debit: %+v", viewAccount(state))
	}
	step(account.ReverseTransferDebit{TransferID: transferID})
	if balance() != "100" || state.(account.AssetAccount).Holds != nil {
		t.Fatalf("after reverse: %+v", viewAccount(state))
	}
	step(account.DebitTransfer{TransferID: transfer2ID, Amount: "100"})
	step(account.SettleTransfer{TransferID: transfer2ID})
	if balance() != "0" || state.(account.AssetAccount).Holds != nil {
		t.Fatalf("after settle: %+v", viewAccount(state))
	}
	ctx.Actor = owner
	step(account.CloseAccount{})
	if state.(account.AssetAccount).Status != account.StatusClosed {
		t.Fatalf("not closed: %+v", viewAccount(state))
	}
	if !state.(account.AssetAccount).Balance.Equal(decimal.Zero) {
		t.Fatalf("balance %s after close", balance())
	}
}
