package account_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/strata-cqrs/strata/aggregates"
	domain "github.com/strata-cqrs/strata/aggregates/account"
	"github.com/strata-cqrs/strata/commands"
	accountcmd "github.com/strata-cqrs/strata/commands/account"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/postgres"
	"github.com/strata-cqrs/strata/internal/testkit"
	"github.com/strata-cqrs/strata/projections"
	accountread "github.com/strata-cqrs/strata/projections/account"
	"github.com/strata-cqrs/strata/schemas"
)

// teller is one test's account service: a fresh database, an in-process
// broker with the account topics, and the means to submit commands the
// way the gateway does (pending row, signed envelope on the bus).
type teller struct {
	t        testing.TB
	ctx      context.Context
	pool     *pgxpool.Pool
	brokers  []string
	reg      *commands.Registry
	key      commands.Key
	bus      *commands.Bus
	statuses *commands.StatusStore
	log      *slog.Logger
}

// operator issues the test's commands; it reaches every account.
var operator = commands.Actor{UserID: "0192f4a0-1e2d-7c3b-a4f5-6e7d8c9b0a1f", Grants: []string{domain.GrantWriteAny}}

func newTeller(t testing.TB) *teller {
	t.Helper()
	pool := testkit.PostgresPool(t)
	// Cancelled before the pool closes (cleanups run last first): the
	// components hold connections until they stop.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tl := &teller{t: t, ctx: ctx, pool: pool, brokers: testkit.Kafka(t),
		key: commands.Key(bytes.Repeat([]byte("k"), commands.MinKeyBytes)), log: slog.New(slog.DiscardHandler)}
	var err error
	if tl.reg, err = commands.NewRegistry(domain.Definitions()...); err != nil {
		t.Fatal(err)
	}
	ms := append(commands.Migrations(domain.Service), accountread.Projection().AllMigrations()...)
	if err := postgres.Migrate(ctx, tl.pool, ms); err != nil {
		t.Fatal(err)
	}
	topics := []kafka.Topic{{Name: commands.CommandTopic(domain.Service), Partitions: 4},
		{Name: commands.DLQTopic(domain.Service)}, {Name: "auth.user"}}
	for _, d := range domain.Definitions() {
		topics = append(topics, kafka.Topic{Name: d.Topic(), Partitions: 4})
	}
	if err := kafka.EnsureTopics(ctx, tl.brokers, topics); err != nil {
		t.Fatal(err)
	}
	if tl.bus, err = commands.NewBus(commands.BusConfig{Brokers: tl.brokers, Key: tl.key, Logger: tl.log}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tl.bus.Close() })
	tl.statuses = commands.NewStatusStore(tl.pool)
	return tl
}

// submit records and produces a command, as the gateway does.
func (tl *teller) submit(aggregateID string, cmd aggregates.Command) string {
	tl.t.Helper()
	payload, err := json.Marshal(cmd)
	if err != nil {
		tl.t.Fatal(err)
	}
	env := &commands.Envelope{ID: commands.NewID(), Type: domain.Service + "." + cmd.CommandType(),
		AggregateID: aggregateID, Actor: operator, IssuedAt: time.Now().UTC(), CorrelationID: "test", Payload: payload}
	if _, _, err := tl.statuses.InsertPending(tl.ctx, commands.Submission{Envelope: env}); err != nil {
		tl.t.Fatal(err)
	}
	if err := tl.bus.Send(tl.ctx, env); err != nil {
		tl.t.Fatal(err)
	}
	return env.ID
}

// component runs a fresh instance of one runtime part until crash is
// called, then starts another: a process killed and restarted.
type component struct {
	name     string
	start    func(ctx context.Context, c *component) error
	mu       sync.Mutex
	cancel   context.CancelFunc
	restarts atomic.Int64
}

