package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	domain "github.com/strata-cqrs/strata/aggregates/auth"
	"github.com/strata-cqrs/strata/commands"
	"github.com/strata-cqrs/strata/schemas"
)

// hashWait bounds how long a request waits for a free password hasher
// before it is answered 503 busy.
const hashWait = 5 * time.Second

// takeSecret removes the secret field from a request object and checks it.
func takeSecret(obj map[string]json.RawMessage, field string) (string, []schemas.FieldError) {
	if field == "" {
		return "", nil
	}
	raw, ok := obj[field]
	delete(obj, field)
	var s string
	if !ok {
		return "", []schemas.FieldError{{Field: "/" + field, Message: "is required"}}
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", []schemas.FieldError{{Field: "/" + field, Message: "must be a string"}}
	}
	if n := utf8.RuneCountInString(s); n < domain.MinPassword || n > domain.MaxPassword {
		return "", []schemas.FieldError{{Field: "/" + field, Message: "must be 12-128 characters long"}}
	}
	return s, nil
}

// hashSecret hashes a password with the bounded hasher. It answers the
// request itself (503 busy) and returns false when no hasher was free.
func (g *Gateway) hashSecret(w http.ResponseWriter, r *http.Request, kind, secret string) (*commands.Secret, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), hashWait)
	defer cancel()
	h, err := g.cfg.Passwords.Hash(ctx, secret)
	if errors.Is(err, context.DeadlineExceeded) {
		writeProblem(w, r, codeBusy, "too many password operations at once; retry shortly")
		return nil, false
	}
	if err != nil {
		g.internal(w, r, err)
		return nil, false
	}
	return &commands.Secret{Kind: kind, Value: []byte(h)}, true
}
