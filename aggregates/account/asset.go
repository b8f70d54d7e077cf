package account

import (
	"maps"

	"github.com/shopspring/decimal"

	"github.com/strata-cqrs/strata/aggregates"
)

// OpenAssetAccount opens an account holding one asset for a user.
type OpenAssetAccount struct {
	OwnerUserID string `json:"owner_user_id"`
	Asset       string `json:"asset"`
	Name        string `json:"name"`
}

// Deposit adds funds.
type Deposit struct {
	Amount    string `json:"amount"`
	Reference string `json:"reference"`
}

// Withdraw removes funds; the balance never goes below zero.
type Withdraw struct {
	Amount    string `json:"amount"`
	Reference string `json:"reference"`
}

// FreezeAccount stops withdrawals and transfers out until unfrozen.
type FreezeAccount struct {
	Reason string `json:"reason"`
}

// UnfreezeAccount lifts a freeze.
type UnfreezeAccount struct{}

// CloseAccount closes an account with a zero balance; a closed account
// accepts nothing.
type CloseAccount struct{}

// ChangePayPlan puts the account on an active pay plan.
type ChangePayPlan struct {
	PayPlanID string `json:"pay_plan_id"`
}

// The commands below are the steps of a transfer. Only the transfer
// process manager issues them (the gateway has no route to them).

// DebitTransfer withdraws a transfer's amount from its source account and
// holds the account open until the transfer settles.
type DebitTransfer struct {
	TransferID string `json:"transfer_id"`
	Amount     string `json:"amount"`
}

// CreditTransfer deposits a transfer's amount on its target account.
type CreditTransfer struct {
	TransferID string `json:"transfer_id"`
	Amount     string `json:"amount"`
}

// ReverseTransferDebit gives a failed transfer's debit back to its source
// account (the compensation). It is accepted by a frozen account.
type ReverseTransferDebit struct {
	TransferID string `json:"transfer_id"`
}

// SettleTransfer releases the hold a completed transfer kept on its source.
type SettleTransfer struct {
	TransferID string `json:"transfer_id"`
}

func (OpenAssetAccount) CommandType() string     { return "OpenAssetAccount" }
func (Deposit) CommandType() string              { return "Deposit" }
func (Withdraw) CommandType() string             { return "Withdraw" }
func (FreezeAccount) CommandType() string        { return "FreezeAccount" }
func (UnfreezeAccount) CommandType() string      { return "UnfreezeAccount" }
func (CloseAccount) CommandType() string         { return "CloseAccount" }
func (ChangePayPlan) CommandType() string        { return "ChangePayPlan" }
func (DebitTransfer) CommandType() string        { return "DebitTransfer" }
func (CreditTransfer) CommandType() string       { return "CreditTransfer" }
func (ReverseTransferDebit) CommandType() string { return "ReverseTransferDebit" }
func (SettleTransfer) CommandType() string       { return "SettleTransfer" }

// AssetAccountOpened records a new account with a zero balance.
type AssetAccountOpened struct {
	OwnerUserID string `json:"owner_user_id"`
	Asset       string `json:"asset"`
	Name        string `json:"name"`
}

// FundsDeposited records money in. Balance is the balance after it;
// TransferID is set when the deposit is a transfer's credit.
type FundsDeposited struct {
	Amount     string `json:"amount"`
	Reference  string `json:"reference"`
	Balance    string `json:"balance"`
	TransferID string `json:"transfer_id,omitempty"`
}

// FundsWithdrawn records money out. Balance is the balance after it;
// TransferID is set when the withdrawal is a transfer's debit.
type FundsWithdrawn struct {
	Amount     string `json:"amount"`
	Reference  string `json:"reference"`
	Balance    string `json:"balance"`
	TransferID string `json:"transfer_id,omitempty"`
}

// TransferDebitReversed records the compensation of a failed transfer: its
// debit is given back. Balance is the balance after it.
type TransferDebitReversed struct {
	TransferID string `json:"transfer_id"`
	Amount     string `json:"amount"`
	Balance    string `json:"balance"`
}

// TransferSettled records that a completed transfer no longer holds the
// source account open.
type TransferSettled struct {
	TransferID string `json:"transfer_id"`
}

// AccountFrozen records a freeze.
type AccountFrozen struct {
	Reason string `json:"reason"`
}

