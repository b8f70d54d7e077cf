package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/commands"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// write describes one command route.
type write struct {
	Type    string // qualified command type, "auth.CreateRole"
	Creates bool   // the gateway allocates the aggregate id
	Body    bool   // the request body is (part of) the payload
	// Optional lets a Body route be called without a body (all its fields
	// are optional).
	Optional bool
	// FromPath copies path variables into payload fields: field → variable.
	FromPath map[string]string
	// Read returns the resource once projected (nil for deletions) and the
	// path it lives at.
	Read func(ctx context.Context, id string) (any, int64, error)
	Path string // resource collection, e.g. "/roles"
	// Secret names a body field ("password") that is hashed and staged
	// instead of travelling in the command.
	Secret string
	// EndsSessions revokes every session of the user the command is about
	// (a password change, a disable) before the command is produced, so a
	// stolen refresh token does not outlive it.
	EndsSessions bool
	// Then, when set, names the command that finishes what this write
	// started (the last step of a process): Prefer: wait waits for it too,
	// within the same bound, so a transfer answers completed or failed.
	Then func(aggregateID string) string
	// Failed, when set, reports a resource whose process ended in failure
	// (a transfer whose debit was refused): Prefer: wait answers it as the
	// refusal it is, problem+json with the code, like a refused command.
	Failed func(resource any) (code, detail string)
	// Guard, when set, refuses a request before anything is recorded: an
	// object-level check (code and detail of the problem, or "").
	Guard func(ctx context.Context, p *Principal, aggregateID string, payload map[string]json.RawMessage) (code, detail string)
}

// accepted is the 202 body.
type accepted struct {
	CommandID   string `json:"command_id"`
	AggregateID string `json:"aggregate_id"`
	Status      string `json:"status"`
	StatusURL   string `json:"status_url"`
}

// submit returns the handler of a command route: decode, validate, record
// pending, produce, and optionally wait for the outcome.
func (g *Gateway) submit(wr write) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		aggID := commands.NewID()
		if !wr.Creates {
			aggID = mux.Vars(r)["id"]
			if !isUUID(aggID) {
				writeProblem(w, r, "not_found", "no resource has this id")
				return
			}
			aggID = aggregates.CanonicalID(aggID) // the journal's spelling, whatever the client's
		}
		body, code, detail := readBody(w, r, wr.Body && !(wr.Optional && r.ContentLength == 0))
		if code != "" {
			writeProblem(w, r, code, detail)
			return
		}
		obj, code, detail := buildPayload(body, wr.FromPath, mux.Vars(r))
		if code != "" {
			writeProblem(w, r, code, detail)
			return
		}
		if wr.Guard != nil {
			p, _ := principalFrom(r.Context())
			if code, detail := wr.Guard(r.Context(), p, aggID, obj); code != "" {
				writeProblem(w, r, code, detail)
				return
			}
		}
		secret, fields := takeSecret(obj, wr.Secret)
		payload, err := json.Marshal(obj)
		if err != nil {
			g.internal(w, r, err)
			return
		}
		more, err := g.cfg.Schemas.ValidateCommand(wr.Type, payload)
		fields = append(fields, more...)
		if err != nil {
			g.internal(w, r, err)
			return
		}
		if len(fields) > 0 {
			writeProblem(w, r, codeValidation, "the request body is not valid", fields...)
			return
		}
		env, detail, ok := g.envelope(r, wr, aggID, payload)
		if !ok {
			writeProblem(w, r, codeUnauthorized, "authentication required")
			return
		}
		if detail != "" {
			writeProblem(w, r, codeBadHeader, detail)
			return
		}
		sub := commands.Submission{Envelope: env}
		if wr.Secret != "" {
			if sub.Secret, ok = g.hashSecret(w, r, wr.Secret, secret); !ok {
				return
			}
		}
		st, ok := g.record(w, r, wr, sub, body)
		if !ok {
			return
		}
		g.respond(w, r, wr, st)
	}
}

// readBody enforces content type, size and JSON-object shape.
func readBody(w http.ResponseWriter, r *http.Request, want bool) (body []byte, code, detail string) {
	if !want {
		return nil, "", ""
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, codeUnsupportedMedia, "Content-Type must be application/json"
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, codeBodyTooLarge, "the request body is larger than 1 MiB"
	}
	if err != nil {
		return nil, codeMalformedJSON, "the request body could not be read"
	}
	return body, "", ""
}

// buildPayload parses the body as a JSON object (trailing data refused)
// and adds the path variables.
func buildPayload(body []byte, fromPath, vars map[string]string) (map[string]json.RawMessage, string, string) {
	obj := map[string]json.RawMessage{}
	if body != nil {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		if err := dec.Decode(&obj); err != nil {
			return nil, codeMalformedJSON, "the request body must be a JSON object: " + jsonErr(err)
		}
		if dec.More() {
			return nil, codeMalformedJSON, "the request body has data after the JSON object"
		}
	}
	for field, v := range fromPath {
		if _, clash := obj[field]; clash {
			return nil, codeValidation, "field " + field + " comes from the URL and may not be in the body"
		}
		val := vars[v]
		if isUUID(val) {
			val = aggregates.CanonicalID(val)
		}
		b, _ := json.Marshal(val)
		obj[field] = b
	}
	return obj, "", ""
}

