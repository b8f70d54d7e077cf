package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/aggregates"
)

// Querier is what the journal and status store need from a pool, a
// connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Command statuses (DESIGN.md §3.3).
const (
	StatusPending   = "pending"
	StatusAccepted  = "accepted"
	StatusRejected  = "rejected"
	StatusProjected = "projected"
	StatusFailed    = "failed"
)

// NotifyChannel is the Postgres channel on which every status change of a
// command is announced, with the command id as payload.
const NotifyChannel = "strata_commands"

// Status is a command's result row.
type Status struct {
	ID          string     `json:"id"`
	Type        string     `json:"type"`
	AggregateID string     `json:"aggregate_id"`
	Actor       string     `json:"-"`
	Status      string     `json:"status"`
	Code        *string    `json:"code"`
	Reason      *string    `json:"reason"`
	Version     *int64     `json:"version"`
	SubmittedAt time.Time  `json:"submitted_at"`
	DecidedAt   *time.Time `json:"decided_at"`
	ProjectedAt *time.Time `json:"projected_at"`
}

// Terminal reports whether the status can no longer change on its own.
func (s *Status) Terminal() bool {
	return s.Status == StatusProjected || s.Status == StatusRejected || s.Status == StatusFailed
}

// ErrNotFound is returned when no command has the id.
var ErrNotFound = errors.New("command not found")

// ErrIdempotencyReused is returned when an idempotency key is reused within
// its window for a different request.
var ErrIdempotencyReused = errors.New("idempotency key reused with a different request")

// ErrDecidedElsewhere is returned when another transaction decided a
// command while this one was deciding it too (a rebalance overlap, two
// process managers driving one step): the transaction must roll back, so
// that only the first decision's events exist, and a retry reads it.
var ErrDecidedElsewhere = errors.New("command was decided concurrently")

// IdempotencyWindow is how long an Idempotency-Key names the same command.
const IdempotencyWindow = 24 * time.Hour

// StatusStore reads and writes command results in strata.commands.
type StatusStore struct {
	pool    *pgxpool.Pool
	pending chan pendingInsert
	running atomic.Bool
}

// NewStatusStore returns a store over pool.
func NewStatusStore(pool *pgxpool.Pool) *StatusStore {
	return &StatusStore{pool: pool, pending: make(chan pendingInsert, maxPendingBatch)}
}

// maxPendingBatch bounds the pending rows written by one statement.
const maxPendingBatch = 256

// pendingInsert is one request waiting for the batcher.
type pendingInsert struct {
	env  *Envelope
	hash []byte
	done chan pendingResult
}

type pendingResult struct {
	st  *Status
	err error
}

// Run batches the pending rows of concurrent requests until ctx is done:
// each of pendingWriters loops takes every request waiting, writes them
// with one statement and one commit, and takes the next lot. A lone
// request waits for nothing; under load many commits become one, and a
// request that arrives while one lot commits goes out with the next
// writer rather than waiting for that commit. Without Run, InsertPending
// writes each row itself.
func (s *StatusStore) Run(ctx context.Context) error {
	s.running.Store(true)
	defer s.running.Store(false)
	var wg sync.WaitGroup
	for range pendingWriters {
		wg.Go(func() { s.writePending(ctx) })
	}
	wg.Wait()
	return nil
}

// pendingWriters is how many pending-row commits may be in flight at once.
const pendingWriters = 2

func (s *StatusStore) writePending(ctx context.Context) {
	for {
		var batch []pendingInsert
		select {
		case <-ctx.Done():
			s.drainPending(ctx)
			return
		case p := <-s.pending:
			batch = append(batch, p)
		}
	more:
		for len(batch) < maxPendingBatch {
			select {
			case p := <-s.pending:
				batch = append(batch, p)
			default:
				break more
			}
		}
		s.insertMany(ctx, batch)
	}
}

// drainPending answers requests still queued at shutdown.
func (s *StatusStore) drainPending(ctx context.Context) {
	for {
		select {
		case p := <-s.pending:
			p.done <- pendingResult{err: ctx.Err()}
		default:
			return
		}
	}
}

