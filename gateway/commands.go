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
	g.handle(http.MethodGet, "/commands/{id}", "commands:read", g.commandStatus)
	g.handle(http.MethodGet, "/commands/{id}/stream", "commands:read", g.commandStream)
}

// streamLimit bounds how long one status stream stays open.
const streamLimit = 5 * time.Minute

// commandStream sends the command's status as Server-Sent Events: the
// current one at once, then each change, closing after a terminal status.
func (g *Gateway) commandStream(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	flusher, ok := w.(http.Flusher)
	if !isUUID(id) || !ok {
		writeProblem(w, r, "not_found", "no command has this id")
		return
	}
	ch, cancel := g.hub.Subscribe(id)
	defer cancel()
	st, err := g.cfg.Statuses.Get(r.Context(), id)
	if errors.Is(err, commands.ErrNotFound) {
		writeProblem(w, r, "not_found", "no command has this id")
		return
	}
	if err != nil {
		g.internal(w, r, err)
		return
	}
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
		if st, err = g.cfg.Statuses.Get(r.Context(), id); err != nil {
			return
		}
	}
}

// commandStatus answers a command's status; ?wait=N long-polls until the
// status is terminal or N seconds passed.
func (g *Gateway) commandStatus(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if !isUUID(id) {
		writeProblem(w, r, "not_found", "no command has this id")
		return
	}
	var st *commands.Status
	var err error
	if s := r.URL.Query().Get("wait"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 0 {
			writeProblem(w, r, codeBadQuery, "wait must be a number of seconds")
			return
		}
		st, err = g.waitTerminal(r.Context(), id, min(time.Duration(n)*time.Second, g.cfg.MaxWait))
	} else {
		st, err = g.cfg.Statuses.Get(r.Context(), id)
	}
	if errors.Is(err, commands.ErrNotFound) {
		writeProblem(w, r, "not_found", "no command has this id")
		return
	}
	if err != nil {
		g.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
