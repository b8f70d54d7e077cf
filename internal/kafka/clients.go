package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// adminTimeout bounds each admin request when the context has no deadline.
const adminTimeout = 30 * time.Second

// Topic describes a topic EnsureTopics creates.
type Topic struct {
	// Name of the topic.
	Name string
	// Partitions is the partition count; 0 means the broker's default.
	Partitions int
	// ReplicationFactor; 0 means 1.
	ReplicationFactor int
	// Configs are topic-level settings such as "retention.ms": "-1".
	Configs map[string]string
}

// EnsureTopics creates every topic in topics that does not exist yet, in one
// CreateTopics request sent through the cluster's controller. A topic that
// already exists counts as success and is left as it is (its partitions and
// configs are not compared or changed). The error, if any, lists every topic
// that could not be created.
func EnsureTopics(ctx context.Context, brokers []string, topics []Topic) error {
	if len(brokers) == 0 {
		return errors.New("kafka: ensure topics: no brokers")
	}
	if len(topics) == 0 {
		return nil
	}
	req := &kafkago.CreateTopicsRequest{}
	var errs []error
	for _, t := range topics {
		if t.Name == "" {
			errs = append(errs, errors.New("topic with an empty name"))
			continue
		}
		tc := kafkago.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: t.ReplicationFactor}
		if tc.NumPartitions == 0 {
			tc.NumPartitions = -1
		}
		if tc.ReplicationFactor == 0 {
			tc.ReplicationFactor = 1
		}
		keys := make([]string, 0, len(t.Configs))
		for k := range t.Configs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			tc.ConfigEntries = append(tc.ConfigEntries, kafkago.ConfigEntry{ConfigName: k, ConfigValue: t.Configs[k]})
		}
		req.Topics = append(req.Topics, tc)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka: ensure topics: %w", err)
	}
	client, done := adminClient(brokers)
	defer done()
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("kafka: create topics on %s: %w", strings.Join(brokers, ","), err)
	}
	for _, t := range req.Topics {
		err := resp.Errors[t.Topic]
		if err == nil || errors.Is(err, kafkago.TopicAlreadyExists) {
			continue
		}
		errs = append(errs, fmt.Errorf("topic %s: %w", t.Topic, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka: ensure topics: %w", err)
	}
	return nil
}

// Ping asks the cluster for its metadata and reports whether it answered,
// for readiness checks. It honours ctx's deadline (30s if it has none).
func Ping(ctx context.Context, brokers []string) error {
	if len(brokers) == 0 {
		return errors.New("kafka: ping: no brokers")
	}
	client, done := adminClient(brokers)
	defer done()
	resp, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{}})
	if err != nil {
		return fmt.Errorf("kafka: ping %s: %w", strings.Join(brokers, ","), err)
	}
	if len(resp.Brokers) == 0 {
		return fmt.Errorf("kafka: ping %s: metadata lists no brokers", strings.Join(brokers, ","))
	}
	return nil
}

// DeleteTopics deletes topics; the error lists every topic that could not
// be deleted.
func DeleteTopics(ctx context.Context, brokers []string, topics ...string) error {
	c, done := adminClient(brokers)
	defer done()
	res, err := c.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("kafka: delete topics: %w", err)
	}
	var errs []error
	for t, e := range res.Errors {
		if e != nil {
			errs = append(errs, fmt.Errorf("kafka: delete topic %s: %w", t, e))
		}
	}
	return errors.Join(errs...)
}

// adminClient returns a kafka-go Client with its own transport, and a func
// that releases the transport's connections.
func adminClient(brokers []string) (*kafkago.Client, func()) {
	tr := &kafkago.Transport{Dial: Dial}
	return &kafkago.Client{Addr: kafkago.TCP(brokers...), Transport: tr, Timeout: adminTimeout}, tr.CloseIdleConnections
}

