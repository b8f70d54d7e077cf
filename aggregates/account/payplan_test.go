package account_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/account"
)

var (
	planCreated = account.PayPlanCreated{Name: "Pro", Price: "9.99", Currency: "EUR", Interval: account.IntervalMonthly,
		Features: []string{"Support", "API"}}
	priceChanged = account.PayPlanPriceChanged{Price: "12", PreviousPrice: "9.99"}
	planRetired  = account.PayPlanRetired{}
)

func features(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("feature %d", i)
	}
	return out
}

func TestPayPlanDecideCreate(t *testing.T) {
	plan := func(f func(*account.CreatePayPlan)) account.CreatePayPlan {
		c := account.CreatePayPlan{Name: "Pro", Price: "9.99", Currency: "EUR", Interval: "monthly", Features: []string{"Support", "API"}}
		f(&c)
		return c
	}
	created := func(f func(*account.PayPlanCreated)) account.PayPlanCreated {
		e := planCreated
		f(&e)
		return e
	}
	specs := []spec{
		{
			name: "CreatesTrimmed",
			when: plan(func(c *account.CreatePayPlan) {
				c.Name, c.Price, c.Features = "  Pro ", "9.990", []string{" Support ", "API\t"}
			}),
			then: events{planCreated},
		},
		{
			name: "CreatesFreePlan",
			when: plan(func(c *account.CreatePayPlan) { c.Price = "0" }),
			then: events{created(func(e *account.PayPlanCreated) { e.Price = "0" })},
		},
		{
			name: "WritesCanonicalZero",
			when: plan(func(c *account.CreatePayPlan) { c.Price = "0.00" }),
			then: events{created(func(e *account.PayPlanCreated) { e.Price = "0" })},
		},
		{
			name: "CreatesYearly",
			when: plan(func(c *account.CreatePayPlan) { c.Interval = "yearly" }),
			then: events{created(func(e *account.PayPlanCreated) { e.Interval = account.IntervalYearly })},
		},
		{
			name: "CreatesWithoutFeatures",
			when: plan(func(c *account.CreatePayPlan) { c.Features = nil }),
			then: events{created(func(e *account.PayPlanCreated) { e.Features = []string{} })},
		},
		{
			name: "KeepsFeaturesDifferingInCase",
			when: plan(func(c *account.CreatePayPlan) { c.Features = []string{"API", "api"} }),
			then: events{created(func(e *account.PayPlanCreated) { e.Features = []string{"API", "api"} })},
		},
		{
			name: "AcceptsMostFeatures",
			when: plan(func(c *account.CreatePayPlan) { c.Features = features(account.MaxFeatures) }),
			then: events{created(func(e *account.PayPlanCreated) { e.Features = features(account.MaxFeatures) })},
		},
		{
			name: "AcceptsLongestFeature",
			when: plan(func(c *account.CreatePayPlan) { c.Features = []string{strings.Repeat("é", account.MaxFeatureLength)} }),
			then: events{created(func(e *account.PayPlanCreated) { e.Features = []string{strings.Repeat("é", account.MaxFeatureLength)} })},
		},
		{
			name: "AcceptsLongestCurrency",
			when: plan(func(c *account.CreatePayPlan) { c.Currency = "USDC123456" }),
			then: events{created(func(e *account.PayPlanCreated) { e.Currency = "USDC123456" })},
		},
		{name: "RejectsEmptyName", when: plan(func(c *account.CreatePayPlan) { c.Name = " " }), code: account.CodeInvalidName},
		{name: "RejectsNameTooLong", when: plan(func(c *account.CreatePayPlan) { c.Name = strings.Repeat("n", account.MaxName+1) }), code: account.CodeInvalidName},
		{name: "RejectsDuplicateFeature", when: plan(func(c *account.CreatePayPlan) { c.Features = []string{"API", "SSO", "API"} }), code: aggregates.CodeInvalid},
		{name: "RejectsFeatureDuplicatedOnceTrimmed", when: plan(func(c *account.CreatePayPlan) { c.Features = []string{"API", " API "} }), code: aggregates.CodeInvalid},
		{name: "RejectsEmptyFeature", when: plan(func(c *account.CreatePayPlan) { c.Features = []string{"API", "  "} }), code: aggregates.CodeInvalid},
		{name: "RejectsTooManyFeatures", when: plan(func(c *account.CreatePayPlan) { c.Features = features(account.MaxFeatures + 1) }), code: aggregates.CodeInvalid},
		{
			name: "RejectsFeatureTooLong",
			when: plan(func(c *account.CreatePayPlan) { c.Features = []string{strings.Repeat("f", account.MaxFeatureLength+1)} }),
			code: aggregates.CodeInvalid,
		},
	}
	for _, price := range []string{"-1", "1e3", "0.000000001", "", "+1", "01", "NaN"} {
		specs = append(specs, spec{
			name: fmt.Sprintf("RejectsPrice%q", price), when: plan(func(c *account.CreatePayPlan) { c.Price = price }), code: account.CodeInvalidAmount,
		})
	}
	for _, cur := range []string{"", "E", "eur", "Eur", "EU R", "ABCDEFGHIJK", "€"} {
		specs = append(specs, spec{
			name: fmt.Sprintf("RejectsCurrency%q", cur), when: plan(func(c *account.CreatePayPlan) { c.Currency = cur }), code: account.CodeInvalidAsset,
		})
	}
	for _, iv := range []string{"", "weekly", "Monthly", "YEARLY", " monthly"} {
		specs = append(specs, spec{
			name: fmt.Sprintf("RejectsInterval%q", iv), when: plan(func(c *account.CreatePayPlan) { c.Interval = iv }), code: aggregates.CodeInvalid,
		})
	}
	run(t, definition(t, "pay-plan"), specs)
}

