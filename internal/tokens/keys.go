package tokens

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Timing of Keys' reloads.
const (
	// RefreshInterval is how often Run reloads the keys.
	RefreshInterval = 5 * time.Second
	// MissRefreshInterval is the least time between two reloads that Public
	// makes because it was asked for a kid it does not hold.
	MissRefreshInterval = time.Second
	// missRefreshTimeout bounds the reload Public makes on a miss.
	missRefreshTimeout = 2 * time.Second
)

// MaxKidLen is the longest kid Keys accepts.
const MaxKidLen = 64

// validKid reports whether kid is 1..MaxKidLen characters of [A-Za-z0-9_-].
// Anything else (a path, a URL, an SQL fragment) never reaches the database.
func validKid(kid string) bool {
	if kid == "" || len(kid) > MaxKidLen {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// signingKey is one loaded key. priv is nil for the previous key: only the
// current key signs.
type signingKey struct {
	kid  string
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// keySet is an immutable snapshot of the cache.
type keySet struct {
	current, previous *signingKey
	jwks              []byte
}

func (s *keySet) public(kid string) (ed25519.PublicKey, bool) {
	for _, k := range []*signingKey{s.current, s.previous} {
		if k != nil && k.kid == kid {
			return k.pub, true
		}
	}
	return nil, false
}

// Keys is the store of Ed25519 signing keys (table signing_keys) and an
// in-memory cache of the two newest: the current key, which signs, and the
// previous one. Those two, and only those, verify tokens and appear in the
// JWKS, so a rotation never invalidates tokens signed just before it, and a
// second rotation retires the older key everywhere. Keys is safe for
// concurrent use; reads of the cache take no lock.
type Keys struct {
	pool    *pgxpool.Pool
	table   string // sanitized signing_keys
	lockKey string // advisory lock name for EnsureOne
	log     *slog.Logger

	set       atomic.Pointer[keySet]
	refreshMu sync.Mutex // one reload at a time, so an older read never overwrites a newer one

	missMu   sync.Mutex // serialises reloads on a miss
	lastMiss time.Time

	now        func() time.Time
	interval   time.Duration
	afterCheck func() // runs in EnsureOne between the check and the insert; tests widen the race window with it
}

// NewKeys returns a key store on the signing_keys table of schema. Its cache
// starts empty: call EnsureOne or Refresh, then Run.
func NewKeys(pool *pgxpool.Pool, schema string, log *slog.Logger) *Keys {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &Keys{
		pool:     pool,
		table:    table(schema, "signing_keys"),
		lockKey:  "strata/tokens/signing_keys/" + schema,
		log:      log,
		now:      time.Now,
		interval: RefreshInterval,
	}
	k.set.Store(&keySet{jwks: []byte(`{"keys":[]}`)})
	return k
}

// Rotate creates a new key, which becomes the current key of every Keys on
// this table at its next reload (this one reloads before returning). The
// former current key becomes the previous key; the one before it stops
// verifying. Rotate twice within AccessTTL and some users must refresh early.
func (k *Keys) Rotate(ctx context.Context) (kid string, err error) {
	kid, err = k.insert(ctx, k.pool)
	if err != nil {
		return "", err
	}
	if err := k.Refresh(ctx); err != nil {
		return kid, err
	}
	return kid, nil
}

// EnsureOne creates a first key if the table holds none, then reloads. Any
// number of processes may call it at once: a transaction-scoped advisory lock
// makes exactly one of them create the key.
func (k *Keys) EnsureOne(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, k.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", k.lockKey); err != nil {
			return fmt.Errorf("tokens: lock signing keys: %w", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+k.table+")").Scan(&exists); err != nil {
			return fmt.Errorf("tokens: count signing keys: %w", err)
		}
		if exists {
			return nil
		}
		if k.afterCheck != nil {
			k.afterCheck()
		}
		_, err := k.insert(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	return k.Refresh(ctx)
}

// insert stores a new key, named by a UUIDv7 so names sort by creation.
func (k *Keys) insert(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}) (string, error) {
	pub, priv, err := ed25519.GenerateKey(nil) // crypto/rand
	if err != nil {
		return "", fmt.Errorf("tokens: generate signing key: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("tokens: generate kid: %w", err)
	}
	kid := id.String()
	_, err = db.Exec(ctx, "INSERT INTO "+k.table+" (kid, private_key, public_key) VALUES ($1, $2, $3)",
		kid, priv.Seed(), []byte(pub))
	if err != nil {
		return "", fmt.Errorf("tokens: store signing key: %w", err)
	}
	k.log.Info("signing key created", "kid", kid)
	return kid, nil
}

// Refresh reloads the two newest keys into the cache. On error the cache is
// left as it was. A stored key whose private and public halves disagree is
// an error, not skipped: signing with a different key than the one published
// would fail every verification.
func (k *Keys) Refresh(ctx context.Context) error {
	k.refreshMu.Lock()
	defer k.refreshMu.Unlock()
	rows, err := k.pool.Query(ctx,
		"SELECT kid, private_key, public_key FROM "+k.table+" ORDER BY created_at DESC, kid DESC LIMIT 2")
	if err != nil {
		return fmt.Errorf("tokens: load signing keys: %w", err)
	}
	defer rows.Close()
	var loaded []*signingKey
	for rows.Next() {
		var kid string
		var seed, pub []byte
		if err := rows.Scan(&kid, &seed, &pub); err != nil {
			return fmt.Errorf("tokens: load signing keys: %w", err)
		}
		key, err := parseKey(kid, seed, pub)
		if err != nil {
			return err
		}
		loaded = append(loaded, key)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("tokens: load signing keys: %w", err)
	}
	next := &keySet{}
	if len(loaded) > 0 {
		next.current = loaded[0]
	}
	if len(loaded) > 1 {
		next.previous = &signingKey{kid: loaded[1].kid, pub: loaded[1].pub}
	}
	if next.jwks, err = marshalJWKS(next); err != nil {
		return err
	}
	if prev := k.set.Swap(next); kidOf(prev.current) != kidOf(next.current) || kidOf(prev.previous) != kidOf(next.previous) {
		k.log.Info("signing keys loaded", "current", kidOf(next.current), "previous", kidOf(next.previous))
	}
	return nil
}

func kidOf(k *signingKey) string {
	if k == nil {
		return ""
	}
	return k.kid
}

// parseKey checks a stored key: a valid kid, a 32-byte seed and the public
// key that seed derives.
func parseKey(kid string, seed, pub []byte) (*signingKey, error) {
	if !validKid(kid) {
		return nil, fmt.Errorf("tokens: signing key %q: malformed kid", kid)
	}
	if len(seed) != ed25519.SeedSize || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("tokens: signing key %s: wrong key sizes (%d, %d)", kid, len(seed), len(pub))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), pub) {
		return nil, fmt.Errorf("tokens: signing key %s: public key does not match private key", kid)
	}
	return &signingKey{kid: kid, priv: priv, pub: ed25519.PublicKey(pub)}, nil
}

// Run reloads the keys now and every RefreshInterval until ctx is done, so a
// rotation made by another process takes effect here within that interval.
// Failed reloads are logged and keep the last good keys. It returns nil when
// ctx is done.
func (k *Keys) Run(ctx context.Context) error {
	t := time.NewTicker(k.interval)
	defer t.Stop()
	for {
		if err := k.Refresh(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("signing keys: reload failed; keeping the last keys", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Current returns the key that signs new tokens; ok is false until a key has
// been loaded. priv must not be modified.
func (k *Keys) Current() (kid string, priv ed25519.PrivateKey, ok bool) {
	cur := k.set.Load().current
	if cur == nil {
		return "", nil, false
	}
	return cur.kid, cur.priv, true
}

// Public returns the public key named kid if it is the current or previous
// key. A kid that is not 1..64 characters of [A-Za-z0-9_-] is refused
// without a query. On a miss, Public reloads the keys and looks again, so a
// key rotated in by another process verifies at once; such reloads happen
// at most once per MissRefreshInterval, so random kids cannot drive the
// database harder than that. A miss may block for one reload (at most 2 s).
func (k *Keys) Public(kid string) (ed25519.PublicKey, bool) {
	if !validKid(kid) {
		return nil, false
	}
	if pub, ok := k.set.Load().public(kid); ok {
		return pub, true
	}
	k.missMu.Lock()
	defer k.missMu.Unlock()
	if pub, ok := k.set.Load().public(kid); ok { // reloaded while we waited
		return pub, true
	}
	now := k.now()
	if !k.lastMiss.IsZero() && now.Sub(k.lastMiss) < MissRefreshInterval {
		return nil, false
	}
	k.lastMiss = now
	ctx, cancel := context.WithTimeout(context.Background(), missRefreshTimeout)
	defer cancel()
	if err := k.Refresh(ctx); err != nil {
		k.log.Warn("signing keys: reload on unknown kid failed", "err", err)
	}
	return k.set.Load().public(kid)
}

// jwk is an RFC 8037 OKP public key in RFC 7517 form. It has no field for
// private material.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS returns the RFC 7517 key set of the public keys that verify: the
// current key, then the previous one ({"keys":[]} before any is loaded).
// The caller owns the returned slice.
func (k *Keys) JWKS() []byte {
	return bytes.Clone(k.set.Load().jwks)
}

func marshalJWKS(s *keySet) ([]byte, error) {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, key := range []*signingKey{s.current, s.previous} {
		if key != nil {
			set.Keys = append(set.Keys, jwk{
				Kty: "OKP", Crv: "Ed25519", Use: "sig", Alg: "EdDSA", Kid: key.kid,
				X: base64.RawURLEncoding.EncodeToString(key.pub),
			})
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, errors.Join(errors.New("tokens: marshal JWKS"), err)
	}
	return b, nil
}
