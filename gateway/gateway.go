// Package gateway is the HTTP API: it decodes and validates requests, signs
// and submits commands, waits for their outcome on request, and answers
// queries from the read models. Errors are problem+json with stable codes.
package gateway

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-cqrs/strata/commands"
	authread "github.com/strata-cqrs/strata/projections/auth"
	"github.com/strata-cqrs/strata/schemas"
)

// Sender produces a signed command; commands.Bus implements it.
type Sender interface {
	Send(ctx context.Context, env *commands.Envelope) error
}

// StatusStore records and reads command results; commands.StatusStore
// implements it.
type StatusStore interface {
	InsertPending(ctx context.Context, sub commands.Submission) (*commands.Status, bool, error)
	MarkFailed(ctx context.Context, id, code, reason string) error
	Get(ctx context.Context, id string) (*commands.Status, error)
}

// Validator checks command payloads against their JSON Schemas.
type Validator interface {
	ValidateCommand(qualifiedType string, payload []byte) ([]schemas.FieldError, error)
}

// AuthQueries reads the auth read models.
type AuthQueries interface {
	Permission(ctx context.Context, id string) (*authread.Permission, error)
	Permissions(ctx context.Context, p authread.ListParams) ([]authread.Permission, error)
	Role(ctx context.Context, id string) (*authread.Role, error)
	Roles(ctx context.Context, p authread.ListParams) ([]authread.Role, error)
	User(ctx context.Context, id string) (*authread.User, error)
	Users(ctx context.Context, p authread.ListParams) ([]authread.User, error)
}

// Check is one readiness check; a nil error means ready.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config configures the gateway.
type Config struct {
	Pool     *pgxpool.Pool // for the status notification listener
	Bus      Sender
	Statuses StatusStore
	Schemas  Validator
	Auth     AuthQueries
	// Accounts, when set, serves the account service's routes.
	Accounts AccountQueries
	Checks   []Check
	Metrics  *prometheus.Registry
	OpenAPI  fs.FS // holds openapi.yaml
	Logger   *slog.Logger

	// Security.
	Tokens    TokenVerifier
	Issuer    TokenIssuer
	Keys      JWKS
	Sessions  Sessions
	Access    AccessSource
	Passwords Passwords
	Logins    Logins
	// AccessTTL is how long a user's permissions and status are cached: a
	// revocation takes effect within it. Default and maximum 2s.
	AccessTTL time.Duration

	// MaxWait caps Prefer: wait and ?wait=. Default 30s.
	MaxWait time.Duration
}

// Validate reports every missing setting.
func (c *Config) Validate() error {
	var errs []error
	if c.Pool == nil {
		errs = append(errs, errors.New("gateway: Pool is required"))
	}
	if c.Bus == nil || c.Statuses == nil || c.Schemas == nil || c.Auth == nil {
		errs = append(errs, errors.New("gateway: Bus, Statuses, Schemas and Auth are required"))
	}
	if c.Tokens == nil || c.Issuer == nil || c.Keys == nil || c.Sessions == nil || c.Access == nil ||
		c.Passwords == nil || c.Logins == nil {
		errs = append(errs, errors.New("gateway: Tokens, Issuer, Keys, Sessions, Access, Passwords and Logins are required"))
	}
	return errors.Join(errs...)
}

// Route is one registered route and the permission it requires: a
// resource:action string, PermAuthenticated or PermPublic.
type Route struct {
	Method     string
	Path       string
	Permission string
}

// Gateway is the HTTP handler of the API.
type Gateway struct {
	cfg    Config
	router *mux.Router
	hub    *Hub
	log    *slog.Logger
	routes []Route
	http   *httpMetrics
	access *accessCache
	gate   *loginGate
}

