package commands

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/internal/kafka"
)

// JanitorConfig configures a service's janitor.
type JanitorConfig struct {
	Service string
	Brokers []string
	Pool    *pgxpool.Pool
	Logger  *slog.Logger
	// Age is how long a command may stay pending before the janitor looks
	// at it. Default 10 minutes: far longer than a produce may take (the
	// bus retries 5 times with 30 s network timeouts), and than any clock
	// skew between gateways and Postgres.
	Age time.Duration
	// Interval between rounds. Default 30 s.
	Interval time.Duration
}

// Janitor settles commands that were recorded pending but never reached
// Kafka: the gateway that recorded one died between its insert and its
// produce, and its client would otherwise wait for it forever. A pending
// command is abandoned only when the service's worker has consumed its
// whole command topic and the command is older than Age, so a command
// still queued in Kafka, however long the backlog, is never touched. It
// becomes failed/unavailable, its staged secret is dropped, and its
// waiters are woken. A worker that meets such a command later skips it
// (it is decided), so a failed command never takes effect.
type Janitor struct {
	cfg JanitorConfig
	log *slog.Logger
}

// NewJanitor checks the config and returns a janitor.
func NewJanitor(cfg JanitorConfig) (*Janitor, error) {
	if cfg.Service == "" || len(cfg.Brokers) == 0 || cfg.Pool == nil {
		return nil, errors.New("janitor: Service, Brokers and Pool are required")
	}
	if cfg.Age <= 0 {
		cfg.Age = 10 * time.Minute
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Janitor{cfg: cfg, log: cfg.Logger.With("component", "janitor", "service", cfg.Service)}, nil
}

// Run sweeps every Interval until ctx is done; it returns nil then.
func (j *Janitor) Run(ctx context.Context) error {
	for {
		if n, err := j.Sweep(ctx); err != nil && ctx.Err() == nil {
			j.log.Warn("sweep failed", "err", err)
		} else if n > 0 {
			j.log.Warn("abandoned commands that never reached Kafka", "commands", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(j.cfg.Interval):
		}
	}
}

// Sweep fails the service's commands pending for longer than Age if the
// worker has consumed all of its command topic, and returns how many.
func (j *Janitor) Sweep(ctx context.Context) (int, error) {
	// The cut-off is taken before the lag: a command submitted before it
	// and produced at all was produced before the lag was read (a produce
	// that has not ended after Age was abandoned by its gateway), so with
	// no lag it has been decided, and what is still pending never will be.
	var cutoff time.Time
	if err := j.cfg.Pool.QueryRow(ctx, `SELECT now() - $1::interval`, j.cfg.Age.String()).Scan(&cutoff); err != nil {
		return 0, err
	}
	lag, err := kafka.GroupLag(ctx, j.cfg.Brokers, WorkerGroup(j.cfg.Service), CommandTopic(j.cfg.Service))
	if err != nil || lag > 0 {
		return 0, err
	}
	var n int
	err = pgx.BeginFunc(ctx, j.cfg.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE strata.commands SET status = 'failed', code = 'unavailable',
			reason = 'the command was recorded but never reached the command bus; submit it again', decided_at = now()
			WHERE service = $1 AND status = 'pending' AND submitted_at < $2 RETURNING id::text`, j.cfg.Service, cutoff)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(ids) == 0 {
			return err
		}
		n = len(ids)
		if _, err := tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{j.cfg.Service}.Sanitize()+`.staged_secrets
			WHERE command_id = ANY($1::uuid[])`, ids); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, x) FROM unnest($2::text[]) AS x`, NotifyChannel, ids)
		return err
	})
	return n, err
}

// WorkerGroup is the consumer group of a service's command workers.
func WorkerGroup(service string) string { return "strata.worker." + service }
