package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	domain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
	authcmd "github.com/strata-cqrs/strata/commands/auth"
	"github.com/strata-cqrs/strata/internal/tokens"
	authread "github.com/strata-cqrs/strata/projections/auth"
	"github.com/strata-cqrs/strata/schemas"
)

// fakeDeps stands in for every dependency of the gateway whose methods do
// not clash: it answers zero values and records the submissions and the
// users whose sessions were ended. A bearer
// token is taken as the user id it authenticates.
type fakeDeps struct {
	mu      sync.Mutex
	subs    []commands.Submission
	revoked []string // users whose sessions were ended
	sent    []string // command ids produced
	failed  []string // command ids marked failed

	sendErr, pendingErr error // what Send and InsertPending answer
	pendingFails        int   // how many InsertPending calls get pendingErr; -1: all
}

var (
	_ Sender        = (*fakeDeps)(nil)
	_ StatusStore   = (*fakeDeps)(nil)
	_ Validator     = (*fakeDeps)(nil)
	_ AuthQueries   = (*fakeDeps)(nil)
	_ TokenVerifier = (*fakeDeps)(nil)
	_ TokenIssuer   = (*fakeDeps)(nil)
	_ JWKS          = (*fakeDeps)(nil)
	_ Sessions      = (*fakeDeps)(nil)
	_ Logins        = (*fakeDeps)(nil)
	_ AccessSource  = fakeAccess(nil)
	_ Passwords     = fakePasswords{}
)

func (f *fakeDeps) Send(_ context.Context, env *commands.Envelope) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, env.ID)
	return f.sendErr
}

func (f *fakeDeps) InsertPending(_ context.Context, sub commands.Submission) (*commands.Status, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, sub)
	if f.pendingErr != nil && f.pendingFails != 0 {
		f.pendingFails--
		return nil, false, f.pendingErr
	}
	return &commands.Status{ID: sub.Envelope.ID, AggregateID: sub.Envelope.AggregateID, Status: commands.StatusPending}, false, nil
}

func (f *fakeDeps) submissions() []commands.Submission {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]commands.Submission(nil), f.subs...)
}

func (f *fakeDeps) MarkFailed(_ context.Context, id, _, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = append(f.failed, id)
	return nil
}
func (*fakeDeps) Get(context.Context, string) (*commands.Status, error) {
	return nil, commands.ErrNotFound
}
func (*fakeDeps) ValidateCommand(string, []byte) ([]schemas.FieldError, error) { return nil, nil }

func (*fakeDeps) Permission(context.Context, string) (*authread.Permission, error) {
	return nil, authread.ErrNotFound
}
func (*fakeDeps) Permissions(context.Context, authread.ListParams) ([]authread.Permission, error) {
	return nil, nil
}
func (*fakeDeps) Role(context.Context, string) (*authread.Role, error) {
	return nil, authread.ErrNotFound
}
func (*fakeDeps) Roles(context.Context, authread.ListParams) ([]authread.Role, error) {
	return nil, nil
}
func (*fakeDeps) User(_ context.Context, id string) (*authread.User, error) {
	return &authread.User{ID: id}, nil
}
func (*fakeDeps) Users(context.Context, authread.ListParams) ([]authread.User, error) {
	return nil, nil
}

func (*fakeDeps) Verify(token string) (*tokens.Claims, error) {
	if token == "" || strings.ContainsAny(token, ". ") {
		return nil, tokens.ErrInvalidToken
	}
	return &tokens.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: token, ID: "j"}, SessionID: "s"}, nil
}
func (*fakeDeps) Access(string, string, time.Time) (string, time.Duration, error) { return "", 0, nil }
func (*fakeDeps) JWKS() []byte                                                    { return []byte(`{"keys":[]}`) }
func (*fakeDeps) Start(context.Context, string) (string, string, error)           { return "", "", nil }
func (*fakeDeps) Rotate(context.Context, string) (string, string, string, error) {
	return "", "", "", tokens.ErrInvalidRefresh
}
func (*fakeDeps) Revoke(context.Context, string) error { return nil }
func (f *fakeDeps) RevokeUser(_ context.Context, userID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, userID)
	return nil
}
func (*fakeDeps) Lookup(context.Context, string) (authcmd.Credentials, bool, error) {
	return authcmd.Credentials{}, false, nil
}
func (*fakeDeps) Throttled(context.Context, string, time.Time) (bool, time.Duration, error) {
	return false, 0, nil
}
func (*fakeDeps) Record(context.Context, domain.RecordLogin, string) error { return nil }

// fakeAccess holds each user's permissions; every listed user is active.
type fakeAccess map[string][]string

func (f fakeAccess) Access(_ context.Context, userID string) (authread.Access, error) {
	perms, ok := f[userID]
	a := authread.Access{Active: ok, Permissions: map[string]bool{}}
	for _, p := range perms {
		a.Permissions[p] = true
	}
	return a, nil
}
func (fakeAccess) RevokedSessions(context.Context, string) (map[string]bool, error) { return nil, nil }

// fakePasswords "hashes" by prefixing and never matches.
type fakePasswords struct{}

func (fakePasswords) Hash(_ context.Context, pw string) (string, error)    { return "$fake$" + pw, nil }
func (fakePasswords) Verify(context.Context, string, string) (bool, error) { return false, nil }
func (fakePasswords) Dummy(context.Context, string)                        {}

// newTestGateway builds a gateway on fakes, with users and their
// permissions. Its pool is never dialled: pgxpool connects lazily and no
// route these tests call touches Postgres (the hub is not run).
func newTestGateway(t *testing.T, users fakeAccess) (*Gateway, *fakeDeps) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/never")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	deps := &fakeDeps{}
	g, err := New(Config{
		Pool: pool, Bus: deps, Statuses: deps, Schemas: deps, Auth: deps, OpenAPI: schemas.FS,
		Logger: slog.New(slog.DiscardHandler),
		Tokens: deps, Issuer: deps, Keys: deps, Sessions: deps, Access: users, Passwords: fakePasswords{}, Logins: deps,
	})
	if err != nil {
		t.Fatal(err)
	}
	return g, deps
}

// serve sends one request to g as user ("" for none) and returns the response.
func serve(g *Gateway, user, method, path, body string) *httptest.ResponseRecorder {
	return serveWith(g, user, method, path, body)
}

// serveWith is serve with more request headers, as name/value pairs; a pair
// with an empty value is left out.
func serveWith(g *Gateway, user, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+user)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	return rec
}

var _ http.Handler = (*Gateway)(nil)
