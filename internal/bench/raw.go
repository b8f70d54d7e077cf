package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-cqrs/strata/internal/kafka"
)

// The raw baselines: what kafka-go and pgx do with the same messages and
// rows when nothing of the platform runs around them. Each returns the
// count and the elapsed time of exactly the work it names, nothing set up
// before it.

// Row is one event as the raw Postgres baselines write it.
type Row struct {
	AggregateID string
	Version     int64
	Type        string
	Data        []byte // JSON
}

// Schema holds the baselines' tables, in the scratch database.
const Schema = "strata_bench"

const tablesDDL = `
CREATE SCHEMA IF NOT EXISTS strata_bench;
CREATE TABLE IF NOT EXISTS strata_bench.copied (
	aggregate_id uuid NOT NULL, version bigint NOT NULL, type text NOT NULL, data jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS strata_bench.upserted (
	aggregate_id uuid PRIMARY KEY, version bigint NOT NULL, type text NOT NULL, data jsonb NOT NULL,
	updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS strata_bench.single (
	seq bigserial PRIMARY KEY, aggregate_id uuid NOT NULL, version bigint NOT NULL, type text NOT NULL,
	data jsonb NOT NULL);
`

// PrepareTables creates the baselines' tables.
func PrepareTables(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, tablesDDL)
	return err
}

// UpsertSQL is the raw batched upsert: one INSERT … ON CONFLICT DO UPDATE
// per row, the shape of a typical read-model write.
const UpsertSQL = `INSERT INTO strata_bench.upserted AS u (aggregate_id, version, type, data, updated_at)
	VALUES ($1, $2, $3, $4, now())
	ON CONFLICT (aggregate_id) DO UPDATE
	SET version = EXCLUDED.version, type = EXCLUDED.type, data = EXCLUDED.data, updated_at = EXCLUDED.updated_at`

const singleSQL = `INSERT INTO strata_bench.single (aggregate_id, version, type, data) VALUES ($1, $2, $3, $4)`

// Upsert writes rows with UpsertSQL, batch rows per transaction, each
// batch's statements pipelined in one pgx.Batch.
func Upsert(ctx context.Context, pool *pgxpool.Pool, rows []Row, batch int) (Rate, error) {
	start := time.Now()
	for chunk := range slices.Chunk(rows, batch) {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			for _, r := range chunk {
				b.Queue(UpsertSQL, r.AggregateID, r.Version, r.Type, string(r.Data))
			}
			return tx.SendBatch(ctx, b).Close()
		})
		if err != nil {
			return Rate{}, fmt.Errorf("raw upsert: %w", err)
		}
	}
	return Rate{N: len(rows), Elapsed: time.Since(start)}, nil
}

// Copy writes rows with COPY, one COPY per batch rows.
func Copy(ctx context.Context, pool *pgxpool.Pool, rows []Row, batch int) (Rate, error) {
	start := time.Now()
	for chunk := range slices.Chunk(rows, batch) {
		_, err := pool.CopyFrom(ctx, pgx.Identifier{Schema, "copied"}, []string{"aggregate_id", "version", "type", "data"},
			pgx.CopyFromSlice(len(chunk), func(i int) ([]any, error) {
				r := chunk[i]
				return []any{r.AggregateID, r.Version, r.Type, string(r.Data)}, nil
			}))
		if err != nil {
			return Rate{}, fmt.Errorf("raw copy: %w", err)
		}
	}
	return Rate{N: len(rows), Elapsed: time.Since(start)}, nil
}

// SingleCommits inserts rows one autocommitted INSERT at a time, spread
// over conns connections: the cost of an unbatched commit.
func SingleCommits(ctx context.Context, pool *pgxpool.Pool, rows []Row, conns int) (Rate, error) {
	parts := make([][]Row, conns)
	for i, r := range rows {
		parts[i%conns] = append(parts[i%conns], r)
	}
	held := make([]*pgxpool.Conn, 0, conns)
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	for range conns { // connect before the clock starts
		c, err := pool.Acquire(ctx)
		if err != nil {
			return Rate{}, err
		}
		held = append(held, c)
	}
	var wg sync.WaitGroup
	errs := make([]error, conns)
	start := time.Now()
	for i, c := range held {
		wg.Go(func() {
			for _, r := range parts[i] {
				if _, err := c.Exec(ctx, singleSQL, r.AggregateID, r.Version, r.Type, string(r.Data)); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Rate{}, fmt.Errorf("raw single-row commits: %w", err)
	}
	return Rate{N: len(rows), Elapsed: time.Since(start)}, nil
}

// Produce writes msgs through w, batch messages per synchronous
// WriteMessages call, as the relay does.
func Produce(ctx context.Context, w *kafkago.Writer, msgs []kafkago.Message, batch int) (Rate, error) {
	start := time.Now()
	for chunk := range slices.Chunk(msgs, batch) {
		if err := w.WriteMessages(ctx, chunk...); err != nil {
			return Rate{}, fmt.Errorf("raw produce: %w", err)
		}
	}
	return Rate{N: len(msgs), Elapsed: time.Since(start)}, nil
}

// Consume reads n records of topic from the start through a new consumer
// group with the platform's reader settings (kafka.NewReader), committing
// nothing. total runs from the reader's creation (group join included);
// steady from the first record to the last.
func Consume(ctx context.Context, brokers []string, topic, group string, n int, log *slog.Logger) (total, steady Rate, err error) {
	r := kafka.NewReader(kafka.ReaderOptions{Brokers: brokers, GroupID: group, Topics: []string{topic}, Logger: log})
	defer r.Close()
	start := time.Now()
	var first time.Time
	for i := range n {
		if _, err := r.FetchMessage(ctx); err != nil {
			return Rate{}, Rate{}, fmt.Errorf("raw consume: record %d of %d: %w", i, n, err)
		}
		if i == 0 {
			first = time.Now()
		}
	}
	end := time.Now()
	return Rate{N: n, Elapsed: end.Sub(start)}, Rate{N: n - 1, Elapsed: end.Sub(first)}, nil
}

// TopicRecords returns how many records topic holds (the sum over its
// partitions of last minus first offset).
func TopicRecords(ctx context.Context, brokers []string, topic string) (int64, error) {
	first, end, err := kafka.Offsets(ctx, brokers, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for p, e := range end {
		n += e - first[p]
	}
	return n, nil
}
