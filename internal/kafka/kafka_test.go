package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/testkit"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// start starts an embedded broker closed at the end of the test.
func start(t *testing.T, o kafka.EmbeddedOptions) *kafka.Broker {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	b, err := kafka.StartEmbedded(o)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// topicWith starts a broker with topic of partitions and msgs written to
// it through the platform's writer, and returns the broker and a 60s
// context.
func topicWith(t *testing.T, topic string, partitions int, msgs ...kafkago.Message) (*kafka.Broker, context.Context) {
	t.Helper()
	b := start(t, kafka.EmbeddedOptions{Addr: "127.0.0.1:0"})
	brokers := []string{b.Addr()}
	ctx := ctxTimeout(t, 60*time.Second)
	if err := kafka.EnsureTopics(ctx, brokers, []kafka.Topic{{Name: topic, Partitions: partitions}}); err != nil {
		t.Fatal(err)
	}
	w := kafka.NewWriter(brokers, topic)
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	return b, ctx
}

func metadata(t *testing.T, addr string, topics ...string) *kafkago.MetadataResponse {
	t.Helper()
	tr := &kafkago.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafkago.Client{Addr: kafkago.TCP(addr), Transport: tr}
	resp, err := c.Metadata(ctxTimeout(t, 10*time.Second), &kafkago.MetadataRequest{Topics: topics})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	return resp
}

func TestEmbeddedAdvertisesOnlyItsAddress(t *testing.T) {
	b := start(t, kafka.EmbeddedOptions{Addr: "127.0.0.1:0"})
	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1 with a real port", b.Addr())
	}
	if err := kafka.Ping(ctxTimeout(t, 10*time.Second), []string{b.Addr()}); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	resp := metadata(t, b.Addr())
	if len(resp.Brokers) != 1 {
		t.Fatalf("metadata lists %d brokers, want 1: %+v", len(resp.Brokers), resp.Brokers)
	}
	if got := net.JoinHostPort(resp.Brokers[0].Host, fmt.Sprint(resp.Brokers[0].Port)); got != b.Addr() {
		t.Errorf("metadata advertises %s, want %s", got, b.Addr())
	}
}

func TestEmbeddedListensOnTheGivenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := start(t, kafka.EmbeddedOptions{Addr: addr})
	if b.Addr() != addr {
		t.Fatalf("Addr() = %q, want %q", b.Addr(), addr)
	}
	if err := kafka.Ping(ctxTimeout(t, 10*time.Second), []string{addr}); err != nil {
		t.Fatalf("Ping %s: %v", addr, err)
	}
	// The address is taken: a second broker cannot start on it.
	if b2, err := kafka.StartEmbedded(kafka.EmbeddedOptions{Addr: addr}); err == nil {
		b2.Close()
		t.Fatal("second broker started on a busy address")
	}
}

func TestEmbeddedOptionsValidate(t *testing.T) {
	if err := (kafka.EmbeddedOptions{}).Validate(); err != nil {
		t.Errorf("zero options (all defaults): %v", err)
	}
	err := (kafka.EmbeddedOptions{Addr: "no-port", Partitions: -1}).Validate()
	if err == nil || !strings.Contains(err.Error(), "Addr") || !strings.Contains(err.Error(), "Partitions") {
		t.Errorf("Validate = %v, want both Addr and Partitions reported", err)
	}
}

func TestPingFailsWithoutBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := kafka.Ping(ctxTimeout(t, 3*time.Second), []string{addr}); err == nil {
		t.Fatal("Ping succeeded with no broker")
	}
	if err := kafka.Ping(t.Context(), nil); err == nil {
		t.Fatal("Ping succeeded with no brokers")
	}
}

