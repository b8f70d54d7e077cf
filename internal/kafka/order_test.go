package kafka_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-cqrs/strata/internal/kafka"
)

func TestFitRequest(t *testing.T) {
	msgs := func(topic string, n, valueBytes int, distinctKeys bool) []kafkago.Message {
		ms := make([]kafkago.Message, n)
		for i := range ms {
			key := []byte("k")
			if distinctKeys {
				key = []byte(strconv.Itoa(i))
			}
			ms[i] = kafkago.Message{Topic: topic, Key: key, Value: make([]byte, valueBytes),
				Headers: []kafkago.Header{{Key: "ce_id", Value: []byte("x")}}}
		}
		return ms
	}
	six := map[string]int{"t": 6}
	for _, c := range []struct {
		name string
		msgs []kafkago.Message
		want int
	}{
		{"none", nil, 0},
		{"fewer than a request holds", msgs("t", 10, 100, false), 10},
		{"one key: more messages than a request holds", msgs("t", 600, 100, false), 256},
		{"600 keys over six partitions: about 100 each", msgs("t", 600, 100, true), 600},
		{"a topic of unknown partitions counts as one", msgs("u", 600, 100, true), 256},
		{"one key: more bytes than a request holds", msgs("t", 10, 300<<10, false), 3},
		{"one message larger than a request", msgs("t", 2, 2<<20, false), 1},
	} {
		if got := kafka.FitRequest(c.msgs, six); got != c.want {
			t.Errorf("%s: FitRequest = %d, want %d", c.name, got, c.want)
		}
	}
	// On one partition, many keys still make one share.
	if got := kafka.FitRequest(msgs("t", 300, 100, true), map[string]int{"t": 1}); got != 256 {
		t.Errorf("300 keys on one partition: FitRequest = %d, want 256", got)
	}
}

// A write that fails part-way leaves on Kafka only a prefix of what it was
// given: a key's later messages never precede its earlier ones. kafka-go
// alone, given the 600 messages in one call, sends them in three requests
// and, the first failing for good, still sends the other two.
func TestOrderedWriterStopsAtTheFirstFailure(t *testing.T) {
	const topic = "in-order"
	const spread = "spread" // six partitions
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.SeedTopics(6, spread))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	var produces atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if produces.Add(1) > 1 {
			return nil, nil, false // handled by the cluster
		}
		// The first request fails with an error kafka-go does not retry.
		pr := req.(*kmsg.ProduceRequest)
		res := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.MessageTooLarge.Code
				st.Partitions = append(st.Partitions, sp)
			}
			res.Topics = append(res.Topics, st)
		}
		return res, nil, true
	})
	w := kafka.NewOrderedWriter([]string{addr})
	t.Cleanup(func() { _ = w.Close() })
	msgs := make([]kafkago.Message, 600)
	for i := range msgs {
		msgs[i] = kafkago.Message{Topic: topic, Key: []byte("aggregate"), Value: []byte(strconv.Itoa(i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := w.Write(ctx, msgs); err == nil {
		t.Fatal("Write succeeded through a failed request")
	}
	if end, err := lastOffset(ctx, addr, topic, 0); err != nil || end != 0 {
		t.Fatalf("after the failed write the partition ends at %d (%v), want 0: later messages went out", end, err)
	}
	// Written again, as the relay does, everything arrives in order, in
	// requests that each fit: 256, 256, then 88.
	if err := w.Write(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if n := produces.Load(); n != 1+3 {
		t.Errorf("%d produce requests, want 1 failed + 3", n)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < len(msgs) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	want := make([]string, len(msgs))
	for i := range want {
		want[i] = strconv.Itoa(i)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("records %v, want 0..599 in order", got)
	}

	// 600 keys over six partitions go out in one call: a request per
	// partition, not three calls of 256 (18 requests).
	spreadMsgs := make([]kafkago.Message, 600)
	for i := range spreadMsgs {
		spreadMsgs[i] = kafkago.Message{Topic: spread, Key: []byte(strconv.Itoa(i)), Value: []byte("v")}
	}
	before := produces.Load()
	if err := w.Write(ctx, spreadMsgs); err != nil {
		t.Fatal(err)
	}
	if n := produces.Load() - before; n != 6 {
		t.Errorf("600 messages over six partitions took %d produce requests, want 6", n)
	}
}