func jsonErr(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return syn.Error() + " at offset " + strconv.FormatInt(syn.Offset, 10)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return "expected an object"
	}
	return err.Error()
}

var idempotencyKey = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)

// envelope builds the command envelope from the request's principal and
// headers; ok is false without a principal.
func (g *Gateway) envelope(r *http.Request, wr write, aggID string, payload json.RawMessage) (env *commands.Envelope, detail string, ok bool) {
	p, ok := principalFrom(r.Context())
	if !ok {
		return nil, "", false
	}
	env = &commands.Envelope{
		ID:            commands.NewID(),
		Type:          wr.Type,
		AggregateID:   aggID,
		Actor:         commands.Actor{UserID: p.UserID, Grants: p.Grants()},
		IssuedAt:      time.Now().UTC(),
		CorrelationID: requestIDFrom(r.Context()),
		Payload:       payload,
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		if !idempotencyKey.MatchString(k) {
			return nil, "Idempotency-Key must be 1-200 visible ASCII characters", true
		}
		env.IdempotencyKey = k
	}
	if m := r.Header.Get("If-Match"); m != "" && !wr.Creates {
		v, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(m), `"`), 10, 64)
		if err != nil || v < 1 {
			return nil, `If-Match must be an ETag of this API, like "3"`, true
		}
		env.ExpectedVersion = &v
	}
	return env, "", true
}

// record writes the pending row and produces the command. It answers the
// request itself and returns false when it could not.
//
// A command with an Idempotency-Key, a secret or sessions to end is
// produced only once its row is written: the key may name an earlier
// command, and the secret and the revocation must be in place before a
// worker acts. Any other command is produced while its row is written, so
// that accepting it takes the longer of the two round trips, not both.
// Then a worker may decide it before the row exists; the row it records
// stands (InsertPending returns it), and a forged copy recorded first
// gives way to the genuine command (commands.decidedSQL).
func (g *Gateway) record(w http.ResponseWriter, r *http.Request, wr write, sub commands.Submission, body []byte) (*commands.Status, bool) {
	env := sub.Envelope
	if env.IdempotencyKey == "" && sub.Secret == nil && !wr.EndsSessions {
		return g.recordProducing(w, r, sub, body)
	}
	if sub.Secret != nil {
		// The idempotency hash never covers a secret: a fast hash of a body
		// holding a password, kept in strata.commands, would let whoever
		// reads that table guess the password without argon2. The payload,
		// which does not hold it, stands in for the body; so a retry with
		// the same key and another password names the first command.
		body = env.Payload
	}
	sub.RequestHash = requestHash(r, body)
	st, existing, err := g.cfg.Statuses.InsertPending(r.Context(), sub)
	switch {
	case errors.Is(err, commands.ErrIdempotencyReused):
		writeProblem(w, r, codeIdempotencyReuse, "this Idempotency-Key was used for a different request")
		return nil, false
	case err != nil:
		g.log.Error("record pending command", "err", err)
		writeProblem(w, r, codeUnavailable, "the command store is unavailable; retry later")
		return nil, false
	case existing:
		return st, true
	}
	if wr.EndsSessions {
		if err := g.cfg.Sessions.RevokeUser(r.Context(), env.AggregateID); err != nil {
			return g.abandon(w, r, env, "revoke the user's sessions", err, "the session store is unavailable; retry later")
		}
	}
	if err := g.cfg.Bus.Send(r.Context(), env); err != nil {
		return g.abandon(w, r, env, "produce command", err, "the command bus is unavailable; retry later")
	}
	return st, true
}

// recordProducing writes the pending row and produces the command at the
// same time (see record).
func (g *Gateway) recordProducing(w http.ResponseWriter, r *http.Request, sub commands.Submission, body []byte) (*commands.Status, bool) {
	env := sub.Envelope
	sub.RequestHash = requestHash(r, body)
	sent := make(chan error, 1)
	go func() { sent <- g.cfg.Bus.Send(r.Context(), env) }()
	st, _, err := g.cfg.Statuses.InsertPending(r.Context(), sub)
	sendErr := <-sent
	if err != nil {
		// Once more, and past a cancelled request: the produce may have
		// gone through (even one that reports a failure), and only a row
		// lets abandon mark it failed or find its decision.
		g.log.Error("record pending command; retrying", "command_id", env.ID, "err", err)
		st, _, err = g.cfg.Statuses.InsertPending(context.WithoutCancel(r.Context()), sub)
	}
	switch {
	case sendErr != nil && err == nil:
		return g.abandon(w, r, env, "produce command", sendErr, "the command bus is unavailable; retry later")
	case sendErr != nil:
		g.log.Error("record pending command", "command_id", env.ID, "err", err)
		g.log.Error("produce command", "command_id", env.ID, "err", sendErr)
		writeProblem(w, r, codeUnavailable, "the command store and the command bus are unavailable; retry later")
		return nil, false
	case err != nil:
		// The command is on Kafka and will be decided; a 503 would have the
		// client submit it twice. Its status appears once a worker records
		// the decision.
		g.log.Error("record pending command after producing it; its status appears when a worker decides it",
			"command_id", env.ID, "err", err)
		return &commands.Status{ID: env.ID, Type: env.Type, AggregateID: env.AggregateID, Actor: env.Actor.UserID,
			Status: commands.StatusPending, SubmittedAt: env.IssuedAt}, true
	}
	return st, true
}

