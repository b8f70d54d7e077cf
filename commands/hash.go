package commands

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
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

	canonicalData bool // Data is known to be canonical already
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
// keys sorted at every level, no HTML escaping, numbers as jsonb prints
// them, times in UTC with microseconds (what Postgres stores). The same
// event read back from jsonb yields the same bytes, and any language can
// reproduce them.
func (e *JournalEvent) Canonical() ([]byte, error) {
	data := []byte(e.Data)
	if !e.canonicalData {
		var err error
		if data, err = CanonicalJSON(e.Data); err != nil {
			return nil, err
		}
	}
	return canonicalEnvelope(e, data), nil
}

// canonicalGeneric is Canonical by the generic path; tests hold the fast
// path to it.
func (e *JournalEvent) canonicalGeneric() ([]byte, error) {
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
// at every level, numbers as Postgres prints a jsonb numeric (see
// numericText) and no HTML escaping.
func CanonicalJSON(b []byte) (json.RawMessage, error) {
	if out, ok := canonicalBytes(b); ok {
		return out, nil
	}
	return canonicalGenericJSON(b)
}

// canonicalGenericJSON is CanonicalJSON by decoding into maps: the
// reference the fast path is held to, and the path for what it declines.
func canonicalGenericJSON(b []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	v = jsonbNumbers(v)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// jsonbNumbers rewrites every number of a decoded value with numericText.
// Go prints large and small floats with an exponent (1e+21, 1e-7) and jsonb
// gives them back without one, so without this an event written from Go
// would not hash the same once read back from the journal.
func jsonbNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = jsonbNumbers(x)
		}
	case []any:
		for i, x := range v {
			v[i] = jsonbNumbers(x)
		}
	case json.Number:
		return json.Number(numericText(string(v)))
	}
	return v
}

// maxExponent bounds the exponents numericText expands; Postgres refuses
// larger numbers, so they are left alone.
const maxExponent = 1 << 17

// numericText returns a JSON number literal as Postgres prints it as
// numeric: no exponent, as many decimals as the literal implies (1.50e1 is
// 15.0, 1E-7 is 0.0000001), and no minus sign on zero.
func numericText(s string) string {
	neg := strings.HasPrefix(s, "-")
	mant, exp := strings.TrimPrefix(s, "-"), 0
	if i := strings.IndexAny(mant, "eE"); i >= 0 {
		e, err := strconv.Atoi(mant[i+1:])
		if err != nil || e > maxExponent || e < -maxExponent {
			return s
		}
		mant, exp = mant[:i], e
	} else if !neg {
		return s // already as Postgres prints it
	}
	whole, frac, _ := strings.Cut(mant, ".")
	digits, scale := whole+frac, len(frac)-exp
	if scale < 0 {
		digits, scale = digits+strings.Repeat("0", -scale), 0
	}
	if pad := scale + 1 - len(digits); pad > 0 {
		digits = strings.Repeat("0", pad) + digits
	}
	out := strings.TrimLeft(digits[:len(digits)-scale], "0")
	if out == "" {
		out = "0"
	}
	if scale > 0 {
		out += "." + digits[len(digits)-scale:]
	}
	if neg && strings.Trim(digits, "0") != "" {
		out = "-" + out
	}
	return out
}
