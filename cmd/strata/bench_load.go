package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-cqrs/strata/internal/bench"
)

// writeReq is one write the e2e load sends.
type writeReq struct {
	kind string
	path string
	body []byte
}

// writeKind is one kind of write of the e2e mix. Adding a kind is adding an
// entry to writeKinds:
//   - next builds a request from what earlier writes of the run created;
//     ok=false means it cannot yet (no role to grant to), and the load
//     sends another kind;
//   - created, when set, sees the aggregate id of each accepted write of
//     this kind, to feed later writes (create_role feeds grant_permission).
//
// Deposits go to the accounts opened before the run (--accounts: one hot
// account, or many).
type writeKind struct {
	next    func(w *workload, rng *rand.Rand) (writeReq, bool)
	created func(w *workload, aggregateID string)
}

func writeKinds() map[string]writeKind {
	return map[string]writeKind{
		"create_role":      {next: nextCreateRole, created: func(w *workload, id string) { w.roles.add(id) }},
		"grant_permission": {next: nextGrant},
		"deposit":          {next: nextDeposit},
	}
}

// parseMix parses "kind=weight,…" into weights of known kinds.
func parseMix(s string) (map[string]float64, error) {
	known := writeKinds()
	mix := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		w, err := strconv.ParseFloat(v, 64)
		if _, isKind := known[k]; !ok || err != nil || w < 0 || !isKind {
			return nil, fmt.Errorf("--mix %q: want kind=weight,… with kinds %s", s, strings.Join(kindNames(), ", "))
		}
		mix[k] = w
	}
	if mix["grant_permission"] > 0 && mix["create_role"] <= 0 {
		return nil, fmt.Errorf("--mix %q: grant_permission needs create_role (it grants to the roles the run creates)", s)
	}
	if mix["create_role"]+mix["grant_permission"]+mix["deposit"] <= 0 {
		return nil, fmt.Errorf("--mix %q: give some kind a positive weight", s)
	}
	return mix, nil
}

