package tokens

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/strata-cqrs/strata/internal/testkit"
)

func TestKeys(t *testing.T) {
	pool, queries := testDB(t)
	ctx := context.Background()

	t.Run("EmptyBeforeLoad", func(t *testing.T) {
		k := NewKeys(pool, testSchema, nil)
		if _, _, ok := k.Current(); ok {
			t.Fatal("Current ok before any key exists")
		}
		if got, want := string(k.JWKS()), `{"keys":[]}`; got != want {
			t.Fatalf("JWKS = %s, want %s", got, want)
		}
	})

	t.Run("EnsureOneCreatesExactlyOneKeyUnderConcurrency", func(t *testing.T) {
		const schema = "ensure_one" // an empty table of its own
		if _, err := pool.Exec(ctx, Migration(schema)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		keys := make([]*Keys, 8)
		for i := range keys {
			keys[i] = NewKeys(pool, schema, nil)
			keys[i].afterCheck = func() { time.Sleep(50 * time.Millisecond) } // all would see an empty table without the lock
			wg.Go(func() {
				if err := keys[i].EnsureOne(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM ensure_one.signing_keys").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%d keys after concurrent EnsureOne, want 1", n)
		}
		kid0, _, _ := keys[0].Current()
		for _, k := range keys {
			if kid, _, ok := k.Current(); !ok || kid != kid0 {
				t.Fatalf("Current = %q, %v; want %q, true", kid, ok, kid0)
			}
		}
		if err := keys[0].EnsureOne(ctx); err != nil {
			t.Fatal(err)
		}
		if kid, _, _ := keys[0].Current(); kid != kid0 {
			t.Fatalf("EnsureOne with a key present changed Current to %q", kid)
		}
	})

	t.Run("RotateKeepsPreviousAndDropsOlder", func(t *testing.T) {
		k := testKeys(t, pool)
		first, _, _ := k.Current()
		firstPub, _ := k.Public(first)
		second, err := k.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if kid, _, _ := k.Current(); kid != second {
			t.Fatalf("Current = %q after Rotate, want %q", kid, second)
		}
		if pub, ok := k.Public(first); !ok || !pub.Equal(firstPub) {
			t.Fatal("previous key no longer verifies after one rotation")
		}
		third, err := k.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := k.Public(first); ok {
			t.Fatal("oldest key still verifies after two rotations")
		}
		if got := jwksKids(t, k.JWKS()); len(got) != 2 || got[0] != third || got[1] != second {
			t.Fatalf("JWKS kids = %v, want [%s %s]", got, third, second)
		}
	})

	t.Run("JWKSShape", func(t *testing.T) {
		k := testKeys(t, pool)
		prevKid, _, _ := k.Current()
		if _, err := k.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		curKid, curPriv, _ := k.Current()
		var doc map[string][]map[string]string
		if err := json.Unmarshal(k.JWKS(), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc) != 1 || len(doc["keys"]) != 2 {
			t.Fatalf("JWKS = %s, want an object with two keys", k.JWKS())
		}
		for i, kid := range []string{curKid, prevKid} {
			got := doc["keys"][i]
			pub, _ := k.Public(kid)
			want := map[string]string{
				"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
				"x": base64.RawURLEncoding.EncodeToString(pub),
			}
			if len(got) != len(want) {
				t.Fatalf("key %d = %v, want exactly %v (no private part)", i, got, want)
			}
			for f, v := range want {
				if got[f] != v {
					t.Errorf("key %d: %s = %q, want %q", i, f, got[f], v)
				}
			}
		}
		if x := doc["keys"][0]["x"]; x != base64.RawURLEncoding.EncodeToString(curPriv.Public().(ed25519.PublicKey)) {
			t.Errorf("current x %q does not match the signing key", x)
		}
	})

	t.Run("MalformedKidCostsNoQuery", func(t *testing.T) {
		k := testKeys(t, pool)
		for _, kid := range []string{"", "../../../etc/passwd", "a b", "kid'; DROP TABLE x--", string(make([]byte, 65))} {
			before := queries.n.Load()
			if _, ok := k.Public(kid); ok {
				t.Errorf("Public(%q) ok", kid)
			}
			if n := queries.n.Load() - before; n != 0 {
				t.Errorf("Public(%q) sent %d queries, want 0", kid, n)
			}
		}
	})

	t.Run("MissReloadsAtMostOncePerSecond", func(t *testing.T) {
		k := testKeys(t, pool)
		clock := time.Unix(1_000_000, 0)
		k.now = func() time.Time { return clock }
		before := queries.n.Load()
		for range 50 {
			if _, ok := k.Public(newKid()); ok {
				t.Fatal("random kid found")
			}
		}
		if n := queries.n.Load() - before; n != 1 {
			t.Fatalf("50 misses in one instant sent %d queries, want 1", n)
		}
		clock = clock.Add(MissRefreshInterval)
		k.Public(newKid())
		if n := queries.n.Load() - before; n != 2 {
			t.Fatalf("a miss one interval later: %d queries in all, want 2", n)
		}
	})

	t.Run("MissFindsKeyRotatedByAnotherProcess", func(t *testing.T) {
		here := testKeys(t, pool)
		there := NewKeys(pool, testSchema, nil)
		kid, err := there.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := here.Public(kid); !ok {
			t.Fatal("key rotated in by another process not found on miss")
		}
		if cur, _, _ := here.Current(); cur != kid {
			t.Fatalf("Current = %q after the miss reload, want %q", cur, kid)
		}
	})

	t.Run("RunPicksUpRotations", func(t *testing.T) {
		k := NewKeys(pool, testSchema, nil)
		k.interval = 10 * time.Millisecond
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- k.Run(runCtx) }()
		kid, err := NewKeys(pool, testSchema, nil).Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, func() bool {
			cur, _, _ := k.Current()
			return cur == kid
		}, "Run did not load key %s", kid)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v after cancel, want nil", err)
		}
	})

	t.Run("CorruptKeyKeepsLastGoodKeys", func(t *testing.T) {
		k := testKeys(t, pool)
		good, _, _ := k.Current()
		if _, err := pool.Exec(ctx, `INSERT INTO auth.signing_keys (kid, private_key, public_key, created_at)
			VALUES ('corrupt', $1, $2, now() + interval '1 hour')`, make([]byte, 32), make([]byte, 32)); err != nil {
			t.Fatal(err)
		}
		defer pool.Exec(ctx, "DELETE FROM auth.signing_keys WHERE kid = 'corrupt'")
		if err := k.Refresh(ctx); err == nil {
			t.Fatal("Refresh accepted a key whose halves do not match")
		}
		if kid, _, _ := k.Current(); kid != good {
			t.Fatalf("Current = %q after a failed Refresh, want %q", kid, good)
		}
	})
}

func jwksKids(t *testing.T, b []byte) []string {
	t.Helper()
	var doc struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range doc.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// newKid returns a random well-formed kid.
func newKid() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
