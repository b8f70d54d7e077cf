package kafka

import (
	"context"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// FetchBatch blocks for one message, then keeps taking messages for at most
// wait, up to max; with gap > 0 it also stops once gap passes without a
// message, so that a lone message does not wait out wait. It returns the
// first fetch's error; later fetches only end the batch (ctx ending
// mid-batch too: the partial batch comes back with a nil error, so callers
// check ctx before handling it). Messages not taken stay in the reader.
func FetchBatch(ctx context.Context, r *kafkago.Reader, max int, wait, gap time.Duration) ([]kafkago.Message, error) {
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := []kafkago.Message{m}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for len(msgs) < max {
		fctx, stop := wctx, context.CancelFunc(nil)
		if gap > 0 {
			fctx, stop = context.WithDeadline(wctx, time.Now().Add(gap))
		}
		m, err := r.FetchMessage(fctx)
		if stop != nil {
			stop()
		}
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
