package account_test

import (
	"fmt"
	"testing"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/account"
)

const (
	fromID     = "0197b000-0000-7000-8000-0000000000c1"
	toID       = "0197b000-0000-7000-8000-0000000000c2"
	ethID      = "0197b000-0000-7000-8000-0000000000c3"
	closedID   = "0197b000-0000-7000-8000-0000000000c4"
	frozenID   = "0197b000-0000-7000-8000-0000000000c5"
	strangerID = "0197b000-0000-7000-8000-0000000000c6"
	heldID     = "0197b000-0000-7000-8000-0000000000c7"
	missingID  = "0197b000-0000-7000-8000-0000000000c8"
	eth2ID     = "0197b000-0000-7000-8000-0000000000c9"
)

func accountRef(id string) aggregates.Ref { return aggregates.Ref{Type: "asset-account", ID: id} }

// accounts are the histories of the accounts transfers move money between:
// all hold BTC but ethID and eth2ID; all are the owner's but toID and
// strangerID.
var accounts = map[aggregates.Ref][]aggregates.Event{
	accountRef(fromID):     {opened, deposited},
	accountRef(toID):       {account.AssetAccountOpened{OwnerUserID: otherID, Asset: "BTC", Name: "Theirs"}},
	accountRef(ethID):      {account.AssetAccountOpened{OwnerUserID: ownerID, Asset: "ETH", Name: "Ether"}, deposited},
	accountRef(closedID):   {opened, closed},
	accountRef(frozenID):   {opened, deposited, frozen},
	accountRef(strangerID): {account.AssetAccountOpened{OwnerUserID: otherID, Asset: "BTC", Name: "Theirs"}, deposited},
	accountRef(heldID):     {opened, deposited, debited},
	accountRef(eth2ID):     {account.AssetAccountOpened{OwnerUserID: ownerID, Asset: "ETH", Name: "More ether"}},
}

var (
	requested = account.TransferRequested{FromAccountID: fromID, ToAccountID: toID, Amount: "25.5", Asset: "BTC"}
	completed = account.TransferCompleted{}
	failed    = account.TransferFailed{Code: account.CodeAccountClosed, Reason: "account is closed", Compensated: true}
)

func TestTransferDecideTransferFunds(t *testing.T) {
	transfer := func(from, to, amount string) account.TransferFunds {
		return account.TransferFunds{FromAccountID: from, ToAccountID: to, Amount: amount}
	}
	specs := []spec{
		{name: "Requests", related: accounts, when: transfer(fromID, toID, "25.5"), then: events{requested}},
		{name: "WritesCanonicalAmount", related: accounts, when: transfer(fromID, toID, "25.50000000"), then: events{requested}},
		{
			name: "RequestsWholeBalance", related: accounts, when: transfer(fromID, toID, "100"),
			then: events{account.TransferRequested{FromAccountID: fromID, ToAccountID: toID, Amount: "100", Asset: "BTC"}},
		},
		{
			name: "RequestsToFrozenAccount", related: accounts, when: transfer(fromID, frozenID, "1"),
			then: events{account.TransferRequested{FromAccountID: fromID, ToAccountID: frozenID, Amount: "1", Asset: "BTC"}},
		},
		{
			name: "RequestsFromAnyAccountWithGrant", related: accounts, actor: as(admin), when: transfer(strangerID, fromID, "1"),
			then: events{account.TransferRequested{FromAccountID: strangerID, ToAccountID: fromID, Amount: "1", Asset: "BTC"}},
		},
		{
			name: "CarriesTheAssetOfTheAccounts", related: accounts, when: transfer(ethID, eth2ID, "0.5"),
			then: events{account.TransferRequested{FromAccountID: ethID, ToAccountID: eth2ID, Amount: "0.5", Asset: "ETH"}},
		},
		{name: "RejectsSameAccount", related: accounts, when: transfer(fromID, fromID, "1"), code: account.CodeSameAccount},
		{name: "RejectsMissingSource", related: accounts, when: transfer(missingID, toID, "1"), code: account.CodeAccountNotFound, reason: missingID},
		{name: "RejectsMissingTarget", related: accounts, when: transfer(fromID, missingID, "1"), code: account.CodeAccountNotFound, reason: missingID},
		{
			name: "RejectsSourceWithoutEvents", related: accounts, when: transfer(fromID, toID, "1"),
			snapshots: map[aggregates.Ref]aggregates.Snapshot{accountRef(fromID): {State: account.AssetAccount{Owner: ownerID, Asset: "BTC"}, Version: 0}},
			code:      account.CodeAccountNotFound,
		},
		{name: "RejectsSourceOfAnotherUser", related: accounts, when: transfer(strangerID, fromID, "1"), code: account.CodeAccountNotFound, reason: strangerID},
		{
			name: "RejectsSourceOfAnotherUserWithReadAny", related: accounts, actor: as(reader),
			when: transfer(strangerID, fromID, "1"), code: account.CodeAccountNotFound,
		},
		{name: "RejectsAssetMismatch", related: accounts, when: transfer(fromID, ethID, "1"), code: account.CodeAssetMismatch},
		{name: "RejectsAssetMismatchBeforeClosedTarget", related: accounts, when: transfer(ethID, closedID, "1"), code: account.CodeAssetMismatch},
		{name: "RejectsClosedSource", related: accounts, when: transfer(closedID, toID, "1"), code: account.CodeAccountClosed, reason: closedID},
		{name: "RejectsClosedTarget", related: accounts, when: transfer(fromID, closedID, "1"), code: account.CodeAccountClosed, reason: closedID},
		{name: "RejectsFrozenSource", related: accounts, when: transfer(frozenID, toID, "1"), code: account.CodeAccountFrozen},
		{name: "RejectsOverdraft", related: accounts, when: transfer(fromID, toID, "100.00000001"), code: account.CodeInsufficientFunds},
		{name: "CountsHeldTransfersAsGone", related: accounts, when: transfer(heldID, toID, "60.00000001"), code: account.CodeInsufficientFunds},
		{
			name: "RequestsWhatIsLeftBesideAHold", related: accounts, when: transfer(heldID, toID, "60"),
			then: events{account.TransferRequested{FromAccountID: heldID, ToAccountID: toID, Amount: "60", Asset: "BTC"}},
		},
	}
	for _, a := range append([]string{"0", "0.0"}, refusedAmounts...) {
		specs = append(specs, spec{
			name: fmt.Sprintf("RejectsAmount%q", a), related: accounts, when: transfer(fromID, toID, a), code: account.CodeInvalidAmount,
		})
	}
	run(t, definition(t, "transfer"), specs)
}

