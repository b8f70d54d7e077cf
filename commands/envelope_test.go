package commands

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-cqrs/strata/aggregates/auth"
)

// validEnvelope is an envelope DecodeEnvelope accepts; edits break it.
const validEnvelope = `{"id":"0190a5a4-1c2b-7000-8000-000000000001","type":"auth.CreateRole",` +
	`"aggregate_id":"0190a5a4-1c2b-7000-8000-000000000002","expected_version":3,` +
	`"actor":{"user_id":"u1"},"issued_at":"2026-01-02T03:04:05Z","correlation_id":"c1",` +
	`"idempotency_key":"k1","payload":{"name":"ops"}}`

func TestDecodeEnvelope(t *testing.T) {
	t.Run("AcceptsAValidEnvelope", func(t *testing.T) {
		e, err := DecodeEnvelope([]byte(validEnvelope))
		if err != nil {
			t.Fatal(err)
		}
		if e.Service() != "auth" || *e.ExpectedVersion != 3 || e.Actor.UserID != "u1" || string(e.Payload) != `{"name":"ops"}` {
			t.Errorf("decoded %+v", e)
		}
	})
	edit := func(old, new string) string {
		if !strings.Contains(validEnvelope, old) {
			t.Fatalf("validEnvelope has no %q", old)
		}
		return strings.Replace(validEnvelope, old, new, 1)
	}
	rejects := []struct{ name, value, why string }{
		{"UnknownField", edit(`"payload"`, `"admin":true,"payload"`), "unknown field"},
		{"UnknownActorField", edit(`"user_id":"u1"`, `"user_id":"u1","role":"root"`), "unknown field"},
		{"NonUUIDID", edit(`0190a5a4-1c2b-7000-8000-000000000001`, `42`), "id:"},
		{"NonUUIDAggregateID", edit(`0190a5a4-1c2b-7000-8000-000000000002`, `../etc`), "aggregate_id:"},
		{"TrailingData", validEnvelope + `{}`, "trailing data"},
		{"TrailingGarbage", validEnvelope + `x`, "trailing data"},
		{"TypeWithoutService", edit(`"auth.CreateRole"`, `"CreateRole"`), "type:"},
		{"PayloadNotAnObject", edit(`{"name":"ops"}`, `["ops"]`), "payload:"},
		{"PayloadNull", edit(`{"name":"ops"}`, `null`), "payload:"},
		{"NegativeExpectedVersion", edit(`"expected_version":3`, `"expected_version":-1`), "expected_version:"},
		{"NotJSON", "\x00garbage", "envelope:"},
	}
	for _, tc := range rejects {
		t.Run("Rejects"+tc.name, func(t *testing.T) {
			e, err := DecodeEnvelope([]byte(tc.value))
			if err == nil || e != nil {
				t.Fatalf("DecodeEnvelope(%s) = %+v, nil; want an error", tc.value, e)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not say %q", err, tc.why)
			}
		})
	}
}

