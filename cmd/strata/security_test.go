package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	kafkago "github.com/segmentio/kafka-go"

	domain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/gateway"
	"github.com/strata-cqrs/strata/internal/config"
	"github.com/strata-cqrs/strata/internal/kafka"
	"github.com/strata-cqrs/strata/internal/testkit"
)

// revocationWithin bounds how long a revocation (disable, logout, reused
// refresh token, revoked role) may take to reach a live access token: the
// gateway's 2 s access cache plus slack for a loaded test machine.
const revocationWithin = 2500 * time.Millisecond

// secSuite is one running platform shared by the subtests of
// TestSecurity, with the users they act as.
type secSuite struct {
	d       *Dev
	dir, db string
	admin   *client
	adminID string
	// norole is a signed-in user who holds no role at all.
	norole   *client
	noroleID string
}

// TestSecurity attacks a running `strata dev`: forged and doctored tokens,
// every route without the permission, other users' command statuses, mass
// assignment, oversized input, revocations of live tokens (disable,
// password change, refresh reuse, logout, role), login enumeration and
// throttling (also by parallel guesses), forged commands on Kafka and key
// rotation.
// Every refused request is also checked to have written nothing.
func TestSecurity(t *testing.T) {
	s := &secSuite{dir: t.TempDir(), db: testkit.Postgres(t)}
	s.d = startDev(t, s.dir, s.db)
	defer s.d.Close()
	s.admin = admin(t, s.d)
	s.adminID = subject(t, s.admin.token)
	testkit.Eventually(t, 20*time.Second, func() bool { return s.admin.do("GET", "/readyz", "").Status == 200 }, "never ready")
	s.noroleID = s.register(t, "norole@example.com", "no role at all, 1")
	s.norole = s.login(t, "norole@example.com", "no role at all, 1")

	t.Run("ForgedTokens", s.forgedTokens)
	t.Run("HonoursNoKeyURLHeaders", s.keyURLHeaders)
	t.Run("RefusesHugeAuthorizationHeader", s.hugeHeader)
	t.Run("RefusesTokenInURL", s.tokenInURL)
	t.Run("EveryRouteNeedsItsPermission", s.everyRouteForbidden)
	t.Run("EveryRouteNeedsAToken", s.everyRouteUnauthorized)
	t.Run("RouteBodiesAreValid", s.routeBodiesValid)
	t.Run("HidesOtherUsersCommands", s.otherUsersCommands)
	t.Run("RefusesMassAssignment", s.massAssignment)
	t.Run("RefusesBodyOver1MiB", s.bodyTooLarge)
	t.Run("ClampsLimit", s.clampsLimit)
	t.Run("DisabledUserLosesLiveToken", s.disabledUser)
	t.Run("PasswordChangeEndsSessions", s.passwordChange)
	t.Run("ReusedRefreshTokenRevokesSession", s.refreshReuse)
	t.Run("LogoutRevokesAccessToken", s.logout)
	t.Run("RevokedRoleTakesEffect", s.revokedRole)
	t.Run("LoginLeaksNothingAndThrottles", s.loginThrottle)
	t.Run("ConcurrentGuessesAreThrottled", s.concurrentGuesses)
	t.Run("RejectsForgedCommands", s.forgedCommands)
	t.Run("RotatesKeysWithoutRestart", s.rotateKeys) // last: it changes the signing key
}

// ---- helpers ----

// register creates a user with no roles through the admin and returns its id.
func (s *secSuite) register(t *testing.T, email, password string) string {
	t.Helper()
	r := s.admin.wait("POST", "/users", `{"email":"`+email+`","name":"`+email+`","password":"`+password+`"}`, 201)
	return r.str("id")
}

// login returns a client of the platform signed in as email.
func (s *secSuite) login(t *testing.T, email, password string) *client {
	t.Helper()
	c := &client{t: t, base: s.d.URL()}
	c.login(email, password)
	return c
}

// as returns a client of the platform that sends token as its bearer.
func (s *secSuite) as(t *testing.T, token string) *client {
	return &client{t: t, base: s.d.URL(), token: token}
}

// writes counts the rows that every write path appends to: events (of
// every service), command statuses and staged password hashes.
type writes struct{ events, commands, staged int }

