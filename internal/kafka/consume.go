package kafka

import (
	"context"
	"log/slog"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Consumer is a consumer-group member that handles batches: the loop the
// command worker and the projectors share.
type Consumer struct {
	Reader    ReaderOptions
	BatchSize int
	BatchWait time.Duration
	// BatchGap, when positive, ends a batch once that long passes without
	// a message (see FetchBatch).
	BatchGap time.Duration
	Logger   *slog.Logger
	// Handle processes a batch durably; it returns an error only when ctx
	// is done (it retries everything else itself). The batch's offsets are
	// committed after it returns.
	Handle func(ctx context.Context, msgs []kafkago.Message) error
	// AfterHandle, when set, runs between Handle and the offset commit;
	// tests use it to simulate a crash there.
	AfterHandle func()
	// Started, when set, is called once the reader exists.
	Started func()
}

// Run consumes until ctx is done, then commits what was handled and
// returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	reader := NewReader(c.Reader)
	defer reader.Close()
	committer := NewCommitter(reader, log)
	defer committer.Close()
	if c.Started != nil {
		c.Started()
	}
	for {
		msgs, err := FetchBatch(ctx, reader, c.BatchSize, c.BatchWait, c.BatchGap)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Error("fetch", "group", c.Reader.GroupID, "err", err)
			Sleep(ctx, time.Second)
			continue
		}
		if err := c.Handle(ctx, msgs); err != nil {
			return nil // only on cancellation
		}
		if c.AfterHandle != nil {
			c.AfterHandle()
		}
		if ctx.Err() != nil {
			return nil
		}
		committer.Commit(msgs...)
	}
}

// Header returns the value of a record's header, or "" without one.
func Header(m kafkago.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
