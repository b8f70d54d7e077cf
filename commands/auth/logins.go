// Package auth holds the auth service's synchronous write paths, which run
// in the gateway process but through the same Executor as the worker:
// recording login attempts in the journal, looking up credentials, and
// bootstrapping the first admin through ordinary commands.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/aggregates"
	domain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
)

// Logins records login attempts and reads what login needs, all from the
// journal (never from read models, which may lag).
type Logins struct {
	pool *pgxpool.Pool
	exec *commands.Executor
	reg  *commands.Registry
	log  *slog.Logger
}

// NewLogins returns the login store of the auth service.
func NewLogins(pool *pgxpool.Pool, reg *commands.Registry, log *slog.Logger) *Logins {
	return &Logins{pool: pool, reg: reg, exec: commands.NewExecutor(domain.Service, reg, nil, log), log: log}
}

// Credentials is what a password check needs about an email's user.
type Credentials struct {
	UserID   string
	Hash     string
	Disabled bool
}

// Lookup returns the credentials of the user holding email, or ok=false
// when no user has it.
func (l *Logins) Lookup(ctx context.Context, email string) (c Credentials, ok bool, err error) {
	err = l.pool.QueryRow(ctx, `SELECT aggregate_id::text FROM auth.unique_keys WHERE scope='user_email' AND key=$1`,
		domain.NormalizeEmail(email)).Scan(&c.UserID)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	def, _ := l.reg.Aggregate(domain.Service, "user")
	agg, err := l.exec.Journal().Load(ctx, l.pool, def, c.UserID)
	if err != nil {
		return c, false, err
	}
	c.Disabled = agg.State.(domain.User).Disabled
	hash, err := l.exec.Journal().Secret(ctx, l.pool, c.UserID, domain.SecretPassword)
	if errors.Is(err, commands.ErrNotFound) {
		return c, false, nil
	}
	c.Hash = string(hash)
	return c, err == nil, err
}

// Throttled reports whether email has had too many bad passwords lately,
// and how long until the next attempt may succeed.
func (l *Logins) Throttled(ctx context.Context, email string, now time.Time) (bool, time.Duration, error) {
	def, _ := l.reg.Aggregate(domain.Service, "login")
	agg, err := l.exec.Journal().Load(ctx, l.pool, def, domain.LoginID(email))
	if err != nil {
		return false, 0, err
	}
	throttled, wait := agg.State.(domain.Login).Throttled(now)
	return throttled, wait, nil
}

// Record appends one attempt to the email's login history (UserLoggedIn or
// LoginFailed), retrying when a concurrent attempt took the version.
func (l *Logins) Record(ctx context.Context, attempt domain.RecordLogin, correlationID string) error {
	payload, err := commands.CanonicalJSONOf(attempt)
	if err != nil {
		return err
	}
	env := &commands.Envelope{
		ID:            commands.NewID(),
		Type:          domain.Service + "." + attempt.CommandType(),
		AggregateID:   domain.LoginID(attempt.Email),
		Actor:         commands.Actor{UserID: actorOf(attempt)},
		IssuedAt:      time.Now().UTC(),
		CorrelationID: correlationID,
		Payload:       payload,
	}
	for try := 0; ; try++ {
		err = pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
			if _, _, err := l.exec.Execute(ctx, tx, env); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, commands.JournalChannel(domain.Service))
			return err
		})
		if !commands.IsUniqueViolation(err) || try == 3 {
			break
		}
	}
	if rej, ok := aggregates.AsRejection(err); ok {
		return rej
	}
	return err
}

func actorOf(a domain.RecordLogin) string {
	if a.UserID != "" {
		return a.UserID
	}
	return "anonymous"
}