// requestHash is the idempotency hash of a request: method, path, If-Match
// and body.
func requestHash(r *http.Request, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(r.Method + " " + r.URL.Path + "\n" + r.Header.Get("If-Match") + "\n"))
	h.Write(body)
	return h.Sum(nil)
}

// decidedAnyway reports a command that a worker decided although its
// produce reported a failure (a timeout after delivery): MarkFailed left
// it alone, and the client must not be told to retry it.
func (g *Gateway) decidedAnyway(r *http.Request, id string) (*commands.Status, bool) {
	st, err := g.cfg.Statuses.Get(context.WithoutCancel(r.Context()), id)
	return st, err == nil && st.Status != commands.StatusFailed && st.Status != commands.StatusPending
}

// abandon marks a recorded command failed because step could not be done,
// and answers 503 with detail; unless a worker decided it anyway (a produce
// that timed out after delivery), which it returns for the usual answer.
func (g *Gateway) abandon(w http.ResponseWriter, r *http.Request, env *commands.Envelope, step string, err error, detail string) (*commands.Status, bool) {
	g.log.Error(step, "command_id", env.ID, "err", err)
	if err := g.cfg.Statuses.MarkFailed(context.WithoutCancel(r.Context()), env.ID, codeUnavailable, "the command could not be submitted"); err != nil {
		g.log.Error("mark command failed", "command_id", env.ID, "err", err)
	}
	if late, decided := g.decidedAnyway(r, env.ID); decided {
		return late, true // the produce had gone through after all: answer as usual
	}
	writeProblem(w, r, codeUnavailable, detail)
	return nil, false
}

// respond answers 202, or with Prefer: wait the final outcome.
func (g *Gateway) respond(w http.ResponseWriter, r *http.Request, wr write, st *commands.Status) {
	if wait, ok := g.preferWait(r); ok {
		w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
		until := time.Now().Add(wait)
		final, err := g.waitTerminal(r.Context(), st.ID, wait)
		if errors.Is(err, commands.ErrNotFound) {
			// Produced, but its row could not be written (see
			// recordProducing): a worker will record it; answer 202.
			final, err = st, nil
		}
		if err == nil && final.Status == commands.StatusProjected && wr.Then != nil {
			err = g.waitFollowUp(r.Context(), wr.Then(final.AggregateID), time.Until(until))
		}
		if err != nil {
			g.internal(w, r, err)
			return
		}
		if g.outcome(w, r, wr, final) {
			return
		}
		st = final
	}
	loc := "/commands/" + st.ID
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusAccepted, accepted{CommandID: st.ID, AggregateID: st.AggregateID, Status: st.Status, StatusURL: loc})
}

// outcome answers a terminal status and reports whether it did.
func (g *Gateway) outcome(w http.ResponseWriter, r *http.Request, wr write, st *commands.Status) bool {
	switch st.Status {
	case commands.StatusRejected, commands.StatusFailed:
		code, reason := deref(st.Code), deref(st.Reason)
		if st.Status == commands.StatusFailed {
			code = codeUnavailable
		}
		writeProblem(w, r, code, reason)
		return true
	case commands.StatusProjected:
		if wr.Read == nil {
			w.WriteHeader(http.StatusNoContent)
			return true
		}
		res, version, err := wr.Read(r.Context(), st.AggregateID)
		if err != nil {
			g.internal(w, r, err)
			return true
		}
		status := http.StatusOK
		if wr.Creates {
			status = http.StatusCreated
			w.Header().Set("Location", wr.Path+"/"+st.AggregateID)
		}
		if wr.Failed != nil {
			if code, detail := wr.Failed(res); code != "" {
				writeProblem(w, r, code, detail) // Location still names the failed resource
				return true
			}
		}
		w.Header().Set("ETag", etag(version))
		writeJSON(w, status, res)
		return true
	}
	return false
}

// preferWait parses RFC 7240 "Prefer: wait=N", capped at MaxWait.
func (g *Gateway) preferWait(r *http.Request) (time.Duration, bool) {
	for _, h := range r.Header.Values("Prefer") {
		for _, pref := range strings.FieldsFunc(h, func(c rune) bool { return c == ',' || c == ';' }) {
			k, v, _ := strings.Cut(strings.TrimSpace(pref), "=")
			if strings.EqualFold(k, "wait") {
				n, err := strconv.Atoi(strings.Trim(v, `"`))
				if err != nil || n < 0 {
					return 0, false
				}
				return min(time.Duration(n)*time.Second, g.cfg.MaxWait), true
			}
		}
	}
	return 0, false
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