func (s *secSuite) writes(t *testing.T) writes {
	t.Helper()
	var w writes
	err := s.d.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM auth.events) + (SELECT count(*) FROM account.events),
		(SELECT count(*) FROM strata.commands), (SELECT count(*) FROM auth.staged_secrets)`).
		Scan(&w.events, &w.commands, &w.staged)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// nothingWritten fails unless the write counts are what they were.
func (s *secSuite) nothingWritten(t *testing.T, before writes) {
	t.Helper()
	if got := s.writes(t); got != before {
		t.Fatalf("a refused request wrote: before %+v, after %+v", before, got)
	}
}

func (s *secSuite) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.d.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// signingKey reads the current private key the way tokens.Keys stores it:
// a 32-byte Ed25519 seed.
func (s *secSuite) signingKey(t *testing.T) (kid string, priv ed25519.PrivateKey) {
	t.Helper()
	var seed []byte
	err := s.d.pool.QueryRow(context.Background(),
		`SELECT kid, private_key FROM auth.signing_keys ORDER BY created_at DESC, kid DESC LIMIT 1`).Scan(&kid, &seed)
	if err != nil {
		t.Fatal(err)
	}
	return kid, ed25519.NewKeyFromSeed(seed)
}

// mint signs claims with method and key, with extra header fields.
func mint(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsFor are the claims the real issuer puts in a token for sub and sid.
func claimsFor(sub, sid string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "strata", "aud": []string{"strata-api"}, "sub": sub, "sid": sid, "jti": commands.NewID(),
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

// claimsOf reads a token's claims without verifying it.
func claimsOf(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func subject(t *testing.T, token string) string {
	t.Helper()
	sub, _ := claimsOf(t, token)["sub"].(string)
	return sub
}

// refused checks that token gets 401 on a read and on a write, and that the
// write changed nothing.
func (s *secSuite) refused(t *testing.T, token string) {
	t.Helper()
	before := s.writes(t)
	c := s.as(t, token)
	expectCode(t, c.do("GET", "/auth/me", ""), 401, "unauthorized")
	r := c.do("POST", "/roles", `{"name":"Forged"}`, "Prefer", "wait=2")
	expectCode(t, r, 401, "unauthorized")
	if r.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
	s.nothingWritten(t, before)
}

// ---- tokens ----

func (s *secSuite) forgedTokens(t *testing.T) {
	kid, priv := s.signingKey(t)
	pub := priv.Public().(ed25519.PublicKey)
	_, attacker, _ := ed25519.GenerateKey(rand.Reader)
	sid := commands.NewID()
	now := time.Now()
	valid := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := claimsFor(s.adminID, sid, now)
		if mut != nil {
			mut(c)
		}
		return c
	}
	eddsa := func(c jwt.MapClaims) string {
		return mint(t, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": kid}, c)
	}

	t.Run("ControlRealKeyIsAccepted", func(t *testing.T) {
		// Without this the 401s below could come from a broken minter.
		r := s.as(t, eddsa(valid(nil))).do("GET", "/auth/me", "")
		if r.Status != 200 || r.str("id") != s.adminID {
			t.Fatalf("a correctly minted token: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("ExpiredInsideLeewayIsAccepted", func(t *testing.T) {
		tok := eddsa(valid(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-15*time.Minute).Unix(), now.Add(-10*time.Second).Unix()
		}))
		if r := s.as(t, tok).do("GET", "/auth/me", ""); r.Status != 200 {
			t.Fatalf("exp 10 s ago (leeway 30 s): %d %s", r.Status, r.Raw)
		}
	})

	tampered := func() string {
		tok := mint(t, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": kid}, claimsFor(s.noroleID, sid, now))
		parts := strings.Split(tok, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		swapped := strings.Replace(string(payload), s.noroleID, s.adminID, 1)
		if swapped == string(payload) {
			t.Fatal("sub not found in the payload")
		}
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(swapped))
		return strings.Join(parts, ".")
	}
	for _, tc := range []struct {
		name  string
		token func() string
	}{
		{"AlgNone", func() string {
			return mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid}, valid(nil))
		}},
		{"HS256WithPublicKeyAsSecret", func() string {
			return mint(t, jwt.SigningMethodHS256, []byte(pub), map[string]any{"kid": kid}, valid(nil))
		}},
		{"TamperedSubject", tampered},
		{"ExpiredBeyondLeeway", func() string {
			return eddsa(valid(func(c jwt.MapClaims) {
				c["iat"], c["exp"] = now.Add(-15*time.Minute).Unix(), now.Add(-40*time.Second).Unix()
			}))
		}},
		{"MissingExp", func() string { return eddsa(valid(func(c jwt.MapClaims) { delete(c, "exp") })) }},
		{"FutureNotBefore", func() string {
			return eddsa(valid(func(c jwt.MapClaims) { c["nbf"] = now.Add(2 * time.Minute).Unix() }))
		}},
		{"FutureIssuedAt", func() string {
			return eddsa(valid(func(c jwt.MapClaims) { c["iat"] = now.Add(2 * time.Minute).Unix() }))
		}},
		{"WrongIssuer", func() string { return eddsa(valid(func(c jwt.MapClaims) { c["iss"] = "evil" })) }},
		{"WrongAudience", func() string { return eddsa(valid(func(c jwt.MapClaims) { c["aud"] = []string{"other-api"} })) }},
		{"NoAudience", func() string { return eddsa(valid(func(c jwt.MapClaims) { delete(c, "aud") })) }},
		{"NoSession", func() string { return eddsa(valid(func(c jwt.MapClaims) { delete(c, "sid") })) }},
		{"UnknownSubject", func() string { return eddsa(valid(func(c jwt.MapClaims) { c["sub"] = commands.NewID() })) }},
		{"UnknownKid", func() string {
			return mint(t, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": commands.NewID()}, valid(nil))
		}},
		{"NoKid", func() string { return mint(t, jwt.SigningMethodEdDSA, priv, nil, valid(nil)) }},
		{"PathTraversalKid", func() string {
			return mint(t, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": "../../../../etc/passwd"}, valid(nil))
		}},
		{"RealKidAttackerKey", func() string {
			return mint(t, jwt.SigningMethodEdDSA, attacker, map[string]any{"kid": kid}, valid(nil))
		}},
		{"CritHeader", func() string {
			return mint(t, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": kid, "crit": []string{"exp"}}, valid(nil))
		}},
		{"NotAJWT", func() string { return "not-a-token" }},
	} {
		t.Run(tc.name, func(t *testing.T) { s.refused(t, tc.token()) })
	}
}

// keyURLHeaders offers the verifier keys by URL (jku, x5u) and inline (jwk):
// it must fetch nothing and trust none of them.
func (s *secSuite) keyURLHeaders(t *testing.T) {
	apub, apriv, _ := ed25519.GenerateKey(rand.Reader)
	kid, _ := s.signingKey(t)
	evilKid := commands.NewID()
	jwk := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(apub), "kid": evilKid}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{jwk}})
	}))
	defer srv.Close()
	claims := claimsFor(s.adminID, commands.NewID(), time.Now())
	for name, header := range map[string]map[string]any{
		"JKU":            {"kid": evilKid, "jku": srv.URL + "/jwks.json"},
		"X5U":            {"kid": evilKid, "x5u": srv.URL + "/cert.pem"},
		"EmbeddedJWK":    {"kid": evilKid, "jwk": jwk},
		"EmbeddedJWKKid": {"kid": kid, "jwk": jwk, "jku": srv.URL + "/jwks.json"},
	} {
		t.Run(name, func(t *testing.T) { s.refused(t, mint(t, jwt.SigningMethodEdDSA, apriv, header, claims)) })
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the gateway fetched a key URL %d times", n)
	}
}

// hugeHeader sends 1 MiB of dots as a bearer token.
func (s *secSuite) hugeHeader(t *testing.T) {
	before := s.writes(t)
	req, _ := http.NewRequest("GET", s.d.URL()+"/auth/me", nil)
	req.Header.Set("Authorization", "Bearer "+strings.Repeat(".", 1<<20))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("want a 431 answer, got a transport error: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", res.StatusCode)
	}
	// Just under the server's header limit, the verifier's own bound refuses it.
	expectCode(t, s.as(t, strings.Repeat(".", 32<<10)).do("GET", "/auth/me", ""), 401, "unauthorized")
	s.nothingWritten(t, before)
}

// tokenInURL puts a valid token in the query string: URLs end up in logs,
// so it is refused even though the token itself is good.
func (s *secSuite) tokenInURL(t *testing.T) {
	before := s.writes(t)
	anon := s.as(t, "")
	for _, p := range []string{"access_token", "token", "jwt", "id_token"} {
		expectCode(t, anon.do("GET", "/auth/me?"+p+"="+s.admin.token, ""), 401, "unauthorized")
	}
	expectCode(t, anon.do("POST", "/roles?access_token="+s.admin.token, `{"name":"ViaURL"}`), 401, "unauthorized")
	// Even alongside a good header: the token has leaked into the URL.
	expectCode(t, s.admin.do("GET", "/roles?access_token="+s.admin.token, ""), 401, "unauthorized")
	s.nothingWritten(t, before)
}

// ---- authorisation ----

// routeBodies are valid bodies for the routes that take one, so that the
// route walks are refused for the caller, not for the body
// (RouteBodiesAreValid checks them). Their user ids name user, an existing
// user, so they pass the gateway's check that a user exists.
func routeBodies(user string) map[string]string {
	id := commands.NewID
	return map[string]string{
		"POST /permissions":            `{"name":"walked:read"}`,
		"POST /roles":                  `{"name":"Walked"}`,
		"PATCH /roles/{id}":            `{"name":"Walked"}`,
		"POST /roles/{id}/permissions": `{"permission_id":"` + commands.NewID() + `"}`,
		"POST /users":                  `{"email":"walked@example.com","name":"W","password":"a long enough secret"}`,
		"POST /users/{id}/roles":       `{"role_id":"` + commands.NewID() + `"}`,
		"POST /users/{id}/password":    `{"password":"a long enough secret"}`,
		"POST /auth/login":             `{"email":"walked@example.com","password":"a long enough secret"}`,
		"POST /auth/refresh":           `{"refresh_token":"x"}`,
		"POST /auth/logout":            `{"refresh_token":"x"}`,

		"POST /accounts":                     `{"owner_user_id":"` + user + `","asset":"EUR","name":"Walked"}`,
		"POST /accounts/{id}/deposits":       `{"amount":"1","reference":"walked"}`,
		"POST /accounts/{id}/withdrawals":    `{"amount":"1","reference":"walked"}`,
		"POST /accounts/{id}/freeze":         `{"reason":"walked"}`,
		"POST /accounts/{id}/pay-plan":       `{"pay_plan_id":"` + id() + `"}`,
		"POST /transfers":                    `{"from_account_id":"` + id() + `","to_account_id":"` + id() + `","amount":"1"}`,
		"POST /pay-plans":                    `{"name":"Walked","price":"1","currency":"EUR","interval":"monthly","features":["walked"]}`,
		"POST /pay-plans/{id}/price":         `{"price":"2"}`,
		"POST /message-templates":            `{"name":"Walked","channel":"email","subject":"Hi {{name}}","body":"Hello {{name}}"}`,
		"PUT /message-templates/{id}":        `{"name":"Walked","subject":"Hi","body":"Hello"}`,
		"POST /message-groups":               `{"name":"Walked","description":"walked"}`,
		"POST /message-groups/{id}/members":  `{"user_id":"` + user + `"}`,
		"POST /message-groups/{id}/messages": `{"template_id":"` + id() + `","variables":{"name":"W"}}`,
	}
}

var pathVar = regexp.MustCompile(`\{[^}]+\}`)

// concrete fills a route's path variables with random UUIDs.
func concrete(path string) string {
	return pathVar.ReplaceAllStringFunc(path, func(string) string { return commands.NewID() })
}

// routes returns the running gateway's route table.
func (s *secSuite) routes(t *testing.T) []gateway.Route {
	t.Helper()
	if s.d.gw == nil {
		t.Fatal("the dev platform recorded no gateway")
	}
	return s.d.gw.Routes()
}

func (s *secSuite) everyRouteForbidden(t *testing.T) {
	before := s.writes(t)
	bodies := routeBodies(s.adminID)
	walked := map[string]bool{}
	for _, rt := range s.routes(t) {
		if rt.Permission == gateway.PermPublic || rt.Permission == gateway.PermAuthenticated {
			continue
		}
		name := rt.Method + " " + rt.Path
		r := s.norole.do(rt.Method, concrete(rt.Path), bodies[name], "Prefer", "wait=2")
		if r.Status != 403 || r.str("code") != "forbidden" {
			t.Errorf("%s (needs %s) as a user without roles: %d %s", name, rt.Permission, r.Status, r.Raw)
		}
		walked[name] = true
	}
	for _, must := range []string{"POST /users", "POST /users/{id}/roles", "POST /roles", "GET /users", "DELETE /permissions/{id}",
		"POST /accounts", "GET /accounts/{id}/ledger", "POST /accounts/{id}/freeze", "POST /transfers", "GET /transfers/{id}",
		"POST /pay-plans", "PUT /message-templates/{id}", "DELETE /message-groups/{id}/members/{user_id}", "GET /message-groups/{id}/messages"} {
		if !walked[must] {
			t.Errorf("the route walk missed %s (walked %d routes)", must, len(walked))
		}
	}
	if n := s.count(t, `SELECT count(*) FROM strata.commands WHERE actor=$1`, s.noroleID); n != 0 {
		t.Fatalf("the user without roles has %d commands", n)
	}
	s.nothingWritten(t, before)
}

func (s *secSuite) everyRouteUnauthorized(t *testing.T) {
	before := s.writes(t)
	bodies := routeBodies(s.adminID)
	anon := s.as(t, "")
	n := 0
	for _, rt := range s.routes(t) {
		if rt.Permission == gateway.PermPublic {
			continue
		}
		n++
		r := anon.do(rt.Method, concrete(rt.Path), bodies[rt.Method+" "+rt.Path], "Prefer", "wait=2")
		if r.Status != 401 || r.str("code") != "unauthorized" || r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s without a token: %d %v %s", rt.Method, rt.Path, r.Status, r.Header, r.Raw)
		}
	}
	if n < 20 {
		t.Fatalf("walked only %d non-public routes", n)
	}
	s.nothingWritten(t, before)
}

// routeBodiesValid sends every write route its body from routeBodies (none
// where it has none) as the admin, who may call them all, with an
// Idempotency-Key the gateway refuses only after it has validated the
// body and before it records anything: 400 invalid_header proves the body
// passed, so the route walks above were refused for their caller.
func (s *secSuite) routeBodiesValid(t *testing.T) {
	before := s.writes(t)
	bodies := routeBodies(s.adminID)
	n := 0
	for _, rt := range s.routes(t) {
		name := rt.Method + " " + rt.Path
		if rt.Permission == gateway.PermPublic || rt.Method == http.MethodGet {
			delete(bodies, name)
			continue
		}
		n++
		r := s.admin.do(rt.Method, concrete(rt.Path), bodies[name], "Idempotency-Key", "not a valid key", "Prefer", "wait=2")
		if r.Status != 400 || r.str("code") != "invalid_header" {
			t.Errorf("%s with its walk body %q: %d %s", name, bodies[name], r.Status, r.Raw)
		}
		delete(bodies, name)
	}
	for name := range bodies {
		t.Errorf("routeBodies has %s, which the gateway does not serve", name)
	}
	if n < 25 {
		t.Fatalf("sent only %d write routes", n)
	}
	s.nothingWritten(t, before)
}

// otherUsersCommands: a command's status is visible to its issuer and to
// commands:read:any holders; to anyone else it does not exist.
func (s *secSuite) otherUsersCommands(t *testing.T) {
	r := s.admin.do("POST", "/roles", `{"name":"AdminsOwn"}`)
	if r.Status != 202 {
		t.Fatalf("create role: %d %s", r.Status, r.Raw)
	}
	id := r.str("command_id")
	if got := s.admin.do("GET", "/commands/"+id+"?wait=10", ""); got.Status != 200 || got.str("status") != "projected" {
		t.Fatalf("the admin's own command: %d %s", got.Status, got.Raw)
	}
	before := s.writes(t)
	hidden := s.norole.do("GET", "/commands/"+id, "")
	expectCode(t, hidden, 404, "not_found")
	expectCode(t, s.norole.do("GET", "/commands/"+id+"/stream", ""), 404, "not_found")
	expectCode(t, s.norole.do("GET", "/commands/"+id+"?wait=1", ""), 404, "not_found")
	// Indistinguishable from a command that does not exist.
	missing := s.norole.do("GET", "/commands/"+commands.NewID(), "")
	if hidden.str("detail") != missing.str("detail") || hidden.str("title") != missing.str("title") {
		t.Fatalf("another user's command is distinguishable from none: %s / %s", hidden.Raw, missing.Raw)
	}
	s.nothingWritten(t, before)
}

func (s *secSuite) massAssignment(t *testing.T) {
	before := s.writes(t)
	for _, body := range []string{
		`{"name":"Mass","actor":{"user_id":"` + s.noroleID + `"}}`,
		`{"name":"Mass","actor":"` + s.noroleID + `"}`,
		`{"name":"Mass","version":7}`,
		`{"name":"Mass","id":"` + commands.NewID() + `"}`,
		`{"name":"Mass","aggregate_id":"` + commands.NewID() + `"}`,
		`{"name":"Mass","expected_version":0}`,
	} {
		r := s.admin.do("POST", "/roles", body, "Prefer", "wait=5")
		expectCode(t, r, 400, "validation_failed")
	}
	s.nothingWritten(t, before)
	role := s.admin.wait("POST", "/roles", `{"name":"MassTarget"}`, 201).str("id")
	before = s.writes(t)
	expectCode(t, s.admin.do("PATCH", "/roles/"+role, `{"name":"X","version":1}`), 400, "validation_failed")
	expectCode(t, s.admin.do("POST", "/users/"+s.noroleID+"/roles", `{"role_id":"`+role+`","actor":"x"}`), 400, "validation_failed")
	expectCode(t, s.admin.do("POST", "/users", `{"email":"m@example.com","name":"M","password":"a long enough secret","id":"`+s.adminID+`"}`), 400, "validation_failed")
	s.nothingWritten(t, before)
	if n := s.count(t, `SELECT count(*) FROM auth_read.roles WHERE name ILIKE 'mass'`); n != 0 {
		t.Fatalf("%d roles named Mass", n)
	}
}

func (s *secSuite) bodyTooLarge(t *testing.T) {
	before := s.writes(t)
	big := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
	expectCode(t, s.admin.do("POST", "/roles", big), 413, "body_too_large")
	expectCode(t, s.as(t, "").do("POST", "/auth/login", `{"email":"a@example.com","password":"`+strings.Repeat("a", 1<<20)+`"}`), 413, "body_too_large")
	s.nothingWritten(t, before)
}

func (s *secSuite) clampsLimit(t *testing.T) {
	for _, path := range []string{"/roles", "/permissions", "/users"} {
		huge := s.admin.do("GET", path+"?limit=1000000", "")
		capped := s.admin.do("GET", path+"?limit="+strconv.Itoa(gateway.MaxLimit), "")
		if huge.Status != 200 || capped.Status != 200 {
			t.Fatalf("%s: %d / %d", path, huge.Status, capped.Status)
		}
		items, _ := huge.Body["items"].([]any)
		if len(items) == 0 || len(items) > gateway.MaxLimit || string(huge.Raw) != string(capped.Raw) {
			t.Fatalf("%s?limit=1000000 differs from limit=%d: %s / %s", path, gateway.MaxLimit, huge.Raw, capped.Raw)
		}
	}
	expectCode(t, s.admin.do("GET", "/roles?limit=0", ""), 400, "invalid_query")
	expectCode(t, s.admin.do("GET", "/roles?limit=-1", ""), 400, "invalid_query")
	expectCode(t, s.admin.do("GET", "/roles?limit=99999999999999999999999", ""), 400, "invalid_query")
}

// ---- revocation ----

// refresh posts a refresh token.
func (s *secSuite) refresh(t *testing.T, token string) reply {
	t.Helper()
	return s.as(t, "").do("POST", "/auth/refresh", `{"refresh_token":"`+token+`"}`)
}

// revokedWithin waits until token gets 401 on /auth/me.
func (s *secSuite) revokedWithin(t *testing.T, token string, what string) {
	t.Helper()
	c := s.as(t, token)
	start := time.Now()
	testkit.Eventually(t, revocationWithin, func() bool { return c.do("GET", "/auth/me", "").Status == 401 },
		"the access token still works after %s", what)
	t.Logf("%s took effect after %v", what, time.Since(start).Round(10*time.Millisecond))
}

func (s *secSuite) disabledUser(t *testing.T) {
	const email, pw = "disabled@example.com", "soon to be disabled"
	id := s.register(t, email, pw)
	u := s.as(t, "")
	refresh := u.login(email, pw).str("refresh_token")
	other := s.as(t, "").do("POST", "/auth/login", `{"email":"`+email+`","password":"`+pw+`"}`).str("refresh_token")
	if r := u.do("GET", "/auth/me", ""); r.Status != 200 {
		t.Fatalf("me: %d", r.Status)
	}
	s.admin.wait("POST", "/users/"+id+"/disable", "", 200)
	s.revokedWithin(t, u.token, "disabling the user")

	before := s.writes(t)
	expectCode(t, u.do("GET", "/auth/me", ""), 401, "unauthorized")
	expectCode(t, u.do("GET", "/commands/"+commands.NewID(), ""), 401, "unauthorized")
	expectCode(t, s.refresh(t, refresh), 401, "invalid_refresh_token")
	s.nothingWritten(t, before)

	// A disabled user's right password gets the answer a wrong one gets.
	right := s.as(t, "").do("POST", "/auth/login", `{"email":"`+email+`","password":"`+pw+`"}`)
	wrong := s.as(t, "").do("POST", "/auth/login", `{"email":"`+email+`","password":"not the password"}`)
	expectCode(t, right, 401, "invalid_credentials")
	sameProblem(t, right, wrong)

	// Enabled again, the sessions from before stay ended; a new login works
	// once the cached status expires.
	s.admin.wait("POST", "/users/"+id+"/enable", "", 200)
	expectCode(t, s.refresh(t, other), 401, "invalid_refresh_token")
	again := s.login(t, email, pw)
	testkit.Eventually(t, revocationWithin, func() bool { return again.do("GET", "/auth/me", "").Status == 200 },
		"a new login after enable does not work")
	if r := again.do("GET", "/auth/me", ""); r.str("status") != "active" {
		t.Fatalf("after enable: %d %s", r.Status, r.Raw)
	}
	expectCode(t, u.do("GET", "/auth/me", ""), 401, "unauthorized")
}

// passwordChange: a password reset ends the user's sessions, so whoever
// stole one loses it.
func (s *secSuite) passwordChange(t *testing.T) {
	const email, old, next = "changed@example.com", "the old password", "the new password"
	id := s.register(t, email, old)
	u := s.as(t, "")
	refresh := u.login(email, old).str("refresh_token")
	s.admin.wait("POST", "/users/"+id+"/password", `{"password":"`+next+`"}`, 200)
	s.revokedWithin(t, u.token, "a password change")
	expectCode(t, s.refresh(t, refresh), 401, "invalid_refresh_token")
	expectCode(t, s.as(t, "").do("POST", "/auth/login", `{"email":"`+email+`","password":"`+old+`"}`), 401, "invalid_credentials")
	if r := s.login(t, email, next).do("GET", "/auth/me", ""); r.Status != 200 {
		t.Fatalf("a login with the new password: %d %s", r.Status, r.Raw)
	}
}

func (s *secSuite) refreshReuse(t *testing.T) {
	r1 := s.as(t, "").do("POST", "/auth/login", `{"email":"norole@example.com","password":"no role at all, 1"}`)
	a1, rt1 := r1.str("access_token"), r1.str("refresh_token")
	r2 := s.refresh(t, rt1)
	if r2.Status != 200 || r2.str("refresh_token") == "" || r2.str("refresh_token") == rt1 {
		t.Fatalf("refresh: %d %s", r2.Status, r2.Raw)
	}
	a2, rt2 := r2.str("access_token"), r2.str("refresh_token")
	if claimsOf(t, a2)["sid"] != claimsOf(t, a1)["sid"] {
		t.Fatal("a refresh changed the session id")
	}
	if r := s.as(t, a2).do("GET", "/auth/me", ""); r.Status != 200 {
		t.Fatalf("new access token: %d", r.Status)
	}
	before := s.writes(t)
	expectCode(t, s.refresh(t, rt1), 401, "invalid_refresh_token") // reuse: stolen
	expectCode(t, s.refresh(t, rt2), 401, "invalid_refresh_token") // the whole family is gone
	s.revokedWithin(t, a2, "reusing a refresh token")
	expectCode(t, s.as(t, a1).do("GET", "/auth/me", ""), 401, "unauthorized")
	expectCode(t, s.refresh(t, "not-a-refresh-token"), 401, "invalid_refresh_token")
	s.nothingWritten(t, before)
	// Other sessions of the user are untouched.
	if r := s.norole.do("GET", "/auth/me", ""); r.Status != 200 {
		t.Fatalf("another session of the user: %d", r.Status)
	}
}

func (s *secSuite) logout(t *testing.T) {
	r := s.as(t, "").do("POST", "/auth/login", `{"email":"norole@example.com","password":"no role at all, 1"}`)
	access, refresh := r.str("access_token"), r.str("refresh_token")
	if got := s.as(t, access).do("GET", "/auth/me", ""); got.Status != 200 {
		t.Fatalf("before logout: %d", got.Status)
	}
	before := s.writes(t)
	if out := s.as(t, "").do("POST", "/auth/logout", `{"refresh_token":"`+refresh+`"}`); out.Status != 204 {
		t.Fatalf("logout: %d %s", out.Status, out.Raw)
	}
	s.revokedWithin(t, access, "logout")
	expectCode(t, s.refresh(t, refresh), 401, "invalid_refresh_token")
	s.nothingWritten(t, before)
}

func (s *secSuite) revokedRole(t *testing.T) {
	perms := s.admin.do("GET", "/permissions?name=roles:read", "")
	items, _ := perms.Body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("permission roles:read: %s", perms.Raw)
	}
	permID := items[0].(map[string]any)["id"].(string)
	role := s.admin.wait("POST", "/roles", `{"name":"RoleReaders"}`, 201).str("id")
	s.admin.wait("POST", "/roles/"+role+"/permissions", `{"permission_id":"`+permID+`"}`, 200)
	const email, pw = "reader@example.com", "reads the roles"
	id := s.register(t, email, pw)
	s.admin.wait("POST", "/users/"+id+"/roles", `{"role_id":"`+role+`"}`, 200)
	reader := s.login(t, email, pw)
	if r := reader.do("GET", "/roles", ""); r.Status != 200 {
		t.Fatalf("with the role: %d %s", r.Status, r.Raw)
	}
	expectCode(t, reader.do("GET", "/users", ""), 403, "forbidden") // only roles:read
	s.admin.wait("DELETE", "/users/"+id+"/roles/"+role, "", 200)
	start := time.Now()
	testkit.Eventually(t, revocationWithin, func() bool { return reader.do("GET", "/roles", "").Status == 403 },
		"GET /roles still allowed after the role was revoked")
	t.Logf("role revocation took effect after %v", time.Since(start).Round(10*time.Millisecond))
	expectCode(t, reader.do("GET", "/roles", ""), 403, "forbidden")
	if r := reader.do("GET", "/auth/me", ""); r.Status != 200 {
		t.Fatalf("the user is still signed in: %d", r.Status)
	}
}

// ---- login ----

// sameProblem fails unless two problems differ at most in instance.
func sameProblem(t *testing.T, a, b reply) {
	t.Helper()
	if a.Status != b.Status {
		t.Fatalf("statuses %d and %d", a.Status, b.Status)
	}
	for k := range a.Body {
		if _, ok := b.Body[k]; !ok && k != "instance" {
			t.Fatalf("only one answer has %q: %s / %s", k, a.Raw, b.Raw)
		}
	}
	for k, v := range b.Body {
		if k != "instance" && a.Body[k] != v {
			t.Fatalf("answers differ in %q: %s / %s", k, a.Raw, b.Raw)
		}
	}
	for _, k := range []string{"code", "title", "detail"} {
		if a.str(k) == "" {
			t.Fatalf("no %s: %s", k, a.Raw)
		}
	}
}

func (s *secSuite) loginThrottle(t *testing.T) {
	const email, pw = "throttled@example.com", "the right password"
	id := s.register(t, email, pw)
	anon := s.as(t, "")
	loginBody := func(e, p string) string { return `{"email":"` + e + `","password":"` + p + `"}` }
	loginEvents := func(e string) int {
		return s.count(t, `SELECT count(*) FROM auth.events WHERE aggregate_type='login' AND aggregate_id=$1`, domain.LoginID(e))
	}
	before := s.writes(t)

	ghost := anon.do("POST", "/auth/login", loginBody("ghost@example.com", "wrong password 0"))
	expectCode(t, ghost, 401, "invalid_credentials")
	for i := 1; i <= domain.MaxFailures; i++ {
		wrong := anon.do("POST", "/auth/login", loginBody(email, "wrong password "+strconv.Itoa(i)))
		expectCode(t, wrong, 401, "invalid_credentials")
		sameProblem(t, ghost, wrong)
	}
	throttled := anon.do("POST", "/auth/login", loginBody(strings.ToUpper(email), pw)) // right password, other spelling
	expectCode(t, throttled, 429, "too_many_attempts")
	if ra, err := strconv.Atoi(throttled.Header.Get("Retry-After")); err != nil || ra <= 0 {
		t.Fatalf("Retry-After %q", throttled.Header.Get("Retry-After"))
	}
	if throttled.str("access_token") != "" {
		t.Fatal("a throttled login issued a token")
	}

	// Every attempt is in the journal, and only there.
	if got := loginEvents(email); got != domain.MaxFailures+1 {
		t.Fatalf("%d login events for %s, want %d", got, email, domain.MaxFailures+1)
	}
	if got := loginEvents("ghost@example.com"); got != 1 {
		t.Fatalf("%d login events for the unknown email", got)
	}
	var failed, throttledN int
	err := s.d.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE data->>'reason'='bad_credentials'),
		count(*) FILTER (WHERE data->>'reason'='throttled') FROM auth.events WHERE aggregate_id=$1 AND type LIKE 'auth.LoginFailed.v%'`,
		domain.LoginID(email)).Scan(&failed, &throttledN)
	if err != nil || failed != domain.MaxFailures || throttledN != 1 {
		t.Fatalf("LoginFailed: %d bad credentials, %d throttled (%v)", failed, throttledN, err)
	}
	after := s.writes(t)
	if after.events != before.events+domain.MaxFailures+2 || after.commands != before.commands || after.staged != before.staged {
		t.Fatalf("login attempts wrote %+v → %+v", before, after)
	}

	s.noPasswordAnywhere(t, id, email, pw)
}