func TestKey(t *testing.T) {
	k := Key(bytes.Repeat([]byte{1}, MinKeyBytes))
	value := []byte(validEnvelope)
	sig := k.Sign(value)
	verifies := []struct {
		name  string
		key   Key
		value []byte
		sig   string
		want  bool
	}{
		{"Genuine", k, value, sig, true},
		{"OtherKey", Key(bytes.Repeat([]byte{2}, MinKeyBytes)), value, sig, false},
		{"EditedValue", k, bytes.Replace(value, []byte("ops"), []byte("root"), 1), sig, false},
		{"Missing", k, value, "", false},
		{"NotHex", k, value, strings.Repeat("zz", 32), false},
		{"Truncated", k, value, sig[:len(sig)-2], false},
		{"Extended", k, value, sig + "00", false},
		{"NoKey", nil, value, Key(nil).Sign(value), false},
	}
	for _, tc := range verifies {
		t.Run("Verify"+tc.name, func(t *testing.T) {
			if got := tc.key.Verify(tc.value, tc.sig); got != tc.want {
				t.Errorf("Verify = %v, want %v", got, tc.want)
			}
		})
	}

	parses := []struct {
		name, in string
		ok       bool
	}{
		{"MinimumLength", hex.EncodeToString(k), true},
		{"TrailingNewline", hex.EncodeToString(k) + "\n", true},
		{"Short", hex.EncodeToString(k[:MinKeyBytes-1]), false},
		{"Empty", "", false},
		{"NotHex", strings.Repeat("g", 2*MinKeyBytes), false},
	}
	for _, tc := range parses {
		t.Run("Parse"+tc.name, func(t *testing.T) {
			got, err := ParseKey(tc.in)
			if (err == nil) != tc.ok || (tc.ok && !bytes.Equal(got, k)) {
				t.Errorf("ParseKey = %x, %v; want ok=%v", got, err, tc.ok)
			}
		})
	}

	t.Run("LoadOrCreateKeyKeepsTheKey", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "dir", "command.key")
		first, err := LoadOrCreateKey(path)
		if err != nil || len(first) != MinKeyBytes {
			t.Fatalf("LoadOrCreateKey = %x, %v", first, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
		}
		again, err := LoadOrCreateKey(path)
		if err != nil || !bytes.Equal(again, first) {
			t.Errorf("second LoadOrCreateKey = %x, %v; want %x", again, err, first)
		}
	})
}

func TestInsertPendingIdempotency(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	submit := func(key, requestHash string) (*Status, bool, error) {
		env := h.command(NewID(), auth.CreateRole{Name: "ops"})
		env.IdempotencyKey = key
		return h.status.InsertPending(h.ctx, Submission{Envelope: env, RequestHash: []byte(requestHash)})
	}
	first, existing, err := submit("key-1", "POST /roles {ops}")
	if err != nil || existing || first.Status != StatusPending || first.Actor != testActor {
		t.Fatalf("first submission = %+v, existing=%v, %v", first, existing, err)
	}

	t.Run("SameRequestReturnsTheSameCommand", func(t *testing.T) {
		again, existing, err := submit("key-1", "POST /roles {ops}")
		if err != nil || !existing || again.ID != first.ID || again.AggregateID != first.AggregateID {
			t.Errorf("retry = %+v, existing=%v, %v; want command %s", again, existing, err, first.ID)
		}
	})
	t.Run("DifferentRequestIsRefused", func(t *testing.T) {
		if st, _, err := submit("key-1", "POST /roles {admins}"); !errors.Is(err, ErrIdempotencyReused) {
			t.Errorf("reuse = %+v, %v; want ErrIdempotencyReused", st, err)
		}
	})
	t.Run("OtherKeyIsANewCommand", func(t *testing.T) {
		other, existing, err := submit("key-2", "POST /roles {ops}")
		if err != nil || existing || other.ID == first.ID {
			t.Errorf("other key = %+v, existing=%v, %v; want a new command", other, existing, err)
		}
	})
	t.Run("ExpiredKeyNamesNothing", func(t *testing.T) {
		if _, err := h.pool.Exec(h.ctx, `UPDATE strata.commands SET submitted_at = now() - interval '25 hours' WHERE id=$1`, first.ID); err != nil {
			t.Fatal(err)
		}
		fresh, existing, err := submit("key-1", "POST /roles {admins}")
		if err != nil || existing || fresh.ID == first.ID {
			t.Errorf("after the window = %+v, existing=%v, %v; want a new command", fresh, existing, err)
		}
	})
	t.Run("FailedAttemptIsRetried", func(t *testing.T) {
		failed, _, err := submit("key-3", "POST /roles {later}")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.status.MarkFailed(h.ctx, failed.ID, "unavailable", "no bus"); err != nil {
			t.Fatal(err)
		}
		retry, existing, err := submit("key-3", "POST /roles {later}")
		if err != nil || existing || retry.ID == failed.ID || retry.Status != StatusPending {
			t.Errorf("retry after a failed attempt = %+v, existing=%v, %v; want a new pending command", retry, existing, err)
		}
	})
	if n := h.count(`SELECT count(*) FROM strata.commands`); n != 5 {
		t.Errorf("%d status rows, want 5 (first, other key, after the window, failed, its retry)", n)
	}
}
