package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// StatsKeeper keeps the planner's statistics of young tables up to date
// until autovacuum does.
//
// A fresh database is where every deployment starts, and there autovacuum
// is late: it looks at a database once a minute (autovacuum_naptime), and
// until then Postgres plans for tables it has never measured. Worse, a
// generic plan that a pooled connection cached while a table was nearly
// empty (a seq scan of strata.commands for `id = ANY($1)`, a hash join over
// a journal) stays in use until the table is next analyzed, while the table
// grows by thousands of rows a second. Measured on the reference machine:
// the worker's "already decided?" check took 6 ms instead of 0.05 ms, and
// the platform projected at p99 0.7–1 s instead of 0.1 s for the whole
// first minute.
//
// Each round the keeper analyzes every table that held fewer than MaxRows
// rows when last analyzed (or never was) and whose rows changed since, by
// at least as many as it held then (and MinChanges): a young table is
// analyzed each time it doubles, until it is big enough for its statistics
// to scale with it (the planner multiplies the row density it measured by
// the table's current size). Older tables are autovacuum's alone: on a
// database in service the keeper analyzes at most small tables with heavy
// churn, which costs milliseconds. A round takes an advisory lock (per
// database): of several processes, one analyzes.
type StatsKeeper struct {
	Pool *pgxpool.Pool
	// Every is the time between rounds. Default 5s.
	Every time.Duration
	// MinChanges is the fewest changed rows that make a table worth
	// analyzing. Default 1000.
	MinChanges int64
	// MaxRows is the size, at its last analyze, from which a table is left
	// to autovacuum. Default 10,000.
	MaxRows int64
	Logger  *slog.Logger
}

// StatsLockKey is the session advisory lock a round holds: of several
// processes, the one holding it analyzes.
const StatsLockKey int64 = 0x73747261746101

// Run analyzes young tables every Every until ctx is done.
func (k *StatsKeeper) Run(ctx context.Context) error {
	every := k.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	log := k.Logger
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		analyzed, err := k.Round(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("postgres: analyze young tables", "err", err)
		case len(analyzed) > 0:
			log.Debug("postgres: analyzed young tables", "tables", analyzed)
		}
	}
}

// Round analyzes, once, every table that needs it, and returns the names
// of those it analyzed. It analyzes nothing, and returns nil, while another
// process runs a round. Each ANALYZE runs on its own, outside any
// transaction (a rolled-back ANALYZE keeps its row count but loses its
// column statistics), so one failing table does not cost the others.
func (k *StatsKeeper) Round(ctx context.Context) (analyzed []string, err error) {
	minChanges, maxRows := k.MinChanges, k.MaxRows
	if minChanges <= 0 {
		minChanges = 1000
	}
	if maxRows <= 0 {
		maxRows = 10_000
	}
	conn, err := k.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	var mine bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, StatsLockKey).Scan(&mine); err != nil || !mine {
		return nil, err
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, StatsLockKey); uerr != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // the lock goes with the session
			err = errors.Join(err, uerr)
		}
	}()
	// reltuples is -1 for a table never analyzed; only a table's owner
	// (or a member of its role) may analyze it.
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', s.schemaname, s.relname)
		FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
		WHERE s.n_mod_since_analyze >= greatest($1, c.reltuples) AND c.reltuples < $2
			AND pg_has_role(c.relowner, 'USAGE')
		ORDER BY 1`, minChanges, maxRows)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range names {
		if _, err := conn.Exec(ctx, "ANALYZE "+name); err != nil {
			if ctx.Err() != nil {
				return analyzed, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("analyze %s: %w", name, err))
			continue
		}
		analyzed = append(analyzed, name)
	}
	return analyzed, errors.Join(errs...)
}