func TestEnsureTopics(t *testing.T) {
	b := start(t, kafka.EmbeddedOptions{Addr: "127.0.0.1:0"})
	brokers := []string{b.Addr()}
	topics := []kafka.Topic{
		{Name: "auth.role"}, // broker default: 6 partitions
		{Name: "auth.user", Partitions: 3, Configs: map[string]string{"retention.ms": "-1"}},
	}
	ctx := ctxTimeout(t, 10*time.Second)
	if err := kafka.EnsureTopics(ctx, brokers, topics); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	// Already existing is success, and leaves the topic as it is.
	topics[1].Partitions = 5
	if err := kafka.EnsureTopics(ctx, brokers, append(topics, kafka.Topic{Name: "thing.item", Partitions: 2})); err != nil {
		t.Fatalf("second EnsureTopics: %v", err)
	}
	want := map[string]int{"auth.role": kafka.DefaultPartitions, "auth.user": 3, "thing.item": 2}
	resp := metadata(t, b.Addr(), "auth.role", "auth.user", "thing.item")
	got := map[string]int{}
	for _, tp := range resp.Topics {
		if tp.Error != nil {
			t.Errorf("topic %s: %v", tp.Name, tp.Error)
		}
		got[tp.Name] = len(tp.Partitions)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("partitions %v, want %v", got, want)
	}

	// The configs reached the broker.
	tr := &kafkago.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafkago.Client{Addr: kafkago.TCP(b.Addr()), Transport: tr}
	cfgs, err := c.DescribeConfigs(ctx, &kafkago.DescribeConfigsRequest{Resources: []kafkago.DescribeConfigRequestResource{{
		ResourceType: kafkago.ResourceTypeTopic, ResourceName: "auth.user", ConfigNames: []string{"retention.ms"},
	}}})
	if err != nil {
		t.Fatalf("DescribeConfigs: %v", err)
	}
	var retention string
	for _, r := range cfgs.Resources {
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "retention.ms" {
				retention = e.ConfigValue
			}
		}
	}
	if retention != "-1" {
		t.Errorf("auth.user retention.ms = %q, want -1", retention)
	}
}

func TestEnsureTopicsErrors(t *testing.T) {
	b := start(t, kafka.EmbeddedOptions{Addr: "127.0.0.1:0"})
	ctx := ctxTimeout(t, 10*time.Second)
	if err := kafka.EnsureTopics(ctx, nil, []kafka.Topic{{Name: "x"}}); err == nil {
		t.Error("no brokers accepted")
	}
	if err := kafka.EnsureTopics(ctx, []string{b.Addr()}, []kafka.Topic{{Name: ""}}); err == nil {
		t.Error("empty topic name accepted")
	}
	err := kafka.EnsureTopics(ctx, []string{b.Addr()}, []kafka.Topic{{Name: "ok"}, {Name: "bad", ReplicationFactor: 3}})
	if err == nil || !strings.Contains(err.Error(), "bad") {
		t.Errorf("replication factor 3 on one broker: err = %v, want it to name topic bad", err)
	}
}

func TestWriterPartitionsLikeJava(t *testing.T) {
	b := start(t, kafka.EmbeddedOptions{Addr: "127.0.0.1:0"})
	brokers := []string{b.Addr()}
	const topic, partitions = "client.client", 6
	ctx := ctxTimeout(t, 30*time.Second)
	if err := kafka.EnsureTopics(ctx, brokers, []kafka.Topic{{Name: topic, Partitions: partitions}}); err != nil {
		t.Fatal(err)
	}
	w := kafka.NewWriter(brokers, "") // each message names its topic
	defer w.Close()
	var msgs []kafkago.Message
	for i := range 20 {
		msgs = append(msgs, kafkago.Message{Topic: topic, Key: fmt.Appendf(nil, "agg-%d", i), Value: []byte("v")})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	// Where the Java client (murmur2) would put each key; franz-go's default
	// key partitioner is documented to match it exactly.
	java := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	want := map[string]int{}
	for _, m := range msgs {
		want[string(m.Key)] = java.Partition(&kgo.Record{Key: m.Key}, partitions)
	}
	got := map[string]int{}
	for p := range partitions {
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 250 * time.Millisecond})
		last, err := lastOffset(ctx, brokers[0], topic, p)
		if err != nil {
			t.Fatal(err)
		}
		for range last {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read partition %d: %v", p, err)
			}
			got[string(m.Key)] = p
		}
		r.Close()
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("placement %v, want Java's %v", got, want)
	}
}

