package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/aggregates"
)

// Executor decides one command against a service's journal inside the
// caller's transaction: load, version checks, related aggregates, Decide,
// append with unique keys, and the command's staged secret. The worker runs
// it for every command from Kafka; synchronous paths (login) run it too, so
// the rules are written once.
type Executor struct {
	service string
	reg     *Registry
	journal *Journal
	now     func() time.Time
	log     *slog.Logger
}

// NewExecutor returns an executor for one service.
func NewExecutor(service string, reg *Registry, now func() time.Time, log *slog.Logger) *Executor {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Executor{service: service, reg: reg, journal: NewJournal(service, reg), now: now, log: log}
}

// Journal returns the service's journal.
func (x *Executor) Journal() *Journal { return x.journal }

// Execute decides env and appends its events. Domain refusals come back as
// *aggregates.Rejection; data errors Postgres raises for this one command
// are turned into rejections too, so a poison command cannot block a
// partition. Any other error leaves tx unusable for further work unless the
// caller used a savepoint.
func (x *Executor) Execute(ctx context.Context, tx pgx.Tx, env *Envelope) (*Aggregate, int, error) {
	def, ok := x.reg.ForCommand(env.Type)
	if !ok || def.Service != x.service {
		return nil, 0, aggregates.Reject(aggregates.CodeInvalid, "unknown command type %q", env.Type)
	}
	cmd, _, err := def.DecodeCommand(env.Type, env.Payload)
	if err != nil {
		return nil, 0, aggregates.Reject(aggregates.CodeInvalid, "payload: %v", err)
	}
	agg, err := x.journal.Load(ctx, tx, def, env.AggregateID)
	if errors.Is(err, ErrWrongType) {
		return nil, 0, aggregates.Reject(aggregates.CodeNotFound, "%s %s does not exist", def.Type, env.AggregateID)
	}
	if err != nil {
		return nil, 0, dataErrorAsRejection(err)
	}
	if err := checkVersion(def, cmd, agg, env); err != nil {
		return nil, 0, err
	}
	related, err := x.loadRelated(ctx, tx, def, cmd)
	if err != nil {
		return nil, 0, err
	}
	now := x.now()
	events, err := def.Decide(agg.State, cmd, aggregates.Context{Now: now, AggregateID: agg.ID, Related: related, Actor: env.Actor.Domain()})
	if err != nil {
		if _, ok := aggregates.AsRejection(err); !ok {
			x.log.Error("decide failed", "command_id", env.ID, "err", err)
			err = aggregates.Reject(aggregates.CodeInvalid, "command could not be decided")
		}
		return nil, 0, err
	}
	meta := Metadata{CommandID: env.ID, CorrelationID: env.CorrelationID, CausationID: env.ID, Actor: env.Actor.UserID}
	if _, err := x.journal.Append(ctx, tx, agg, events, meta, now); err != nil {
		return nil, 0, dataErrorAsRejection(err)
	}
	if sc, ok := cmd.(aggregates.SecretCommand); ok {
		if err := x.journal.claimSecret(ctx, tx, env.ID, agg.ID, sc.SecretKind()); err != nil {
			return nil, 0, err
		}
	}
	return agg, len(events), nil
}

// decideRecorded decides env in a savepoint of tx unless its id was
// decided before (a redelivery), and records the outcome in
// strata.commands in the same transaction. It returns the number of
// events appended. A returned error leaves tx to be rolled back.
func (x *Executor) decideRecorded(ctx context.Context, tx pgx.Tx, env *Envelope) (int, error) {
	var decided bool
	err := tx.QueryRow(ctx, `SELECT `+decidedSQL+` FROM strata.commands WHERE id=$1 FOR UPDATE`, env.ID).Scan(&decided)
	if err == nil && decided {
		return 0, nil // already decided: a redelivery
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, err
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, err
	}
	agg, n, err := x.Execute(ctx, sp, env)
	if rej, ok := aggregates.AsRejection(err); ok {
		if err := sp.Rollback(ctx); err != nil {
			return 0, err
		}
		if x.carriesSecret(env.Type) {
			if err := x.journal.dropSecret(ctx, tx, env.ID); err != nil {
				return 0, err
			}
		}
		return 0, decide(ctx, tx, env, StatusRejected, &rej.Code, &rej.Reason, nil)
	}
	if err != nil {
		_ = sp.Rollback(ctx)
		return 0, err
	}
	if err := sp.Commit(ctx); err != nil {
		return 0, err
	}
	status := StatusAccepted
	if n == 0 {
		status = StatusProjected // nothing to project
	}
	return n, decide(ctx, tx, env, status, nil, nil, &agg.Version)
}

