package projections

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// The benchmarks move the same rows three ways: through the projector
// (Kafka → one transaction per batch, one Apply round trip per event), and
// straight into Postgres as pipelined upserts or COPY, in batches of 500.
const (
	benchAggregates = 1000
	benchBatch      = 500
)

// benchRow is one event of the benchmark: versions 1, 2, … of 1000
// aggregates, version-major, so every batch touches many aggregates.
type benchRow struct {
	id      string
	version int64
}

func benchRows(n int) []benchRow {
	ids := make([]string, benchAggregates)
	for i := range ids {
		ids[i] = newID()
	}
	rows := make([]benchRow, 0, n)
	for v := int64(1); len(rows) < n; v++ {
		for _, id := range ids {
			if len(rows) == n {
				break
			}
			rows = append(rows, benchRow{id, v})
		}
	}
	return rows
}

// inBatches calls f with consecutive slices of at most size rows.
func inBatches(rows []benchRow, size int, f func([]benchRow) error) error {
	for len(rows) > 0 {
		k := min(size, len(rows))
		if err := f(rows[:k]); err != nil {
			return err
		}
		rows = rows[k:]
	}
	return nil
}

// BenchmarkProjector pre-fills Kafka with b.N events and times the test
// projection consuming all of them into Postgres, group join included.
func BenchmarkProjector(b *testing.B) {
	r := newRig(b, kafka.DefaultPartitions)
	rows := benchRows(b.N)
	if err := inBatches(rows, 10_000, func(rs []benchRow) error {
		msgs := make([]kafkago.Message, len(rs))
		for i, row := range rs {
			msgs[i] = record(row.id, row.version)
		}
		r.produce(msgs...)
		return nil
	}); err != nil {
		b.Fatal(err)
	}

	// The first commit comes after the group join; the steady rate is
	// measured from there to the last commit.
	var once sync.Once
	var first, last time.Time
	var firstApplied int64
	b.ResetTimer()
	p := r.start(func(rn *running) {
		rn.afterCommit = func() {
			now := time.Now()
			once.Do(func() { first, firstApplied = now, rn.Applied() })
			last = now
		}
	})
	testkit.Eventually(b, 10*time.Minute, func() bool { return p.Applied() >= int64(b.N) },
		"projector applied %v of %d events", lazy(func() any { return p.Applied() }), b.N)
	b.StopTimer()
	p.stop(b) // Run has returned: first and last are safe to read

	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if steady := last.Sub(first); b.N > int(firstApplied) && steady > 0 {
		b.ReportMetric(float64(int64(b.N)-firstApplied)/steady.Seconds(), "steady-events/s")
	}
	if n := len(flatten(r.logged())); n != b.N {
		b.Fatalf("log holds %d events, want %d", n, b.N)
	}
}

// benchRaw times write over b.N rows in batches of benchBatch, on a fresh
// database migrated for the test projection, and reports rows/s.
func benchRaw(b *testing.B, write func(ctx context.Context, pool *pgxpool.Pool, rows []benchRow) error) {
	pool := testkit.PostgresPool(b)
	r := &rig{t: b, pool: pool, proj: counterProjection()}
	r.migrate(r.proj.AllMigrations()...)
	rows := benchRows(b.N)
	ctx := context.Background()
	b.ResetTimer()
	err := inBatches(rows, benchBatch, func(rs []benchRow) error { return write(ctx, pool, rs) })
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRawBatchedUpsert sends the projection's statement for each row,
// pipelined in one pgx.Batch and one transaction per batch.
func BenchmarkRawBatchedUpsert(b *testing.B) {
	benchRaw(b, func(ctx context.Context, pool *pgxpool.Pool, rows []benchRow) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			batch := &pgx.Batch{}
			for _, row := range rows {
				batch.Queue(tickSQL, row.id, row.version)
			}
			return tx.SendBatch(ctx, batch).Close()
		})
	})
}

// BenchmarkRawCopyFrom copies the rows into the log table, one COPY per
// batch: the floor for getting rows into Postgres.
func BenchmarkRawCopyFrom(b *testing.B) {
	benchRaw(b, func(ctx context.Context, pool *pgxpool.Pool, rows []benchRow) error {
		_, err := pool.CopyFrom(ctx, pgx.Identifier{"ptest", "log"}, []string{"aggregate_id", "version"},
			pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) { return []any{rows[i].id, rows[i].version}, nil }))
		return err
	})
}
