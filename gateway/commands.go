package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/strata-cqrs/strata/commands"
)

func (g *Gateway) commandRoutes() {
	g.handle(http.MethodGet, "/commands/{id}", "commands:read", g.commandStatus)
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
