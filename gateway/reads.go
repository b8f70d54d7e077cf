package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/strata-cqrs/strata/projections"
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

// listParams parses limit (clamped to MaxLimit), cursor (an id) and the
// route's filter parameter.
func listParams(r *http.Request, filter string) (authread.ListParams, string) {
	p := authread.ListParams{Limit: DefaultLimit}
	if filter != "" {
		p.Name = r.URL.Query().Get(filter)
	}
	var bad string
	if p.Limit, bad = parseLimit(r); bad != "" {
		return p, bad
	}
	if p.After, bad = parseCursor(r); bad == "" && p.After != "" && !isUUID(p.After) {
		bad = "cursor is not one this API returned"
	}
	return p, bad
}

// parseLimit parses ?limit=, clamped to MaxLimit.
func parseLimit(r *http.Request) (int, string) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return DefaultLimit, ""
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, "limit must be a positive integer"
	}
	return min(n, MaxLimit), ""
}

// parseCursor decodes ?cursor=, an opaque token this API returned.
func parseCursor(r *http.Request) (string, string) {
	c := r.URL.Query().Get("cursor")
	if c == "" {
		return "", ""
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 {
		return "", "cursor is not one this API returned"
	}
	return string(b), ""
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
		writePage(w, items, limit, id)
	}
}

// writePage writes a page of at most limit items out of the limit+1
// fetched, with the cursor of the last one when there are more.
func writePage[T any](w http.ResponseWriter, items []T, limit int, cursorOf func(T) string) {
	out := page[T]{Items: items}
	if len(items) > limit {
		out.Items = items[:limit]
		c := base64.RawURLEncoding.EncodeToString([]byte(cursorOf(items[limit-1])))
		out.NextCursor = &c
	}
	if out.Items == nil {
		out.Items = []T{}
	}
	writeJSON(w, http.StatusOK, out)
}

// get answers one resource with its ETag; If-None-Match gives 304.
func get[T any](g *Gateway, fetch func(context.Context, string) (T, int64, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var version int64
		res, ok := fetchOne(g, w, r, mux.Vars(r)["id"], func(ctx context.Context, id string) (res T, err error) {
			res, version, err = fetch(ctx, id)
			return res, err
		})
		if !ok {
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

// fetchOne reads the resource id names and answers 404 (an id that is not
// a UUID, or no resource) or 500 itself when it cannot; ok says whether it
// found the resource.
func fetchOne[T any](g *Gateway, w http.ResponseWriter, r *http.Request, id string, fetch func(context.Context, string) (T, error)) (res T, ok bool) {
	if !isUUID(id) {
		writeProblem(w, r, "not_found", "no resource has this id")
		return res, false
	}
	res, err := fetch(r.Context(), id)
	if errors.Is(err, projections.ErrNotFound) {
		writeProblem(w, r, "not_found", "no resource has this id")
		return res, false
	}
	if err != nil {
		g.internal(w, r, err)
		return res, false
	}
	return res, true
}