// Once decides env in a transaction of its own, exactly once per command
// id, and returns the recorded status: a command decided before, by this
// call, a worker or a crashed earlier run, is not decided again. Process
// managers drive their steps with it, so a step redone after a crash
// finds its first outcome. Conflicts with a concurrent writer of the same
// aggregate are retried; other errors are returned.
func (x *Executor) Once(ctx context.Context, pool *pgxpool.Pool, env *Envelope) (*Status, error) {
	for attempt := 0; ; attempt++ {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			n, err := x.decideRecorded(ctx, tx, env)
			if err == nil && n > 0 {
				_, err = tx.Exec(ctx, `SELECT pg_notify($1, ''), pg_notify($2, $3)`,
					JournalChannel(x.service), AppendedChannel(x.service), env.AggregateID)
			}
			return err
		})
		if err == nil {
			return getStatus(ctx, pool, env.ID)
		}
		var pg *pgconn.PgError
		retry := errors.Is(err, ErrDecidedElsewhere) ||
			(errors.As(err, &pg) && (pg.Code == "23505" || pg.Code == "40001" || pg.Code == "40P01"))
		if attempt >= 20 || !retry {
			return nil, err
		}
		select { // another writer appended to the aggregate first: decide again on its state
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
}

// carriesSecret reports whether a command type stages a secret.
func (x *Executor) carriesSecret(qualified string) bool {
	def, ok := x.reg.ForCommand(qualified)
	if !ok {
		return false
	}
	c, _ := def.CommandPrototype(qualified)
	_, ok = c.(aggregates.SecretCommand)
	return ok
}

// checkVersion admits a command to Decide: the aggregate must exist (or
// not, for a create), the actor must be allowed to act on it, and an
// expected version must match. The actor is checked before the version,
// so a stranger learns neither that the aggregate exists nor its version.
func checkVersion(def *aggregates.Definition, cmd aggregates.Command, agg *Aggregate, env *Envelope) error {
	creates, upserts := def.Creates(cmd), def.Upserts(cmd)
	expected := env.ExpectedVersion
	switch {
	case creates && agg.Version > 0 && !upserts:
		return aggregates.Reject(aggregates.CodeAlreadyExists, "%s %s already exists", def.Type, agg.ID)
	case !creates && agg.Version == 0 && !upserts:
		return aggregates.Reject(aggregates.CodeNotFound, "%s %s does not exist", def.Type, agg.ID)
	}
	if def.Authorize != nil && agg.Version > 0 {
		if err := def.Authorize(agg.State, cmd, env.Actor.Domain()); err != nil {
			return err
		}
	}
	switch {
	case expected != nil && *expected != agg.Version:
		return aggregates.Reject(aggregates.CodeVersionConflict, "%s %s is at version %d, not %d",
			def.Type, agg.ID, agg.Version, *expected)
	}
	return nil
}

func (x *Executor) loadRelated(ctx context.Context, tx pgx.Tx, def *aggregates.Definition, cmd aggregates.Command) (map[aggregates.Ref]aggregates.Snapshot, error) {
	refs := def.Needs(cmd)
	if len(refs) == 0 {
		return nil, nil
	}
	out := make(map[aggregates.Ref]aggregates.Snapshot, len(refs))
	for _, ref := range refs {
		ref.ID = aggregates.CanonicalID(ref.ID)
		rd, ok := x.reg.Aggregate(def.Service, ref.Type)
		if !ok {
			return nil, fmt.Errorf("executor: %s needs unknown aggregate %s", def.Topic(), ref.Type)
		}
		if _, err := uuid.Parse(ref.ID); err != nil {
			out[ref] = aggregates.Snapshot{State: rd.New()}
			continue
		}
		ra, err := x.journal.Load(ctx, tx, rd, ref.ID)
		if errors.Is(err, ErrWrongType) {
			out[ref] = aggregates.Snapshot{State: rd.New()}
			continue
		}
		if err != nil {
			return nil, err
		}
		out[ref] = aggregates.Snapshot{State: ra.State, Version: ra.Version}
	}
	return out, nil
}

// dataErrorAsRejection turns a Postgres data exception (class 22) into a
// rejection; everything else stays an error so the batch is retried.
func dataErrorAsRejection(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && len(pg.Code) == 5 && pg.Code[:2] == "22" {
		return aggregates.Reject(aggregates.CodeInvalid, "invalid data: %s", pg.Message)
	}
	return err
}
