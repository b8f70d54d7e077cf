// Package account holds the account service's runtime pieces beyond the
// generic worker, relay and projector: the transfer process manager.
package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/aggregates"
	domain "github.com/strata-cqrs/strata/aggregates/account"
	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/kafka"
)

// TransferManagerConfig configures the transfer process manager.
type TransferManagerConfig struct {
	Brokers  []string
	Pool     *pgxpool.Pool
	Registry *commands.Registry
	Logger   *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// BeforeStep, when set, runs before each step of a transfer.
	// Fault-injection tests cancel the manager there to crash it between
	// two steps.
	BeforeStep func(transferID, step string)
}

// TransferManager drives every requested transfer to completed or failed.
// It consumes account.transfer and, for each TransferRequested, runs the
// steps of the transfer as commands with ids derived from the transfer id
// and the step:
//
//	debit the source   → refused: fail the transfer (nothing moved)
//	credit the target  → accepted: settle the source's hold, complete
//	                   → refused: reverse the debit, fail (compensated)
//
// Each step is decided exactly once (commands.Executor.Once records its
// outcome with its events in one transaction), and the offset of a
// TransferRequested is committed only once its transfer is completed or
// failed; so a crash at any point is followed by a redelivery that replays
// the decided steps' outcomes and carries on from the first undecided one.
// Money is never created or lost: the debit holds the source account open
// until the transfer settles or is reversed, so the compensation always
// finds it.
type TransferManager struct {
	cfg      TransferManagerConfig
	exec     *commands.Executor
	transfer *aggregates.Definition
	log      *slog.Logger
	running  atomic.Bool
	driven   atomic.Int64
}