// NewWriter returns a synchronous kafka-go Writer for brokers. With topic ""
// every message must name its topic. Guarantees: a WriteMessages that
// returns nil has been acknowledged by all in-sync replicas (RequireAll);
// messages with the same key go to the same partition, chosen exactly as the
// Java client does (murmur2), so other clients agree on placement; topics are
// never auto-created. A WriteMessages call's messages for one partition go
// out together, in requests of at most 256 messages and 1 MiB, as soon as
// the call has placed them (see writerLinger). The writer
// has its own transport, shared with no other client, and Close releases it
// (its connections and its metadata goroutine). It panics if brokers is
// empty.
func NewWriter(brokers []string, topic string) *kafkago.Writer {
	// kafkago.NewWriter is deprecated, but it is the only way to get a
	// Writer that owns its Transport: a Writer built as a struct literal
	// with its own &kafkago.Transport{} never closes that transport, leaking
	// a metadata goroutine and a connection per writer.
	w := kafkago.NewWriter(kafkago.WriterConfig{ //nolint:staticcheck // see above
		Brokers: slices.Clone(brokers),
		Topic:   topic,
		Dialer:  &kafkago.Dialer{Timeout: 10 * time.Second, DualStack: true, ClientID: "strata"},
		// The Transport's defaults (kafka-go's newer API) rather than the
		// historical 9 minutes and 15 seconds of WriterConfig.
		IdleConnTimeout:   30 * time.Second,
		RebalanceInterval: 6 * time.Second,
	})
	w.Balancer = &kafkago.Murmur2Balancer{}
	w.RequiredAcks = kafkago.RequireAll
	w.BatchTimeout = writerLinger
	w.BatchSize = writerBatchSize
	w.BatchBytes = writerBatchBytes
	w.AllowAutoTopicCreation = false
	// NewWriter builds its Transport's dial from the Dialer's net settings
	// and ignores DialFunc; the Transport dials nothing before the first
	// write, so Dial can still take over here.
	w.Transport.(*kafkago.Transport).Dial = Dial
	return w
}

// writerLinger is how long a writer's partial batch waits for more
// messages. Every caller hands WriteMessages a complete set and waits for
// it, one call after another (the relay a drained batch of up to 2000
// events, a worker a fetched batch's undecodable commands for its DLQ), and
// kafka-go places a call's messages for a partition under
// that partition's lock, so no wait can split a call: a longer one only
// delays the set. kafka-go reads 0 as its default of a second, hence one
// microsecond. At 2ms (before) each relay round waited 2ms per partial
// batch: at 1,200 commands/s the relay's delay (decision → Kafka ack) was
// p50 6.9-8.6 ms against 3.8-3.9 ms, and `strata bench relay` ran
// 72.9-73.5k events/s against 79.9-83.5k, in alternating runs.
const writerLinger = time.Microsecond

// A writer's requests hold at most writerBatchSize messages and
// writerBatchBytes bytes (kafka-go's measure) of one partition.
const (
	writerBatchSize  = 256
	writerBatchBytes = 1 << 20
)

// OrderedWriter writes sets of messages, each naming its topic, with the
// guarantees of NewWriter, so that a failure never leaves a key's later
// messages on Kafka without its earlier ones. It writes a set in calls in
// which no partition's share exceeds one request (see FitRequest), one
// after another, stopping at the first that fails. In one larger call
// kafka-go splits a partition's share into several requests and, when one
// fails for good (its retries spent in a broker outage, say), still sends
// the next: an aggregate's later events would reach Kafka before the
// earlier ones, which a retry writes after them, and its projectors would
// stop on that version gap for good.
//
// It places messages as the writer does (murmur2 of the key over the
// topic's partitions), reading each topic's partition count from the
// brokers at most once a minute and again after a failed write. A topic
// whose count it cannot read has its messages counted as one partition's.
// Partitions added to a topic are seen within that minute; until then a
// share may be misplaced, and split as before.
// It is not safe for concurrent use: another caller could fill a
// partition's open batch and split a call's share.
type OrderedWriter struct {
	w       *kafkago.Writer
	brokers []string
	counts  map[string]int
	readAt  time.Time
}

// partitionCountsTTL is how long an OrderedWriter trusts the partition
// counts it read.
const partitionCountsTTL = time.Minute

// NewOrderedWriter returns an OrderedWriter for brokers. It panics if
// brokers is empty.
func NewOrderedWriter(brokers []string) *OrderedWriter {
	return &OrderedWriter{w: NewWriter(brokers, ""), brokers: slices.Clone(brokers)}
}

