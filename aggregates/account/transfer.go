package account

import (
	"strings"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-cqrs/strata/aggregates"
)

// TransferFunds asks to move an amount between two accounts of one asset.
// It records the request; the transfer process manager then debits the
// source, credits the target and completes the transfer, or fails it and
// gives the debit back.
type TransferFunds struct {
	FromAccountID string `json:"from_account_id"`
	ToAccountID   string `json:"to_account_id"`
	Amount        string `json:"amount"`
}

// CompleteTransfer records that both legs of a transfer were applied.
type CompleteTransfer struct{}

// FailTransfer records that a transfer could not be applied. Compensated
// says whether its debit had been made and was given back.
type FailTransfer struct {
	Code        string `json:"code"`
	Reason      string `json:"reason"`
	Compensated bool   `json:"compensated"`
}

func (TransferFunds) CommandType() string    { return "TransferFunds" }
func (CompleteTransfer) CommandType() string { return "CompleteTransfer" }
func (FailTransfer) CommandType() string     { return "FailTransfer" }

// TransferRequested records an accepted transfer request.
type TransferRequested struct {
	FromAccountID string `json:"from_account_id"`
	ToAccountID   string `json:"to_account_id"`
	Amount        string `json:"amount"`
	Asset         string `json:"asset"`
}

// TransferCompleted records that the amount left the source and reached
// the target.
type TransferCompleted struct{}

// TransferFailed records a transfer that moved no money in the end: it was
// refused before its debit, or its debit was reversed (Compensated).
type TransferFailed struct {
	Code        string `json:"code"`
	Reason      string `json:"reason"`
	Compensated bool   `json:"compensated"`
}

func (TransferRequested) EventType() string { return "TransferRequested" }
func (TransferCompleted) EventType() string { return "TransferCompleted" }
func (TransferFailed) EventType() string    { return "TransferFailed" }

// Transfer statuses.
const (
	TransferStatusRequested = "requested"
	TransferStatusCompleted = "completed"
	TransferStatusFailed    = "failed"
)

// Transfer is the state of one transfer.
type Transfer struct {
	From, To, Asset string
	Amount          decimal.Decimal
	Status          string
}

// Terminal reports whether the transfer has completed or failed.
func (t Transfer) Terminal() bool {
	return t.Status == TransferStatusCompleted || t.Status == TransferStatusFailed
}

// TransferDefinition registers the Transfer aggregate.
func TransferDefinition() *aggregates.Definition {
	return aggregates.Define(aggregates.Spec[Transfer]{
		Service:  Service,
		Type:     "transfer",
		Commands: []aggregates.Command{TransferFunds{}, CompleteTransfer{}, FailTransfer{}},
		Events:   []aggregates.Event{TransferRequested{}, TransferCompleted{}, TransferFailed{}},
		Creates:  creates[TransferFunds](),
		Needs: func(c aggregates.Command) []aggregates.Ref {
			if t, ok := c.(TransferFunds); ok {
				return []aggregates.Ref{{Type: "asset-account", ID: t.FromAccountID}, {Type: "asset-account", ID: t.ToAccountID}}
			}
			return nil
		},
		Decide: DecideTransfer,
		Evolve: EvolveTransfer,
	})
}

// DecideTransfer decides a command against a transfer's state. A request
// is checked against both accounts as they are now, so the common refusals
// (insufficient funds, a frozen or closed account) answer the request
// itself; the debit decides again, since the accounts may change before it.
func DecideTransfer(t Transfer, c aggregates.Command, ctx aggregates.Context) ([]aggregates.Event, error) {
	switch c := c.(type) {
	case TransferFunds:
		amount, err := ParseAmount(c.Amount)
		if err != nil {
			return nil, err
		}
		// Ids are compared and recorded as the journal spells them.
		c.FromAccountID, c.ToAccountID = aggregates.CanonicalID(c.FromAccountID), aggregates.CanonicalID(c.ToAccountID)
		if c.FromAccountID == c.ToAccountID {
			return nil, aggregates.Reject(CodeSameAccount, "a transfer needs two different accounts")
		}
		from, ok := aggregates.Related[AssetAccount](ctx, "asset-account", c.FromAccountID)
		if !ok || !ctx.Actor.Owns(from.Owner, GrantWriteAny) {
			return nil, aggregates.Reject(CodeAccountNotFound, "account %s does not exist", c.FromAccountID)
		}
		to, ok := aggregates.Related[AssetAccount](ctx, "asset-account", c.ToAccountID)
		if !ok {
			return nil, aggregates.Reject(CodeAccountNotFound, "account %s does not exist", c.ToAccountID)
		}
		switch {
		case from.Asset != to.Asset:
			// The target may be someone else's: its asset is not told.
			return nil, aggregates.Reject(CodeAssetMismatch, "account %s holds %s; the target account holds another asset",
				c.FromAccountID, from.Asset)
		case from.Status == StatusClosed:
			return nil, aggregates.Reject(CodeAccountClosed, "account %s is closed", c.FromAccountID)
		case to.Status == StatusClosed:
			return nil, aggregates.Reject(CodeAccountClosed, "account %s is closed", c.ToAccountID)
		case from.Status == StatusFrozen:
			return nil, aggregates.Reject(CodeAccountFrozen, "account %s is frozen", c.FromAccountID)
		case from.Balance.LessThan(amount):
			return nil, aggregates.Reject(CodeInsufficientFunds, "account %s holds %s %s, less than %s",
				c.FromAccountID, Format(from.Balance), from.Asset, Format(amount))
		}
		return []aggregates.Event{TransferRequested{
			FromAccountID: c.FromAccountID, ToAccountID: c.ToAccountID, Amount: Format(amount), Asset: from.Asset,
		}}, nil
	case CompleteTransfer, FailTransfer:
		if ctx.Actor.UserID != SystemActor {
			return nil, aggregates.Reject(aggregates.CodeForbidden, "only the transfer process decides a transfer's outcome")
		}
		if t.Terminal() {
			return nil, aggregates.Reject(CodeTransferSettled, "transfer %s is already %s", ctx.AggregateID, t.Status)
		}
		if f, ok := c.(FailTransfer); ok {
			return []aggregates.Event{TransferFailed(f)}, nil
		}
		return []aggregates.Event{TransferCompleted{}}, nil
	}
	return nil, unhandled("transfer", c)
}

// EvolveTransfer applies one event to a transfer's state.
func EvolveTransfer(t Transfer, e aggregates.Event) Transfer {
	switch e := e.(type) {
	case TransferRequested:
		t.From, t.To, t.Asset, t.Amount = e.FromAccountID, e.ToAccountID, e.Asset, mustDecimal(e.Amount)
		t.Status = TransferStatusRequested
	case TransferCompleted:
		t.Status = TransferStatusCompleted
	case TransferFailed:
		t.Status = TransferStatusFailed
	}
	return t
}

// stepNamespace derives the ids of a transfer's step commands.
var stepNamespace = uuid.MustParse("6f1d3c0e-5b7a-4f43-9a51-2c8e7d0b4a19")

// TransferStepID is the command id of one step of a transfer ("debit",
// "credit", "settle", "reverse", "finish"): the same on every run of the
// process, so a step is decided once however often it is driven.
func TransferStepID(transferID, step string) string {
	return uuid.NewSHA1(stepNamespace, []byte(strings.ToLower(transferID)+"/"+step)).String()
}

// TransferFinishStep is the last step of every transfer: once its command
// is projected, the transfer is completed or failed in the read model.
const TransferFinishStep = "finish"