// NewTransferManager checks the config and returns a manager.
func NewTransferManager(cfg TransferManagerConfig) (*TransferManager, error) {
	if len(cfg.Brokers) == 0 || cfg.Pool == nil || cfg.Registry == nil {
		return nil, errors.New("transfer manager: Brokers, Pool and Registry are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	def, ok := cfg.Registry.Aggregate(domain.Service, "transfer")
	if !ok {
		return nil, errors.New("transfer manager: the registry has no account.transfer aggregate")
	}
	return &TransferManager{
		cfg:      cfg,
		exec:     commands.NewExecutor(domain.Service, cfg.Registry, cfg.Now, cfg.Logger),
		transfer: def,
		log:      cfg.Logger.With("component", "transfers"),
	}, nil
}

// Ready reports whether the manager is consuming.
func (m *TransferManager) Ready() bool { return m.running.Load() }

// Driven returns how many transfer requests the manager has handled.
func (m *TransferManager) Driven() int64 { return m.driven.Load() }

// Run consumes until ctx is done; it returns nil on cancellation.
func (m *TransferManager) Run(ctx context.Context) error {
	defer m.running.Store(false)
	c := &kafka.Consumer{
		Reader: kafka.ReaderOptions{
			Brokers: m.cfg.Brokers,
			GroupID: "strata.process.account.transfer",
			Topics:  []string{m.transfer.Topic()},
			Logger:  m.cfg.Logger,
		},
		BatchSize: 200, BatchWait: 5 * time.Millisecond, Logger: m.log,
		Handle:  m.handle,
		Started: func() { m.running.Store(true) },
	}
	return c.Run(ctx)
}

var requested = domain.Service + "." + domain.TransferRequested{}.EventType() + ".v1"

// maxDrivers bounds the transfers one manager drives at once.
const maxDrivers = 16

// handle drives the transfers a batch requests until each is settled or
// ctx is done. Transfers that share no account run at once (up to
// maxDrivers); one that shares an account with a running one waits for
// it, so the transfers of one account are driven in request order and
// never contend for its aggregate.
func (m *TransferManager) handle(ctx context.Context, msgs []kafkago.Message) error {
	var (
		mu   sync.Mutex
		free = sync.NewCond(&mu)
		busy = map[string]bool{}
		wg   sync.WaitGroup
		sem  = make(chan struct{}, maxDrivers)
	)
	defer wg.Wait()
	for _, msg := range msgs {
		if kafka.Header(msg, "ce_type") != requested {
			continue
		}
		id := kafka.Header(msg, "ce_subject")
		var t domain.Transfer
		var live bool
		if !m.retry(ctx, id, func() (err error) { t, live, err = m.load(ctx, id); return err }) {
			return ctx.Err()
		}
		if !live {
			m.driven.Add(1)
			continue
		}
		mu.Lock()
		for busy[t.From] || busy[t.To] {
			free.Wait()
		}
		busy[t.From], busy[t.To] = true, true
		mu.Unlock()
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m.retry(ctx, id, func() error { return m.drive(ctx, id, t) }) {
				m.driven.Add(1)
			}
			mu.Lock()
			delete(busy, t.From)
			delete(busy, t.To)
			free.Broadcast()
			mu.Unlock()
			<-sem
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// retry runs f until it succeeds (true) or ctx is done (false), backing off.
func (m *TransferManager) retry(ctx context.Context, id string, f func() error) bool {
	for backoff := 50 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		err := f()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		m.log.Error("transfer step failed, retrying", "transfer_id", id, "err", err, "backoff", backoff)
		kafka.Sleep(ctx, backoff)
	}
}

// load returns a transfer's state and whether it still has steps to run.
func (m *TransferManager) load(ctx context.Context, id string) (domain.Transfer, bool, error) {
	agg, err := m.exec.Journal().Load(ctx, m.cfg.Pool, m.transfer, id)
	if err != nil {
		return domain.Transfer{}, false, fmt.Errorf("load transfer %s: %w", id, err)
	}
	t, _ := agg.State.(domain.Transfer)
	return t, agg.Version > 0 && !t.Terminal(), nil
}

// Drive runs the steps of one transfer that are not decided yet. It is
// idempotent: driving a settled transfer changes nothing.
func (m *TransferManager) Drive(ctx context.Context, id string) error {
	t, live, err := m.load(ctx, id)
	if err != nil || !live {
		return err
	}
	return m.drive(ctx, id, t)
}

// drive runs the undecided steps of a transfer in state t.
func (m *TransferManager) drive(ctx context.Context, id string, t domain.Transfer) error {
	amount := domain.Format(t.Amount)
	debit, err := m.step(ctx, id, "debit", t.From, domain.DebitTransfer{TransferID: id, Amount: amount})
	if err != nil {
		return err
	}
	if debit.Status == commands.StatusRejected {
		return m.finish(ctx, id, domain.FailTransfer{Code: deref(debit.Code),
			Reason: "the source account refused the debit (" + deref(debit.Code) + ")"})
	}
	credit, err := m.step(ctx, id, "credit", t.To, domain.CreditTransfer{TransferID: id, Amount: amount})
	if err != nil {
		return err
	}
	if credit.Status != commands.StatusRejected {
		if _, err := m.must(ctx, id, "settle", t.From, domain.SettleTransfer{TransferID: id}); err != nil {
			return err
		}
		return m.finish(ctx, id, domain.CompleteTransfer{})
	}
	if _, err := m.must(ctx, id, "reverse", t.From, domain.ReverseTransferDebit{TransferID: id}); err != nil {
		return err
	}
	return m.finish(ctx, id, domain.FailTransfer{Code: deref(credit.Code), Compensated: true,
		Reason: "the target account refused the credit (" + deref(credit.Code) + "); the debit was given back"})
}

// finish records the transfer's outcome. A failure's reason names the
// refusal's code only: a step's own reason may describe the other side's
// account ("balance 40 is less than 60"), and both sides read the transfer.
func (m *TransferManager) finish(ctx context.Context, id string, cmd aggregates.Command) error {
	_, err := m.must(ctx, id, domain.TransferFinishStep, id, cmd)
	return err
}

// must runs a step that no rule can refuse: a refusal means the journal
// contradicts the process (an operator must look), so it is an error that
// keeps the transfer unsettled and retried, never a silent loss.
func (m *TransferManager) must(ctx context.Context, id, step, aggregateID string, cmd aggregates.Command) (*commands.Status, error) {
	st, err := m.step(ctx, id, step, aggregateID, cmd)
	if err == nil && st.Status == commands.StatusRejected {
		err = fmt.Errorf("transfer %s: step %s was refused: %s: %s", id, step, deref(st.Code), deref(st.Reason))
	}
	return st, err
}

// step decides one step of a transfer exactly once.
func (m *TransferManager) step(ctx context.Context, id, step, aggregateID string, cmd aggregates.Command) (*commands.Status, error) {
	if m.cfg.BeforeStep != nil {
		m.cfg.BeforeStep(id, step)
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	env := &commands.Envelope{
		ID:            domain.TransferStepID(id, step),
		Type:          domain.Service + "." + cmd.CommandType(),
		AggregateID:   aggregateID,
		Actor:         commands.Actor{UserID: domain.SystemActor},
		IssuedAt:      time.Now().UTC(),
		CorrelationID: id,
		Payload:       payload,
	}
	return m.exec.Once(ctx, m.cfg.Pool, env)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
