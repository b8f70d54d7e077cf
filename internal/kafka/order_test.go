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
	msgs := func(n, valueBytes int) []kafkago.Message {
		ms := make([]kafkago.Message, n)
		for i := range ms {
			ms[i] = kafkago.Message{Key: []byte("k"), Value: make([]byte, valueBytes),
				Headers: []kafkago.Header{{Key: "ce_id", Value: []byte("x")}}}
		}
		return ms
	}
	for _, c := range []struct {
		name string
		msgs []kafkago.Message
		want int
	}{
		{"none", nil, 0},
		{"fewer than a request holds", msgs(10, 100), 10},
		{"more messages than a request holds", msgs(600, 100), 256},
		{"more bytes than a request holds", msgs(10, 300<<10), 3},
		{"one message larger than a request", msgs(2, 2<<20), 1},
	} {
		if got := kafka.FitRequest(c.msgs); got != c.want {
			t.Errorf("%s: FitRequest = %d, want %d", c.name, got, c.want)
		}
	}
}

// A write that fails part-way leaves on Kafka only a prefix of what it was
// given: a key's later messages never precede its earlier ones. kafka-go
// alone, given the 600 messages in one call, sends them in three requests
// and, the first failing for good, still sends the other two.
func TestWriteInOrderStopsAtTheFirstFailure(t *testing.T) {
	const topic = "in-order"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
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
	w := kafka.NewWriter([]string{addr}, topic)
	t.Cleanup(func() { _ = w.Close() })
	msgs := make([]kafkago.Message, 600)
	for i := range msgs {
		msgs[i] = kafkago.Message{Key: []byte("aggregate"), Value: []byte(strconv.Itoa(i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := kafka.WriteInOrder(ctx, w, msgs); err == nil {
		t.Fatal("WriteInOrder succeeded through a failed request")
	}
	if end, err := lastOffset(ctx, addr, topic, 0); err != nil || end != 0 {
		t.Fatalf("after the failed write the partition ends at %d (%v), want 0: later messages went out", end, err)
	}
	// Written again, as the relay does, everything arrives in order, in
	// requests that each fit.
	if err := kafka.WriteInOrder(ctx, w, msgs); err != nil {
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
}