// insertMany writes a lot of pending rows in one statement; if that fails
// it writes them one by one, so each request gets its own error.
//
// The statement commits asynchronously (synchronous_commit off for its
// transaction: no wait for the WAL flush, which was most of a pending
// write's time). That loses nothing: a row of this path (no idempotency
// key, no secret) holds only what its command carries, and Postgres
// flushes WAL in order, so the row is durable before any later durable
// commit, such as the worker's decision of the command. Only a Postgres
// crash within a fraction of a second can lose it, and then the worker,
// which upserts the outcome from the command itself, writes it again.
func (s *StatusStore) insertMany(ctx context.Context, batch []pendingInsert) {
	out, err := s.insertPlain(ctx, batch)
	if err != nil {
		for _, p := range batch {
			st, err := s.insertPlain(ctx, []pendingInsert{p})
			if err == nil {
				p.done <- pendingResult{st: st[0]}
			} else {
				p.done <- pendingResult{err: err}
			}
		}
		return
	}
	for i, p := range batch {
		p.done <- pendingResult{st: out[i]}
	}
}

// insertPlain writes the pending rows of commands without an idempotency
// key or a secret and returns their statuses in batch order. The gateway
// produces such a command while its row is being written, so a worker may
// have decided it already: its row is returned as it is. A forged_command
// rejection under the id gives way to the pending row (see decidedSQL).
func (s *StatusStore) insertPlain(ctx context.Context, batch []pendingInsert) ([]*Status, error) {
	res := s.pool.SendBatch(ctx, pendingBatch(batch))
	_, err := res.Exec()
	var out []*Status
	if err == nil {
		var rows pgx.Rows
		if rows, err = res.Query(); err == nil {
			out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Status, error) { return scanStatus(r) })
		}
	}
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*Status, len(batch))
	for _, st := range out {
		byID[st.ID] = st
	}
	var decided []string
	for _, p := range batch {
		if byID[p.env.ID] == nil {
			decided = append(decided, p.env.ID)
		}
	}
	if len(decided) > 0 {
		rows, err := s.pool.Query(ctx, `SELECT `+statusColumns+` FROM strata.commands WHERE id = ANY($1::uuid[])`, decided)
		if err != nil {
			return nil, err
		}
		sts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Status, error) { return scanStatus(r) })
		if err != nil {
			return nil, err
		}
		for _, st := range sts {
			byID[st.ID] = st
		}
	}
	sts := make([]*Status, len(batch))
	for i, p := range batch {
		if sts[i] = byID[p.env.ID]; sts[i] == nil {
			return nil, fmt.Errorf("status: pending row of %s neither written nor found", p.env.ID)
		}
	}
	return sts, nil
}

// pendingBatch is the pipeline insertMany sends: the asynchronous-commit
// setting, then the insert of every row, returning their statuses.
func pendingBatch(batch []pendingInsert) *pgx.Batch {
	// In command id order, like the worker's record of decisions
	// (outcomeColumns): a worker may record some of these commands at the
	// same time, and the two must not wait for each other crosswise.
	batch = slices.Clone(batch)
	slices.SortFunc(batch, func(a, b pendingInsert) int { return strings.Compare(a.env.ID, b.env.ID) })
	n := len(batch)
	ids, svc, typ, agg, actor, hash, at := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([][]byte, n), make([]time.Time, n)
	for i, p := range batch {
		e := p.env
		ids[i], svc[i], typ[i], agg[i], actor[i], hash[i], at[i] = e.ID, e.Service(), e.Type, e.AggregateID, e.Actor.UserID, p.hash, e.IssuedAt
	}
	// A pipeline sent without BEGIN is one implicit transaction: the
	// setting holds for the insert and its commit, and for nothing after.
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	b.Queue(`INSERT INTO strata.commands
		(id, service, type, aggregate_id, actor, status, request_hash, submitted_at)
		SELECT id, service, type, agg, actor, 'pending', hash, at
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::bytea[], $7::timestamptz[])
			AS t(id, service, type, agg, actor, hash, at)
		ON CONFLICT (id) DO UPDATE SET service=EXCLUDED.service, type=EXCLUDED.type,
			aggregate_id=EXCLUDED.aggregate_id, actor=EXCLUDED.actor, status='pending', code=NULL, reason=NULL,
			version=NULL, request_hash=EXCLUDED.request_hash, submitted_at=EXCLUDED.submitted_at,
			decided_at=NULL, projected_at=NULL, recorded_at=now()
		WHERE `+forgedSQL+`
		RETURNING `+statusColumns, ids, svc, typ, agg, actor, hash, at)
	return b
}

const statusColumns = `id, type, aggregate_id, actor, status, code, reason, version, submitted_at, decided_at, projected_at`

