package commands

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/auth"
)

// weird returns strings that exercise every escaping rule.
func weird(r *rand.Rand) string {
	pieces := []string{"plain", "", `"q"`, `back\slash`, "<&>", "tab\tnl\n", "\x00\x01\x1f", "é", "日本",
		"\u2028\u2029", "\xff\xfe", "emoji 🎉", "\b\f", "del\x7f"}
	s := ""
	for range r.IntN(4) {
		s += pieces[r.IntN(len(pieces))]
	}
	return s
}

// TestFastCanonicalMatchesGeneric holds the fast encoders to the generic
// path (json.Marshal then CanonicalJSON): hashes must never depend on
// which one ran.
func TestFastCanonicalMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		s := func() string { return weird(r) }
		at := time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC()
		events := []aggregates.Event{
			auth.RoleCreated{Name: s(), Description: s()},
			auth.RoleRenamed{Name: s(), PreviousName: s()},
			auth.PermissionGranted{PermissionID: s(), PermissionName: s()},
			auth.UserRegistered{Email: s(), Name: s()},
			auth.PasswordChanged{},
			auth.UserLoggedIn{Email: s(), UserID: s(), At: at},
			auth.LoginFailed{Email: s(), UserID: s(), Reason: s(), At: at},
			auth.LoginFailed{Email: s(), Reason: s(), At: at}, // omitempty user id
		}
		for _, e := range events {
			fast, ok := canonicalFlat(e)
			if !ok {
				t.Fatalf("%T is not flat", e)
			}
			raw, _ := json.Marshal(e)
			generic, err := CanonicalJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fast, generic) {
				t.Fatalf("case %d %T:\nfast    %s\ngeneric %s", i, e, fast, generic)
			}
			je := JournalEvent{EventID: NewID(), AggregateType: s(), AggregateID: s(), Version: r.Int64N(1 << 40),
				Type: s(), Data: fast, OccurredAt: at, canonicalData: true,
				Metadata: Metadata{CommandID: s(), CorrelationID: s(), CausationID: s(), Actor: s()}}
			got, _ := je.Canonical()
			want, err := je.canonicalGeneric()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("case %d envelope:\nfast    %s\ngeneric %s (%v)", i, got, want, err)
			}
		}
	}
	type nested struct {
		Tags []string `json:"tags"`
	}
	if _, ok := canonicalFlat(nested{}); ok {
		t.Fatal("a struct with a slice took the flat path")
	}
}
