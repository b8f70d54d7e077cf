package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoginGateSerialisesOneAccount(t *testing.T) {
	gate := newLoginGate()
	var running, most atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			leave, err := gate.enter(context.Background(), "account")
			if err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(time.Millisecond)
			running.Add(-1)
			leave()
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d attempts on one account ran at once", most.Load())
	}
	if len(gate.slots) != 0 {
		t.Fatalf("%d slots left after every attempt ended", len(gate.slots))
	}
}

func TestLoginGateWaitIsBounded(t *testing.T) {
	gate := newLoginGate()
	leave, err := gate.enter(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := gate.enter(context.Background(), "b") // other accounts do not wait
	if err != nil {
		t.Fatal(err)
	}
	other()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := gate.enter(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("entering a busy account: %v", err)
	}
	leave()
	again, err := gate.enter(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	again()
	if len(gate.slots) != 0 {
		t.Fatalf("%d slots left", len(gate.slots))
	}
}
