package gateway

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	domain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
)

// permissionShape is resource:action[:scope].
var permissionShape = regexp.MustCompile(`^[a-z]+:[a-z]+(:[a-z]+)?$`)

// TestRoutesDeclareKnownPermissions: deny by default means every route
// names its permission, and a permission that no one can hold (a typo, or
// one missing from the built-ins) would lock the route for good.
func TestRoutesDeclareKnownPermissions(t *testing.T) {
	g, _ := newTestGateway(t, nil)
	seen := map[string]bool{}
	for _, rt := range g.Routes() {
		name := rt.Method + " " + rt.Path
		if seen[name] {
			t.Errorf("%s is registered twice", name)
		}
		seen[name] = true
		switch p := rt.Permission; {
		case p == "":
			t.Errorf("%s declares no permission", name)
		case p == PermPublic || p == PermAuthenticated:
		case !permissionShape.MatchString(p):
			t.Errorf("%s: permission %q is not resource:action[:scope]", name, p)
		case !slices.Contains(domain.BuiltinPermissions, p):
			t.Errorf("%s: permission %q is not a built-in permission", name, p)
		}
	}
	if len(seen) < 20 {
		t.Fatalf("only %d routes", len(seen))
	}
}

func TestPublicRoutesAreExactlyTheExpectedOnes(t *testing.T) {
	g, _ := newTestGateway(t, nil)
	var got []string
	for _, rt := range g.Routes() {
		if rt.Permission == PermPublic {
			got = append(got, rt.Path)
		}
	}
	want := []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/schemas/",
		"/auth/login", "/auth/refresh", "/auth/logout", "/.well-known/jwks.json"}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("public routes\n got %v\nwant %v", got, want)
	}
}

// TestRouterServesOnlyListedRoutes: Routes() is what the router serves, so
// a handler added to the router without a permission cannot hide from the
// tests above.
func TestRouterServesOnlyListedRoutes(t *testing.T) {
	g, _ := newTestGateway(t, nil)
	listed := map[string]bool{}
	for _, rt := range g.Routes() {
		listed[rt.Method+" "+rt.Path] = true
	}
	served := 0
	err := g.router.Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := r.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := r.GetMethods()
		if err != nil {
			t.Errorf("%s serves every method", path)
			return nil
		}
		for _, m := range methods {
			served++
			if !listed[m+" "+path] {
				t.Errorf("%s %s is served but not in Routes()", m, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if served != len(listed) {
		t.Fatalf("the router serves %d method+path pairs, Routes() lists %d", served, len(listed))
	}
}

// TestRoutesEnforceTheirPermission: for every route, no token is 401; a
// caller with every other built-in permission is 403; the declared
// permission alone gets past authorisation.
func TestRoutesEnforceTheirPermission(t *testing.T) {
	users := fakeAccess{"signed-in": nil}
	probe, _ := newTestGateway(t, nil)
	for _, rt := range probe.Routes() {
		if p := rt.Permission; p != PermPublic && p != PermAuthenticated {
			users["only-"+p] = []string{p}
			users["all-but-"+p] = slices.DeleteFunc(slices.Clone(domain.BuiltinPermissions), func(q string) bool { return q == p })
		}
	}
	g, _ := newTestGateway(t, users)
	vars := regexp.MustCompile(`\{[^}]+\}`)
	for _, rt := range g.Routes() {
		if rt.Permission == PermPublic {
			continue
		}
		name := rt.Method + " " + rt.Path
		path := vars.ReplaceAllStringFunc(rt.Path, func(string) string { return commands.NewID() })
		if rec := serve(g, "", rt.Method, path, "{}"); rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s without a token: %d", name, rec.Code)
		}
		if rec := serve(g, "not.a.token", rt.Method, path, "{}"); rec.Code != 401 {
			t.Errorf("%s with a bad token: %d", name, rec.Code)
		}
		allowed := "signed-in"
		if rt.Permission != PermAuthenticated {
			allowed = "only-" + rt.Permission
			rec := serve(g, "all-but-"+rt.Permission, rt.Method, path, "{}")
			if rec.Code != 403 || !strings.Contains(rec.Body.String(), `"code":"forbidden"`) {
				t.Errorf("%s with every permission but %s: %d %s", name, rt.Permission, rec.Code, rec.Body)
			}
		}
		if rec := serve(g, allowed, rt.Method, path, "{}"); rec.Code == 401 || rec.Code == 403 {
			t.Errorf("%s as %s: %d %s", name, allowed, rec.Code, rec.Body)
		}
	}
}