// AccountUnfrozen records the end of a freeze.
type AccountUnfrozen struct{}

// AccountClosed records the closing of an account.
type AccountClosed struct{}

// PayPlanChanged records the account's new pay plan.
type PayPlanChanged struct {
	PayPlanID         string `json:"pay_plan_id"`
	PreviousPayPlanID string `json:"previous_pay_plan_id"`
}

func (AssetAccountOpened) EventType() string    { return "AssetAccountOpened" }
func (FundsDeposited) EventType() string        { return "FundsDeposited" }
func (FundsWithdrawn) EventType() string        { return "FundsWithdrawn" }
func (TransferDebitReversed) EventType() string { return "TransferDebitReversed" }
func (TransferSettled) EventType() string       { return "TransferSettled" }
func (AccountFrozen) EventType() string         { return "AccountFrozen" }
func (AccountUnfrozen) EventType() string       { return "AccountUnfrozen" }
func (AccountClosed) EventType() string         { return "AccountClosed" }
func (PayPlanChanged) EventType() string        { return "PayPlanChanged" }

// Account statuses.
const (
	StatusOpen   = "open"
	StatusFrozen = "frozen"
	StatusClosed = "closed"
)

// AssetAccount is the state of one account.
type AssetAccount struct {
	Owner     string
	Asset     string
	Name      string
	Balance   decimal.Decimal
	Status    string
	PayPlanID string
	// Holds are the transfers debited from this account that have not
	// settled yet (transfer id → amount). While one is held the account
	// cannot close, so a compensation always finds it open.
	Holds map[string]decimal.Decimal
}

// AssetAccountDefinition registers the AssetAccount aggregate.
func AssetAccountDefinition() *aggregates.Definition {
	return aggregates.Define(aggregates.Spec[AssetAccount]{
		Service: Service,
		Type:    "asset-account",
		Commands: []aggregates.Command{
			OpenAssetAccount{}, Deposit{}, Withdraw{}, FreezeAccount{}, UnfreezeAccount{}, CloseAccount{},
			ChangePayPlan{}, DebitTransfer{}, CreditTransfer{}, ReverseTransferDebit{}, SettleTransfer{},
		},
		Events: []aggregates.Event{
			AssetAccountOpened{}, FundsDeposited{}, FundsWithdrawn{}, TransferDebitReversed{}, TransferSettled{},
			AccountFrozen{}, AccountUnfrozen{}, AccountClosed{}, PayPlanChanged{},
		},
		Creates: creates[OpenAssetAccount](),
		Needs: func(c aggregates.Command) []aggregates.Ref {
			if p, ok := c.(ChangePayPlan); ok {
				return []aggregates.Ref{{Type: "pay-plan", ID: p.PayPlanID}}
			}
			return nil
		},
		Decide:    DecideAssetAccount,
		Evolve:    EvolveAssetAccount,
		Authorize: AuthorizeAssetAccount,
	})
}

