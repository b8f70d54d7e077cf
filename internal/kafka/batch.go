package kafka

import (
	"context"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// FetchBatch blocks for one message, then keeps taking messages that are
// already available for at most wait, up to max. It returns the first
// fetch's error; later fetches only end the batch. Messages not taken stay
// in the reader.
func FetchBatch(ctx context.Context, r *kafkago.Reader, max int, wait time.Duration) ([]kafkago.Message, error) {
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := []kafkago.Message{m}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for len(msgs) < max {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// Sleep waits for d or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
