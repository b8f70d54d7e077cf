package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/internal/bench"
)

// scriptedStatuses answers status reads from a table that a test changes
// as the reads go, and records the size of every read.
type scriptedStatuses struct {
	rows   map[string]cmdStatus
	next   func(reads int) // called before each read, with the reads so far
	reads  []int
	failAt int // the read (counted from 1) that fails; 0: none
}

func (*scriptedStatuses) source() string { return "script" }

func (s *scriptedStatuses) read(_ context.Context, ids []string) ([]cmdStatus, error) {
	if len(s.reads)+1 == s.failAt {
		return nil, errors.New("connection lost")
	}
	s.next(len(s.reads))
	s.reads = append(s.reads, len(ids))
	var out []cmdStatus
	for _, id := range ids {
		if r, ok := s.rows[id]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// TestDrainReadsInChunksAndSumsUp: 25,000 commands are read 10,000 at a
// time; those terminal in the first pass are counted once, the rest are
// read again, a rejection counts under its code, and a command never found
// is left unfinished.
func TestDrainReadsInChunksAndSumsUp(t *testing.T) {
	const n = 25_000
	submitted := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ids := make([]string, n)
	s := &scriptedStatuses{rows: map[string]cmdStatus{}}
	for i := range ids {
		ids[i] = fmt.Sprintf("cmd-%05d", i)
	}
	projectedAt := func(ms int) *time.Time { t := submitted.Add(time.Duration(ms) * time.Millisecond); return &t }
	code := "role_exists"
	// Before the first read, every other command is still accepted; from
	// the fourth (the second pass) on, all but the last are terminal.
	s.next = func(reads int) {
		if reads != 0 && reads != 3 {
			return
		}
		for i, id := range ids[:n-1] { // the last one is never found
			switch {
			case reads == 0 && i%2 == 1:
				s.rows[id] = cmdStatus{ID: id, Status: commands.StatusAccepted, SubmittedAt: submitted}
			case i == 7:
				s.rows[id] = cmdStatus{ID: id, Status: commands.StatusRejected, Code: &code, SubmittedAt: submitted}
			default:
				s.rows[id] = cmdStatus{ID: id, Status: commands.StatusProjected, SubmittedAt: submitted, ProjectedAt: projectedAt(10 + i%2*20)}
			}
		}
	}
	done, unfinished, _, err := drain(context.Background(), s, ids, 250*time.Millisecond, bench.NewBar(io.Discard, true, n, "test"))
	if err != nil {
		t.Fatal(err)
	}
	if len(unfinished) != 1 || unfinished[0] != ids[n-1] {
		t.Errorf("unfinished = %v, want only %s", unfinished, ids[n-1])
	}
	want := map[string]int{commands.StatusProjected: n - 2, commands.StatusRejected + "_" + code: 1}
	if fmt.Sprint(done.statuses) != fmt.Sprint(want) {
		t.Errorf("statuses = %v, want %v", done.statuses, want)
	}
	if got := done.projected.Len(); got != n-2 {
		t.Errorf("%d projected latencies, want %d", got, n-2)
	}
	// Even commands were projected 10 ms after submission, odd ones 30 ms.
	if p50, max := done.projected.Quantile(0.5), done.projected.Max(); p50 != 10*time.Millisecond || max != 30*time.Millisecond {
		t.Errorf("projected p50 %v max %v, want 10ms and 30ms", p50, max)
	}
	// First pass: the 25,000 in three reads; second: the 12,500 still
	// accepted (the missing one among them) in two; then the missing one
	// alone until the timeout.
	if len(s.reads) < 6 || fmt.Sprint(s.reads[:6]) != "[10000 10000 5000 10000 2500 1]" {
		t.Errorf("read sizes %v, want [10000 10000 5000 10000 2500 1 ...]", s.reads)
	}
	for _, r := range s.reads {
		if r > drainChunk {
			t.Errorf("a read of %d ids, more than %d", r, drainChunk)
		}
	}
}

// TestDrainReadErrorLeavesTheRestUnfinished: when a later chunk's read
// fails, the commands already counted are not also reported unfinished,
// and those not read are.
func TestDrainReadErrorLeavesTheRestUnfinished(t *testing.T) {
	const n = 25_000
	ids := make([]string, n)
	s := &scriptedStatuses{rows: map[string]cmdStatus{}, failAt: 2, next: func(int) {}}
	for i := range ids {
		ids[i] = fmt.Sprintf("cmd-%05d", i)
		if i%4 != 0 { // a quarter still accepted
			s.rows[ids[i]] = cmdStatus{ID: ids[i], Status: commands.StatusFailed}
		}
	}
	done, unfinished, _, err := drain(context.Background(), s, ids, time.Minute, bench.NewBar(io.Discard, true, n, "test"))
	if err == nil {
		t.Fatal("no error from a failed read")
	}
	counted := done.statuses[commands.StatusFailed]
	if counted != drainChunk*3/4 || counted+len(unfinished) != n {
		t.Errorf("%d counted and %d unfinished, want %d and %d", counted, len(unfinished), drainChunk*3/4, n-drainChunk*3/4)
	}
}
