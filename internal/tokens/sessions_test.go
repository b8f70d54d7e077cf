package tokens

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// start begins a session for user, failing the test on error.
func start(t *testing.T, s *Sessions, user string) (refresh, sid string) {
	t.Helper()
	refresh, sid, err := s.Start(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return refresh, sid
}

// rotate exchanges refresh, failing the test on error.
func rotate(t *testing.T, s *Sessions, refresh string) string {
	t.Helper()
	_, next, _, err := s.Rotate(context.Background(), refresh)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return next
}

// revokedOf returns RevokedSessions(user), failing the test on error.
func revokedOf(t *testing.T, s *Sessions, user string) map[string]bool {
	t.Helper()
	m, err := s.RevokedSessions(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// frozen returns Sessions on pool whose clock is *clock.
func frozen(pool *pgxpool.Pool, clock *time.Time) *Sessions {
	s := NewSessions(pool, testSchema, Config{})
	s.now = func() time.Time { return *clock }
	return s
}

func TestSessions(t *testing.T) {
	pool, queries := testDB(t)
	ctx := context.Background()
	s := NewSessions(pool, testSchema, Config{})

	t.Run("StoresOnlyTheHash", func(t *testing.T) {
		user := uuid.NewString()
		refresh, sid := start(t, s, user)
		raw, err := base64.RawURLEncoding.DecodeString(refresh)
		if err != nil || len(raw) != 32 {
			t.Fatalf("refresh token %q is not 32 bytes of base64url (%v)", refresh, err)
		}
		var hash []byte
		var family string
		var expires time.Time
		err = pool.QueryRow(ctx, "SELECT token_hash, family_id::text, expires_at FROM auth.refresh_tokens WHERE user_id = $1", user).
			Scan(&hash, &family, &expires)
		if err != nil {
			t.Fatal(err)
		}
		if want := sha256.Sum256([]byte(refresh)); string(hash) != string(want[:]) {
			t.Errorf("stored %x, want SHA-256 of the token", hash)
		}
		if family != sid {
			t.Errorf("family_id = %s, want the session id %s", family, sid)
		}
		if d := time.Until(expires) - DefaultRefreshTTL; d > 0 || d < -time.Minute {
			t.Errorf("expires_at = %v, want about now + %v", expires, DefaultRefreshTTL)
		}
	})

	t.Run("RotateContinuesTheSession", func(t *testing.T) {
		user := uuid.NewString()
		r1, sid := start(t, s, user)
		gotUser, r2, gotSid, err := s.Rotate(ctx, r1)
		if err != nil {
			t.Fatal(err)
		}
		if gotUser != user || gotSid != sid || r2 == r1 || r2 == "" {
			t.Fatalf("Rotate = %s, %q, %s; want %s, a new token, %s", gotUser, r2, gotSid, user, sid)
		}
		rotate(t, s, r2)
	})

	t.Run("ReuseRevokesTheSession", func(t *testing.T) {
		user := uuid.NewString()
		r1, sid := start(t, s, user)
		other, otherSid := start(t, s, user)
		r2 := rotate(t, s, r1)
		for _, tok := range []struct{ name, token string }{{"old", r1}, {"successor", r2}} { // in this order
			_, _, _, err := s.Rotate(ctx, tok.token)
			if !errors.Is(err, ErrRefreshReused) || !errors.Is(err, ErrInvalidRefresh) {
				t.Errorf("Rotate(%s token) after reuse = %v, want ErrRefreshReused", tok.name, err)
			}
		}
		if got := revokedOf(t, s, user); !got[sid] || got[otherSid] {
			t.Errorf("RevokedSessions = %v, want only %s", got, sid)
		}
		var live int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM auth.refresh_tokens WHERE family_id = $1 AND revoked_at IS NULL", sid).Scan(&live); err != nil {
			t.Fatal(err)
		}
		if live != 0 {
			t.Errorf("%d tokens of the session not revoked", live)
		}
		rotate(t, s, other) // the user's other session is untouched
	})

	t.Run("SessionRevocationOutranksTokenState", func(t *testing.T) {
		// As after a logout that raced a Rotate: the session is recorded
		// revoked but a token of it was created unrevoked.
		user := uuid.NewString()
		r1, sid := start(t, s, user)
		if _, err := pool.Exec(ctx, "INSERT INTO auth.revoked_sessions (family_id, user_id) VALUES ($1, $2)", sid, user); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.Rotate(ctx, r1); !errors.Is(err, ErrRefreshReused) {
			t.Fatalf("Rotate(token of a revoked session) = %v, want ErrRefreshReused", err)
		}
	})

	t.Run("ConcurrentRotatesOfOneTokenSucceedOnce", func(t *testing.T) {
		r1, _ := start(t, s, uuid.NewString())
		var mu sync.Mutex
		var wins []string
		var reused int
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				_, next, _, err := s.Rotate(ctx, r1)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins = append(wins, next)
				case errors.Is(err, ErrRefreshReused):
					reused++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if len(wins) != 1 || reused != 7 {
			t.Fatalf("%d successes and %d reuses, want 1 and 7", len(wins), reused)
		}
		if _, _, _, err := s.Rotate(ctx, wins[0]); !errors.Is(err, ErrRefreshReused) {
			t.Fatalf("the winner's token after the reuse: %v, want ErrRefreshReused", err)
		}
	})

	t.Run("LogoutRevokesTheSession", func(t *testing.T) {
		user := uuid.NewString()
		r1, sid := start(t, s, user)
		r2 := rotate(t, s, r1)
		if err := s.Revoke(ctx, r2); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.Rotate(ctx, r2); !errors.Is(err, ErrInvalidRefresh) {
			t.Fatalf("Rotate after logout = %v, want ErrInvalidRefresh", err)
		}
		if got := revokedOf(t, s, user); !got[sid] {
			t.Fatalf("RevokedSessions = %v, want %s", got, sid)
		}
		if err := s.Revoke(ctx, r2); err != nil {
			t.Fatalf("second logout = %v, want nil", err)
		}
		unknown, _ := mintRefresh()
		if err := s.Revoke(ctx, unknown); !errors.Is(err, ErrInvalidRefresh) {
			t.Fatalf("Revoke(unknown) = %v, want ErrInvalidRefresh", err)
		}
	})

	t.Run("RevokeUserEndsAllTheirSessions", func(t *testing.T) {
		alice, bob := uuid.NewString(), uuid.NewString()
		a1, sid1 := start(t, s, alice)
		a2, sid2 := start(t, s, alice)
		b1, _ := start(t, s, bob)
		if err := s.RevokeUser(ctx, alice); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{a1, a2} {
			if _, _, _, err := s.Rotate(ctx, tok); !errors.Is(err, ErrInvalidRefresh) {
				t.Errorf("Rotate(alice's token) = %v, want ErrInvalidRefresh", err)
			}
		}
		if got := revokedOf(t, s, alice); len(got) != 2 || !got[sid1] || !got[sid2] {
			t.Errorf("RevokedSessions(alice) = %v, want %s and %s", got, sid1, sid2)
		}
		rotate(t, s, b1)
		if got := revokedOf(t, s, bob); len(got) != 0 {
			t.Errorf("RevokedSessions(bob) = %v, want none", got)
		}
	})

	t.Run("ExpiredIsInvalidNotReused", func(t *testing.T) {
		clock := time.Now()
		fs := frozen(pool, &clock)
		user := uuid.NewString()
		r1, _ := start(t, fs, user)
		clock = clock.Add(DefaultRefreshTTL)
		_, _, _, err := fs.Rotate(ctx, r1)
		if !errors.Is(err, ErrInvalidRefresh) || errors.Is(err, ErrRefreshReused) {
			t.Fatalf("Rotate(expired) = %v, want ErrInvalidRefresh only", err)
		}
		if got := revokedOf(t, fs, user); len(got) != 0 {
			t.Fatalf("expiry revoked sessions %v", got)
		}
	})

	t.Run("MalformedTokenCostsNoQuery", func(t *testing.T) {
		for _, tok := range []string{"", "short", "../../etc/passwd", string(make([]byte, 43)), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"} {
			before := queries.n.Load()
			if _, _, _, err := s.Rotate(ctx, tok); !errors.Is(err, ErrInvalidRefresh) {
				t.Errorf("Rotate(%q) = %v, want ErrInvalidRefresh", tok, err)
			}
			if err := s.Revoke(ctx, tok); !errors.Is(err, ErrInvalidRefresh) {
				t.Errorf("Revoke(%q) = %v, want ErrInvalidRefresh", tok, err)
			}
			if n := queries.n.Load() - before; n != 0 {
				t.Errorf("%q sent %d queries, want 0", tok, n)
			}
		}
		unknown, _ := mintRefresh()
		if _, _, _, err := s.Rotate(ctx, unknown); !errors.Is(err, ErrInvalidRefresh) || errors.Is(err, ErrRefreshReused) {
			t.Errorf("Rotate(unknown) = %v, want ErrInvalidRefresh only", err)
		}
	})

	t.Run("RevokedSessionsForgetsRevocationsPastAccessLifetime", func(t *testing.T) {
		clock := time.Now()
		fs := frozen(pool, &clock)
		user := uuid.NewString()
		r1, sid := start(t, fs, user)
		if err := fs.Revoke(ctx, r1); err != nil {
			t.Fatal(err)
		}
		window := DefaultAccessTTL + 2*DefaultLeeway
		clock = clock.Add(window - time.Second)
		if got := revokedOf(t, fs, user); !got[sid] {
			t.Fatalf("just inside the window: RevokedSessions = %v, want %s", got, sid)
		}
		clock = clock.Add(2 * time.Second)
		if got := revokedOf(t, fs, user); len(got) != 0 {
			t.Fatalf("past the window: RevokedSessions = %v, want none", got)
		}
		if _, _, _, err := fs.Rotate(ctx, r1); !errors.Is(err, ErrInvalidRefresh) {
			t.Fatalf("the refresh token still fails after the window: %v", err)
		}
	})

	t.Run("RejectsNonUUIDUsers", func(t *testing.T) {
		if _, _, err := s.Start(ctx, "alice"); err == nil {
			t.Error("Start(alice) succeeded")
		}
		if err := s.RevokeUser(ctx, "alice"); err == nil {
			t.Error("RevokeUser(alice) succeeded")
		}
	})
}

func TestSessionsPurge(t *testing.T) {
	pool, _ := testDB(t)
	ctx := context.Background()
	clock := time.Now()
	s := frozen(pool, &clock)
	a, _ := start(t, s, uuid.NewString())
	live := rotate(t, s, a)
	b, _ := start(t, s, uuid.NewString())
	if err := s.Revoke(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(ctx); err != nil || n != 0 {
		t.Fatalf("Purge with nothing expired = %d, %v; want 0, nil", n, err)
	}
	clock = clock.Add(DefaultRefreshTTL - time.Second)
	rotate(t, s, live) // the session lives on: its new token expires later
	clock = clock.Add(DefaultAccessTTL + 2*time.Second)
	n, err := s.Purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // a, live, b and b's revocation
		t.Fatalf("Purge deleted %d rows, want 4", n)
	}
	var left int
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM auth.refresh_tokens) + (SELECT count(*) FROM auth.revoked_sessions)").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 1 {
		t.Fatalf("%d rows left, want the one live token", left)
	}
}
