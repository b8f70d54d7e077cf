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
// the next one the relay publishes, has waited (0 when none waits). Its
// position, not its time, makes it the head, so when positions commit out
// of order it may be a few milliseconds younger than the oldest waiting
// event. Two index lookups, however long the outbox and the journal (a
// join let the planner merge the journal's key from position 1 when the
// outbox had no statistics: seconds on a million events).
func RelayLag(ctx context.Context, q Querier, service string) (time.Duration, error) {
	s := pgx.Identifier{service}.Sanitize()
	return age(ctx, q, `SELECT (SELECT occurred_at FROM `+s+`.events WHERE position = (SELECT min(position) FROM `+s+`.outbox))`)
}

func age(ctx context.Context, q Querier, sql string) (time.Duration, error) {
	var oldest *time.Time
	if err := q.QueryRow(ctx, sql).Scan(&oldest); err != nil || oldest == nil {
		return 0, err
	}
	return max(time.Since(*oldest), 0), nil
}