func (c *component) run(ctx context.Context) {
	for ctx.Err() == nil {
		cctx, cancel := context.WithCancel(ctx)
		c.mu.Lock()
		c.cancel = cancel
		c.mu.Unlock()
		if err := c.start(cctx, c); err != nil && ctx.Err() == nil {
			panic(fmt.Sprintf("%s: %v", c.name, err))
		}
		cancel()
		c.restarts.Add(1)
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
	}
}

// crash stops the running instance where it stands.
func (c *component) crash() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
}

// chaos is the probability that a crash hook fires; 0 turns them off.
type chaos struct{ p atomic.Uint64 }

func (ch *chaos) set(p float64) { ch.p.Store(uint64(p * 1e6)) }
func (ch *chaos) fire() bool    { return rand.Float64()*1e6 < float64(ch.p.Load()) }

// platform starts the account service's worker, relay, projector and
// transfer manager, each restarted whenever it stops. With chaos set, the
// worker and the projector crash between their Postgres commit and their
// offset commit, and the manager between two steps of a transfer.
func (tl *teller) platform(ch *chaos, run map[string]bool) []*component {
	svc := domain.Service
	cs := []*component{
		{name: "worker", start: func(ctx context.Context, c *component) error {
			w, err := commands.NewWorker(commands.WorkerConfig{Service: svc, Brokers: tl.brokers, Pool: tl.pool,
				Registry: tl.reg, Key: tl.key, Logger: tl.log, AfterCommit: func() {
					if ch.fire() {
						c.crash()
					}
				}})
			if err != nil {
				return err
			}
			return w.Run(ctx)
		}},
		{name: "relay", start: func(ctx context.Context, c *component) error {
			r, err := commands.NewRelay(commands.RelayConfig{Service: svc, Brokers: tl.brokers, Pool: tl.pool,
				Registry: tl.reg, Logger: tl.log, PollInterval: 50 * time.Millisecond})
			if err != nil {
				return err
			}
			return r.Run(ctx)
		}},
		{name: "projector", start: func(ctx context.Context, c *component) error {
			p, err := projections.New(projections.Config{Projection: accountread.Projection(), Brokers: tl.brokers,
				Pool: tl.pool, Decoder: tl.reg, Mark: commands.QueueMarkProjected, Logger: tl.log,
				AfterCommit: func() {
					if ch.fire() {
						c.crash()
					}
				}})
			if err != nil {
				return err
			}
			return p.Run(ctx)
		}},
		{name: "transfers", start: func(ctx context.Context, c *component) error {
			m, err := accountcmd.NewTransferManager(accountcmd.TransferManagerConfig{Brokers: tl.brokers,
				Pool: tl.pool, Registry: tl.reg, Logger: tl.log, BeforeStep: func(string, string) {
					if ch.fire() {
						c.crash()
					}
				}})
			if err != nil {
				return err
			}
			return m.Run(ctx)
		}},
	}
	var out []*component
	for _, c := range cs {
		if run == nil || run[c.name] {
			go c.run(tl.ctx)
			out = append(out, c)
		}
	}
	return out
}

// settled waits until no command is pending or accepted (everything was
// decided and projected) and no transfer is still requested.
func (tl *teller) settled(timeout time.Duration, transfers bool) {
	tl.t.Helper()
	var open, requested int
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		err := tl.pool.QueryRow(tl.ctx, `SELECT
			(SELECT count(*) FROM strata.commands WHERE status IN ('pending','accepted')),
			(SELECT count(*) FROM account_read.transfers WHERE status = 'requested')`).Scan(&open, &requested)
		if err == nil && open == 0 && (requested == 0 || !transfers) {
			return
		}
	}
	rows, _ := tl.pool.Query(tl.ctx, `SELECT type, status, count(*) FROM strata.commands GROUP BY 1, 2 ORDER BY 1, 2`)
	for rows.Next() {
		var typ, status string
		var n int
		_ = rows.Scan(&typ, &status, &n)
		tl.t.Logf("%s %s: %d", typ, status, n)
	}
	tl.t.Fatalf("after %s, %d commands are pending or accepted and %d transfers requested", timeout, open, requested)
}