// lastOffset returns the high watermark of one partition.
func lastOffset(ctx context.Context, addr, topic string, partition int) (int64, error) {
	conn, err := kafkago.DialLeader(ctx, "tcp", addr, topic, partition)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ReadLastOffset()
}

func TestReaderCommitsAndResumes(t *testing.T) {
	t.Run("CommitMessages", func(t *testing.T) {
		testCommitsAndResume(t, func(r *kafkago.Reader) (func(kafkago.Message) error, func()) {
			return func(m kafkago.Message) error { return r.CommitMessages(context.Background(), m) }, func() {}
		})
	})
	t.Run("Committer", func(t *testing.T) {
		testCommitsAndResume(t, func(r *kafkago.Reader) (func(kafkago.Message) error, func()) {
			c := kafka.NewCommitter(r, testLogger(t))
			return func(m kafkago.Message) error { c.Commit(m); return nil }, c.Close
		})
	})
}

// testCommitsAndResume reads two messages committing each through the
// commit function mode gives (and its flush before the reader closes),
// then checks that a new group member starts after them.
func testCommitsAndResume(t *testing.T, mode func(*kafkago.Reader) (commit func(kafkago.Message) error, flush func())) {
	const topic = "account.asset-account"
	b, ctx := topicWith(t, topic, 2,
		kafkago.Message{Key: []byte("a"), Value: []byte("one")},
		kafkago.Message{Key: []byte("b"), Value: []byte("two")},
	)
	brokers := []string{b.Addr()}

	opts := kafka.ReaderOptions{Brokers: brokers, GroupID: "projector", Topics: []string{topic}, Logger: testLogger(t)}
	r := kafka.NewReader(opts)
	commit, flush := mode(r)
	var got []string
	for range 2 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("FetchMessage: %v", err)
		}
		got = append(got, string(m.Value))
		if err := commit(m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	slices.Sort(got)
	if want := []string{"one", "two"}; !slices.Equal(got, want) {
		t.Fatalf("read %v, want %v", got, want)
	}
	flush()
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// A new member of the group resumes after the committed messages: the
	// first thing it sees is a message written later.
	w := kafka.NewWriter(brokers, topic)
	defer w.Close()
	if err := w.WriteMessages(ctx, kafkago.Message{Key: []byte("a"), Value: []byte("three")}); err != nil {
		t.Fatal(err)
	}
	r2 := kafka.NewReader(opts)
	defer r2.Close()
	m, err := r2.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("FetchMessage after restart: %v", err)
	}
	if string(m.Value) != "three" {
		t.Fatalf("after commit the group saw %q again, want only the new message", m.Value)
	}
}

func TestReaderOptionsValidate(t *testing.T) {
	err := (kafka.ReaderOptions{}).Validate()
	for _, field := range []string{"Brokers", "GroupID", "Topics"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate = %v, want %s reported", err, field)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("NewReader accepted invalid options")
		}
	}()
	kafka.NewReader(kafka.ReaderOptions{})
}