func kindNames() []string {
	var names []string
	for k := range writeKinds() {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// workload is what the e2e writes are made of: a run id that keeps names
// unique across runs, the permissions to grant, and the roles created so
// far that still lack some of them.
type workload struct {
	fns      map[string]writeKind
	runID    string
	seq      atomic.Int64
	perms    []string
	roles    rolePool
	accounts []string // opened before the run; deposits spread over them
	kinds    []string
	weights  []float64 // cumulative
}

func newWorkload(mix map[string]float64, perms, accounts []string) *workload {
	w := &workload{fns: writeKinds(), runID: randomHex(4), perms: perms, accounts: accounts}
	total := 0.0
	for _, k := range kindNames() {
		if mix[k] > 0 {
			total += mix[k]
			w.kinds = append(w.kinds, k)
			w.weights = append(w.weights, total)
		}
	}
	return w
}

// pick chooses a kind by weight and builds its request, falling back to
// the other kinds when the chosen one cannot run yet.
func (w *workload) pick(rng *rand.Rand) (writeReq, error) {
	x := rng.Float64() * w.weights[len(w.weights)-1]
	first, _ := slices.BinarySearch(w.weights, x)
	for i := range w.kinds {
		k := w.kinds[(first+i)%len(w.kinds)]
		if req, ok := w.fns[k].next(w, rng); ok {
			req.kind = k
			return req, nil
		}
	}
	return writeReq{}, errors.New("no write kind can run")
}

func nextCreateRole(w *workload, _ *rand.Rand) (writeReq, bool) {
	n := w.seq.Add(1)
	body, _ := json.Marshal(map[string]string{
		"name": fmt.Sprintf("bench-%s-%d", w.runID, n), "description": "strata bench",
	})
	return writeReq{path: "/roles", body: body}, true
}

func nextGrant(w *workload, rng *rand.Rand) (writeReq, bool) {
	role, i, ok := w.roles.take(rng, len(w.perms))
	if !ok {
		return writeReq{}, false
	}
	body, _ := json.Marshal(map[string]string{"permission_id": w.perms[i]})
	return writeReq{path: "/roles/" + role + "/permissions", body: body}, true
}

func nextDeposit(w *workload, rng *rand.Rand) (writeReq, bool) {
	if len(w.accounts) == 0 {
		return writeReq{}, false
	}
	body, _ := json.Marshal(map[string]string{
		"amount": fmt.Sprintf("%d.%02d", 1+rng.IntN(999), rng.IntN(100)), "reference": "strata bench",
	})
	return writeReq{path: "/accounts/" + w.accounts[rng.IntN(len(w.accounts))] + "/deposits", body: body}, true
}

// rolePool holds the roles created in this run with the index of the next
// permission each is granted, so every (role, permission) pair is granted
// exactly once.
type rolePool struct {
	mu    sync.Mutex
	roles []poolRole
}

type poolRole struct {
	id   string
	next int
}

func (p *rolePool) add(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.roles = append(p.roles, poolRole{id: id})
}

// take picks a random role and the next of its n permissions, dropping
// the role once it has been given all of them.
func (p *rolePool) take(rng *rand.Rand, n int) (string, int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.roles) == 0 || n == 0 {
		return "", 0, false
	}
	i := rng.IntN(len(p.roles))
	r := &p.roles[i]
	id, perm := r.id, r.next
	r.next++
	if r.next == n {
		p.roles[i] = p.roles[len(p.roles)-1]
		p.roles = p.roles[:len(p.roles)-1]
	}
	return id, perm, true
}

// loadStats is what one phase of load did.
type loadStats struct {
	sent, accepted int
	errors         map[string]int // by problem code, "http_<status>" or "transport"
	kinds          map[string]int
	accept         bench.Latencies
	cmds           []string // the command ids of the accepted writes
	elapsed        time.Duration
	firstErr       error
}

func newLoadStats() *loadStats {
	return &loadStats{errors: map[string]int{}, kinds: map[string]int{}}
}

func (s *loadStats) merge(o *loadStats) {
	s.sent += o.sent
	s.accepted += o.accepted
	for k, v := range o.errors {
		s.errors[k] += v
	}
	for k, v := range o.kinds {
		s.kinds[k] += v
	}
	s.accept.Merge(&o.accept)
	s.cmds = append(s.cmds, o.cmds...)
	if s.firstErr == nil {
		s.firstErr = o.firstErr
	}
}

// loadRun sends the e2e writes: closed loop (concurrency writers, each
// sending its next write when the previous one answered) or open loop
// (writes scheduled at a fixed rate, at most concurrency in flight, latency
// counted from the scheduled time so a stalled server cannot hide its
// queue: no coordinated omission).
type loadRun struct {
	client      *apiClient
	work        *workload
	concurrency int
	rate        float64
	sampler     *sampler
	accepted    atomic.Int64 // for the progress bar
}

// run sends writes for d; record=false is the warm-up (its writes still
// create roles for later grants, and nothing is sampled).
func (l *loadRun) run(ctx context.Context, d time.Duration, record bool, bar *bench.Bar) *loadStats {
	l.accepted.Store(0)
	start := time.Now()
	stop := make(chan struct{})
	go l.showProgress(start, d, bar, stop)
	var st *loadStats
	if l.rate > 0 {
		st = l.open(ctx, start, d, record)
	} else {
		st = l.closed(ctx, start, d, record)
	}
	close(stop)
	bar.Done()
	st.elapsed = time.Since(start)
	return st
}

func (l *loadRun) showProgress(start time.Time, d time.Duration, bar *bench.Bar, stop <-chan struct{}) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			el := now.Sub(start)
			bar.Set(min(el, d).Milliseconds())
			bar.Describe(fmt.Sprintf("%6.0f writes/s", float64(l.accepted.Load())/el.Seconds()))
		}
	}
}

func (l *loadRun) closed(ctx context.Context, start time.Time, d time.Duration, record bool) *loadStats {
	deadline := start.Add(d)
	parts := make([]*loadStats, l.concurrency)
	var wg sync.WaitGroup
	for i := range parts {
		parts[i] = newLoadStats()
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i)))
			for ctx.Err() == nil && time.Now().Before(deadline) {
				req, err := l.work.pick(rng)
				if err != nil {
					parts[i].firstErr = err
					return
				}
				l.send(ctx, req, time.Now(), record, parts[i])
			}
		})
	}
	wg.Wait()
	st := newLoadStats()
	for _, p := range parts {
		st.merge(p)
	}
	return st
}