// DecideAssetAccount decides a command against an account's state.
func DecideAssetAccount(a AssetAccount, c aggregates.Command, ctx aggregates.Context) ([]aggregates.Event, error) {
	if open, ok := c.(OpenAssetAccount); ok {
		return openAccount(open, ctx)
	}
	if err := AuthorizeAssetAccount(a, c, ctx.Actor); err != nil {
		return nil, err
	}
	if a.Status == StatusClosed {
		return nil, aggregates.Reject(CodeAccountClosed, "account %s is closed", ctx.AggregateID)
	}
	switch c := c.(type) {
	case Deposit:
		amount, err := a.amount(c.Amount)
		if err != nil {
			return nil, err
		}
		if err := checkText("reference", c.Reference, MaxReference); err != nil {
			return nil, err
		}
		return a.credit(amount, c.Reference, "")
	case Withdraw:
		amount, err := a.amount(c.Amount)
		if err != nil {
			return nil, err
		}
		if err := checkText("reference", c.Reference, MaxReference); err != nil {
			return nil, err
		}
		return a.debit(amount, c.Reference, "")
	case DebitTransfer:
		amount, err := a.amount(c.Amount)
		if err != nil {
			return nil, err
		}
		if _, held := a.Holds[c.TransferID]; held {
			return nil, aggregates.Reject(aggregates.CodeAlreadyExists, "transfer %s is already debited", c.TransferID)
		}
		return a.debit(amount, "transfer "+c.TransferID, c.TransferID)
	case CreditTransfer:
		amount, err := a.amount(c.Amount)
		if err != nil {
			return nil, err
		}
		return a.credit(amount, "transfer "+c.TransferID, c.TransferID)
	case ReverseTransferDebit:
		held, ok := a.Holds[c.TransferID]
		if !ok {
			return nil, aggregates.Reject(CodeTransferSettled, "transfer %s holds nothing on this account", c.TransferID)
		}
		return []aggregates.Event{TransferDebitReversed{
			TransferID: c.TransferID, Amount: Format(held), Balance: Format(a.Balance.Add(held)),
		}}, nil
	case SettleTransfer:
		if _, ok := a.Holds[c.TransferID]; !ok {
			return nil, aggregates.Reject(CodeTransferSettled, "transfer %s holds nothing on this account", c.TransferID)
		}
		//lint:ignore S1016 a command and its event are distinct contracts that happen to share a shape
		return []aggregates.Event{TransferSettled{TransferID: c.TransferID}}, nil
	case FreezeAccount:
		if a.Status == StatusFrozen {
			return nil, aggregates.Reject(CodeAlreadyFrozen, "account %s is already frozen", ctx.AggregateID)
		}
		if err := checkText("reason", c.Reason, MaxReference); err != nil {
			return nil, err
		}
		//lint:ignore S1016 a command and its event are distinct contracts that happen to share a shape
		return []aggregates.Event{AccountFrozen{Reason: c.Reason}}, nil
	case UnfreezeAccount:
		if a.Status != StatusFrozen {
			return nil, aggregates.Reject(CodeNotFrozen, "account %s is not frozen", ctx.AggregateID)
		}
		return []aggregates.Event{AccountUnfrozen{}}, nil
	case CloseAccount:
		if !a.Balance.IsZero() {
			return nil, aggregates.Reject(CodeBalanceNotZero, "account %s holds %s %s", ctx.AggregateID, Format(a.Balance), a.Asset)
		}
		if len(a.Holds) > 0 {
			return nil, aggregates.Reject(CodeTransferInFlight, "account %s has %d transfer(s) in flight", ctx.AggregateID, len(a.Holds))
		}
		return []aggregates.Event{AccountClosed{}}, nil
	case ChangePayPlan:
		c.PayPlanID = aggregates.CanonicalID(c.PayPlanID)
		p, ok := aggregates.Related[PayPlan](ctx, "pay-plan", c.PayPlanID)
		if !ok {
			return nil, aggregates.Reject(CodePayPlanNotFound, "pay plan %s does not exist", c.PayPlanID)
		}
		if p.Retired {
			return nil, aggregates.Reject(CodePayPlanNotFound, "pay plan %q is retired", p.Name)
		}
		if c.PayPlanID == a.PayPlanID {
			return nil, aggregates.Reject(aggregates.CodeInvalid, "account is already on pay plan %q", p.Name)
		}
		return []aggregates.Event{PayPlanChanged{PayPlanID: c.PayPlanID, PreviousPayPlanID: a.PayPlanID}}, nil
	}
	return nil, unhandled("asset account", c)
}

func openAccount(c OpenAssetAccount, ctx aggregates.Context) ([]aggregates.Event, error) {
	if c.OwnerUserID == "" {
		return nil, aggregates.Reject(aggregates.CodeInvalid, "an account needs an owner")
	}
	if !ctx.Actor.Owns(aggregates.CanonicalID(c.OwnerUserID), GrantWriteAny) {
		return nil, aggregates.Reject(aggregates.CodeForbidden, "only %s may open an account for another user", GrantWriteAny)
	}
	if !assetPattern.MatchString(c.Asset) {
		return nil, aggregates.Reject(CodeInvalidAsset, "asset must be 2-10 capital letters or digits, not %q", c.Asset)
	}
	name, err := checkName("account", c.Name)
	if err != nil {
		return nil, err
	}
	return []aggregates.Event{AssetAccountOpened{OwnerUserID: aggregates.CanonicalID(c.OwnerUserID), Asset: c.Asset, Name: name}}, nil
}

