// Package account is the pure domain of the account service: asset accounts
// holding exact decimal balances, transfers between them, pay plans,
// message templates and message groups. It decides commands and evolves
// state; it does no I/O.
package account

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/strata-cqrs/strata/aggregates"
)

// Service is the service name used in topics and event types.
const Service = "account"

// Rejection codes of the account service.
const (
	CodeInsufficientFunds = "insufficient_funds"
	CodeAccountFrozen     = "account_frozen"
	CodeBalanceNotZero    = "balance_not_zero"
	CodeAccountClosed     = "account_closed"
	CodeInvalidAmount     = "invalid_amount"
	CodePayPlanNotFound   = "pay_plan_not_found"
	CodeInvalidAsset      = "invalid_asset"
	CodeAlreadyFrozen     = "already_frozen"
	CodeNotFrozen         = "not_frozen"
	CodeTransferInFlight  = "transfer_in_flight"
	CodeAccountNotFound   = "account_not_found"
	CodeAssetMismatch     = "asset_mismatch"
	CodeSameAccount       = "same_account"
	CodeTransferSettled   = "transfer_settled"
	CodePayPlanExists     = "pay_plan_exists"
	CodePayPlanRetired    = "pay_plan_retired"
	CodeTemplateExists    = "template_exists"
	CodeInvalidTemplate   = "invalid_template"
	CodeTemplateNotFound  = "template_not_found"
	CodeMissingVariable   = "missing_variable"
	CodeGroupExists       = "group_exists"
	CodeAlreadyMember     = "already_member"
	CodeNotMember         = "not_member"
	CodeNoMembers         = "no_members"
	CodeInvalidName       = "invalid_name"
)

// Grants that reach every owner's accounts (DOMAIN.md permissions).
const (
	GrantReadAny  = "accounts:read:any"
	GrantWriteAny = "accounts:write:any"
)

// SystemActor is the actor of the commands the transfer process manager
// issues; they are not reachable through the gateway.
const SystemActor = "system:transfers"

// Definitions returns the aggregates of the account service, for the registry.
func Definitions() []*aggregates.Definition {
	return []*aggregates.Definition{
		AssetAccountDefinition(), TransferDefinition(), PayPlanDefinition(),
		MessageTemplateDefinition(), MessageGroupDefinition(),
	}
}

// Amount bounds: at most 8 decimals (DOMAIN.md) and 20 integer digits, so
// every amount and every balance fits NUMERIC(38,8).
const (
	AmountDecimals = 8
	maxIntDigits   = 20
)

// amountPattern is the only spelling of an amount: a decimal string with
// no sign, exponent, spaces or superfluous leading zeros.
var amountPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,19})(\.[0-9]{1,8})?$`)

// maxBalance is the largest balance an account may reach (10^28 - 1e-8 fits
// NUMERIC(38,8) with room to spare for sums in reports).
var maxBalance = decimal.New(1, 28)

// ParseAmount parses a positive amount: "100.25", never "-1", "0", "1e3",
// "0.000000001" or " 1".
func ParseAmount(s string) (decimal.Decimal, error) {
	d, err := parseDecimal(s, "amount")
	if err != nil {
		return d, err
	}
	if !d.IsPositive() {
		return d, aggregates.Reject(CodeInvalidAmount, "amount must be greater than 0, not %q", s)
	}
	return d, nil
}

// ParsePrice parses a price: like an amount, but zero is allowed.
func ParsePrice(s string) (decimal.Decimal, error) {
	return parseDecimal(s, "price")
}

func parseDecimal(s, what string) (decimal.Decimal, error) {
	if !amountPattern.MatchString(s) {
		return decimal.Decimal{}, aggregates.Reject(CodeInvalidAmount,
			"%s must be a decimal string like \"100.25\" with at most %d decimals, not %q", what, AmountDecimals, s)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return d, aggregates.Reject(CodeInvalidAmount, "%s %q: %v", what, s, err)
	}
	return d, nil
}

// Format is the canonical spelling of an amount in events: no exponent,
// no trailing zeros ("100.5", "7").
func Format(d decimal.Decimal) string { return d.String() }

// assetPattern is DOMAIN.md's asset code.
var assetPattern = regexp.MustCompile(`^[A-Z0-9]{2,10}$`)

// Name and text limits, in characters; the command schemas say the same.
const (
	MaxName        = 100
	MaxReference   = 200
	MaxDescription = 1000
)

// checkName trims and checks a display name.
func checkName(what, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > MaxName || strings.ContainsAny(name, "\x00\r\n") {
		return "", aggregates.Reject(CodeInvalidName, "%s name must be 1-%d characters on one line", what, MaxName)
	}
	return name, nil
}

// checkText checks a free-text field's length.
func checkText(what, s string, max int) error {
	if utf8.RuneCountInString(s) > max || strings.ContainsRune(s, 0) {
		return aggregates.Reject(aggregates.CodeInvalid, "%s must be at most %d characters", what, max)
	}
	return nil
}

// nameKey is the unique key of a case-insensitive name.
func nameKey(scope, name, code string, live bool) []aggregates.UniqueKey {
	if name == "" || !live {
		return nil
	}
	return []aggregates.UniqueKey{{Scope: scope, Key: strings.ToLower(name), Code: code}}
}

// creates returns a Creates func matching one command type.
func creates[C aggregates.Command]() func(aggregates.Command) bool {
	return func(c aggregates.Command) bool { _, ok := c.(C); return ok }
}

// unhandled is the rejection for a command an aggregate does not know.
func unhandled(what string, c aggregates.Command) error {
	return aggregates.Reject(aggregates.CodeInvalid, "%s does not handle %s", what, c.CommandType())
}
