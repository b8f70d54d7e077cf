package gateway

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	authread "github.com/strata-cqrs/strata/projections/auth"
)

// Route permissions that are not resource:action strings.
const (
	// PermPublic marks a route anyone may call.
	PermPublic = "public"
	// PermAuthenticated marks a route any signed-in, active user may call.
	PermAuthenticated = "authenticated"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID      string
	SessionID   string
	Permissions map[string]bool
}

// Can reports whether the principal holds a permission.
func (p *Principal) Can(perm string) bool { return p.Permissions[perm] }

// Grants returns the object-level permissions (those ending in ":any") the
// principal holds, sorted; they travel in the signed command envelope.
func (p *Principal) Grants() []string {
	var out []string
	for perm, ok := range p.Permissions {
		if ok && strings.HasSuffix(perm, ":any") {
			out = append(out, perm)
		}
	}
	slices.Sort(out)
	return out
}

const principalKey ctxKey = iota + 100

func principalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey).(*Principal)
	return p, ok
}

// queryTokenParams are query parameters in which clients commonly put
// tokens; a request carrying one is refused, since URLs end up in logs.
var queryTokenParams = []string{"access_token", "token", "jwt", "id_token"}

// authorize wraps a handler with authentication and the route's permission
// check. Missing or bad credentials are 401; a valid caller without the
// permission is 403.
func (g *Gateway) authorize(perm string, next http.HandlerFunc) http.HandlerFunc {
	if perm == PermPublic {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		p, detail := g.authenticate(r)
		if p == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
			writeProblem(w, r, codeUnauthorized, detail)
			return
		}
		if perm != PermAuthenticated && !p.Can(perm) {
			writeProblem(w, r, codeForbidden, "this requires the permission "+perm)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	}
}

// authenticate returns the request's principal, or nil and why not.
func (g *Gateway) authenticate(r *http.Request) (*Principal, string) {
	q := r.URL.Query()
	for _, k := range queryTokenParams {
		if q.Has(k) {
			return nil, "tokens in the URL are refused; send Authorization: Bearer"
		}
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, "send Authorization: Bearer <access token>"
	}
	claims, err := g.cfg.Tokens.Verify(strings.TrimSpace(token))
	if err != nil {
		g.log.Debug("token refused", "err", err, "request_id", requestIDFrom(r.Context()))
		return nil, "the access token is invalid or expired"
	}
	a, err := g.access.get(r.Context(), claims.Subject)
	if err != nil {
		g.log.Error("load access", "err", err)
		return nil, "the access token could not be checked"
	}
	if !a.Active || a.Revoked[claims.SessionID] {
		return nil, "the access token is no longer valid"
	}
	return &Principal{UserID: claims.Subject, SessionID: claims.SessionID, Permissions: a.Permissions}, ""
}

// AccessSource reads what authorisation needs: the user's status and
// effective permissions, and the sessions revoked by logout.
type AccessSource interface {
	Access(ctx context.Context, userID string) (authread.Access, error)
	RevokedSessions(ctx context.Context, userID string) (map[string]bool, error)
}

// access is a user's authorisation facts as cached.
type access struct {
	authread.Access
	Revoked map[string]bool
	at      time.Time
}

// accessCache caches access per user for at most ttl, so a revoked role,
// a disabled user or a logout takes effect within ttl.
type accessCache struct {
	src AccessSource
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]access
}

func newAccessCache(src AccessSource, ttl time.Duration) *accessCache {
	return &accessCache{src: src, ttl: ttl, m: map[string]access{}}
}

func (c *accessCache) get(ctx context.Context, userID string) (access, error) {
	now := time.Now()
	c.mu.Lock()
	a, ok := c.m[userID]
	c.mu.Unlock()
	if ok && now.Sub(a.at) < c.ttl {
		return a, nil
	}
	base, err := c.src.Access(ctx, userID)
	if err != nil {
		return access{}, err
	}
	revoked, err := c.src.RevokedSessions(ctx, userID)
	if err != nil {
		return access{}, err
	}
	a = access{Access: base, Revoked: revoked, at: now}
	c.mu.Lock()
	if len(c.m) > 100_000 {
		for k, v := range c.m {
			if now.Sub(v.at) >= c.ttl {
				delete(c.m, k)
			}
		}
	}
	c.m[userID] = a
	c.mu.Unlock()
	return a, nil
}
