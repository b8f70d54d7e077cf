package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	domain "github.com/strata-cqrs/strata/aggregates/auth"
	authcmd "github.com/strata-cqrs/strata/commands/auth"
	"github.com/strata-cqrs/strata/internal/tokens"
	"github.com/strata-cqrs/strata/schemas"
)

// Passwords hashes and checks passwords with bounded concurrency.
type Passwords interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (bool, error)
	Dummy(ctx context.Context, password string)
}

// Logins reads credentials and records login attempts in the journal.
type Logins interface {
	Lookup(ctx context.Context, email string) (authcmd.Credentials, bool, error)
	Throttled(ctx context.Context, email string, now time.Time) (bool, time.Duration, error)
	Record(ctx context.Context, attempt domain.RecordLogin, correlationID string) error
}

// TokenVerifier verifies access tokens.
type TokenVerifier interface {
	Verify(token string) (*tokens.Claims, error)
}

// TokenIssuer issues access tokens.
type TokenIssuer interface {
	Access(userID, sessionID string, now time.Time) (string, time.Duration, error)
}

// Sessions manages refresh tokens.
type Sessions interface {
	Start(ctx context.Context, userID string) (refresh, sessionID string, err error)
	Rotate(ctx context.Context, refresh string) (userID, newRefresh, sessionID string, err error)
	Revoke(ctx context.Context, refresh string) error
	// RevokeUser ends every session of a user.
	RevokeUser(ctx context.Context, userID string) error
}

// JWKS serves the public signing keys.
type JWKS interface {
	JWKS() []byte
}

// tokenPair is the body of a successful login or refresh.
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

func (g *Gateway) loginRoutes() {
	g.handle(http.MethodPost, "/auth/login", PermPublic, g.login)
	g.handle(http.MethodPost, "/auth/refresh", PermPublic, g.refresh)
	g.handle(http.MethodPost, "/auth/logout", PermPublic, g.logout)
	g.handle(http.MethodGet, "/auth/me", PermAuthenticated, g.me)
	g.handle(http.MethodGet, "/.well-known/jwks.json", PermPublic, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write(g.cfg.Keys.JWKS())
	})
}

// login checks a password and issues tokens. Unknown email and wrong
// password get the same answer after similar work; every attempt is
// recorded in the journal; an email with 5 bad passwords in 15 minutes is
// refused with 429 until the oldest leaves the window. Attempts on one
// email run one at a time (loginGate), so parallel guesses cannot outrun
// the throttle.
func (g *Gateway) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if !g.decode(w, r, &in) {
		return
	}
	if in.Email == "" || in.Password == "" || len(in.Email) > domain.MaxEmail || utf8.RuneCountInString(in.Password) > domain.MaxPassword {
		writeProblem(w, r, codeValidation, "email (1-254 bytes) and password (1-128 characters) are required")
		return
	}
	if !domain.ValidEmail(domain.NormalizeEmail(in.Email)) {
		// Not an address, so no account: answer like a wrong password, but
		// record nothing, since what was typed (a password, perhaps) would
		// otherwise reach the journal and the auth.login topic.
		g.cfg.Passwords.Dummy(r.Context(), in.Password)
		writeProblem(w, r, codeInvalidCredentials, "the email or password is wrong")
		return
	}
	leave, entered := g.enterLogin(w, r, in.Email)
	if !entered {
		return
	}
	defer leave()
	ctx, now, corr := r.Context(), time.Now(), requestIDFrom(r.Context())
	attempt := domain.RecordLogin{Email: in.Email}
	throttled, wait, err := g.cfg.Logins.Throttled(ctx, in.Email, now)
	if err != nil {
		g.internal(w, r, err)
		return
	}
	if throttled {
		attempt.Reason = domain.ReasonThrottled
		g.recordLogin(ctx, attempt, corr)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeProblem(w, r, codeTooManyAttempts, "too many failed logins for this account; retry later")
		return
	}
	creds, found, err := g.cfg.Logins.Lookup(ctx, in.Email)
	if err != nil {
		g.internal(w, r, err)
		return
	}
	hctx, cancel := context.WithTimeout(ctx, hashWait)
	defer cancel()
	ok := false
	if found {
		attempt.UserID = creds.UserID
		ok, err = g.cfg.Passwords.Verify(hctx, in.Password, creds.Hash)
	} else {
		g.cfg.Passwords.Dummy(hctx, in.Password)
		err = hctx.Err()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		writeProblem(w, r, codeBusy, "too many logins at once; retry shortly")
		return
	}
	if err != nil {
		g.internal(w, r, err)
		return
	}
	switch {
	case !ok:
		attempt.Reason = domain.ReasonBadCredentials
	case creds.Disabled:
		attempt.Reason = domain.ReasonDisabled
	}
	attempt.Succeeded = attempt.Reason == ""
	if err := g.cfg.Logins.Record(ctx, attempt, corr); err != nil {
		g.internal(w, r, err) // an attempt that cannot be audited does not log in
		return
	}
	if !attempt.Succeeded {
		writeProblem(w, r, codeInvalidCredentials, "the email or password is wrong")
		return
	}
	refresh, sid, err := g.cfg.Sessions.Start(ctx, creds.UserID)
	if err != nil {
		g.internal(w, r, err)
		return
	}
	g.issue(w, r, creds.UserID, sid, refresh)
}

