package gateway

import (
	"context"
	"net/http"

	authread "github.com/strata-cqrs/strata/projections/auth"
)

func (g *Gateway) authRoutes() {
	perm := func(ctx context.Context, id string) (any, int64, error) {
		p, err := g.cfg.Auth.Permission(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		return p, p.Version, nil
	}
	role := func(ctx context.Context, id string) (any, int64, error) {
		r, err := g.cfg.Auth.Role(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		return r, r.Version, nil
	}
	user := func(ctx context.Context, id string) (any, int64, error) {
		u, err := g.cfg.Auth.User(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		return u, u.Version, nil
	}

	g.handle(http.MethodPost, "/permissions", "permissions:write",
		g.submit(write{Type: "auth.CreatePermission", Creates: true, Body: true, Read: perm, Path: "/permissions"}))
	g.handle(http.MethodGet, "/permissions", "permissions:read",
		list(g, "name", g.cfg.Auth.Permissions, func(p authread.Permission) string { return p.ID }))
	g.handle(http.MethodGet, "/permissions/{id}", "permissions:read", get(g, perm))
	g.handle(http.MethodDelete, "/permissions/{id}", "permissions:write",
		g.submit(write{Type: "auth.DeletePermission"}))

	g.handle(http.MethodPost, "/roles", "roles:write",
		g.submit(write{Type: "auth.CreateRole", Creates: true, Body: true, Read: role, Path: "/roles"}))
	g.handle(http.MethodGet, "/roles", "roles:read",
		list(g, "name", g.cfg.Auth.Roles, func(r authread.Role) string { return r.ID }))
	g.handle(http.MethodGet, "/roles/{id}", "roles:read", get(g, role))
	g.handle(http.MethodPatch, "/roles/{id}", "roles:write",
		g.submit(write{Type: "auth.RenameRole", Body: true, Read: role}))
	g.handle(http.MethodDelete, "/roles/{id}", "roles:write", g.submit(write{Type: "auth.DeleteRole"}))
	g.handle(http.MethodPost, "/roles/{id}/permissions", "roles:write",
		g.submit(write{Type: "auth.GrantPermission", Body: true, Read: role}))
	g.handle(http.MethodDelete, "/roles/{id}/permissions/{permission_id}", "roles:write",
		g.submit(write{Type: "auth.RevokePermission", FromPath: map[string]string{"permission_id": "permission_id"}, Read: role}))

	g.handle(http.MethodPost, "/users", "users:write",
		g.submit(write{Type: "auth.RegisterUser", Creates: true, Body: true, Secret: "password", Read: user, Path: "/users"}))
	g.handle(http.MethodGet, "/users", "users:read",
		list(g, "email", g.cfg.Auth.Users, func(u authread.User) string { return u.ID }))
	g.handle(http.MethodGet, "/users/{id}", "users:read", get(g, user))
	g.handle(http.MethodPost, "/users/{id}/roles", "roles:assign",
		g.submit(write{Type: "auth.AssignRole", Body: true, Read: user}))
	g.handle(http.MethodDelete, "/users/{id}/roles/{role_id}", "roles:assign",
		g.submit(write{Type: "auth.RevokeRole", FromPath: map[string]string{"role_id": "role_id"}, Read: user}))
	g.handle(http.MethodPost, "/users/{id}/password", "users:write",
		g.submit(write{Type: "auth.ChangePassword", Body: true, Secret: "password", Read: user, EndsSessions: true}))
	g.handle(http.MethodPost, "/users/{id}/disable", "users:write",
		g.submit(write{Type: "auth.DisableUser", Read: user, EndsSessions: true}))
	g.handle(http.MethodPost, "/users/{id}/enable", "users:write", g.submit(write{Type: "auth.EnableUser", Read: user}))
}