// Write writes msgs and returns once all are acknowledged; on error, a
// prefix of msgs may have been written.
func (o *OrderedWriter) Write(ctx context.Context, msgs []kafkago.Message) error {
	counts := o.partitionCounts(ctx, msgs)
	for len(msgs) > 0 {
		n := FitRequest(msgs, counts)
		if err := o.w.WriteMessages(ctx, msgs[:n]...); err != nil {
			o.counts = nil // the topics may have changed
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// Close flushes and releases the writer.
func (o *OrderedWriter) Close() error { return o.w.Close() }

// partitionCounts returns the partition counts of msgs' topics that it
// knows or can read.
func (o *OrderedWriter) partitionCounts(ctx context.Context, msgs []kafkago.Message) map[string]int {
	if o.counts == nil || time.Since(o.readAt) > partitionCountsTTL {
		o.counts, o.readAt = map[string]int{}, time.Now()
	}
	var missing []string
	for i := range msgs {
		if t := msgs[i].Topic; !slices.Contains(missing, t) {
			if _, tried := o.counts[t]; !tried {
				missing = append(missing, t)
			}
		}
	}
	if len(missing) == 0 {
		return o.counts
	}
	for _, t := range missing {
		o.counts[t] = 0 // unknown until read; tried again after the TTL
	}
	c, done := adminClient(o.brokers)
	defer done()
	md, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: missing})
	if err != nil {
		return o.counts
	}
	for _, t := range md.Topics {
		if t.Error == nil && len(t.Partitions) > 0 {
			o.counts[t.Name] = len(t.Partitions)
		}
	}
	return o.counts
}

// FitRequest returns how many of msgs, from the first, one WriteMessages
// call of a NewWriter writer can take with no partition's share split into
// two requests: at most writerBatchSize messages and writerBatchBytes
// (kafka-go's measure) per partition, and at least one message. counts
// holds topics' partition counts; a message of another topic, or without
// a key, is counted in one share with all of its topic's messages.
func FitRequest(msgs []kafkago.Message, counts map[string]int) int {
	type share struct {
		topic     string
		partition int
	}
	type fill struct{ n, size int }
	fills := map[share]fill{}
	ids := map[int][]int{} // partition count → 0..count-1, the partitions kafka-go's writer balances over
	n := 0
	for ; n < len(msgs); n++ {
		m := &msgs[n]
		sh := share{topic: m.Topic, partition: -1}
		if parts := counts[m.Topic]; parts > 0 && m.Key != nil {
			if ids[parts] == nil {
				ids[parts] = make([]int, parts)
				for i := range ids[parts] {
					ids[parts][i] = i
				}
			}
			sh.partition = kafkago.Murmur2Balancer{}.Balance(*m, ids[parts]...)
		}
		f, size := fills[sh], messageBytes(m)
		if f.n > 0 && (f.n+1 > writerBatchSize || f.size+size > writerBatchBytes) {
			break
		}
		fills[sh] = fill{f.n + 1, f.size + size}
	}
	return n
}

// messageBytes bounds kafka-go's size of a message in a batch (its
// totalSize: fixed fields, key, value, and varint-prefixed headers) from
// above.
func messageBytes(m *kafkago.Message) int {
	n := 32 + len(m.Key) + len(m.Value) + 5
	for _, h := range m.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// ReaderOptions configures NewReader. Brokers, GroupID and Topics are
// required.
type ReaderOptions struct {
	// Brokers to bootstrap from.
	Brokers []string
	// GroupID is the consumer group; members of one group share partitions
	// and committed offsets.
	GroupID string
	// Topics the group consumes.
	Topics []string
	// Logger receives kafka-go's messages (debug) and errors (warn).
	// Default: discard.
	Logger *slog.Logger
}

// Validate reports every problem with o.
func (o ReaderOptions) Validate() error {
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("kafka reader: Brokers is required"))
	}
	if o.GroupID == "" {
		errs = append(errs, errors.New("kafka reader: GroupID is required"))
	}
	if len(o.Topics) == 0 {
		errs = append(errs, errors.New("kafka reader: Topics is required"))
	}
	if slices.Contains(o.Topics, "") {
		errs = append(errs, errors.New("kafka reader: Topics holds an empty name"))
	}
	return errors.Join(errs...)
}

// Reader tuning, see NewReader.
const (
	readerMaxWait           = 500 * time.Millisecond
	readerHeartbeatInterval = 250 * time.Millisecond
	readerSessionTimeout    = 6 * time.Second
	readerRebalanceTimeout  = 2 * time.Second
	readerJoinGroupBackoff  = 250 * time.Millisecond
	readerMaxBytes          = 10 << 20
)

