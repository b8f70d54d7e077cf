package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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
	rows, err := p.pool.Query(ctx, `SELECT id::text, status, code, submitted_at, projected_at
		FROM strata.commands WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (cmdStatus, error) {
		var s cmdStatus
		err := row.Scan(&s.ID, &s.Status, &s.Code, &s.SubmittedAt, &s.ProjectedAt)
		return s, err
	})
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

// outcomes sums up the commands a drain saw terminal: how many ended in
// each status (a rejection under "rejected_<code>"), and the
// submitted→projected latency of each projected one. The drain keeps no
// status row per command: a 60 s run at saturation has 400k of them, and
// holding them all (as it once did, every status read at once and then
// mapped by id) added about 100 MiB of the harness's own to the process's
// peak RSS.
type outcomes struct {
	statuses  map[string]int
	projected bench.Latencies
}

func (o *outcomes) add(s *cmdStatus) {
	key := s.Status
	if s.Status == commands.StatusRejected && s.Code != nil {
		key += "_" + *s.Code
	}
	o.statuses[key]++
	if s.Status == commands.StatusProjected && s.ProjectedAt != nil {
		o.projected.Add(s.ProjectedAt.Sub(s.SubmittedAt))
	}
}

// drainChunk is how many commands' statuses a drain reads at a time.
const drainChunk = 10_000

// drain waits until every command of ids is terminal or timeout passes,
// reading their statuses drainChunk at a time. It returns what the
// terminal ones came to, the ids still not terminal (or never found, or
// not read when a read failed), and when the last one was seen terminal.
func drain(ctx context.Context, r statusReader, ids []string, timeout time.Duration, bar *bench.Bar) (*outcomes, []string, time.Time, error) {
	done := &outcomes{statuses: map[string]int{}}
	remaining := ids
	deadline := time.Now().Add(timeout)
	for {
		var still []string
		for start := 0; start < len(remaining); start += drainChunk {
			chunk := remaining[start:min(start+drainChunk, len(remaining))]
			got, err := r.read(ctx, chunk)
			if err != nil {
				return done, append(still, remaining[start:]...), time.Now(), err
			}
			byID := make(map[string]*cmdStatus, len(got))
			for i := range got {
				byID[got[i].ID] = &got[i]
			}
			for _, id := range chunk {
				if s, ok := byID[id]; ok && s.terminal() {
					done.add(s)
				} else {
					still = append(still, id)
				}
			}
			bar.Set(int64(len(ids) - len(remaining) + start + len(chunk) - len(still)))
		}
		seen := time.Now()
		remaining = still
		if len(remaining) == 0 || seen.After(deadline) || ctx.Err() != nil {
			bar.Done()
			return done, remaining, seen, ctx.Err()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
