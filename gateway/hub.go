package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/commands"
)

// Hub fans Postgres notifications about command status changes out to the
// requests waiting on them. One LISTEN connection serves every waiter.
type Hub struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

// NewHub returns a hub; Run must be running for waiters to wake early
// (without it they still poll).
func NewHub(pool *pgxpool.Pool, log *slog.Logger) *Hub {
	return &Hub{pool: pool, log: log, subs: map[string]map[chan struct{}]struct{}{}}
}

// Subscribe returns a channel that receives a value whenever the command's
// status may have changed, and a function that ends the subscription.
func (h *Hub) Subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[id] == nil {
		h.subs[id] = map[chan struct{}]struct{}{}
	}
	h.subs[id][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[id], ch)
		if len(h.subs[id]) == 0 {
			delete(h.subs, id)
		}
		h.mu.Unlock()
	}
}

func (h *Hub) signal(id string, all bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wake := func(set map[chan struct{}]struct{}) {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	if !all {
		wake(h.subs[id])
		return
	}
	for _, set := range h.subs {
		wake(set)
	}
}

// Run listens until ctx is done, reconnecting on failure. After a
// reconnect every waiter is woken, since notifications may have been lost.
func (h *Hub) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := h.listen(ctx)
		if ctx.Err() != nil {
			return nil
		}
		h.log.Warn("command status listener lost, reconnecting", "err", err)
		h.signal("", true)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (h *Hub) listen(ctx context.Context) error {
	pc, err := h.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{commands.NotifyChannel}.Sanitize()); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		h.signal(n.Payload, false)
	}
}

// waitTerminal returns the command's status once it is terminal, or its
// current status at the deadline.
func (g *Gateway) waitTerminal(ctx context.Context, id string, d time.Duration) (*commands.Status, error) {
	ch, cancel := g.hub.Subscribe(id)
	defer cancel()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		st, err := g.cfg.Statuses.Get(ctx, id)
		if err != nil || st.Terminal() {
			return st, err
		}
		select {
		case <-ch:
		case <-time.After(500 * time.Millisecond): // fallback poll
		case <-deadline.C:
			return g.cfg.Statuses.Get(ctx, id)
		case <-ctx.Done():
			return st, nil
		}
	}
}

// waitFollowUp waits up to d for a command that a process issues later
// (it may not exist yet) to be terminal.
func (g *Gateway) waitFollowUp(ctx context.Context, id string, d time.Duration) error {
	ch, cancel := g.hub.Subscribe(id)
	defer cancel()
	deadline := time.NewTimer(max(d, 0))
	defer deadline.Stop()
	for {
		st, err := g.cfg.Statuses.Get(ctx, id)
		switch {
		case errors.Is(err, commands.ErrNotFound):
		case err != nil:
			return err
		case st.Terminal():
			return nil
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond): // the step's row may appear without a notification to this id
		case <-deadline.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
