package password

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// cheap keeps tests that do not measure cost fast under the race detector.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHasher(t *testing.T) {
	ctx := context.Background()

	t.Run("RoundTripsWithOWASPParams", func(t *testing.T) {
		h := NewHasher(OWASP, 2)
		encoded, err := h.Hash(ctx, "correct horse battery staple")
		if err != nil {
			t.Fatal(err)
		}
		phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
		if !phc.MatchString(encoded) {
			t.Fatalf("got %q, want a PHC argon2id string with OWASP params", encoded)
		}
		if ok, err := h.Verify(ctx, "correct horse battery staple", encoded); !ok || err != nil {
			t.Fatalf("Verify(right password) = %v, %v; want true, nil", ok, err)
		}
		if ok, err := h.Verify(ctx, "correct horse battery stapler", encoded); ok || err != nil {
			t.Fatalf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
		}
	})

	t.Run("SaltsEveryHash", func(t *testing.T) {
		h := NewHasher(cheap, 1)
		a, _ := h.Hash(ctx, "pw")
		b, _ := h.Hash(ctx, "pw")
		if a == b {
			t.Fatalf("two hashes of the same password are equal: %q", a)
		}
	})

	t.Run("VerifiesHashesMadeWithOtherParams", func(t *testing.T) {
		old := NewHasher(Params{Memory: 128, Time: 3, Threads: 2, SaltLen: 8, KeyLen: 16}, 1)
		encoded, err := old.Hash(ctx, "pw")
		if err != nil {
			t.Fatal(err)
		}
		cur := NewHasher(cheap, 1)
		if ok, err := cur.Verify(ctx, "pw", encoded); !ok || err != nil {
			t.Fatalf("Verify(old hash) = %v, %v; want true, nil", ok, err)
		}
		if got := cur.NeedsRehash(encoded); !got {
			t.Errorf("NeedsRehash(old hash) = false, want true")
		}
		if got := old.NeedsRehash(encoded); got {
			t.Errorf("NeedsRehash(own hash) = true, want false")
		}
	})

	t.Run("NeedsRehashOnMalformed", func(t *testing.T) {
		if got := NewHasher(cheap, 1).NeedsRehash("$argon2id$garbage"); !got {
			t.Errorf("NeedsRehash(malformed) = false, want true")
		}
	})
}

func TestVerifyRejectsTamperedHashes(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(cheap, 1)
	good, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(good, "$") // "", alg, v, params, salt, key
	join := func(alg, v, params, salt, key string) string {
		return strings.Join([]string{"", alg, v, params, salt, key}, "$")
	}
	flip := func(s string) string { // change the first character, keeping it valid base64
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	tests := []struct {
		name      string
		encoded   string
		malformed bool // want an ErrMalformedHash error, else want (false, nil)
	}{
		{"KeyChanged", join(f[1], f[2], f[3], f[4], flip(f[5])), false},
		{"SaltChanged", join(f[1], f[2], f[3], flip(f[4]), f[5]), false},
		{"TimeChanged", join(f[1], f[2], "m=64,t=2,p=1", f[4], f[5]), false},
		{"Empty", "", true},
		{"KeyTruncated", good[:len(good)-3], false}, // a valid 30-byte key that does not match
		{"MissingField", join(f[1], f[2], f[3], f[4], "")[:len(good)-len(f[5])-1], true},
		{"Argon2i", join("argon2i", f[2], f[3], f[4], f[5]), true},
		{"Version16", join(f[1], "v=16", f[3], f[4], f[5]), true},
		{"ParamsReordered", join(f[1], f[2], "t=1,m=64,p=1", f[4], f[5]), true},
		{"NegativeParam", join(f[1], f[2], "m=-64,t=1,p=1", f[4], f[5]), true},
		{"HugeMemory", join(f[1], f[2], "m=4194304,t=1,p=1", f[4], f[5]), true},
		{"ZeroTime", join(f[1], f[2], "m=64,t=0,p=1", f[4], f[5]), true},
		{"TooManyLanes", join(f[1], f[2], "m=64,t=1,p=256", f[4], f[5]), true},
		{"PaddedBase64", join(f[1], f[2], f[3], f[4]+"==", f[5]), true},
		{"NotBase64", join(f[1], f[2], f[3], f[4], "!!!!"+f[5][4:]), true},
		{"ShortSalt", join(f[1], f[2], f[3], "AAAA", f[5]), true},
		{"ShortKey", join(f[1], f[2], f[3], f[4], "AAAA"), true},
		{"TrailingField", good + "$x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(ctx, "pw", tt.encoded)
			if ok {
				t.Fatalf("Verify(%q) = true, want false", tt.encoded)
			}
			if got := errors.Is(err, ErrMalformedHash); got != tt.malformed {
				t.Fatalf("Verify(%q) error = %v; want ErrMalformedHash: %v", tt.encoded, err, tt.malformed)
			}
		})
	}
}