// loginGate lets one login attempt per account (login aggregate id) run at
// a time in this gateway, from the throttle check to the recorded outcome.
// Without it a burst of parallel guesses would all pass the check before
// the first failure was recorded, and every one would be tried. Across G
// gateways a burst can still have MaxFailures+G-1 passwords checked.
type loginGate struct {
	mu    sync.Mutex
	slots map[string]*loginSlot
}

type loginSlot struct {
	held  chan struct{} // capacity 1: full while an attempt runs
	users int           // attempts running or waiting; the slot goes at 0
}

func newLoginGate() *loginGate { return &loginGate{slots: map[string]*loginSlot{}} }

// enter waits until no other attempt on key runs, or ctx is done (then it
// returns ctx's error). The caller must call leave once its attempt is
// recorded.
func (l *loginGate) enter(ctx context.Context, key string) (leave func(), err error) {
	l.mu.Lock()
	s := l.slots[key]
	if s == nil {
		s = &loginSlot{held: make(chan struct{}, 1)}
		l.slots[key] = s
	}
	s.users++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		if s.users--; s.users == 0 {
			delete(l.slots, key)
		}
		l.mu.Unlock()
	}
	select {
	case s.held <- struct{}{}:
		return func() { <-s.held; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}

// enterLogin waits for the account's turn at the login gate. It answers the
// request itself (503 busy) and returns false when the wait was too long.
func (g *Gateway) enterLogin(w http.ResponseWriter, r *http.Request, email string) (leave func(), ok bool) {
	ctx, cancel := context.WithTimeout(r.Context(), hashWait)
	defer cancel()
	leave, err := g.gate.enter(ctx, domain.LoginID(email))
	if err != nil {
		writeProblem(w, r, codeBusy, "too many logins at once for this account; retry shortly")
		return nil, false
	}
	return leave, true
}

// recordLogin records an attempt whose answer does not depend on the
// record succeeding (throttled ones); failures are logged.
func (g *Gateway) recordLogin(ctx context.Context, a domain.RecordLogin, corr string) {
	if err := g.cfg.Logins.Record(ctx, a, corr); err != nil {
		g.log.Error("record login attempt", "err", err)
	}
}

// issue answers a token pair.
func (g *Gateway) issue(w http.ResponseWriter, r *http.Request, userID, sid, refresh string) {
	tok, ttl, err := g.cfg.Issuer.Access(userID, sid, time.Now())
	if err != nil {
		g.internal(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenPair{AccessToken: tok, RefreshToken: refresh, TokenType: "Bearer", ExpiresIn: int(ttl.Seconds())})
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

// refresh rotates a refresh token; reusing an old one revokes its family.
func (g *Gateway) refresh(w http.ResponseWriter, r *http.Request) {
	var in refreshBody
	if !g.decode(w, r, &in) {
		return
	}
	userID, next, sid, err := g.cfg.Sessions.Rotate(r.Context(), in.RefreshToken)
	if errors.Is(err, tokens.ErrRefreshReused) {
		g.log.Warn("security: refresh token reused; its session was revoked", "security", true, "user_id", userID)
	}
	if errors.Is(err, tokens.ErrInvalidRefresh) || errors.Is(err, tokens.ErrRefreshReused) {
		writeProblem(w, r, codeInvalidRefresh, "the refresh token is invalid, expired or revoked")
		return
	}
	if err != nil {
		g.internal(w, r, err)
		return
	}
	a, err := g.access.src.Access(r.Context(), userID)
	if err != nil {
		g.internal(w, r, err)
		return
	}
	if !a.Active {
		writeProblem(w, r, codeInvalidRefresh, "the refresh token is invalid, expired or revoked")
		return
	}
	g.issue(w, r, userID, sid, next)
}

// logout revokes the refresh token's session; its access tokens stop
// working within the access cache's TTL. It is idempotent: an unknown or
// already revoked token is also 204, so a client may retry it.
func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	var in refreshBody
	if !g.decode(w, r, &in) {
		return
	}
	err := g.cfg.Sessions.Revoke(r.Context(), in.RefreshToken)
	if err != nil && !errors.Is(err, tokens.ErrInvalidRefresh) {
		g.internal(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// me answers the caller, their roles and effective permissions.
func (g *Gateway) me(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	u, err := g.cfg.Auth.User(r.Context(), p.UserID)
	if err != nil {
		g.internal(w, r, err)
		return
	}
	perms := make([]string, 0, len(p.Permissions))
	for perm := range p.Permissions {
		perms = append(perms, perm)
	}
	sort.Strings(perms)
	writeJSON(w, http.StatusOK, map[string]any{
		"id": u.ID, "email": u.Email, "name": u.Name, "status": u.Status, "roles": u.Roles, "permissions": perms,
	})
}

// decode reads a JSON body into v, refusing unknown fields; it answers the
// request itself and returns false on bad input.
func (g *Gateway) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, code, detail := readBody(w, r, true)
	if code != "" {
		writeProblem(w, r, code, detail)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if field := unknownField(err); field != "" {
			writeProblem(w, r, codeValidation, "the request body is not valid", schemas.FieldError{Field: "/" + field, Message: "unknown field"})
			return false
		}
		writeProblem(w, r, codeMalformedJSON, "the request body must be a JSON object: "+jsonErr(err))
		return false
	}
	return true
}

// unknownField extracts the field name from encoding/json's unknown field
// error, or returns "".
func unknownField(err error) string {
	f, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return ""
	}
	return strings.Trim(f, `"`)
}