func TestTransferDecideOutcome(t *testing.T) {
	complete, fail := account.CompleteTransfer{}, account.FailTransfer(failed)
	run(t, definition(t, "transfer"), []spec{
		{name: "Completes", given: events{requested}, actor: as(system), when: complete, then: events{completed}},
		{name: "Fails", given: events{requested}, actor: as(system), when: fail, then: events{failed}},
		{
			name: "FailsUncompensated", given: events{requested}, actor: as(system),
			when: account.FailTransfer{Code: account.CodeInsufficientFunds, Reason: "r"},
			then: events{account.TransferFailed{Code: account.CodeInsufficientFunds, Reason: "r"}},
		},
		{name: "RejectsCompleteFromOwner", given: events{requested}, when: complete, code: aggregates.CodeForbidden},
		{name: "RejectsCompleteFromGrantHolder", given: events{requested}, actor: as(admin), when: complete, code: aggregates.CodeForbidden},
		{name: "RejectsFailFromOwner", given: events{requested}, when: fail, code: aggregates.CodeForbidden},
		{name: "RejectsFailFromGrantHolder", given: events{requested}, actor: as(admin), when: fail, code: aggregates.CodeForbidden},
		{name: "RejectsCompletingTwice", given: events{requested, completed}, actor: as(system), when: complete, code: account.CodeTransferSettled},
		{name: "RejectsFailingCompleted", given: events{requested, completed}, actor: as(system), when: fail, code: account.CodeTransferSettled},
		{name: "RejectsCompletingFailed", given: events{requested, failed}, actor: as(system), when: complete, code: account.CodeTransferSettled},
		{name: "RejectsFailingTwice", given: events{requested, failed}, actor: as(system), when: fail, code: account.CodeTransferSettled},
		{name: "RejectsOtherCommands", given: events{requested}, actor: as(system), when: account.Deposit{Amount: "1"}, code: aggregates.CodeInvalid},
	})
}

// transferView is a Transfer with its amount spelled out.
type transferView struct {
	From, To, Asset, Amount, Status string
	Terminal                        bool
}

func viewTransfer(s any) any {
	t := s.(account.Transfer)
	return transferView{From: t.From, To: t.To, Asset: t.Asset, Amount: account.Format(t.Amount), Status: t.Status, Terminal: t.Terminal()}
}

func TestTransferEvolve(t *testing.T) {
	req := transferView{From: fromID, To: toID, Asset: "BTC", Amount: "25.5", Status: account.TransferStatusRequested}
	done := req
	done.Status, done.Terminal = account.TransferStatusCompleted, true
	lost := req
	lost.Status, lost.Terminal = account.TransferStatusFailed, true
	runFolds(t, definition(t, "transfer"), viewTransfer, []fold{
		{name: "StartsEmpty", want: transferView{Amount: "0"}},
		{name: "Requested", given: events{requested}, want: req},
		{name: "Completed", given: events{requested, completed}, want: done},
		{name: "Failed", given: events{requested, failed}, want: lost},
	})
}

func TestTransferHoldsNoKeys(t *testing.T) {
	runKeys(t, definition(t, "transfer"), []keys{
		{name: "NoneBeforeRequest"},
		{name: "NoneWhenRequested", given: events{requested}},
	})
}
