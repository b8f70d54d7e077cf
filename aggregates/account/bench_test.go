package account_test

import (
	"testing"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/account"
)

// BenchmarkDecide measures the money commands on an account with a
// balance: the decimal parse, the balance check and the canonical
// spelling of the new balance.
func BenchmarkDecide(b *testing.B) {
	const owner = "0197a000-0000-7000-8000-0000000000aa"
	def := account.AssetAccountDefinition()
	state := def.Fold(account.AssetAccountOpened{OwnerUserID: owner, Asset: "EUR", Name: "Main"},
		account.FundsDeposited{Amount: "1000000.5", Balance: "1000000.5"})
	ctx := aggregates.Context{AggregateID: "0197a000-0000-7000-8000-0000000000bb", Actor: aggregates.Actor{UserID: owner}}
	for _, c := range []aggregates.Command{
		account.Deposit{Amount: "123.45", Reference: "bench"},
		account.Withdraw{Amount: "0.00000001", Reference: "bench"},
	} {
		b.Run(c.CommandType(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := def.Decide(state, c, ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Evolve", func(b *testing.B) {
		b.ReportAllocs()
		e := account.FundsDeposited{Amount: "123.45", Balance: "1000123.95"}
		for b.Loop() {
			_ = def.Evolve(state, e)
		}
	})
}