func TestEmbeddedDurable(t *testing.T) {
	dir := t.TempDir()
	const topic = "event.signal"
	ctx := ctxTimeout(t, 60*time.Second)

	// First life: create, produce, consume one message in group "g1".
	b := start(t, kafka.EmbeddedOptions{Addr: "127.0.0.1:0", DataDir: dir})
	brokers := []string{b.Addr()}
	if err := kafka.EnsureTopics(ctx, brokers, []kafka.Topic{{Name: topic, Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	w := kafka.NewWriter(brokers, topic)
	var written []kafkago.Message
	for i := range 3 {
		written = append(written, kafkago.Message{
			Key:     fmt.Appendf(nil, "k%d", i),
			Value:   fmt.Appendf(nil, "v%d", i),
			Headers: []kafkago.Header{{Key: "ce_id", Value: fmt.Appendf(nil, "id-%d", i)}},
		})
	}
	if err := w.WriteMessages(ctx, written...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	w.Close()
	r := kafka.NewReader(kafka.ReaderOptions{Brokers: brokers, GroupID: "g1", Topics: []string{topic}})
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CommitMessages(ctx, m); err != nil {
		t.Fatal(err)
	}
	r.Close()
	b.Close()

	// Second life on the same dir (and another port).
	b = start(t, kafka.EmbeddedOptions{Addr: "127.0.0.1:0", DataDir: dir})
	brokers = []string{b.Addr()}

	fresh := kafka.NewReader(kafka.ReaderOptions{Brokers: brokers, GroupID: "g2", Topics: []string{topic}})
	defer fresh.Close()
	for i, want := range written {
		got, err := fresh.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("after restart FetchMessage %d: %v", i, err)
		}
		if got.Offset != int64(i) || string(got.Key) != string(want.Key) || string(got.Value) != string(want.Value) ||
			len(got.Headers) != 1 || string(got.Headers[0].Value) != string(want.Headers[0].Value) {
			t.Errorf("after restart record %d = offset %d %s=%s %v, want %s=%s %v",
				i, got.Offset, got.Key, got.Value, got.Headers, want.Key, want.Value, want.Headers)
		}
	}

	resumed := kafka.NewReader(kafka.ReaderOptions{Brokers: brokers, GroupID: "g1", Topics: []string{topic}})
	defer resumed.Close()
	got, err := resumed.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("group g1 after restart: %v", err)
	}
	if got.Offset != 1 {
		t.Errorf("group g1 resumed at offset %d, want 1 (its committed offset survived)", got.Offset)
	}
}

func TestWriterCloseReleasesItsTransport(t *testing.T) {
	b := start(t, kafka.EmbeddedOptions{Addr: "127.0.0.1:0"})
	brokers := []string{b.Addr()}
	if err := kafka.EnsureTopics(ctxTimeout(t, 10*time.Second), brokers, []kafka.Topic{{Name: "x", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()
	for range 5 {
		w := kafka.NewWriter(brokers, "x")
		if err := w.WriteMessages(ctxTimeout(t, 10*time.Second), kafkago.Message{Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Each leaked transport would keep a metadata goroutine and its
	// connection (with the broker's goroutines for it) alive for good.
	testkit.Eventually(t, 10*time.Second, func() bool { return runtime.NumGoroutine() <= baseline+2 },
		"goroutines did not come back to %d (+2) after closing the writers", baseline)
}

// A batch ends once the gap passes without a message, not at its wait,
// and keeps every message that came within the gap.
func TestFetchBatchEndsAtTheGap(t *testing.T) {
	const topic = "auth.commands"
	var sent []kafkago.Message
	for i := range 5 {
		sent = append(sent, kafkago.Message{Key: []byte("k"), Value: []byte{byte('a' + i)}})
	}
	b, ctx := topicWith(t, topic, 1, sent...)
	brokers := []string{b.Addr()}
	r := kafka.NewReader(kafka.ReaderOptions{Brokers: brokers, GroupID: "worker", Topics: []string{topic}, Logger: testLogger(t)})
	defer r.Close()
	type result struct {
		msgs []kafkago.Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := kafka.FetchBatch(ctx, r, 100, 10*time.Minute, time.Second)
		done <- result{msgs, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatal(res.err)
		}
		var got string
		for _, m := range res.msgs {
			got += string(m.Value)
		}
		if got != "abcde" {
			t.Errorf("batch %q, want the five messages abcde", got)
		}
	case <-ctx.Done():
		t.Fatal("FetchBatch waited out its 10-minute wait: the 1s gap did not end the batch")
	}
}