func (l *loadRun) open(ctx context.Context, start time.Time, d time.Duration, record bool) *loadStats {
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 0))
	sem := make(chan struct{}, l.concurrency)
	var mu sync.Mutex
	st := newLoadStats()
	var wg sync.WaitGroup
	interval := float64(time.Second) / l.rate
	for i := 0; ; i++ {
		at := start.Add(time.Duration(float64(i) * interval))
		if at.Sub(start) >= d || !sleepUntil(ctx, at) {
			break
		}
		req, err := l.work.pick(rng)
		if err != nil {
			st.firstErr = err
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			one := newLoadStats()
			l.send(ctx, req, at, record, one)
			mu.Lock()
			st.merge(one)
			mu.Unlock()
		})
	}
	wg.Wait()
	return st
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// send posts one write and records its outcome; at is when it was sent or
// scheduled.
func (l *loadRun) send(ctx context.Context, req writeReq, at time.Time, record bool, st *loadStats) {
	var acc struct {
		CommandID   string `json:"command_id"`
		AggregateID string `json:"aggregate_id"`
	}
	status, code, err := l.client.do(ctx, http.MethodPost, req.path, req.body, &acc)
	lat := time.Since(at)
	if ctx.Err() != nil {
		return // interrupted: not an outcome of the platform
	}
	st.sent++
	st.kinds[req.kind]++
	switch {
	case err != nil:
		st.errors["transport"]++
		if st.firstErr == nil {
			st.firstErr = err
		}
	case status != http.StatusAccepted:
		if code == "" {
			code = "http_" + strconv.Itoa(status)
		}
		st.errors[code]++
	default:
		st.accepted++
		l.accepted.Add(1)
		st.accept.Add(lat)
		if created := l.work.fns[req.kind].created; created != nil {
			created(l.work, acc.AggregateID)
		}
		if record {
			st.cmds = append(st.cmds, acc.CommandID)
			l.sampler.maybe(acc.CommandID, at)
		}
	}
}

// sampler cross-checks the status timestamps: for one accepted write in
// every `every`, it long-polls GET /commands/{id}?wait= until the command
// is projected and records the time from send to that answer.
type sampler struct {
	client   *apiClient
	every    int64
	n        atomic.Int64
	sem      chan struct{}
	mu       sync.Mutex
	lat      bench.Latencies
	skipped  int // samples dropped because too many polls were in flight
	notFinal map[string]int
	wg       sync.WaitGroup
	ctx      context.Context // bounds the polls: the drain deadline
}

func newSampler(ctx context.Context, client *apiClient, every int64, inFlight int) *sampler {
	return &sampler{client: client, every: every, sem: make(chan struct{}, inFlight), notFinal: map[string]int{}, ctx: ctx}
}

func (s *sampler) maybe(id string, at time.Time) {
	if s.n.Add(1)%s.every != 0 {
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.mu.Lock()
		s.skipped++
		s.mu.Unlock()
		return
	}
	s.wg.Go(func() {
		defer func() { <-s.sem }()
		status := s.poll(id)
		s.mu.Lock()
		defer s.mu.Unlock()
		if status == "projected" {
			s.lat.Add(time.Since(at))
		} else {
			s.notFinal[status]++
		}
	})
}

// poll long-polls one command until it is terminal or the drain deadline
// passes, and returns its last status.
func (s *sampler) poll(id string) string {
	for {
		var st struct {
			Status string `json:"status"`
		}
		status, code, err := s.client.do(s.ctx, http.MethodGet, "/commands/"+id+"?wait=10", nil, &st)
		switch {
		case s.ctx.Err() != nil:
			return "timeout"
		case err != nil:
			return "transport"
		case status != http.StatusOK:
			return "http_" + strconv.Itoa(status) + "_" + code
		case st.Status == "projected" || st.Status == "rejected" || st.Status == "failed":
			return st.Status
		}
	}
}

// wait waits for every poll in flight.
func (s *sampler) wait() { s.wg.Wait() }
