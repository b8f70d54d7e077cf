package auth

import (
	"time"

	"github.com/google/uuid"

	"github.com/strata-cqrs/strata/aggregates"
)

// Login throttling: after MaxFailures bad passwords within FailureWindow, an
// email is refused until the oldest of them leaves the window.
const (
	MaxFailures   = 5
	FailureWindow = 15 * time.Minute
)

// Reasons a login fails, as recorded in LoginFailed.
const (
	ReasonBadCredentials = "bad_credentials"
	ReasonDisabled       = "user_disabled"
	ReasonThrottled      = "throttled"
)

// loginNamespace derives login aggregate ids from email addresses.
var loginNamespace = uuid.MustParse("6f0b7a4e-2c1d-4f7e-9a51-3b8e0d6c9a10")

// LoginID returns the id of the login aggregate of an email: every attempt
// for one address, known user or not, lands in the same history.
func LoginID(email string) string {
	return uuid.NewSHA1(loginNamespace, []byte(NormalizeEmail(email))).String()
}

// RecordLogin records one login attempt. The gateway executes it
// synchronously after checking the password; it is not an HTTP write.
type RecordLogin struct {
	Email     string    `json:"email"`
	UserID    string    `json:"user_id,omitempty"`
	Succeeded bool      `json:"succeeded"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
}

func (RecordLogin) CommandType() string { return "RecordLogin" }

// UserLoggedIn records a successful login.
type UserLoggedIn struct {
	Email  string    `json:"email"`
	UserID string    `json:"user_id"`
	At     time.Time `json:"at"`
}

// LoginFailed records a refused login. UserID is empty for unknown emails.
type LoginFailed struct {
	Email  string    `json:"email"`
	UserID string    `json:"user_id,omitempty"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

func (UserLoggedIn) EventType() string { return "UserLoggedIn" }
func (LoginFailed) EventType() string  { return "LoginFailed" }

// Login is the state of an email's login attempts: the recent failures that
// count towards throttling.
type Login struct {
	Failures []time.Time
}

// Throttled reports whether another attempt at now must be refused, and
// when the next one may succeed.
func (l Login) Throttled(now time.Time) (bool, time.Duration) {
	recent := l.recent(now)
	if len(recent) < MaxFailures {
		return false, 0
	}
	return true, recent[len(recent)-MaxFailures].Add(FailureWindow).Sub(now)
}

func (l Login) recent(now time.Time) []time.Time {
	var out []time.Time
	for _, f := range l.Failures {
		if now.Sub(f) < FailureWindow {
			out = append(out, f)
		}
	}
	return out
}

// LoginDefinition registers the Login aggregate (topic auth.login).
func LoginDefinition() *aggregates.Definition {
	return aggregates.Define(aggregates.Spec[Login]{
		Service:  Service,
		Type:     "login",
		Commands: []aggregates.Command{RecordLogin{}},
		Events:   []aggregates.Event{UserLoggedIn{}, LoginFailed{}},
		Creates:  func(aggregates.Command) bool { return false },
		Upserts:  func(aggregates.Command) bool { return true },
		Decide:   DecideLogin,
		Evolve:   EvolveLogin,
	})
}

// DecideLogin turns an attempt into UserLoggedIn or LoginFailed.
func DecideLogin(_ Login, c aggregates.Command, ctx aggregates.Context) ([]aggregates.Event, error) {
	r, ok := c.(RecordLogin)
	if !ok {
		return nil, aggregates.Reject(aggregates.CodeInvalid, "login does not handle %s", c.CommandType())
	}
	email, at := NormalizeEmail(r.Email), ctx.Now.UTC()
	switch {
	case email == "" || len(email) > MaxEmail:
		return nil, aggregates.Reject(CodeInvalidEmail, "a login attempt needs an email of at most %d bytes", MaxEmail)
	case r.Succeeded && (r.UserID == "" || r.Reason != ""):
		return nil, aggregates.Reject(aggregates.CodeInvalid, "a successful login names the user and no reason")
	case !r.Succeeded && r.Reason != ReasonBadCredentials && r.Reason != ReasonDisabled && r.Reason != ReasonThrottled:
		return nil, aggregates.Reject(aggregates.CodeInvalid, "unknown login failure reason %q", r.Reason)
	}
	if r.Succeeded {
		return []aggregates.Event{UserLoggedIn{Email: email, UserID: r.UserID, At: at}}, nil
	}
	return []aggregates.Event{LoginFailed{Email: email, UserID: r.UserID, Reason: r.Reason, At: at}}, nil
}

// EvolveLogin keeps the failures that count towards throttling: bad
// credentials only (a throttled attempt does not extend the lockout), and
// a success clears them.
func EvolveLogin(l Login, e aggregates.Event) Login {
	switch e := e.(type) {
	case UserLoggedIn:
		l.Failures = nil
	case LoginFailed:
		if e.Reason == ReasonBadCredentials {
			kept := l.recent(e.At)
			l.Failures = append(kept[:len(kept):len(kept)], e.At)
		}
	}
	return l
}
