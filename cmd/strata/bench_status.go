package main

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/bench"
)

// cmdStatus is what the e2e reads back about one command: its status row's
// state and timestamps (strata.commands).
type cmdStatus struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	Code        *string    `json:"code"`
	SubmittedAt time.Time  `json:"submitted_at"`
	ProjectedAt *time.Time `json:"projected_at"`
}

func (s *cmdStatus) terminal() bool {
	return s.Status == commands.StatusProjected || s.Status == commands.StatusRejected || s.Status == commands.StatusFailed
}

// statusReader reads the status rows of commands; ids it does not find are
// left out of the answer.
type statusReader interface {
	read(ctx context.Context, ids []string) ([]cmdStatus, error)
	source() string
}

// pgStatuses reads strata.commands directly.
type pgStatuses struct{ pool *pgxpool.Pool }

func (pgStatuses) source() string { return "postgres" }

func (p pgStatuses) read(ctx context.Context, ids []string) ([]cmdStatus, error) {
	var out []cmdStatus
	for chunk := range slices.Chunk(ids, 10_000) {
		rows, err := p.pool.Query(ctx, `SELECT id::text, status, code, submitted_at, projected_at
			FROM strata.commands WHERE id = ANY($1::uuid[])`, chunk)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var s cmdStatus
			if err := rows.Scan(&s.ID, &s.Status, &s.Code, &s.SubmittedAt, &s.ProjectedAt); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// httpStatuses reads GET /commands/{id}, for a platform whose database the
// bench cannot reach.
type httpStatuses struct {
	client *apiClient
	conns  int
}

func (httpStatuses) source() string { return "http" }

func (h httpStatuses) read(ctx context.Context, ids []string) ([]cmdStatus, error) {
	var mu sync.Mutex
	var out []cmdStatus
	var firstErr error
	next := make(chan string)
	var wg sync.WaitGroup
	for range h.conns {
		wg.Go(func() {
			for id := range next {
				var s cmdStatus
				status, _, err := h.client.do(ctx, http.MethodGet, "/commands/"+id, nil, &s)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil && status == http.StatusOK {
					out = append(out, s)
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		next <- id
	}
	close(next)
	wg.Wait()
	return out, firstErr
}

// drain waits until every command of ids is terminal or timeout passes. It
// returns the terminal statuses, the ids still not terminal (or never
// found), and when the last one was seen terminal.
func drain(ctx context.Context, r statusReader, ids []string, timeout time.Duration, bar *bench.Bar) (map[string]cmdStatus, []string, time.Time, error) {
	final := make(map[string]cmdStatus, len(ids))
	remaining := slices.Clone(ids)
	deadline := time.Now().Add(timeout)
	for {
		got, err := r.read(ctx, remaining)
		if err != nil {
			return final, remaining, time.Now(), err
		}
		seen := time.Now()
		byID := make(map[string]cmdStatus, len(got))
		for _, s := range got {
			byID[s.ID] = s
		}
		var still []string
		for _, id := range remaining {
			if s, ok := byID[id]; ok && s.terminal() {
				final[id] = s
			} else {
				still = append(still, id)
			}
		}
		remaining = still
		bar.Set(int64(len(ids) - len(remaining)))
		if len(remaining) == 0 || seen.After(deadline) || ctx.Err() != nil {
			bar.Done()
			return final, remaining, seen, ctx.Err()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