func scanStatus(row pgx.Row) (*Status, error) {
	var s Status
	err := row.Scan(&s.ID, &s.Type, &s.AggregateID, &s.Actor, &s.Status, &s.Code, &s.Reason, &s.Version,
		&s.SubmittedAt, &s.DecidedAt, &s.ProjectedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &s, err
}

// Get returns a command's status, or ErrNotFound.
func (s *StatusStore) Get(ctx context.Context, id string) (*Status, error) {
	return getStatus(ctx, s.pool, id)
}

func getStatus(ctx context.Context, q Querier, id string) (*Status, error) {
	return scanStatus(q.QueryRow(ctx, `SELECT `+statusColumns+` FROM strata.commands WHERE id=$1`, id))
}

// Submission is what the gateway records before producing a command.
type Submission struct {
	Envelope    *Envelope
	RequestHash []byte // hash of method, path and body, for idempotency
	// Secret, when set, is staged under the command id in the same
	// transaction as the pending row (a password hash).
	Secret *Secret
}

// Secret is a value that must never travel with a command.
type Secret struct {
	Kind  string
	Value []byte
}

// InsertPending records a command as pending. With an idempotency key that
// named a command of the same request within the window, it returns that
// command's status and existing=true, and records nothing. With a key that
// named a different request it returns ErrIdempotencyReused. A command
// without a key or a secret may be on Kafka already (the gateway produces
// it while its row is written): if a worker has recorded its decision, that
// status is returned, and existing stays false.
func (s *StatusStore) InsertPending(ctx context.Context, sub Submission) (st *Status, existing bool, err error) {
	env := sub.Envelope
	var key *string
	if env.IdempotencyKey != "" {
		key = &env.IdempotencyKey
		// Keys older than the window name nothing any more.
		if _, err := s.pool.Exec(ctx, `UPDATE strata.commands SET idempotency_key = NULL
			WHERE actor=$1 AND idempotency_key=$2 AND submitted_at < now() - make_interval(secs => $3)`,
			env.Actor.UserID, env.IdempotencyKey, IdempotencyWindow.Seconds()); err != nil {
			return nil, false, fmt.Errorf("status: expire key: %w", err)
		}
	}
	switch {
	case key == nil && sub.Secret == nil && s.running.Load():
		st, err = s.queueInsert(ctx, env, sub.RequestHash)
	case key == nil && sub.Secret == nil:
		var sts []*Status
		if sts, err = s.insertPlain(ctx, []pendingInsert{{env: env, hash: sub.RequestHash}}); err == nil {
			st = sts[0]
		}
	case sub.Secret == nil:
		st, err = s.insertOne(ctx, s.pool, env, key, sub.RequestHash)
	default:
		// The pending row and the staged secret commit together.
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if st, err = s.insertOne(ctx, tx, env, key, sub.RequestHash); err != nil {
				return err
			}
			return StageSecret(ctx, tx, env.Service(), env.ID, sub.Secret.Kind, sub.Secret.Value)
		})
	}
	if !errors.Is(err, ErrNotFound) {
		return st, false, err
	}
	var hash []byte
	st, err = scanStatus(s.pool.QueryRow(ctx, `SELECT `+statusColumns+` FROM strata.commands
		WHERE actor=$1 AND idempotency_key=$2`, env.Actor.UserID, env.IdempotencyKey))
	if err != nil {
		return nil, false, err
	}
	if err := s.pool.QueryRow(ctx, `SELECT request_hash FROM strata.commands WHERE id=$1`, st.ID).Scan(&hash); err != nil {
		return nil, false, err
	}
	if !bytes.Equal(hash, sub.RequestHash) {
		return nil, false, ErrIdempotencyReused
	}
	if st.Status == StatusFailed {
		// That attempt never reached Kafka and the client was told to
		// retry: the key now names the retry.
		if _, err := s.pool.Exec(ctx, `UPDATE strata.commands SET idempotency_key = NULL
			WHERE id = $1 AND status = 'failed'`, st.ID); err != nil {
			return nil, false, err
		}
		return s.InsertPending(ctx, sub)
	}
	return st, true, nil
}

// queueInsert hands a pending row to Run's batcher and waits for it.
func (s *StatusStore) queueInsert(ctx context.Context, env *Envelope, hash []byte) (*Status, error) {
	p := pendingInsert{env: env, hash: hash, done: make(chan pendingResult, 1)}
	select {
	case s.pending <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-p.done:
		return r.st, r.err
	case <-ctx.Done():
		// The row may still be written: it must not stay pending forever.
		go func() {
			if r := <-p.done; r.err == nil {
				_ = s.MarkFailed(context.Background(), env.ID, "unavailable", "the request ended before the command was accepted")
			}
		}()
		return nil, ctx.Err()
	}
}