// concurrentGuesses fires a burst of wrong passwords at one account at
// once: no more than MaxFailures of them may be checked, so the throttle
// cannot be outrun by parallel requests, and the right password is refused
// afterwards.
func (s *secSuite) concurrentGuesses(t *testing.T) {
	const email, pw, burst = "burst@example.com", "the right password", 16
	s.register(t, email, pw)
	login := func(password string) reply {
		return s.as(t, "").do("POST", "/auth/login", `{"email":"`+email+`","password":"`+password+`"}`)
	}
	codes := make(chan string, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			r := login("wrong password " + strconv.Itoa(i))
			codes <- strconv.Itoa(r.Status) + " " + r.str("code")
		})
	}
	wg.Wait()
	close(codes)
	got := map[string]int{}
	for c := range codes {
		got[c]++
	}
	if got["401 invalid_credentials"] > domain.MaxFailures ||
		got["401 invalid_credentials"]+got["429 too_many_attempts"] != burst {
		t.Fatalf("a burst of %d wrong passwords was answered %v: want at most %d checked, the rest 429",
			burst, got, domain.MaxFailures)
	}
	if n := s.count(t, `SELECT count(*) FROM auth.events WHERE aggregate_id=$1 AND data->>'reason'='bad_credentials'`,
		domain.LoginID(email)); n > domain.MaxFailures {
		t.Fatalf("%d bad passwords were checked", n)
	}
	expectCode(t, login(pw), 429, "too_many_attempts")
	t.Logf("burst answers: %v", got)
}

