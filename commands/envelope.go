// Package commands is the write-side runtime: the signed command envelope,
// the bus that carries commands from the gateway to Kafka, the worker that
// decides them against the journal, the journal itself, and the relay that
// publishes journal events to Kafka. It is written once and driven by the
// aggregate definitions in a Registry.
package commands

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-cqrs/strata/aggregates"
)

// SignatureHeader is the Kafka header carrying the envelope's HMAC.
const SignatureHeader = "strata-signature"

// Envelope is a command on Kafka (DESIGN.md §3.1).
type Envelope struct {
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	AggregateID     string          `json:"aggregate_id"`
	ExpectedVersion *int64          `json:"expected_version,omitempty"`
	Actor           Actor           `json:"actor"`
	IssuedAt        time.Time       `json:"issued_at"`
	CorrelationID   string          `json:"correlation_id"`
	IdempotencyKey  string          `json:"idempotency_key,omitempty"`
	Payload         json.RawMessage `json:"payload"`
}

// Actor is who issued a command.
type Actor struct {
	UserID string `json:"user_id"`
	// Grants are the object-level permissions ("accounts:write:any") the
	// user held when the gateway signed the command; aggregates that own
	// objects check them against their state (aggregates.Actor).
	Grants []string `json:"grants,omitempty"`
}

// Domain returns the actor as aggregates see it.
func (a Actor) Domain() aggregates.Actor {
	return aggregates.Actor{UserID: a.UserID, Grants: a.Grants}
}

// Service returns the service part of the envelope's type ("auth" for
// "auth.CreateRole").
func (e *Envelope) Service() string {
	s, _, _ := strings.Cut(e.Type, ".")
	return s
}

// DecodeEnvelope parses and checks an envelope. It returns an error for
// anything a worker cannot act on: bad JSON, unknown fields, ids that are
// not UUIDs, a missing type or payload.
func DecodeEnvelope(b []byte) (*Envelope, error) {
	var e Envelope
	if err := decodeStrict(b, &e); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	var errs []error
	if _, err := uuid.Parse(e.ID); err != nil {
		errs = append(errs, fmt.Errorf("id: %w", err))
	}
	if id, err := uuid.Parse(e.AggregateID); err != nil {
		errs = append(errs, fmt.Errorf("aggregate_id: %w", err))
	} else {
		// One spelling per aggregate: the worker's batch and cache key on
		// the id as a string, the journal on the uuid.
		e.AggregateID = id.String()
	}
	if !strings.Contains(e.Type, ".") {
		errs = append(errs, errors.New("type: must be <service>.<Command>"))
	}
	if len(e.Payload) == 0 || e.Payload[0] != '{' {
		errs = append(errs, errors.New("payload: must be a JSON object"))
	}
	if e.ExpectedVersion != nil && *e.ExpectedVersion < 0 {
		errs = append(errs, errors.New("expected_version: must be >= 0"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return &e, nil
}

// NewID returns a new UUIDv7: time-ordered, so ids sort by creation.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Key is the shared secret the gateway signs commands with and the services
// verify them with.
type Key []byte

// MinKeyBytes is the shortest command key accepted.
const MinKeyBytes = 32

// ParseKey decodes a hex command key and checks its length.
func ParseKey(s string) (Key, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("command key: not hex: %w", err)
	}
	if len(b) < MinKeyBytes {
		return nil, fmt.Errorf("command key: %d bytes, need at least %d", len(b), MinKeyBytes)
	}
	return Key(b), nil
}

// LoadOrCreateKey reads a hex key from path, creating the file with a fresh
// random key (mode 0600) when it does not exist. Used by `strata dev`.
func LoadOrCreateKey(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return ParseKey(string(b))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("command key: %w", err)
	}
	k := make([]byte, MinKeyBytes)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("command key: %w", err)
	}
	return Key(k), nil
}

// Sign returns the hex HMAC-SHA256 of value.
func (k Key) Sign(value []byte) string {
	m := hmac.New(sha256.New, k)
	m.Write(value)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is the HMAC of value, in constant time.
func (k Key) Verify(value []byte, sig string) bool {
	want, err := hex.DecodeString(sig)
	if err != nil || len(k) == 0 {
		return false
	}
	m := hmac.New(sha256.New, k)
	m.Write(value)
	return hmac.Equal(m.Sum(nil), want)
}
