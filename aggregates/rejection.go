package aggregates

import (
	"errors"
	"fmt"
)

// Rejection is a command refused by a domain rule. Code is stable and is what
// clients program against ("role_exists"); the gateway maps it to an HTTP
// status exactly once.
type Rejection struct {
	Code   string
	Reason string
}

func (r *Rejection) Error() string { return r.Code + ": " + r.Reason }

// Reject returns a *Rejection with a formatted reason.
func Reject(code, format string, args ...any) error {
	return &Rejection{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// AsRejection reports whether err is (or wraps) a *Rejection.
func AsRejection(err error) (*Rejection, bool) {
	var r *Rejection
	ok := errors.As(err, &r)
	return r, ok
}

// Codes used by the runtime for every aggregate.
const (
	CodeNotFound        = "not_found"
	CodeAlreadyExists   = "already_exists"
	CodeVersionConflict = "version_conflict"
	CodeForged          = "forged_command"
	CodeInvalid         = "invalid_command"
	CodeDeleted         = "aggregate_deleted"
	// CodeForbidden refuses an actor who may not act on this aggregate
	// although they hold the route's permission (object-level checks).
	CodeForbidden = "forbidden"
)
