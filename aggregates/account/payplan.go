package account

import (
	"strings"
	"unicode/utf8"

	"github.com/strata-cqrs/strata/aggregates"
)

// Pay plan intervals.
const (
	IntervalMonthly = "monthly"
	IntervalYearly  = "yearly"
)

// Feature list limits; the command schema says the same.
const (
	MaxFeatures      = 50
	MaxFeatureLength = 100
)

// CreatePayPlan creates a pay plan with a unique name.
type CreatePayPlan struct {
	Name     string   `json:"name"`
	Price    string   `json:"price"`
	Currency string   `json:"currency"`
	Interval string   `json:"interval"`
	Features []string `json:"features"`
}

// ChangePayPlanPrice sets a new price.
type ChangePayPlanPrice struct {
	Price string `json:"price"`
}

// RetirePayPlan retires a plan: no account can move onto it any more, and
// it accepts nothing else.
type RetirePayPlan struct{}

func (CreatePayPlan) CommandType() string      { return "CreatePayPlan" }
func (ChangePayPlanPrice) CommandType() string { return "ChangePayPlanPrice" }
func (RetirePayPlan) CommandType() string      { return "RetirePayPlan" }

// PayPlanCreated records a new pay plan.
type PayPlanCreated struct {
	Name     string   `json:"name"`
	Price    string   `json:"price"`
	Currency string   `json:"currency"`
	Interval string   `json:"interval"`
	Features []string `json:"features"`
}

// PayPlanPriceChanged records a plan's new price.
type PayPlanPriceChanged struct {
	Price         string `json:"price"`
	PreviousPrice string `json:"previous_price"`
}

// PayPlanRetired records that a plan is retired.
type PayPlanRetired struct{}

func (PayPlanCreated) EventType() string      { return "PayPlanCreated" }
func (PayPlanPriceChanged) EventType() string { return "PayPlanPriceChanged" }
func (PayPlanRetired) EventType() string      { return "PayPlanRetired" }

// PayPlan is the state of one pay plan.
type PayPlan struct {
	Name    string
	Price   string
	Retired bool
}

// PayPlanDefinition registers the PayPlan aggregate.
func PayPlanDefinition() *aggregates.Definition {
	return aggregates.Define(aggregates.Spec[PayPlan]{
		Service:  Service,
		Type:     "pay-plan",
		Commands: []aggregates.Command{CreatePayPlan{}, ChangePayPlanPrice{}, RetirePayPlan{}},
		Events:   []aggregates.Event{PayPlanCreated{}, PayPlanPriceChanged{}, PayPlanRetired{}},
		Creates:  creates[CreatePayPlan](),
		Decide:   DecidePayPlan,
		Evolve:   EvolvePayPlan,
		Keys: func(p PayPlan) []aggregates.UniqueKey {
			return nameKey("pay_plan_name", p.Name, CodePayPlanExists, true)
		},
	})
}

// DecidePayPlan decides a command against a pay plan's state.
func DecidePayPlan(p PayPlan, c aggregates.Command, ctx aggregates.Context) ([]aggregates.Event, error) {
	if p.Retired {
		return nil, aggregates.Reject(CodePayPlanRetired, "pay plan %q is retired", p.Name)
	}
	switch c := c.(type) {
	case CreatePayPlan:
		name, err := checkName("pay plan", c.Name)
		if err != nil {
			return nil, err
		}
		price, err := ParsePrice(c.Price)
		if err != nil {
			return nil, err
		}
		if !assetPattern.MatchString(c.Currency) {
			return nil, aggregates.Reject(CodeInvalidAsset, "currency must be 2-10 capital letters or digits, not %q", c.Currency)
		}
		if c.Interval != IntervalMonthly && c.Interval != IntervalYearly {
			return nil, aggregates.Reject(aggregates.CodeInvalid, "interval must be monthly or yearly, not %q", c.Interval)
		}
		features, err := checkFeatures(c.Features)
		if err != nil {
			return nil, err
		}
		return []aggregates.Event{PayPlanCreated{Name: name, Price: Format(price), Currency: c.Currency,
			Interval: c.Interval, Features: features}}, nil
	case ChangePayPlanPrice:
		price, err := ParsePrice(c.Price)
		if err != nil {
			return nil, err
		}
		if Format(price) == p.Price {
			return nil, aggregates.Reject(aggregates.CodeInvalid, "pay plan %q already costs %s", p.Name, p.Price)
		}
		return []aggregates.Event{PayPlanPriceChanged{Price: Format(price), PreviousPrice: p.Price}}, nil
	case RetirePayPlan:
		return []aggregates.Event{PayPlanRetired{}}, nil
	}
	return nil, unhandled("pay plan", c)
}

// checkFeatures trims the features and refuses empty, long or repeated ones.
func checkFeatures(in []string) ([]string, error) {
	if len(in) > MaxFeatures {
		return nil, aggregates.Reject(aggregates.CodeInvalid, "a pay plan has at most %d features", MaxFeatures)
	}
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, f := range in {
		f = strings.TrimSpace(f)
		if f == "" || utf8.RuneCountInString(f) > MaxFeatureLength || strings.ContainsRune(f, 0) {
			return nil, aggregates.Reject(aggregates.CodeInvalid, "a feature is 1-%d characters", MaxFeatureLength)
		}
		if seen[f] {
			return nil, aggregates.Reject(aggregates.CodeInvalid, "feature %q is listed twice", f)
		}
		seen[f] = true
		out = append(out, f)
	}
	return out, nil
}

// EvolvePayPlan applies one event to a pay plan's state.
func EvolvePayPlan(p PayPlan, e aggregates.Event) PayPlan {
	switch e := e.(type) {
	case PayPlanCreated:
		p.Name, p.Price = e.Name, e.Price
	case PayPlanPriceChanged:
		p.Price = e.Price
	case PayPlanRetired:
		p.Retired = true
	}
	return p
}