// noPasswordAnywhere scans the journal, the command statuses and every
// record of the auth topics for a user's password and its stored hash.
func (s *secSuite) noPasswordAnywhere(t *testing.T, userID, email, pw string) {
	t.Helper()
	ctx := context.Background()
	var hash []byte
	if err := s.d.pool.QueryRow(ctx, `SELECT value FROM auth.secrets WHERE aggregate_id=$1 AND kind=$2`,
		userID, domain.SecretPassword).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	digest := string(hash[strings.LastIndexByte(string(hash), '$')+1:])
	if !strings.HasPrefix(string(hash), "$argon2id$") || len(digest) < 20 {
		t.Fatalf("stored hash %q", hash)
	}
	secrets := []string{pw, string(hash), digest}
	leaks := func(where, text string) {
		t.Helper()
		for _, sec := range secrets {
			if strings.Contains(text, sec) {
				t.Errorf("%s holds the password or its hash", where)
			}
		}
	}
	rows, err := s.d.pool.Query(ctx, `SELECT type, data::text || metadata::text FROM auth.events`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var typ, text string
		if err := rows.Scan(&typ, &text); err != nil {
			t.Fatal(err)
		}
		leaks("event "+typ, text)
		n++
	}
	if rows.Err() != nil || n == 0 {
		t.Fatalf("scanned %d events: %v", n, rows.Err())
	}

	// The idempotency hash of the registration must not be a fast hash of
	// a body that holds the password (an offline guess would skip argon2).
	var reqHash []byte
	if err := s.d.pool.QueryRow(ctx, `SELECT request_hash FROM strata.commands WHERE type='auth.RegisterUser' AND aggregate_id=$1`,
		userID).Scan(&reqHash); err != nil {
		t.Fatal(err)
	}
	body := `{"email":"` + email + `","name":"` + email + `","password":"` + pw + `"}`
	if h := sha256.Sum256([]byte("POST /users\n\n" + body)); string(h[:]) == string(reqHash) {
		t.Error("strata.commands.request_hash is SHA-256 of a body holding the password")
	}

	msgs := drainTopics(t, s.d.KafkaAddr(), commands.CommandTopic(domain.Service), "auth.user", "auth.login")
	sawRegistration := false
	for _, m := range msgs {
		text := string(m.Value)
		for _, h := range m.Headers {
			text += h.Key + "=" + string(h.Value) + "\n"
		}
		leaks(m.Topic+" record", text)
		sawRegistration = sawRegistration || (m.Topic == commands.CommandTopic(domain.Service) && strings.Contains(text, email))
	}
	if !sawRegistration {
		t.Fatalf("scanned %d records and not the registration of %s", len(msgs), email)
	}
}

