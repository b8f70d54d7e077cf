package commands

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"
)

// GenesisHash is the prev_hash of every aggregate's first event.
var GenesisHash = make([]byte, sha256.Size)

// JournalEvent is one row of a service's journal.
type JournalEvent struct {
	Position      int64
	EventID       string
	AggregateType string
	AggregateID   string
	Version       int64
	Type          string // qualified: "auth.RoleCreated.v1"
	Data          json.RawMessage
	Metadata      Metadata
	OccurredAt    time.Time
	PrevHash      []byte
	Hash          []byte
}

// Metadata is stored with every event and travels as CloudEvents extensions.
type Metadata struct {
	CommandID     string `json:"command_id"`
	CorrelationID string `json:"correlation_id"`
	CausationID   string `json:"causation_id"`
	Actor         string `json:"actor"`
}

// canonicalEvent fixes the field order of the bytes that are hashed.
type canonicalEvent struct {
	AggregateID   string          `json:"aggregate_id"`
	AggregateType string          `json:"aggregate_type"`
	Data          json.RawMessage `json:"data"`
	EventID       string          `json:"event_id"`
	Metadata      Metadata        `json:"metadata"`
	OccurredAt    string          `json:"occurred_at"`
	Type          string          `json:"type"`
	Version       int64           `json:"version"`
}

// Canonical returns the event's canonical bytes: compact JSON with object
// keys sorted at every level, no HTML escaping, numbers verbatim, times in
// UTC with microseconds (what Postgres stores). The same event read back
// from jsonb yields the same bytes, and any language can reproduce them.
func (e *JournalEvent) Canonical() ([]byte, error) {
	b, err := json.Marshal(canonicalEvent{
		AggregateID:   e.AggregateID,
		AggregateType: e.AggregateType,
		Data:          e.Data,
		EventID:       e.EventID,
		Metadata:      e.Metadata,
		OccurredAt:    e.OccurredAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
		Type:          e.Type,
		Version:       e.Version,
	})
	if err != nil {
		return nil, err
	}
	return CanonicalJSON(b)
}

// ComputeHash returns SHA-256(prev_hash || canonical bytes).
func (e *JournalEvent) ComputeHash() ([]byte, error) {
	c, err := e.Canonical()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(e.PrevHash)
	h.Write(c)
	return h.Sum(nil), nil
}

// VerifyChain checks that events (one aggregate, in version order, starting
// at version 1) form an unbroken hash chain. It returns the version of the
// first broken link, or 0 when the chain is intact.
func VerifyChain(events []JournalEvent) (int64, error) {
	prev := GenesisHash
	for i := range events {
		e := &events[i]
		if e.Version != int64(i+1) || !bytes.Equal(e.PrevHash, prev) {
			return e.Version, nil
		}
		h, err := e.ComputeHash()
		if err != nil {
			return e.Version, err
		}
		if !bytes.Equal(h, e.Hash) {
			return e.Version, nil
		}
		prev = e.Hash
	}
	return 0, nil
}

// CanonicalJSON re-encodes a JSON value compactly, with object keys sorted
// at every level, numbers kept verbatim and no HTML escaping.
func CanonicalJSON(b []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}