// New builds the gateway and its routes.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AccessTTL <= 0 || cfg.AccessTTL > 2*time.Second {
		cfg.AccessTTL = 2 * time.Second
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 30 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	g := &Gateway{
		cfg:    cfg,
		router: mux.NewRouter(),
		log:    cfg.Logger.With("component", "gateway"),
		hub:    NewHub(cfg.Pool, cfg.Logger.With("component", "gateway.hub")),
		http:   newHTTPMetrics(cfg.Metrics),
		access: newAccessCache(cfg.Access, cfg.AccessTTL),
		gate:   newLoginGate(),
	}
	g.router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, "not_found", "no such route")
	})
	g.router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, codeMethod, "method not allowed on this route")
	})
	g.router.Use(g.requestID, g.recoverer, g.instrument)
	g.opsRoutes()
	g.loginRoutes()
	g.commandRoutes()
	g.authRoutes()
	if g.cfg.Accounts != nil {
		g.accountRoutes()
	}
	return g, nil
}

// Run serves the status-notification hub until ctx is done.
func (g *Gateway) Run(ctx context.Context) error { return g.hub.Run(ctx) }

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.router.ServeHTTP(w, r) }

// Routes lists every registered route with its permission.
func (g *Gateway) Routes() []Route { return g.routes }

// handle registers a route behind the permission it requires.
func (g *Gateway) handle(method, path, permission string, h http.HandlerFunc) {
	g.routes = append(g.routes, Route{Method: method, Path: path, Permission: permission})
	g.router.Handle(path, g.authorize(permission, h)).Methods(method)
}

func (g *Gateway) opsRoutes() {
	g.handle(http.MethodGet, "/healthz", PermPublic, healthz)
	g.handle(http.MethodGet, "/readyz", PermPublic, g.readyz)
	metrics := promhttp.HandlerFor(g.cfg.Metrics, promhttp.HandlerOpts{})
	g.handle(http.MethodGet, "/metrics", PermPublic, metrics.ServeHTTP)
	g.handle(http.MethodGet, "/openapi.yaml", PermPublic, g.openAPI)
	if g.cfg.OpenAPI != nil {
		files := http.StripPrefix("/schemas/", http.FileServerFS(g.cfg.OpenAPI))
		g.routes = append(g.routes, Route{Method: http.MethodGet, Path: "/schemas/", Permission: PermPublic})
		g.router.PathPrefix("/schemas/").Methods(http.MethodGet).Handler(files)
	}
}

// openAPI serves openapi.yaml with its file-relative references ("./x")
// rewritten to the /schemas/ tree the gateway also serves, so HTTP clients
// resolve them.
func (g *Gateway) openAPI(w http.ResponseWriter, r *http.Request) {
	if g.cfg.OpenAPI == nil {
		writeProblem(w, r, "not_found", "no OpenAPI document configured")
		return
	}
	b, err := fs.ReadFile(g.cfg.OpenAPI, "openapi.yaml")
	if err != nil {
		g.internal(w, r, err)
		return
	}
	b = bytes.ReplaceAll(b, []byte("$ref: './"), []byte("$ref: '/schemas/"))
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(b)
}

// healthz answers 200 while the process serves requests.
func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is 200 only when every check passes.
func (g *Gateway) readyz(w http.ResponseWriter, r *http.Request) { writeReadiness(w, r, g.cfg.Checks) }

// OpsHandler serves what a process without the gateway shows its
// operators (`strata service`): GET /healthz (the process answers),
// /readyz (checks, as the gateway's) and /metrics (Prometheus, from
// metrics).
func OpsHandler(checks []Check, metrics *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { writeReadiness(w, r, checks) })
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	return mux
}

// writeReadiness runs every check within 2 s and answers 200 with "ready"
// or 503 with "not ready", each check's result by name.
func writeReadiness(w http.ResponseWriter, r *http.Request, all []Check) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	for _, c := range all {
		if err := c.Check(ctx); err != nil {
			checks[c.Name] = err.Error()
			status = http.StatusServiceUnavailable
		} else {
			checks[c.Name] = "ok"
		}
	}
	word := "ready"
	if status != http.StatusOK {
		word = "not ready"
	}
	writeJSON(w, status, map[string]any{"status": word, "checks": checks})
}

// internal logs an unexpected error and answers 500 without its details.
func (g *Gateway) internal(w http.ResponseWriter, r *http.Request, err error) {
	g.log.Error("internal error", "err", err, "method", r.Method, "path", r.URL.Path,
		"request_id", requestIDFrom(r.Context()))
	writeProblem(w, r, codeInternal, "an internal error occurred; it has been logged")
}