// drainTopics reads every record of topics from the start until a second
// passes without one.
func drainTopics(t *testing.T, addr string, topics ...string) []kafkago.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderOptions{Brokers: []string{addr}, GroupID: "scan-" + commands.NewID(), Topics: topics})
	defer r.Close()
	var out []kafkago.Message
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := r.FetchMessage(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatalf("read %v: %v", topics, err)
		}
		out = append(out, m)
	}
}

// ---- forged commands ----

func (s *secSuite) forgedCommands(t *testing.T) {
	key, err := commands.LoadOrCreateKey(filepath.Join(s.dir, "command.key"))
	if err != nil {
		t.Fatal(err)
	}
	w := kafka.NewWriter([]string{s.d.KafkaAddr()}, commands.CommandTopic(domain.Service))
	defer w.Close()
	envelope := func(name string) (*commands.Envelope, []byte) {
		env := &commands.Envelope{
			ID: commands.NewID(), Type: "auth.CreateRole", AggregateID: commands.NewID(),
			Actor: commands.Actor{UserID: s.adminID}, IssuedAt: time.Now().UTC(), CorrelationID: commands.NewID(),
			Payload: json.RawMessage(`{"name":"` + name + `"}`),
		}
		b, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return env, b
	}
	produce := func(env *commands.Envelope, value []byte, sig string) {
		m := kafkago.Message{Key: []byte(env.AggregateID), Value: value}
		if sig != "" {
			m.Headers = []kafkago.Header{{Key: commands.SignatureHeader, Value: []byte(sig)}}
		}
		if err := w.WriteMessages(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	outcome := func(env *commands.Envelope) (status, code string) {
		testkit.Eventually(t, 10*time.Second, func() bool {
			return s.count(t, `SELECT count(*) FROM strata.commands WHERE id=$1 AND status <> 'pending'`, env.ID) == 1
		}, "command %s never decided", env.ID)
		var c *string
		if err := s.d.pool.QueryRow(context.Background(), `SELECT status, code FROM strata.commands WHERE id=$1`, env.ID).Scan(&status, &c); err != nil {
			t.Fatal(err)
		}
		if c != nil {
			code = *c
		}
		return status, code
	}
	roleEvents := func(env *commands.Envelope) int {
		return s.count(t, `SELECT count(*) FROM auth.events WHERE aggregate_id=$1`, env.AggregateID)
	}

	unsigned, ub := envelope("ForgedUnsigned")
	wrong, wb := envelope("ForgedWrongSig")
	other, ob := envelope("ForgedBorrowedSig")
	_, signedElsewhere := envelope("SomethingElse")
	produce(unsigned, ub, "")
	produce(wrong, wb, hex.EncodeToString(make([]byte, 32)))
	produce(other, ob, key.Sign(signedElsewhere)) // a genuine signature of another envelope
	for _, env := range []*commands.Envelope{unsigned, wrong, other} {
		if st, code := outcome(env); st != commands.StatusRejected || code != "forged_command" {
			t.Errorf("%s: %s/%s, want rejected/forged_command", env.Payload, st, code)
		}
		if n := roleEvents(env); n != 0 {
			t.Errorf("%s: %d events for its aggregate", env.Payload, n)
		}
		r := s.admin.do("GET", "/commands/"+env.ID, "")
		if r.Status != 200 || r.str("code") != "forged_command" {
			t.Errorf("status of %s: %d %s", env.ID, r.Status, r.Raw)
		}
	}

	// Control: the same path with the real signature is obeyed, so the
	// rejections above are the signature's doing.
	genuine, gb := envelope("GenuineViaKafka")
	produce(genuine, gb, key.Sign(gb))
	if st, code := outcome(genuine); st == commands.StatusRejected || code != "" {
		t.Fatalf("a correctly signed command: %s/%s", st, code)
	}
	if n := s.count(t, `SELECT count(*) FROM auth.events WHERE aggregate_id=$1 AND type LIKE 'auth.RoleCreated.v%'`, genuine.AggregateID); n != 1 {
		t.Fatalf("the genuine command made %d RoleCreated", n)
	}
}

// ---- key rotation ----

func (s *secSuite) rotateKeys(t *testing.T) {
	oldKid, _ := s.signingKey(t)
	oldToken := s.admin.token
	if claimsOf(t, oldToken)["sub"] == nil {
		t.Fatal("no admin token")
	}
	cfg := config.Default()
	cfg.DatabaseURL, cfg.LogLevel = s.db, "warn"
	m := NewAdminMain(cfg, "rotate-keys", io.Discard)
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("rotate-keys: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	newKid, _ := s.signingKey(t)
	if newKid == oldKid {
		t.Fatal("rotate-keys made no new key")
	}
	if r := s.admin.do("GET", "/auth/me", ""); r.Status != 200 {
		t.Fatalf("a token of the old key after rotation: %d", r.Status)
	}
	anon := s.as(t, "")
	var kids []string
	testkit.Eventually(t, 6*time.Second, func() bool {
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		r := anon.do("GET", "/.well-known/jwks.json", "")
		_ = json.Unmarshal(r.Raw, &set)
		kids = kids[:0]
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		return len(kids) == 2
	}, "the JWKS never listed two keys")
	if kids[0] != newKid || kids[1] != oldKid {
		t.Fatalf("JWKS kids %v, want [%s %s]", kids, newKid, oldKid)
	}
	fresh := s.login(t, adminEmail, adminPassword)
	tok, _, err := jwt.NewParser().ParseUnverified(fresh.token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["kid"] != newKid {
		t.Fatalf("a new login's kid %v, want %s", tok.Header["kid"], newKid)
	}
	if r := fresh.do("GET", "/auth/me", ""); r.Status != 200 {
		t.Fatalf("a token of the new key: %d", r.Status)
	}
	if r := s.as(t, oldToken).do("GET", "/auth/me", ""); r.Status != 200 {
		t.Fatalf("a token of the old key after the reload: %d", r.Status)
	}
}