// NewReader returns a consumer-group reader over o.Topics. Guarantees: a new
// group starts at the earliest offset; offsets are committed only by
// CommitMessages, synchronously (CommitInterval 0), so after CommitMessages
// returns nil a reader that later joins the group resumes after the
// committed messages; records of one partition arrive in order. Fetches wait
// at most 500ms for data: kafka-go asks the broker to answer within three
// quarters of that and gives up on the connection at the full wait, so a
// busy broker's late answer has 125ms of slack (at 250ms it had 62ms, and
// readers logged i/o timeouts and redialled while a bench flooded the
// embedded broker); idle partitions cost half the fetches, and a stopping
// reader still ends its fetch well within the 2s rebalance timeout.
// Heartbeats go every 250ms and a member that stops
// heartbeating is evicted after 6s (the smallest session timeout real Kafka
// accepts by default), so the group rebalances quickly. It panics, like
// kafkago.NewReader, if o is invalid; check with o.Validate first when o is
// not a constant.
func NewReader(o ReaderOptions) *kafkago.Reader {
	if err := o.Validate(); err != nil {
		panic(fmt.Sprintf("kafka: NewReader: %v", err))
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           slices.Clone(o.Brokers),
		GroupID:           o.GroupID,
		GroupTopics:       slices.Clone(o.Topics),
		Dialer:            &kafkago.Dialer{Timeout: 10 * time.Second, ClientID: "strata", DialFunc: Dial},
		MinBytes:          1,
		MaxBytes:          readerMaxBytes,
		MaxWait:           readerMaxWait,
		ReadLagInterval:   -1,
		HeartbeatInterval: readerHeartbeatInterval,
		CommitInterval:    0,
		SessionTimeout:    readerSessionTimeout,
		RebalanceTimeout:  readerRebalanceTimeout,
		JoinGroupBackoff:  readerJoinGroupBackoff,
		StartOffset:       kafkago.FirstOffset,
		Logger:            logFunc(log, slog.LevelDebug),
		ErrorLogger:       readerErrorLog(log),
	})
}

// logFunc adapts slog to kafka-go's printf-style Logger at a fixed level.
func logFunc(l *slog.Logger, level slog.Level) kafkago.LoggerFunc {
	return func(msg string, args ...any) {
		logAt(l, level, msg, args...)
	}
}

func logAt(l *slog.Logger, level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if l.Enabled(ctx, level) {
		l.Log(ctx, level, "kafka-go: "+fmt.Sprintf(msg, args...))
	}
}

// readerErrorLog logs a reader's errors at WARN, except a fetch that timed
// out: kafka-go drops the connection when a fetch answer comes later than
// MaxWait, redials after a backoff of about 100ms and fetches again from
// the same offset, so nothing is lost or repeated, and a broker busy for a
// moment (the embedded one under a bench's prefill) made dozens of readers
// warn together. Those go to INFO; a broker that stays away shows in dial
// errors (still WARN) and in the projectors' and workers' lag checks.
func readerErrorLog(l *slog.Logger) kafkago.LoggerFunc {
	return func(msg string, args ...any) {
		level := slog.LevelWarn
		if strings.HasPrefix(msg, "the kafka reader got an unknown error reading partition") &&
			slices.ContainsFunc(args, isTimeout) {
			level = slog.LevelInfo
		}
		logAt(l, level, msg, args...)
	}
}

// isTimeout reports whether a is a network timeout error.
func isTimeout(a any) bool {
	var ne net.Error
	err, ok := a.(error)
	return ok && errors.As(err, &ne) && ne.Timeout()
}

// Offsets returns the first offset and the end offset (the next offset to
// be written) of every partition of topic.
func Offsets(ctx context.Context, brokers []string, topic string) (first, end map[int]int64, err error) {
	c, done := adminClient(brokers)
	defer done()
	parts, err := partitionsOf(ctx, c, topic)
	if err != nil {
		return nil, nil, err
	}
	reqs := make([]kafkago.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafkago.FirstOffsetOf(p), kafkago.LastOffsetOf(p))
	}
	res, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, nil, err
	}
	first, end = make(map[int]int64, len(parts)), make(map[int]int64, len(parts))
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, nil, p.Error
		}
		first[p.Partition], end[p.Partition] = p.FirstOffset, p.LastOffset
	}
	return first, end, nil
}

// CommittedOffsets returns the consumer group's committed offset of every
// partition of topic; a partition it never committed (or a group that
// never committed at all) is absent.
func CommittedOffsets(ctx context.Context, brokers []string, group, topic string) (map[int]int64, error) {
	c, done := adminClient(brokers)
	defer done()
	parts, err := partitionsOf(ctx, c, topic)
	if err != nil {
		return nil, err
	}
	res, err := c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	if errors.Is(res.Error, kafkago.GroupIdNotFound) { // the test broker's answer for a group that never committed
		return out, nil
	}
	if res.Error != nil {
		return nil, res.Error
	}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, p.Error
		}
		if p.CommittedOffset >= 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

func partitionsOf(ctx context.Context, c *kafkago.Client, topic string) ([]int, error) {
	md, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, err
	}
	var parts []int
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, t.Error
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	return parts, nil
}
