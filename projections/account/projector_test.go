package account_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/aggregates"
	domain "github.com/strata-cqrs/strata/aggregates/account"
	authdomain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
	"github.com/strata-cqrs/strata/projections"
	"github.com/strata-cqrs/strata/projections/account"
)

// TestProjector runs the real projector over an embedded broker: records
// on the projection's topics, as the relay writes them, decoded through
// the registry, with redeliveries, and command marks for account commands
// only.
func TestProjector(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := testkit.PostgresPool(t)
	brokers := testkit.Kafka(t)
	proj := account.Projection()
	var topics []kafka.Topic
	for _, name := range proj.Topics {
		topics = append(topics, kafka.Topic{Name: name, Partitions: 2})
	}
	if err := kafka.EnsureTopics(ctx, brokers, topics); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, pool, append(commands.Migrations(), proj.AllMigrations()...)); err != nil {
		t.Fatal(err)
	}
	reg, err := commands.NewRegistry(append(domain.Definitions(), authdomain.Definitions()...)...)
	if err != nil {
		t.Fatal(err)
	}

	openCmd, depositCmd, registerCmd := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, c := range []struct {
		id, service, typ, agg string
		version               int64
	}{
		{openCmd, "account", "account.OpenAssetAccount", acctA, 1},
		{depositCmd, "account", "account.Deposit", acctA, 4},
		{registerCmd, "auth", "auth.RegisterUser", ada, 1},
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO strata.commands (id, service, type, aggregate_id, actor, status, version)
			VALUES ($1,$2,$3,$4,'tester','accepted',$5)`, c.id, c.service, c.typ, c.agg, c.version); err != nil {
			t.Fatal(err)
		}
	}

	accounts, transfers, users := domain.AssetAccountDefinition(), domain.TransferDefinition(), authdomain.UserDefinition()
	deposit := domain.FundsDeposited{Amount: "0.1", Balance: "0.1"}
	writer := kafka.NewWriter(brokers, "")
	t.Cleanup(func() { _ = writer.Close() })
	produce := func(msgs ...kafkago.Message) {
		t.Helper()
		if err := writer.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	produce(
		record(t, accounts, acctA, 1, openCmd, domain.AssetAccountOpened{OwnerUserID: ada, Asset: "EUR", Name: "Main"}),
		record(t, accounts, acctA, 2, depositCmd, deposit),
		record(t, accounts, acctA, 1, openCmd, domain.AssetAccountOpened{OwnerUserID: ada, Asset: "EUR", Name: "Main"}),
		record(t, accounts, acctA, 3, depositCmd, domain.FundsDeposited{Amount: "0.1", Balance: "0.2"}),
		record(t, accounts, acctA, 2, depositCmd, deposit), // redelivered
		record(t, transfers, t1, 1, "", domain.TransferRequested{FromAccountID: acctA, ToAccountID: acctB, Amount: "0.2", Asset: "EUR"}),
	)

	p, err := projections.New(projections.Config{
		Projection: proj, Brokers: brokers, Pool: pool, Decoder: reg, Mark: commands.QueueMarkProjected,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	store := account.NewStore(pool)
	var got account.Account
	testkit.Eventually(t, 30*time.Second, func() bool {
		got, err = store.Account(ctx, acctA)
		return err == nil && got.Version == 3
	}, "account A not at version 3: %+v, %v", lazy(func() any { return got }), lazy(func() any { return err }))
	if got.Balance != "0.2" || got.OwnerName != nil {
		t.Fatalf("Account(A) = %s; want balance 0.2 and no owner name yet", show(got))
	}
	if st := status(t, pool, depositCmd); st != commands.StatusAccepted {
		t.Errorf("deposit command is %s before its last version is applied, want accepted", st)
	}

	// The owner registers; the last deposit arrives.
	produce(
		record(t, users, ada, 1, registerCmd, authdomain.UserRegistered{Email: "ada@example.com", Name: "Ada"}),
		record(t, accounts, acctA, 4, depositCmd, domain.FundsDeposited{Amount: "0.1", Balance: "0.3"}),
		record(t, accounts, acctA, 3, depositCmd, domain.FundsDeposited{Amount: "0.1", Balance: "0.2"}), // redelivered
	)
	testkit.Eventually(t, 30*time.Second, func() bool {
		got, err = store.Account(ctx, acctA)
		return err == nil && got.Version == 4 && got.OwnerName != nil
	}, "account A not at version 4 with its owner's name: %+v, %v", lazy(func() any { return got }), lazy(func() any { return err }))
	if got.Balance != "0.3" || *got.OwnerName != "Ada" {
		t.Fatalf("Account(A) = %s; want balance 0.3 owned by Ada", show(got))
	}
	ledger, err := store.Ledger(ctx, acctA, 0, 10)
	if err != nil || len(ledger) != 3 || ledger[2].RunningBalance != "0.3" {
		t.Fatalf("Ledger(A) = %s, %v; want three deposits up to 0.3", show(ledger), err)
	}
	x, err := store.Transfer(ctx, t1)
	if err != nil || x.Status != "requested" || x.FromOwner != ada {
		t.Fatalf("Transfer(t1) = %s, %v; want requested from Ada's account", show(x), err)
	}
	for id, want := range map[string]string{
		openCmd: commands.StatusProjected, depositCmd: commands.StatusProjected,
		registerCmd: commands.StatusAccepted, // auth's own projection marks it
	} {
		if st := status(t, pool, id); st != want {
			t.Errorf("command %s is %s, want %s", id, st, want)
		}
	}
}

// record builds a Kafka record the way the relay does.
func record(t *testing.T, def *aggregates.Definition, id string, version int64, commandID string, e aggregates.Event) kafkago.Message {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	je := commands.JournalEvent{
		EventID: uuid.NewString(), AggregateType: def.Type, AggregateID: id, Version: version,
		Type: def.QualifiedEvent(e), Data: data, OccurredAt: at(int(version)),
		Metadata: commands.Metadata{CommandID: commandID, CorrelationID: uuid.NewString(), Actor: "tester"},
	}
	return kafkago.Message{Topic: def.Topic(), Key: []byte(id), Value: data, Headers: commands.EventHeaders(def.Service, &je, "")}
}

// status reads a command's status.
func status(t *testing.T, pool *pgxpool.Pool, id string) string {
	t.Helper()
	var s string
	if err := pool.QueryRow(t.Context(), `SELECT status FROM strata.commands WHERE id=$1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// lazy formats its value when the message is printed.
type lazy func() any

func (l lazy) String() string {
	if err, ok := l().(error); ok {
		return err.Error()
	}
	return show(l())
}
