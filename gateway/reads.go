package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	authread "github.com/strata-cqrs/strata/projections/auth"
)

// Page bounds.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// page is the body of every list.
type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// listParams parses limit (clamped to MaxLimit), cursor and the route's
// filter parameter.
func listParams(r *http.Request, filter string) (authread.ListParams, string) {
	q := r.URL.Query()
	p := authread.ListParams{Limit: DefaultLimit, Name: q.Get(filter)}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return p, "limit must be a positive integer"
		}
		p.Limit = min(n, MaxLimit)
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || !isUUID(string(b)) {
			return p, "cursor is not one this API returned"
		}
		p.After = string(b)
	}
	return p, ""
}

// list answers a paginated list; fetch gets limit+1 rows so the handler
// knows whether a next page exists.
func list[T any](g *Gateway, filter string, fetch func(context.Context, authread.ListParams) ([]T, error), id func(T) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, bad := listParams(r, filter)
		if bad != "" {
			writeProblem(w, r, codeBadQuery, bad)
			return
		}
		limit := p.Limit
		p.Limit++
		items, err := fetch(r.Context(), p)
		if err != nil {
			g.internal(w, r, err)
			return
		}
		out := page[T]{Items: items}
		if len(items) > limit {
			out.Items = items[:limit]
			c := base64.RawURLEncoding.EncodeToString([]byte(id(items[limit-1])))
			out.NextCursor = &c
		}
		if out.Items == nil {
			out.Items = []T{}
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// get answers one resource with its ETag; If-None-Match gives 304.
func get[T any](g *Gateway, fetch func(context.Context, string) (T, int64, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["id"]
		if !isUUID(id) {
			writeProblem(w, r, "not_found", "no resource has this id")
			return
		}
		res, version, err := fetch(r.Context(), id)
		if errors.Is(err, authread.ErrNotFound) {
			writeProblem(w, r, "not_found", "no resource has this id")
			return
		}
		if err != nil {
			g.internal(w, r, err)
			return
		}
		tag := etag(version)
		w.Header().Set("ETag", tag)
		if r.Header.Get("If-None-Match") == tag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}