// journalBalances folds every account from the journal.
func (tl *teller) journalBalances(ids []string) map[string]domain.AssetAccount {
	tl.t.Helper()
	def, _ := tl.reg.Aggregate(domain.Service, "asset-account")
	j := commands.NewJournal(domain.Service, tl.reg)
	out := map[string]domain.AssetAccount{}
	for _, id := range ids {
		a, err := j.Load(tl.ctx, tl.pool, def, id)
		if err != nil {
			tl.t.Fatal(err)
		}
		out[id] = a.State.(domain.AssetAccount)
	}
	return out
}

func (tl *teller) status(id string) *commands.Status {
	tl.t.Helper()
	st, err := tl.statuses.Get(tl.ctx, id)
	if err != nil {
		tl.t.Fatal(err)
	}
	return st
}

// TestBankInvariantUnderCrashes moves money with 200 random transfers
// among 10 accounts while the worker, the projector and the transfer
// manager crash at random moments (between their Postgres and Kafka
// commits, between two steps of a transfer) and are restarted. At
// quiescence every transfer is completed or failed, no account holds a
// transfer, and the balances add up to the deposits: in the journal and
// in the read model.
func TestBankInvariantUnderCrashes(t *testing.T) {
	tl := newTeller(t)
	ch := &chaos{}
	ch.set(0.15)
	cs := tl.platform(ch, nil)
	stopKiller := make(chan struct{})
	killed := make(chan int)
	go func() { // and kill a random part every 20-120ms
		n := 0
		defer func() { killed <- n }()
		for {
			select {
			case <-stopKiller:
				return
			case <-time.After(time.Duration(20+rand.IntN(100)) * time.Millisecond):
				cs[rand.IntN(len(cs))].crash()
				n++
			}
		}
	}()

	const accounts = 10
	ids := make([]string, accounts)
	total := decimal.Zero
	var opened []string
	for i := range ids {
		ids[i] = commands.NewID()
		opened = append(opened, tl.submit(ids[i], domain.OpenAssetAccount{OwnerUserID: operator.UserID, Asset: "EUR", Name: fmt.Sprint("acct ", i)}))
	}
	tl.settled(60*time.Second, true)
	for i, id := range ids {
		amount := decimal.New(int64(10_000+rand.IntN(90_000)), -2).Add(decimal.New(int64(i), -8)) // 100.00000000-999.99000009
		total = total.Add(amount)
		tl.submit(id, domain.Deposit{Amount: amount.String(), Reference: "initial"})
	}
	tl.settled(60*time.Second, true)

	type move struct {
		command string
		amount  decimal.Decimal // negative for a withdrawal
	}
	var transfers []string
	var moves []move
	for range 200 {
		from, to := rand.IntN(accounts), rand.IntN(accounts-1)
		if to >= from {
			to++
		}
		amount := decimal.New(int64(1+rand.IntN(30_000)), -2) // 0.01-300.00
		id := commands.NewID()
		transfers = append(transfers, tl.submit(id, domain.TransferFunds{FromAccountID: ids[from], ToAccountID: ids[to], Amount: amount.String()}))
		// Deposits and withdrawals race the transfer steps on the same
		// accounts: the worker's cached states and the manager's appends.
		switch rand.IntN(4) {
		case 0:
			moves = append(moves, move{tl.submit(ids[rand.IntN(accounts)], domain.Deposit{Amount: amount.String()}), amount})
		case 1:
			moves = append(moves, move{tl.submit(ids[rand.IntN(accounts)], domain.Withdraw{Amount: amount.String()}), amount.Neg()})
		case 2:
			time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
		}
	}
	time.Sleep(500 * time.Millisecond) // let the crashes land in the middle of the transfers
	close(stopKiller)
	kills := <-killed
	ch.set(0)
	tl.settled(120*time.Second, true)

	restarts := map[string]int64{}
	for _, c := range cs {
		restarts[c.name] = c.restarts.Load()
	}
	t.Logf("kills %d, restarts %v", kills, restarts)
	for _, name := range []string{"worker", "projector", "transfers"} {
		if restarts[name] == 0 {
			t.Errorf("%s never crashed: the test proved nothing about it", name)
		}
	}

	for _, id := range opened {
		if st := tl.status(id); st.Status != commands.StatusProjected {
			t.Fatalf("open %s: %s %v", id, st.Status, st.Code)
		}
	}
	completed, failed, refused := 0, 0, 0
	for _, cid := range transfers {
		st := tl.status(cid)
		switch {
		case st.Status == commands.StatusRejected && deref(st.Code) == domain.CodeInsufficientFunds:
			refused++
			continue
		case st.Status != commands.StatusProjected:
			t.Fatalf("transfer command %s: %s %s %s", cid, st.Status, deref(st.Code), deref(st.Reason))
		}
		var status, code, reason string
		var compensated bool
		if err := tl.pool.QueryRow(tl.ctx, `SELECT status, coalesce(code,''), coalesce(reason,''), compensated
			FROM account_read.transfers WHERE id=$1`, st.AggregateID).Scan(&status, &code, &reason, &compensated); err != nil {
			t.Fatalf("transfer %s: %v", st.AggregateID, err)
		}
		if strings.ContainsAny(reason, "0123456789") {
			// Both sides read a transfer: it must not show a balance.
			t.Errorf("transfer %s's reason %q gives figures away", st.AggregateID, reason)
		}
		switch status {
		case domain.TransferStatusCompleted:
			completed++
		case domain.TransferStatusFailed:
			failed++
			if code != domain.CodeInsufficientFunds || compensated {
				t.Errorf("transfer %s failed with %q (compensated %v): only insufficient funds can fail here", st.AggregateID, code, compensated)
			}
		default:
			t.Errorf("transfer %s is %s", st.AggregateID, status)
		}
	}
	t.Logf("transfers: %d completed, %d failed at the debit, %d refused at the request", completed, failed, refused)
	accepted := 0
	for _, m := range moves {
		switch st := tl.status(m.command); {
		case st.Status == commands.StatusProjected:
			total = total.Add(m.amount)
			accepted++
		case st.Status == commands.StatusRejected && deref(st.Code) == domain.CodeInsufficientFunds && m.amount.IsNegative():
		default:
			t.Fatalf("move %s of %s: %s %s %s", m.command, m.amount, st.Status, deref(st.Code), deref(st.Reason))
		}
	}
	t.Logf("deposits and withdrawals: %d of %d accepted", accepted, len(moves))
	if completed < 50 {
		t.Errorf("only %d transfers completed: the test moved too little money to prove anything", completed)
	}

	sum := decimal.Zero
	for id, a := range tl.journalBalances(ids) {
		if len(a.Holds) != 0 {
			t.Errorf("account %s still holds transfers %v", id, a.Holds)
		}
		if a.Balance.IsNegative() {
			t.Errorf("account %s is overdrawn: %s", id, a.Balance)
		}
		sum = sum.Add(a.Balance)
		var read string
		if err := tl.pool.QueryRow(tl.ctx, `SELECT balance::text FROM account_read.asset_accounts WHERE id=$1`, id).Scan(&read); err != nil {
			t.Fatal(err)
		}
		if !decimal.RequireFromString(read).Equal(a.Balance) {
			t.Errorf("account %s: read model balance %s, journal %s", id, read, a.Balance)
		}
	}
	if !sum.Equal(total) {
		t.Fatalf("journal balances add up to %s, deposits to %s: money was created or lost", sum, total)
	}
	var readSum string
	if err := tl.pool.QueryRow(tl.ctx, `SELECT sum(balance)::text FROM account_read.asset_accounts`).Scan(&readSum); err != nil {
		t.Fatal(err)
	}
	if !decimal.RequireFromString(readSum).Equal(total) {
		t.Fatalf("read model balances add up to %s, deposits to %s", readSum, total)
	}
	// Each account's ledger replays to its balance, never below zero.
	rows, err := tl.pool.Query(tl.ctx, `SELECT account_id::text, amount::text, running_balance::text
		FROM account_read.ledger_entries ORDER BY account_id, event_version`)
	if err != nil {
		t.Fatal(err)
	}
	running := map[string]decimal.Decimal{}
	for rows.Next() {
		var acct, amount, bal string
		if err := rows.Scan(&acct, &amount, &bal); err != nil {
			t.Fatal(err)
		}
		running[acct] = running[acct].Add(decimal.RequireFromString(amount))
		if !running[acct].Equal(decimal.RequireFromString(bal)) || running[acct].IsNegative() {
			t.Fatalf("ledger of %s: running balance %s after %s, entries add up to %s", acct, bal, amount, running[acct])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestRefusedCreditIsCompensated: the target account closes after the
// transfer was requested, so the credit is refused; the debit is given
// back and the transfer fails, compensated. The source's hold kept it from
// closing meanwhile.
func TestRefusedCreditIsCompensated(t *testing.T) {
	tl, from, to := twoAccounts(t, "100")
	transfer := commands.NewID()
	tl.submit(transfer, domain.TransferFunds{FromAccountID: from, ToAccountID: to, Amount: "100"})
	tl.settled(30*time.Second, false) // requested; no manager runs yet
	closeTo := tl.submit(to, domain.CloseAccount{})
	tl.settled(30*time.Second, false)
	if st := tl.status(closeTo); st.Status != commands.StatusProjected {
		t.Fatalf("close target: %s %s", st.Status, deref(st.Code))
	}

	// The manager now debits the source and finds the target closed.
	tl.platform(&chaos{}, map[string]bool{"transfers": true})
	tl.settled(30*time.Second, true)
	var status, code string
	var compensated bool
	if err := tl.pool.QueryRow(tl.ctx, `SELECT status, code, compensated FROM account_read.transfers WHERE id=$1`,
		transfer).Scan(&status, &code, &compensated); err != nil {
		t.Fatal(err)
	}
	if status != domain.TransferStatusFailed || code != domain.CodeAccountClosed || !compensated {
		t.Fatalf("transfer: %s %s compensated=%v, want failed account_closed compensated", status, code, compensated)
	}
	got := tl.journalBalances([]string{from, to})
	if !got[from].Balance.Equal(decimal.NewFromInt(100)) || !got[to].Balance.IsZero() || len(got[from].Holds) != 0 {
		t.Fatalf("balances after compensation: from %s (holds %v), to %s", got[from].Balance, got[from].Holds, got[to].Balance)
	}
	var kinds []string
	rows, _ := tl.pool.Query(tl.ctx, `SELECT kind || ' ' || amount::text FROM account_read.ledger_entries WHERE account_id=$1 ORDER BY event_version`, from)
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		kinds = append(kinds, k)
	}
	if fmt.Sprint(kinds) != fmt.Sprint([]string{"deposit 100.00000000", "transfer_debit -100.00000000", "transfer_reversal 100.00000000"}) {
		t.Fatalf("source ledger: %q", kinds)
	}

	// Every event of the journal, TransferDebitReversed among them (the
	// one event cmd/strata's TestEmittedEventsMatchSchemas cannot make
	// through HTTP), matches its schema.
	reg, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	rows, err = tl.pool.Query(tl.ctx, `SELECT type, data FROM account.events ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for rows.Next() {
		var typ string
		var data []byte
		if err := rows.Scan(&typ, &data); err != nil {
			t.Fatal(err)
		}
		if err := reg.ValidateEvent(typ, data); err != nil {
			t.Errorf("%s %s: %v", typ, data, err)
		}
		seen[typ]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen["account.TransferDebitReversed.v1"] != 1 || seen["account.TransferFailed.v1"] != 1 {
		t.Fatalf("journal event types %v: want one TransferDebitReversed and one TransferFailed", seen)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestConcurrentDriversApplyEachStepOnce drives every transfer from four
// managers at once, as two instances do during a rebalance: each step is
// still decided once, so each transfer moves its amount exactly once.
func TestConcurrentDriversApplyEachStepOnce(t *testing.T) {
	tl, from, to := twoAccounts(t, "1000")
	var transfers []string
	for range 40 {
		id := commands.NewID()
		tl.submit(id, domain.TransferFunds{FromAccountID: from, ToAccountID: to, Amount: "1"})
		transfers = append(transfers, id)
	}
	tl.settled(30*time.Second, false)

	managers := make([]*accountcmd.TransferManager, 4)
	for i := range managers {
		m, err := accountcmd.NewTransferManager(accountcmd.TransferManagerConfig{Brokers: tl.brokers, Pool: tl.pool, Registry: tl.reg, Logger: tl.log})
		if err != nil {
			t.Fatal(err)
		}
		managers[i] = m
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(managers)*len(transfers))
	for _, m := range managers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range transfers {
				if err := m.Drive(tl.ctx, id); err != nil {
					errs <- fmt.Errorf("drive %s: %w", id, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := tl.journalBalances([]string{from, to})
	if !got[from].Balance.Equal(decimal.NewFromInt(960)) || !got[to].Balance.Equal(decimal.NewFromInt(40)) || len(got[from].Holds) != 0 {
		t.Fatalf("after 40 transfers of 1: from %s (holds %d), to %s; want 960 and 40", got[from].Balance, len(got[from].Holds), got[to].Balance)
	}
	var events int
	if err := tl.pool.QueryRow(tl.ctx, `SELECT count(*) FROM account.events WHERE aggregate_id = $1`, to).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 41 { // opened + 40 credits
		t.Fatalf("target has %d events, want 41", events)
	}
}

// twoAccounts starts a teller without the transfer manager and opens two
// accounts, the first holding balance.
func twoAccounts(t *testing.T, balance string) (tl *teller, from, to string) {
	tl = newTeller(t)
	tl.platform(&chaos{}, map[string]bool{"worker": true, "relay": true, "projector": true})
	from, to = commands.NewID(), commands.NewID()
	tl.submit(from, domain.OpenAssetAccount{OwnerUserID: operator.UserID, Asset: "EUR", Name: "from"})
	tl.submit(to, domain.OpenAssetAccount{OwnerUserID: operator.UserID, Asset: "EUR", Name: "to"})
	tl.submit(from, domain.Deposit{Amount: balance, Reference: "initial"})
	tl.settled(30*time.Second, true)
	return tl, from, to
}

// BenchmarkTransfers measures transfers driven to completion per second:
// b.N transfers of 1 among 20 accounts, requested at once, from the first
// request until the last is completed in the read model.
func BenchmarkTransfers(b *testing.B) {
	tl := newTeller(b)
	tl.platform(&chaos{}, nil)
	const accounts = 20
	ids := make([]string, accounts)
	for i := range ids {
		ids[i] = commands.NewID()
		tl.submit(ids[i], domain.OpenAssetAccount{OwnerUserID: operator.UserID, Asset: "EUR", Name: "bench"})
		tl.submit(ids[i], domain.Deposit{Amount: "1000000"})
	}
	tl.settled(60*time.Second, true)
	b.ResetTimer()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32) // requests in flight, as from many clients
	for i := range b.N {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			tl.submit(commands.NewID(), domain.TransferFunds{FromAccountID: ids[i%accounts], ToAccountID: ids[(i*7+1)%accounts], Amount: "1"})
		}()
	}
	wg.Wait()
	requested := b.Elapsed()
	tl.settled(10*time.Minute, true)
	b.ReportMetric(requested.Seconds()*1000/float64(b.N), "request-ms/op")
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
}