// countingKDF replaces h.kdf with one that records the number of computations
// in flight (and the largest it saw) and blocks each until release receives.
type countingKDF struct {
	inFlight, maxInFlight, calls atomic.Int32
	release                      chan struct{}
}

func instrument(h *Hasher) *countingKDF {
	c := &countingKDF{release: make(chan struct{})}
	h.kdf = func(password, salt []byte, p Params) []byte {
		n := c.inFlight.Add(1)
		c.calls.Add(1)
		for m := c.maxInFlight.Load(); n > m && !c.maxInFlight.CompareAndSwap(m, n); m = c.maxInFlight.Load() {
		}
		<-c.release
		c.inFlight.Add(-1)
		return argon2id(password, salt, p)
	}
	return c
}

func TestHasherBoundsConcurrency(t *testing.T) {
	const limit, callers = 3, 10
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		h := NewHasher(cheap, limit)
		encoded, err := h.Hash(ctx, "pw")
		if err != nil {
			t.Fatal(err)
		}
		kdf := instrument(h)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				switch i % 3 {
				case 0:
					_, _ = h.Hash(ctx, "pw")
				case 1:
					_, _ = h.Verify(ctx, "pw", encoded)
				default:
					h.Dummy(ctx, "pw")
				}
			})
		}
		// Every caller is now either computing (blocked on release) or
		// waiting for a slot.
		for remaining := callers; remaining > 0; remaining-- {
			synctest.Wait()
			if got, want := kdf.inFlight.Load(), int32(min(limit, remaining)); got != want {
				t.Fatalf("with %d callers left: %d computations in flight, want %d", remaining, got, want)
			}
			kdf.release <- struct{}{}
		}
		wg.Wait()
		if got := kdf.maxInFlight.Load(); got != limit {
			t.Errorf("max in flight = %d, want %d", got, limit)
		}
		if got := kdf.calls.Load(); got != callers {
			t.Errorf("computations = %d, want %d", got, callers)
		}
	})
}

func TestHasherWaitsUntilContextDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHasher(cheap, 1)
		encoded, _ := h.Hash(context.Background(), "pw")
		kdf := instrument(h)
		holder := make(chan error)
		go func() { _, err := h.Hash(context.Background(), "pw"); holder <- err }()
		synctest.Wait() // the holder has the only slot

		// Hash waits, and returns context.Canceled when its ctx is canceled.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { _, err := h.Hash(ctx, "pw"); done <- err }()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Hash = %v, want context.Canceled", err)
		}
		// Verify waits until its deadline (the bubble's fake clock jumps there).
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if ok, err := h.Verify(ctx, "pw", encoded); ok || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Verify = %v, %v; want false, context.DeadlineExceeded", ok, err)
		}
		// Dummy returns too.
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		h.Dummy(ctx, "pw")

		if got := kdf.calls.Load(); got != 1 {
			t.Fatalf("computations = %d, want 1 (only the holder's)", got)
		}
		kdf.release <- struct{}{}
		if err := <-holder; err != nil {
			t.Fatal(err)
		}
	})
}

func TestHasherSkipsWorkForDoneContext(t *testing.T) {
	h := NewHasher(cheap, 1)
	kdf := instrument(h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash = %v, want context.Canceled", err)
	}
	if got := kdf.calls.Load(); got != 0 {
		t.Fatalf("computations = %d, want 0", got)
	}
}

func TestDummyCostsAVerify(t *testing.T) {
	h := NewHasher(cheap, 1)
	var got []Params
	h.kdf = func(password, salt []byte, p Params) []byte {
		got = append(got, p)
		return argon2id(password, salt, p)
	}
	h.Dummy(context.Background(), "pw")
	if len(got) != 1 || got[0] != cheap {
		t.Fatalf("Dummy ran argon2 with %v, want once with %v", got, cheap)
	}
}

func TestMalformedHashCostsAVerify(t *testing.T) {
	h := NewHasher(cheap, 1)
	var got []Params
	h.kdf = func(password, salt []byte, p Params) []byte {
		got = append(got, p)
		return argon2id(password, salt, p)
	}
	if ok, err := h.Verify(context.Background(), "pw", ""); ok || !errors.Is(err, ErrMalformedHash) {
		t.Fatalf("Verify(empty hash) = %v, %v; want false, ErrMalformedHash", ok, err)
	}
	if len(got) != 1 || got[0] != cheap {
		t.Fatalf("Verify(empty hash) ran argon2 with %v, want once with %v, like a real verification", got, cheap)
	}
}

func TestParamsValidate(t *testing.T) {
	if err := OWASP.Validate(); err != nil {
		t.Fatalf("OWASP.Validate() = %v", err)
	}
	err := Params{}.Validate()
	for _, want := range []string{"Threads", "Memory", "Time", "SaltLen", "KeyLen"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Params{}.Validate() = %v, want it to name %s", err, want)
		}
	}
}

// BenchmarkHash measures one OWASP hash: the CPU cost of a login.
func BenchmarkHash(b *testing.B) {
	h := NewHasher(OWASP, 1)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