// AuthorizeAssetAccount lets the owner and a holder of
// accounts:write:any act on an account; freezing and unfreezing take the
// grant (an owner cannot lift a freeze), and the steps of a transfer are
// the transfer process manager's alone. Anybody else is told the account
// does not exist. Decide checks it too, so it holds without the runtime.
func AuthorizeAssetAccount(a AssetAccount, c aggregates.Command, actor aggregates.Actor) error {
	var ok bool
	switch c.(type) {
	case DebitTransfer, CreditTransfer, ReverseTransferDebit, SettleTransfer:
		ok = actor.UserID == SystemActor
	case FreezeAccount, UnfreezeAccount:
		if actor.UserID == a.Owner && !actor.Has(GrantWriteAny) {
			return aggregates.Reject(aggregates.CodeForbidden, "freezing and unfreezing need %s", GrantWriteAny)
		}
		ok = actor.Has(GrantWriteAny)
	default:
		ok = actor.Owns(a.Owner, GrantWriteAny)
	}
	if !ok {
		return aggregates.Reject(aggregates.CodeNotFound, "the asset account does not exist")
	}
	return nil
}

func (a AssetAccount) amount(s string) (decimal.Decimal, error) { return ParseAmount(s) }

func (a AssetAccount) credit(amount decimal.Decimal, ref, transferID string) ([]aggregates.Event, error) {
	after := a.Balance.Add(amount)
	if after.GreaterThanOrEqual(maxBalance) {
		return nil, aggregates.Reject(CodeInvalidAmount, "the balance would exceed the largest balance an account may hold")
	}
	return []aggregates.Event{FundsDeposited{Amount: Format(amount), Reference: ref, Balance: Format(after), TransferID: transferID}}, nil
}

func (a AssetAccount) debit(amount decimal.Decimal, ref, transferID string) ([]aggregates.Event, error) {
	if a.Status == StatusFrozen {
		return nil, aggregates.Reject(CodeAccountFrozen, "account is frozen")
	}
	if a.Balance.LessThan(amount) {
		return nil, aggregates.Reject(CodeInsufficientFunds, "balance %s %s is less than %s", Format(a.Balance), a.Asset, Format(amount))
	}
	return []aggregates.Event{FundsWithdrawn{Amount: Format(amount), Reference: ref, Balance: Format(a.Balance.Sub(amount)), TransferID: transferID}}, nil
}

// EvolveAssetAccount applies one event to an account's state. It never
// mutates the map of the state it was given. Balances are taken from the
// amounts, so the state never depends on an event's reported balance.
func EvolveAssetAccount(a AssetAccount, e aggregates.Event) AssetAccount {
	switch e := e.(type) {
	case AssetAccountOpened:
		a.Owner, a.Asset, a.Name, a.Status = e.OwnerUserID, e.Asset, e.Name, StatusOpen
	case FundsDeposited:
		a.Balance = a.Balance.Add(mustDecimal(e.Amount))
	case FundsWithdrawn:
		amount := mustDecimal(e.Amount)
		a.Balance = a.Balance.Sub(amount)
		if e.TransferID != "" {
			a.Holds = maps.Clone(a.Holds)
			if a.Holds == nil {
				a.Holds = map[string]decimal.Decimal{}
			}
			a.Holds[e.TransferID] = amount
		}
	case TransferDebitReversed:
		a.Balance = a.Balance.Add(mustDecimal(e.Amount))
		a.Holds = without(a.Holds, e.TransferID)
	case TransferSettled:
		a.Holds = without(a.Holds, e.TransferID)
	case AccountFrozen:
		a.Status = StatusFrozen
	case AccountUnfrozen:
		a.Status = StatusOpen
	case AccountClosed:
		a.Status = StatusClosed
	case PayPlanChanged:
		a.PayPlanID = e.PayPlanID
	}
	return a
}

func without(m map[string]decimal.Decimal, k string) map[string]decimal.Decimal {
	out := maps.Clone(m)
	delete(out, k)
	if len(out) == 0 {
		return nil
	}
	return out
}

// mustDecimal parses an amount the journal holds; Decide only ever wrote
// canonical decimals, so a failure is a corrupt journal.
func mustDecimal(s string) decimal.Decimal {
	d, err := decimal.NewFromString(s)
	if err != nil {
		panic("account: journal holds an invalid amount " + s)
	}
	return d
}