// insertOne writes one pending row; with an idempotency key already used
// it returns ErrNotFound.
func (s *StatusStore) insertOne(ctx context.Context, q Querier, env *Envelope, key *string, hash []byte) (*Status, error) {
	return scanStatus(q.QueryRow(ctx, `INSERT INTO strata.commands
		(id, service, type, aggregate_id, actor, status, idempotency_key, request_hash, submitted_at)
		VALUES ($1,$2,$3,$4,$5,'pending',$6,$7,$8)
		ON CONFLICT (actor, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
		RETURNING `+statusColumns,
		env.ID, env.Service(), env.Type, env.AggregateID, env.Actor.UserID, key, hash, env.IssuedAt))
}

// MarkFailed records that a pending command could not be submitted, and
// discards any secret staged for it.
func (s *StatusStore) MarkFailed(ctx context.Context, id, code, reason string) error {
	var service string
	err := s.pool.QueryRow(ctx, `UPDATE strata.commands SET status='failed', code=$2, reason=$3, decided_at=now()
		WHERE id=$1 AND status='pending' RETURNING service`, id, code, reason).Scan(&service)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `DELETE FROM `+pgx.Identifier{service}.Sanitize()+`.staged_secrets WHERE command_id=$1`, id)
	return err
}

// decidedSQL is true of a strata.commands row that holds a decision. A
// forged_command rejection (aggregates.CodeForged) is none: it refused a
// message whose signature was wrong, and the genuine command with that id,
// which the gateway may produce before its pending row is written (see
// Gateway.record), is still to be decided.
const decidedSQL = `(strata.commands.status <> 'pending' AND NOT ` + forgedSQL + `)`

// forgedSQL is true of a strata.commands row that records a refused
// forgery.
const forgedSQL = `strata.commands.code IS NOT DISTINCT FROM '` + aggregates.CodeForged + `'`

// decisionSet is the update of a recorded decision over a row not yet
// decided. The command's own fields are written again too: they are the
// same on a pending row, and on a forged_command rejection they are the
// forger's (its actor would see the outcome, its aggregate would never be
// marked projected).
const decisionSet = `service=EXCLUDED.service, type=EXCLUDED.type, aggregate_id=EXCLUDED.aggregate_id,
	actor=EXCLUDED.actor, submitted_at=EXCLUDED.submitted_at, status=EXCLUDED.status, code=EXCLUDED.code,
	reason=EXCLUDED.reason, version=EXCLUDED.version, decided_at=EXCLUDED.decided_at,
	projected_at=EXCLUDED.projected_at`

// decide records the worker's outcome inside its transaction. A row that
// does not exist yet is created, so a signed command produced without a
// pending row still gets a status; a row already decided is left as it is.
func decide(ctx context.Context, tx pgx.Tx, env *Envelope, status string, code, reason *string, version *int64) error {
	tag, err := tx.Exec(ctx, `INSERT INTO strata.commands
		(id, service, type, aggregate_id, actor, status, code, reason, version, submitted_at, decided_at, projected_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,now(), CASE WHEN $6='projected' THEN now() END)
		ON CONFLICT (id) DO UPDATE SET `+decisionSet+`
		WHERE NOT `+decidedSQL,
		env.ID, env.Service(), env.Type, env.AggregateID, env.Actor.UserID, status, code, reason, version, env.IssuedAt)
	if err != nil {
		return fmt.Errorf("status: decide %s: %w", env.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("status: decide %s: %w", env.ID, ErrDecidedElsewhere)
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, env.ID)
	return err
}

// QueueMarkProjected queues, on a projector's batch, the move of commands
// to projected once the projection holding their aggregates has applied
// their resulting versions (command i produced version versions[i] of
// aggregateIDs[i]), and the notification of their waiters on commit.
func QueueMarkProjected(b interface{ Queue(string, ...any) }, commandIDs, aggregateIDs []string, versions []int64) {
	b.Queue(`WITH marked AS (
		UPDATE strata.commands c SET status = 'projected', projected_at = now()
		FROM unnest($2::uuid[], $3::uuid[], $4::bigint[]) AS t(id, agg, v)
		WHERE c.id = t.id AND c.status = 'accepted' AND c.aggregate_id = t.agg AND c.version <= t.v
			AND c.id = ANY($2::uuid[]) -- see indexedJoin
		RETURNING c.id)
		SELECT pg_notify($1, id::text) FROM marked`, NotifyChannel, commandIDs, aggregateIDs, versions)
}
