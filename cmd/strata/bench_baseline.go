package main

import (
	"context"
	"fmt"

	"github.com/strata-cqrs/strata/internal/bench"
	"github.com/strata-cqrs/strata/internal/kafka"
)

// singleRows bounds the single-row commit baselines: at a few thousand
// commits a second more would only make the run longer.
const singleRows = 10_000

// runBaseline measures what kafka-go and pgx do alone with the messages
// and rows the platform moves: N relay records produced in calls of the
// relay's batch (and again in calls of 10,000), and consumed through a
// consumer group; the same N events as rows written by COPY and by batched
// upserts (500 per transaction); and single-row autocommitted INSERTs on
// one connection and on eight.
func runBaseline(ctx context.Context, m *BenchMain) (*bench.Report, error) {
	o := m.opts
	rep := m.report()
	p, err := m.pieces(ctx, rep)
	if err != nil {
		return nil, err
	}
	if err := bench.PrepareTables(ctx, p.pool); err != nil {
		return nil, err
	}
	topic, largeTopic, warmTopic := p.ns+".baseline", p.ns+".baseline-large", p.ns+".baseline-warm"
	if err := m.createTopics(ctx, p, topic, largeTopic, warmTopic); err != nil {
		return nil, err
	}
	warm := warmupEvents(o.events)
	single := min(o.events, singleRows)
	rep.Params.Set("events", o.events)
	rep.Params.Set("warmup_events", warm)
	rep.Params.Set("produce_batch", produceBatch)
	rep.Params.Set("produce_batch_large", produceBatchLarge)
	rep.Params.Set("pg_batch", upsertBatch)
	rep.Params.Set("single_rows", single)
	perms := benchPermissions()
	warmEvents, err := roleEvents(p.def, "warm", "bench:warmup", warm, perms)
	if err != nil {
		return nil, err
	}
	events, err := roleEvents(p.def, "bench", "bench", o.events, perms)
	if err != nil {
		return nil, err
	}
	warmMsgs, err := relayMessages(warmTopic, p.ns, warmEvents)
	if err != nil {
		return nil, err
	}
	msgs, err := relayMessages(topic, p.ns, events)
	if err != nil {
		return nil, err
	}
	largeMsgs, err := relayMessages(largeTopic, p.ns, events)
	if err != nil {
		return nil, err
	}
	rows, warmRows := rawRows(events), rawRows(warmEvents)

	bar := m.bar(6, "baseline")
	defer bar.Done()
	step := func(i int64, what string) { bar.Describe("baseline: " + what); bar.Set(i) }
	w := kafka.NewWriter(p.brokers, "")
	defer w.Close()
	if _, err := bench.Produce(ctx, w, warmMsgs, produceBatch); err != nil {
		return nil, err
	}
	if _, err := bench.Copy(ctx, p.pool, warmRows, upsertBatch); err != nil {
		return nil, err
	}
	if _, err := bench.Upsert(ctx, p.pool, warmRows, upsertBatch); err != nil {
		return nil, err
	}
	if err := m.startProfile(); err != nil {
		return nil, err
	}
	step(0, "kafka produce")
	produce, err := bench.Produce(ctx, w, msgs, produceBatch)
	if err != nil {
		return nil, err
	}
	large, err := bench.Produce(ctx, w, largeMsgs, produceBatchLarge)
	if err != nil {
		return nil, err
	}
	step(1, "kafka consume")
	consumeTotal, consume, err := bench.Consume(ctx, p.brokers, topic, "strata.bench.consume."+randomHex(4), o.events, m.log)
	if err != nil {
		return nil, err
	}
	step(2, "pg copy")
	copied, err := bench.Copy(ctx, p.pool, rows, upsertBatch)
	if err != nil {
		return nil, err
	}
	step(3, "pg upsert")
	upserted, err := bench.Upsert(ctx, p.pool, rows, upsertBatch)
	if err != nil {
		return nil, err
	}
	step(4, "pg single-row commits")
	one, err := bench.SingleCommits(ctx, p.pool, rows[:single], 1)
	if err != nil {
		return nil, err
	}
	step(5, "pg single-row commits, 8 connections")
	eight, err := bench.SingleCommits(ctx, p.pool, rows[:single], 8)
	if err != nil {
		return nil, err
	}
	step(6, "done")
	if err := m.stopProfile(); err != nil {
		return nil, err
	}
	var nCopied, nUpserted, nSingle int64
	if err := p.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM strata_bench.copied), (SELECT count(*) FROM strata_bench.upserted),
		(SELECT count(*) FROM strata_bench.single)`).Scan(&nCopied, &nUpserted, &nSingle); err != nil {
		return nil, err
	}
	rep.Metric("kafka_produce_msgs_per_sec", produce.PerSec())
	rep.Metric("kafka_produce_large_calls_msgs_per_sec", large.PerSec())
	rep.Metric("kafka_consume_msgs_per_sec", consume.PerSec())
	rep.Metric("kafka_consume_total_msgs_per_sec", consumeTotal.PerSec())
	rep.Metric("pg_copy_rows_per_sec", copied.PerSec())
	rep.Metric("pg_upsert_rows_per_sec", upserted.PerSec())
	rep.Metric("pg_single_commits_per_sec", one.PerSec())
	rep.Metric("pg_single_commits_8conns_per_sec", eight.PerSec())
	rep.Metric("produced", float64(produce.N))
	rep.Metric("consumed", float64(consumeTotal.N))
	rep.Metric("copied", float64(nCopied-int64(warm)))
	rep.Metric("upserted", float64(upserted.N))
	rep.Metric("single_commits", float64(nSingle))
	rep.Notes = append(rep.Notes, "kafka_consume_msgs_per_sec runs from the first record (group joined); kafka_consume_total_msgs_per_sec from the reader's creation")
	aggs := int64(aggregateCount(warmEvents) + aggregateCount(events))
	if nCopied != int64(warm+o.events) || nUpserted != aggs || nSingle != int64(2*single) {
		return rep, fmt.Errorf("rows: %d copied, %d upserted, %d single; want %d, %d, %d",
			nCopied, nUpserted, nSingle, warm+o.events, aggs, 2*single)
	}
	return rep, nil
}
