package commands

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// ProjectionLag returns how long the oldest accepted command of the last
// ten minutes has waited to be projected (0 when none waits). Readiness
// checks compare it with a bound: a stuck projector shows here whatever its
// cause, and long before ten minutes pass.
func ProjectionLag(ctx context.Context, q Querier) (time.Duration, error) {
	return age(ctx, q, `SELECT min(decided_at) FROM strata.commands
		WHERE submitted_at > now() - interval '10 minutes' AND status = 'accepted'`)
}

// RelayLag returns how long the event at the head of a service's outbox,
// the next one the relay publishes, has waited (0 when none waits). It
// reads one row, however long the outbox.
func RelayLag(ctx context.Context, q Querier, service string) (time.Duration, error) {
	s := pgx.Identifier{service}.Sanitize()
	return age(ctx, q, `SELECT (SELECT e.occurred_at FROM `+s+`.outbox o JOIN `+s+`.events e ON e.position = o.position
		ORDER BY o.position LIMIT 1)`)
}

func age(ctx context.Context, q Querier, sql string) (time.Duration, error) {
	var oldest *time.Time
	if err := q.QueryRow(ctx, sql).Scan(&oldest); err != nil || oldest == nil {
		return 0, err
	}
	return max(time.Since(*oldest), 0), nil
}