func TestPayPlanDecide(t *testing.T) {
	run(t, definition(t, "pay-plan"), []spec{
		{name: "ChangesPrice", given: events{planCreated}, when: account.ChangePayPlanPrice{Price: "12.00"}, then: events{priceChanged}},
		{
			name: "ChangesPriceToZero", given: events{planCreated}, when: account.ChangePayPlanPrice{Price: "0"},
			then: events{account.PayPlanPriceChanged{Price: "0", PreviousPrice: "9.99"}},
		},
		{
			name: "ChangesPriceAgain", given: events{planCreated, priceChanged}, when: account.ChangePayPlanPrice{Price: "9.99"},
			then: events{account.PayPlanPriceChanged{Price: "9.99", PreviousPrice: "12"}},
		},
		{name: "RejectsSamePrice", given: events{planCreated}, when: account.ChangePayPlanPrice{Price: "9.99"}, code: aggregates.CodeInvalid},
		{name: "RejectsSamePriceSpelledOtherwise", given: events{planCreated}, when: account.ChangePayPlanPrice{Price: "9.9900"}, code: aggregates.CodeInvalid},
		{name: "RejectsNegativePrice", given: events{planCreated}, when: account.ChangePayPlanPrice{Price: "-1"}, code: account.CodeInvalidAmount},
		{name: "RejectsExponentPrice", given: events{planCreated}, when: account.ChangePayPlanPrice{Price: "1e1"}, code: account.CodeInvalidAmount},
		{name: "Retires", given: events{planCreated}, when: account.RetirePayPlan{}, then: events{planRetired}},
		{name: "RetiresRepricedPlan", given: events{planCreated, priceChanged}, when: account.RetirePayPlan{}, then: events{planRetired}},
		{name: "RejectsPriceChangeWhenRetired", given: events{planCreated, planRetired}, when: account.ChangePayPlanPrice{Price: "1"}, code: account.CodePayPlanRetired},
		{name: "RejectsRetiringTwice", given: events{planCreated, planRetired}, when: account.RetirePayPlan{}, code: account.CodePayPlanRetired},
		{name: "RejectsCreateWhenRetired", given: events{planCreated, planRetired}, when: account.CreatePayPlan{Name: "Pro"}, code: account.CodePayPlanRetired},
		{name: "RejectsOtherCommandsWhenRetired", given: events{planCreated, planRetired}, when: account.Deposit{}, code: account.CodePayPlanRetired},
		{name: "RejectsOtherCommands", given: events{planCreated}, when: account.Deposit{Amount: "1"}, code: aggregates.CodeInvalid},
	})
}

func TestPayPlanEvolve(t *testing.T) {
	runFolds(t, definition(t, "pay-plan"), same, []fold{
		{name: "StartsEmpty", want: account.PayPlan{}},
		{name: "Created", given: events{planCreated}, want: account.PayPlan{Name: "Pro", Price: "9.99"}},
		{name: "Repriced", given: events{planCreated, priceChanged}, want: account.PayPlan{Name: "Pro", Price: "12"}},
		{name: "Retired", given: events{planCreated, priceChanged, planRetired}, want: account.PayPlan{Name: "Pro", Price: "12", Retired: true}},
	})
}

func TestPayPlanKeys(t *testing.T) {
	key := func(k string) []aggregates.UniqueKey {
		return []aggregates.UniqueKey{{Scope: "pay_plan_name", Key: k, Code: account.CodePayPlanExists}}
	}
	runKeys(t, definition(t, "pay-plan"), []keys{
		{name: "NoneBeforeCreation"},
		{name: "ClaimsLowerCasedName", given: events{planCreated}, want: key("pro")},
		{
			name:  "LowerCasesWholeName",
			given: events{account.PayPlanCreated{Name: "Team PLUS Ä", Price: "1", Currency: "EUR", Interval: "yearly"}},
			want:  key("team plus ä"),
		},
		{name: "KeepsNameWhenRepriced", given: events{planCreated, priceChanged}, want: key("pro")},
		{name: "KeepsNameWhenRetired", given: events{planCreated, planRetired}, want: key("pro")},
	})
}
