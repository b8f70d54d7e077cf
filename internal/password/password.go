// Package password hashes and verifies passwords with argon2id and encodes
// the result as a PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$key).
//
// A Hasher bounds how many argon2 computations run at once, so that a flood
// of login attempts queues (and times out with its request context) instead
// of exhausting the CPU and memory of the process.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/crypto/argon2"
)

// Params are the argon2id cost parameters and output sizes.
type Params struct {
	Memory  uint32 // KiB of memory one computation uses
	Time    uint32 // passes over the memory
	Threads uint8  // lanes (parallelism)
	SaltLen uint32 // bytes of random salt per hash
	KeyLen  uint32 // bytes of derived key
}

// OWASP are the parameters the OWASP Password Storage Cheat Sheet recommends
// for argon2id: m=19 MiB, t=2, p=1, with a 16-byte salt and a 32-byte key.
var OWASP = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Limits on the parameters a Hasher accepts, both for its own Params and for
// those parsed from a stored hash. They keep a corrupted or hostile hash
// string from making Verify allocate gigabytes or run for minutes.
const (
	MinSaltLen = 8
	MaxSaltLen = 64
	MinKeyLen  = 16
	MaxKeyLen  = 128
	MaxMemory  = 256 * 1024 // KiB (256 MiB)
	MaxTime    = 16
)

// Validate reports every way p is unusable, joined with errors.Join, or nil.
func (p Params) Validate() error {
	var errs []error
	if p.Threads < 1 {
		errs = append(errs, errors.New("password: Threads must be at least 1"))
	}
	if p.Memory < 8*max(uint32(p.Threads), 1) {
		errs = append(errs, fmt.Errorf("password: Memory must be at least 8 KiB per thread, got %d KiB for %d threads", p.Memory, p.Threads))
	}
	if p.Memory > MaxMemory {
		errs = append(errs, fmt.Errorf("password: Memory must be at most %d KiB, got %d", MaxMemory, p.Memory))
	}
	if p.Time < 1 || p.Time > MaxTime {
		errs = append(errs, fmt.Errorf("password: Time must be in [1, %d], got %d", MaxTime, p.Time))
	}
	if p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen {
		errs = append(errs, fmt.Errorf("password: SaltLen must be in [%d, %d], got %d", MinSaltLen, MaxSaltLen, p.SaltLen))
	}
	if p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen {
		errs = append(errs, fmt.Errorf("password: KeyLen must be in [%d, %d], got %d", MinKeyLen, MaxKeyLen, p.KeyLen))
	}
	return errors.Join(errs...)
}

// ErrMalformedHash is returned (wrapped) by Verify when the encoded hash is
// not a PHC argon2id string this package can verify.
var ErrMalformedHash = errors.New("password: malformed hash")

// Hasher hashes and verifies passwords with argon2id. It is safe for
// concurrent use. At most maxConcurrent argon2 computations (Hash, Verify and
// Dummy together) run at once, so the memory they use is bounded by
// maxConcurrent × the largest Memory among the current Params and the
// verified hashes (itself capped by MaxMemory).
type Hasher struct {
	params Params
	sem    chan struct{}
	dummy  string // a real hash of a random password, for Dummy

	// kdf derives the key; argon2.IDKey outside tests. Tests replace it to
	// observe how many computations are in flight.
	kdf func(password, salt []byte, p Params) []byte
}

// NewHasher returns a Hasher that hashes with p and runs at most
// maxConcurrent argon2 computations at once (maxConcurrent < 1 means
// runtime.GOMAXPROCS(0)). It computes one hash, for Dummy, before returning.
// It panics if p.Validate fails: parameters are fixed by the program, not by
// input.
func NewHasher(p Params, maxConcurrent int) *Hasher {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	if maxConcurrent < 1 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	h := &Hasher{params: p, sem: make(chan struct{}, maxConcurrent), kdf: argon2id}
	salt := randomBytes(p.SaltLen)
	h.dummy = encode(p, salt, h.kdf(randomBytes(32), salt, p))
	return h
}

func argon2id(password, salt []byte, p Params) []byte {
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of password under a fresh random salt and the
// Hasher's Params, for example
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key> (unpadded standard base64).
// It waits for a computation slot until ctx is done and then returns
// ctx.Err(); once computing, it runs to completion.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	salt := randomBytes(h.params.SaltLen)
	return encode(h.params, salt, h.kdf([]byte(password), salt, h.params)), nil
}

// Verify reports whether password matches encoded, a PHC argon2id string made
// with any parameters within this package's limits (so hashes made before a
// parameter change still verify). The key comparison is constant-time.
//
// If encoded cannot be parsed (an account with no password, say), Verify
// still spends the time of a real verification, then returns false and an
// error wrapping ErrMalformedHash; callers must answer such a login exactly
// as they answer a wrong password, and log the error. If ctx is done before a
// computation slot frees up, Verify returns false and ctx.Err().
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	p, salt, key, malformed := decode(encoded)
	if malformed != nil {
		p, salt, key, _ = decode(h.dummy)
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	match := subtle.ConstantTimeCompare(h.kdf([]byte(password), salt, p), key) == 1
	if malformed != nil {
		return false, malformed
	}
	return match, nil
}

// Dummy does the work of a Verify against a hash made with the current
// Params, and discards the result. Call it when the user does not exist, so
// that the response time does not reveal whether an account exists. Like
// Verify it takes a computation slot, and it returns early if ctx is done
// while waiting for one.
func (h *Hasher) Dummy(ctx context.Context, password string) {
	_, _ = h.Verify(ctx, password, h.dummy)
}

// NeedsRehash reports whether encoded was made with parameters other than
// the Hasher's (including salt length and key length), or cannot be parsed.
// Callers rehash the password after a successful Verify when it is true.
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, _, _, err := decode(encoded)
	return err != nil || p != h.params
}

// acquire waits for a computation slot. An already-done ctx fails even if a
// slot is free, so a request that has been abandoned costs nothing.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case h.sem <- struct{}{}:
		return func() { <-h.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func randomBytes(n uint32) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return b
}
