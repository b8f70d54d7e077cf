package tokens

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

const (
	testUser    = "0190a3c4-0000-7000-8000-000000000001"
	testSession = "0190a3c4-0000-7000-8000-0000000000aa"
)

// craft signs claims with method and key under a header holding alg, typ
// and header (a nil value deletes the entry).
func craft(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validClaims are the claims Issuer.Access would write at now.
func validClaims(now time.Time) Claims {
	return Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    DefaultIssuer,
			Subject:   testUser,
			Audience:  jwt.ClaimStrings{DefaultAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(DefaultAccessTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        uuid.Must(uuid.NewV7()).String(),
		},
		SessionID: testSession,
	}
}

// edit returns c after f changed it.
func edit(c Claims, f func(*Claims)) Claims { f(&c); return c }

// retouch decodes the payload of token, lets f change it and re-encodes it,
// keeping the original signature.
func retouch(t *testing.T, token string, f func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	raw, _ = json.Marshal(m)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// flipSignature changes the first character of token's signature.
func flipSignature(token string) string {
	i := strings.LastIndex(token, ".") + 1
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

// access issues a token at now, failing the test on error.
func access(t testing.TB, i *Issuer, now time.Time) string {
	t.Helper()
	tok, _, err := i.Access(testUser, testSession, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAccessTokens(t *testing.T) {
	pool, queries := testDB(t)
	keys := testKeys(t, pool)
	issuer, verifier := NewIssuer(keys, Config{}), NewVerifier(keys, Config{})
	kid, priv, _ := keys.Current()
	pub, _ := keys.Public(kid)
	now := time.Now()
	ed := jwt.SigningMethodEdDSA
	kidHeader := map[string]any{"kid": kid}

	t.Run("RoundTrip", func(t *testing.T) {
		tok, expiresIn, err := issuer.Access(testUser, testSession, now)
		if err != nil {
			t.Fatal(err)
		}
		if expiresIn != DefaultAccessTTL {
			t.Errorf("expiresIn = %v, want %v", expiresIn, DefaultAccessTTL)
		}
		c, err := verifier.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		iat := now.Truncate(time.Second)
		checks := []struct {
			name      string
			got, want any
		}{
			{"iss", c.Issuer, DefaultIssuer},
			{"sub", c.Subject, testUser},
			{"aud", strings.Join(c.Audience, ","), DefaultAudience},
			{"iat", c.IssuedAt.Time.Unix(), iat.Unix()},
			{"exp", c.ExpiresAt.Time.Unix(), iat.Add(DefaultAccessTTL).Unix()},
			{"nbf", c.NotBefore, (*jwt.NumericDate)(nil)},
			{"sid", c.SessionID, testSession},
			{"jti version", uuid.MustParse(c.ID).Version(), uuid.Version(7)},
		}
		for _, ch := range checks {
			if ch.got != ch.want {
				t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
			}
		}
		header := map[string]any{}
		raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		if err := json.Unmarshal(raw, &header); err != nil {
			t.Fatal(err)
		}
		if header["alg"] != "EdDSA" || header["kid"] != kid || len(header) != 3 {
			t.Errorf("header = %v, want alg EdDSA, typ JWT, kid %s", header, kid)
		}
		other, _, _ := issuer.Access(testUser, testSession, now)
		if c2, _ := verifier.Verify(other); c2 == nil || c2.ID == c.ID {
			t.Errorf("two tokens share jti %s", c.ID)
		}
	})

	t.Run("AcceptsClockSkewWithinLeeway", func(t *testing.T) {
		for name, at := range map[string]time.Time{
			"ExpiredTenSecondsAgo":        now.Add(-DefaultAccessTTL - 10*time.Second),
			"IssuedTenSecondsInTheFuture": now.Add(10 * time.Second),
		} {
			if _, err := verifier.Verify(access(t, issuer, at)); err != nil {
				t.Errorf("%s: Verify = %v, want success", name, err)
			}
		}
	})

	_, attackerPriv, _ := ed25519.GenerateKey(nil)
	good := access(t, issuer, now)
	wrongIss := NewIssuer(keys, Config{Issuer: "someone-else"})
	wrongAud := NewIssuer(keys, Config{Audience: "another-api"})
	wrongTok := func(i *Issuer) string { return access(t, i, now) }
	rejections := []struct {
		name   string
		token  string
		reason error // in the Unwrap chain of the error
	}{
		{"Empty", "", jwt.ErrTokenMalformed},
		{"Garbage", "a.b.c", jwt.ErrTokenMalformed},
		{"TooLong", good + "." + strings.Repeat("A", MaxTokenLen), errTooLong},
		{"AlgNone", craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kidHeader, validClaims(now)), jwt.ErrTokenSignatureInvalid},
		{"HS256WithPublicKeyAsSecret", craft(t, jwt.SigningMethodHS256, []byte(pub), kidHeader, validClaims(now)), jwt.ErrTokenSignatureInvalid},
		{"TamperedPayload", retouch(t, good, func(m map[string]any) { m["sub"] = "0190a3c4-0000-7000-8000-00000000beef" }), jwt.ErrTokenSignatureInvalid},
		{"TamperedSignature", flipSignature(good), jwt.ErrTokenSignatureInvalid},
		{"SignedByForeignKeyUnderOurKid", craft(t, ed, attackerPriv, kidHeader, validClaims(now)), jwt.ErrTokenSignatureInvalid},
		{"ExpiredBeyondLeeway", access(t, issuer, now.Add(-DefaultAccessTTL-time.Minute)), jwt.ErrTokenExpired},
		{"MissingExp", craft(t, ed, priv, kidHeader, edit(validClaims(now), func(c *Claims) { c.ExpiresAt = nil })), jwt.ErrTokenRequiredClaimMissing},
		{"IssuedInTheFutureBeyondLeeway", access(t, issuer, now.Add(2*time.Minute)), jwt.ErrTokenUsedBeforeIssued},
		{"NotBeforeInTheFuture", craft(t, ed, priv, kidHeader, edit(validClaims(now), func(c *Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) })), jwt.ErrTokenNotValidYet},
		{"WrongIssuer", wrongTok(wrongIss), jwt.ErrTokenInvalidIssuer},
		{"WrongAudience", wrongTok(wrongAud), jwt.ErrTokenInvalidAudience},
		{"MissingAudience", craft(t, ed, priv, kidHeader, edit(validClaims(now), func(c *Claims) { c.Audience = nil })), jwt.ErrTokenRequiredClaimMissing},
		{"MissingSub", craft(t, ed, priv, kidHeader, edit(validClaims(now), func(c *Claims) { c.Subject = "" })), errMissingSubject},
		{"MissingJti", craft(t, ed, priv, kidHeader, edit(validClaims(now), func(c *Claims) { c.ID = "" })), errMissingID},
		{"MissingSid", craft(t, ed, priv, kidHeader, edit(validClaims(now), func(c *Claims) { c.SessionID = "" })), errMissingSession},
		{"MissingKid", craft(t, ed, priv, nil, validClaims(now)), errMissingKid},
		{"KidNotAString", craft(t, ed, priv, map[string]any{"kid": 42}, validClaims(now)), errMissingKid},
		{"UnknownKid", craft(t, ed, priv, map[string]any{"kid": newKid()}, validClaims(now)), errUnknownKid},
		{"PathTraversalKid", craft(t, ed, priv, map[string]any{"kid": "../../../etc/passwd"}, validClaims(now)), errMalformedKid},
		{"OverlongKid", craft(t, ed, priv, map[string]any{"kid": strings.Repeat("a", MaxKidLen+1)}, validClaims(now)), errMalformedKid},
		{"CritHeader", craft(t, ed, priv, map[string]any{"kid": kid, "crit": []string{"exp"}}, validClaims(now)), errCritical},
	}
	for _, tt := range rejections {
		t.Run("Rejects"+tt.name, func(t *testing.T) {
			c, err := verifier.Verify(tt.token)
			if c != nil || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %v, %v; want nil, ErrInvalidToken", c, err)
			}
			if !errors.Is(err, tt.reason) {
				t.Fatalf("Verify error %q does not carry reason %q", err, tt.reason)
			}
			if errors.Unwrap(err) == nil {
				t.Fatal("errors.Unwrap gives no reason")
			}
		})
	}

	t.Run("MalformedKidOrOversizeTokenCostsNoQuery", func(t *testing.T) {
		fresh := NewVerifier(NewKeys(pool, testSchema, nil), Config{}) // never reloaded: a miss would query
		for _, tok := range []string{
			craft(t, ed, priv, map[string]any{"kid": "../../../etc/passwd"}, validClaims(now)),
			craft(t, ed, priv, map[string]any{"kid": strings.Repeat("k", 65)}, validClaims(now)),
			good + strings.Repeat("A", MaxTokenLen),
		} {
			before := queries.n.Load()
			if _, err := fresh.Verify(tok); err == nil {
				t.Fatal("Verify accepted the token")
			}
			if n := queries.n.Load() - before; n != 0 {
				t.Fatalf("Verify sent %d queries, want 0", n)
			}
		}
		// The counter works: an unknown but well-formed kid does query, once.
		before := queries.n.Load()
		if _, err := fresh.Verify(good); err != nil {
			t.Fatalf("Verify(good) on a fresh Keys = %v", err)
		}
		if n := queries.n.Load() - before; n != 1 {
			t.Fatalf("first miss sent %d queries, want 1", n)
		}
	})

	t.Run("NeverFetchesKeyURLs", func(t *testing.T) {
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"keys":[]}`))
		}))
		defer srv.Close()
		attackerPub := attackerPriv.Public().(ed25519.PublicKey)
		embedded := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "attacker", "x": base64.RawURLEncoding.EncodeToString(attackerPub)}
		lure := func(kid string) map[string]any {
			return map[string]any{"kid": kid, "jku": srv.URL + "/jwks.json", "x5u": srv.URL + "/cert.pem", "jwk": embedded}
		}

		honest := craft(t, ed, priv, lure(kid), validClaims(now))
		if _, err := verifier.Verify(honest); err != nil {
			t.Errorf("token signed with our key, with jku/x5u/jwk headers: Verify = %v, want success by kid", err)
		}
		forged := craft(t, ed, attackerPriv, lure("attacker"), validClaims(now))
		if _, err := verifier.Verify(forged); !errors.Is(err, errUnknownKid) {
			t.Errorf("forged token with unknown kid and jku/jwk: Verify = %v, want unknown kid", err)
		}
		forgedOurKid := craft(t, ed, attackerPriv, lure(kid), validClaims(now))
		if _, err := verifier.Verify(forgedOurKid); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			t.Errorf("forged token with our kid and jwk: Verify = %v, want invalid signature", err)
		}
		if n := hits.Load(); n != 0 {
			t.Fatalf("key server received %d requests, want 0", n)
		}
	})
}

func TestAccessTokensAcrossRotation(t *testing.T) {
	pool, _ := testDB(t)
	ctx := context.Background()
	auth := testKeys(t, pool)
	issuer, verifier := NewIssuer(auth, Config{}), NewVerifier(auth, Config{})
	now := time.Now()

	first := access(t, issuer, now)
	if _, err := auth.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := auth.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(first); err != nil {
		t.Fatalf("token of the previous key after one rotation: %v", err)
	}
	second := access(t, issuer, now)

	// A gateway process that loaded the keys before the next rotation.
	gatewayKeys := testKeys(t, pool)
	gateway := NewVerifier(gatewayKeys, Config{})

	third, err := auth.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(first); !errors.Is(err, errUnknownKid) {
		t.Errorf("token of the retired key after two rotations: Verify = %v, want unknown kid", err)
	}
	if kids := jwksKids(t, auth.JWKS()); len(kids) != 2 || kids[0] != third {
		t.Errorf("JWKS kids = %v, want [%s, previous]", kids, third)
	}
	if _, err := verifier.Verify(second); err != nil {
		t.Errorf("token of the previous key: %v", err)
	}
	newest := access(t, issuer, now)
	if _, err := gateway.Verify(newest); err != nil {
		t.Errorf("gateway that has not reloaded yet: Verify(token of the new key) = %v, want success after a miss reload", err)
	}
}

func TestConfig(t *testing.T) {
	got := Config{}.WithDefaults()
	want := Config{Issuer: "strata", Audience: "strata-api", AccessTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour, Leeway: 30 * time.Second}
	if got != want {
		t.Fatalf("defaults = %+v, want %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	err := Config{AccessTTL: -time.Second, RefreshTTL: -2 * time.Second, Leeway: time.Hour}.Validate()
	for _, field := range []string{"Issuer", "Audience", "AccessTTL", "RefreshTTL", "Leeway"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want it to name %s", err, field)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	pool, _ := testDB(b)
	issuer := NewIssuer(testKeys(b, pool), Config{})
	now := time.Now()
	for b.Loop() {
		if _, _, err := issuer.Access(testUser, testSession, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures a full verification (a token not seen before);
// BenchmarkVerifyCached a token the verifier has already verified.
func BenchmarkVerify(b *testing.B) {
	pool, _ := testDB(b)
	keys := testKeys(b, pool)
	token := access(b, NewIssuer(keys, Config{}), time.Now())
	verifier := NewVerifier(keys, Config{})
	for b.Loop() {
		if _, _, err := verifier.verify(token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	pool, _ := testDB(b)
	keys := testKeys(b, pool)
	token := access(b, NewIssuer(keys, Config{}), time.Now())
	verifier := NewVerifier(keys, Config{})
	for b.Loop() {
		if _, err := verifier.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifiedCache: a repeated token is answered from the cache with
// claims the caller cannot corrupt, but never past its expiry or once its
// key is no longer trusted.
func TestVerifiedCache(t *testing.T) {
	pool, _ := testDB(t)
	ctx := context.Background()
	keys := testKeys(t, pool)
	cfg := Config{Leeway: time.Millisecond}
	issuer, verifier := NewIssuer(keys, Config{AccessTTL: 2 * time.Second}), NewVerifier(keys, cfg)
	token := access(t, issuer, time.Now())
	first, err := verifier.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	first.Subject = "someone else"
	again, err := verifier.Verify(token)
	if err != nil || again.Subject != testUser {
		t.Fatalf("cached verification = %v, %v; want the original claims", again, err)
	}
	time.Sleep(time.Until(again.ExpiresAt.Time.Add(10 * time.Millisecond)))
	if _, err := verifier.Verify(token); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("an expired cached token: Verify = %v, want invalid", err)
	}

	token = access(t, NewIssuer(keys, Config{}), time.Now())
	if _, err := verifier.Verify(token); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := keys.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := verifier.Verify(token); !errors.Is(err, errUnknownKid) {
		t.Fatalf("a cached token of a retired key: Verify = %v, want unknown kid", err)
	}
}
