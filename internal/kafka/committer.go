package kafka

import (
	"context"
	"log/slog"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Committer commits a consumer group reader's offsets in the background,
// so a consumer does not wait a broker round trip per batch. It coalesces:
// only the newest message of each partition handed to it is committed,
// which commits everything before it. A commit lost to a crash only means
// redelivery, which consumers here dedupe.
type Committer struct {
	r       *kafkago.Reader
	log     *slog.Logger
	mu      sync.Mutex
	pending map[topicPartition]kafkago.Message
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	ctx     context.Context // cancelled by Close when a commit hangs
	cancel  context.CancelFunc
}

type topicPartition struct {
	topic     string
	partition int
}

// NewCommitter starts committing for r; Close stops it.
func NewCommitter(r *kafkago.Reader, log *slog.Logger) *Committer {
	if log == nil {
		log = slog.Default()
	}
	c := &Committer{r: r, log: log, pending: map[topicPartition]kafkago.Message{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.loop()
	return c
}

// Commit hands over processed messages; it does not block on the broker.
func (c *Committer) Commit(msgs ...kafkago.Message) {
	c.mu.Lock()
	for _, m := range msgs {
		k := topicPartition{m.Topic, m.Partition}
		if old, ok := c.pending[k]; !ok || m.Offset > old.Offset {
			c.pending[k] = m
		}
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Committer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.wake:
			c.flush(c.ctx)
		case <-c.stop:
			c.flush(c.ctx)
			return
		}
	}
}

// flush commits what is pending; on failure the messages are kept for the
// next attempt unless newer ones replaced them.
func (c *Committer) flush(ctx context.Context) {
	c.mu.Lock()
	batch := c.pending
	c.pending = map[topicPartition]kafkago.Message{}
	c.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	msgs := make([]kafkago.Message, 0, len(batch))
	for _, m := range batch {
		msgs = append(msgs, m)
	}
	if err := c.r.CommitMessages(ctx, msgs...); err != nil {
		c.log.Warn("commit offsets", "err", err)
		c.Commit(msgs...) // keep them unless newer ones came
		Sleep(ctx, 200*time.Millisecond)
	}
}

// Close commits what is pending (waiting at most 5 s: a commit blocks
// while the reader has no group generation, e.g. with the broker gone)
// and stops. Call it before closing the reader.
func (c *Committer) Close() {
	close(c.stop)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.cancel()
		<-c.done
	}
	c.cancel()
}
