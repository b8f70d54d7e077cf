package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/strata-cqrs/strata/commands"
)

func (g *Gateway) commandRoutes() {
	g.handle(http.MethodGet, "/commands/{id}", PermAuthenticated, g.commandStatus)
	g.handle(http.MethodGet, "/commands/{id}/stream", PermAuthenticated, g.commandStream)
}

// commandStatus answers a command's status; ?wait=N long-polls until the
// status is terminal or N seconds passed.
func (g *Gateway) commandStatus(w http.ResponseWriter, r *http.Request) {
	wait := time.Duration(0)
	if s := r.URL.Query().Get("wait"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeProblem(w, r, codeBadQuery, "wait must be a number of seconds")
			return
		}
		wait = min(time.Duration(n)*time.Second, g.cfg.MaxWait)
	}
	st, ok := g.visibleStatus(w, r)
	if !ok {
		return
	}
	if wait > 0 && !st.Terminal() {
		var err error
		if st, err = g.waitTerminal(r.Context(), st.ID, wait); err != nil {
			g.internal(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, st)
}

// visibleStatus loads the command named in the path if the caller may see
// it; otherwise it answers 404 itself.
func (g *Gateway) visibleStatus(w http.ResponseWriter, r *http.Request) (*commands.Status, bool) {
	id := mux.Vars(r)["id"]
	if !isUUID(id) {
		writeProblem(w, r, "not_found", "no command has this id")
		return nil, false
	}
	st, err := g.cfg.Statuses.Get(r.Context(), id)
	if errors.Is(err, commands.ErrNotFound) || (err == nil && !visible(r, st)) {
		writeProblem(w, r, "not_found", "no command has this id")
		return nil, false
	}
	if err != nil {
		g.internal(w, r, err)
		return nil, false
	}
	return st, true
}

// visible reports whether the caller may see a command: its issuer, or a
// holder of commands:read:any. Anyone else is told it does not exist.
func visible(r *http.Request, st *commands.Status) bool {
	p, ok := principalFrom(r.Context())
	return ok && (st.Actor == p.UserID || p.Can("commands:read:any"))
}

// streamLimit bounds how long one status stream stays open.
const streamLimit = 5 * time.Minute

// commandStream sends the command's status as Server-Sent Events: the
// current one at once, then each change, closing after a terminal status.
func (g *Gateway) commandStream(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		g.internal(w, r, errors.New("response writer cannot flush"))
		return
	}
	st, ok := g.visibleStatus(w, r)
	if !ok {
		return
	}
	ch, cancel := g.hub.Subscribe(st.ID)
	defer cancel()
	var err error
	if st, err = g.cfg.Statuses.Get(r.Context(), st.ID); err != nil { // a change may have come before Subscribe
		g.internal(w, r, err)
		return
	}
	// The server's write timeout is for ordinary answers; a stream lives
	// up to streamLimit.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(streamLimit + 5*time.Second))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	deadline := time.NewTimer(streamLimit)
	defer deadline.Stop()
	last := ""
	for {
		if st.Status != last {
			b, _ := json.Marshal(st)
			fmt.Fprintf(w, "event: status\ndata: %s\n\n", b)
			flusher.Flush()
			last = st.Status
		}
		if st.Terminal() {
			return
		}
		select {
		case <-ch:
		case <-time.After(time.Second):
		case <-deadline.C:
			return
		case <-r.Context().Done():
			return
		}
		if st, err = g.cfg.Statuses.Get(r.Context(), st.ID); err != nil {
			return
		}
	}
}
