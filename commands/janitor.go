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
// produce, and its client would otherwise wait for it forever.
//
// Each round takes a snapshot: a cut-off (the database's now() minus Age)
// and then the command topic's end offsets. A command recorded before the
// cut-off that was produced at all was produced before those offsets were
// read (a produce does not outlive Age), so once the worker group's
// committed offsets reach the snapshot's, every such command has been
// decided, and one still pending never reached Kafka. A later round then
// fails those: failed/unavailable, staged secret dropped, waiters woken. A
// worker that meets such a command later skips it (it is decided), so a
// failed command never takes effect. Under a steady load the committed
// offsets pass the snapshot within a round; under a backlog the snapshot
// waits for them, so a command still queued is never touched.
type Janitor struct {
	cfg  JanitorConfig
	log  *slog.Logger
	prev *snapshot // the last snapshot, until the worker group passes it
	from time.Time // the cut-off of the last sweep: rows before it were swept
}

type snapshot struct {
	cutoff time.Time
	ends   map[int]int64
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

// sweepWindow is how far back the first sweep after a start looks; later
// sweeps look back to the previous one's cut-off.
const sweepWindow = 30 * 24 * time.Hour

// Sweep runs one round: it fails what the last snapshot proves lost, if
// the worker group has passed it, and takes the next snapshot. It returns
// how many commands it failed.
func (j *Janitor) Sweep(ctx context.Context) (int, error) {
	topic, group := CommandTopic(j.cfg.Service), WorkerGroup(j.cfg.Service)
	n := 0
	if j.prev != nil {
		committed, err := kafka.CommittedOffsets(ctx, j.cfg.Brokers, group, topic)
		if err != nil {
			return 0, err
		}
		_, ends, err := kafka.Offsets(ctx, j.cfg.Brokers, topic)
		if err != nil {
			return 0, err
		}
		if !passed(j.prev.ends, committed, ends) {
			return 0, nil // a backlog: wait for the worker
		}
		from := j.from
		if from.IsZero() {
			from = j.prev.cutoff.Add(-sweepWindow)
		}
		if n, err = j.fail(ctx, from, j.prev.cutoff); err != nil {
			return 0, err
		}
		j.from = j.prev.cutoff
	}
	var cutoff time.Time
	if err := j.cfg.Pool.QueryRow(ctx, `SELECT now() - $1::interval`, j.cfg.Age.String()).Scan(&cutoff); err != nil {
		return n, err
	}
	_, ends, err := kafka.Offsets(ctx, j.cfg.Brokers, topic) // read after the cut-off
	if err != nil {
		return n, err
	}
	j.prev = &snapshot{cutoff: cutoff, ends: ends}
	return n, nil
}

// passed reports whether the group's committed offsets reached the
// snapshot's end offsets on every partition, and none lies past the
// partition's current end (a recreated topic: its commands are not known
// to be decided).
func passed(snap, committed, ends map[int]int64) bool {
	for p, end := range snap {
		c, ok := committed[p]
		if end > 0 && (!ok || c < end) {
			return false
		}
		if ok && c > ends[p] {
			return false
		}
	}
	return true
}

// fail settles the service's commands recorded pending in [from, to).
func (j *Janitor) fail(ctx context.Context, from, to time.Time) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, j.cfg.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE strata.commands SET status = 'failed', code = 'unavailable',
			reason = 'the command was recorded but never reached the command bus; submit it again', decided_at = now()
			WHERE service = $1 AND status = 'pending' AND recorded_at >= $2 AND recorded_at < $3
			RETURNING id::text`, j.cfg.Service, from, to)
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
