package commands

import (
	"bytes"
	"testing"

	"github.com/strata-cqrs/strata/aggregates/auth"
)

func TestHashChain(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	perm := NewID()
	h.appendEvents(h.def("permission"), perm, auth.PermissionCreated{Name: "roles:read"})
	// history appends five events to a fresh role over three transactions.
	history := func() (string, []JournalEvent) {
		id, role := NewID(), h.def("role")
		rows := h.appendEvents(role, id, auth.RoleCreated{Name: "r-" + id, Description: "<b>&\u2028é"})
		rows = append(rows, h.appendEvents(role, id, auth.PermissionGranted{PermissionID: perm, PermissionName: "roles:read"},
			auth.RoleRenamed{Name: "s-" + id, PreviousName: "r-" + id})...)
		rows = append(rows, h.appendEvents(role, id, auth.PermissionRevoked{PermissionID: perm},
			auth.RoleRenamed{Name: "t-" + id, PreviousName: "s-" + id})...)
		return id, rows
	}

	t.Run("IntactAfterJsonbRoundTrip", func(t *testing.T) {
		id, written := history()
		read := h.events(id)
		if v, err := VerifyChain(read); v != 0 || err != nil {
			t.Fatalf("VerifyChain = %d, %v; want 0", v, err)
		}
		for i := range read {
			want, _ := written[i].Canonical()
			got, err := read[i].Canonical()
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("v%d canonical bytes changed through Postgres:\n got %s\nwant %s", read[i].Version, got, want)
			}
			if !bytes.Equal(read[i].Hash, written[i].Hash) || !bytes.Equal(read[i].PrevHash, written[i].PrevHash) {
				t.Errorf("v%d hashes changed through Postgres", read[i].Version)
			}
		}
		if !bytes.Equal(read[0].PrevHash, GenesisHash) {
			t.Errorf("v1 prev_hash = %x, want the genesis hash", read[0].PrevHash)
		}
	})

	exec := func(sql string) func(id string) {
		return func(id string) {
			if tag, err := h.pool.Exec(h.ctx, sql, id); err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("tamper: %v (%v rows)", err, tag.RowsAffected())
			}
		}
	}
	tampers := []struct {
		name    string
		tamper  func(id string)
		version int64 // the first version VerifyChain must report
	}{
		{"DataEdited", exec(`UPDATE auth.events SET data = jsonb_set(data, '{name}', '"evil"') WHERE aggregate_id=$1 AND version=3`), 3},
		{"MetadataEdited", exec(`UPDATE auth.events SET metadata = jsonb_set(metadata, '{actor}', '"someone-else"') WHERE aggregate_id=$1 AND version=2`), 2},
		{"TimeEdited", exec(`UPDATE auth.events SET occurred_at = occurred_at - interval '1 day' WHERE aggregate_id=$1 AND version=4`), 4},
		{"TypeEdited", exec(`UPDATE auth.events SET type = 'auth.RoleDeleted.v1' WHERE aggregate_id=$1 AND version=5`), 5},
		{"RowDeleted", exec(`DELETE FROM auth.events WHERE aggregate_id=$1 AND version=3`), 4},
		{"FirstRowDeleted", exec(`DELETE FROM auth.events WHERE aggregate_id=$1 AND version=1`), 2},
		{"EditedRowRehashed", func(id string) {
			// Whoever rewrites a row and its hash still breaks the next link.
			e := h.events(id)[1]
			e.Data = []byte(`{"permission_id":"` + NewID() + `","permission_name":"everything:all"}`)
			hash, err := e.ComputeHash()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.pool.Exec(h.ctx, `UPDATE auth.events SET data=$2, hash=$3 WHERE event_id=$1`, e.EventID, string(e.Data), hash); err != nil {
				t.Fatal(err)
			}
		}, 3},
	}
	for _, tc := range tampers {
		t.Run(tc.name, func(t *testing.T) {
			id, _ := history()
			tc.tamper(id)
			if v, err := VerifyChain(h.events(id)); v != tc.version || err != nil {
				t.Errorf("VerifyChain = %d, %v; want %d", v, err, tc.version)
			}
		})
	}
}

func TestCanonicalJSONSurvivesJsonb(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inputs := []string{
		`{"b":1,"a":{"d":[3,2,1],"c":null},"e":true}`,
		`{"html":"<script>&amp;</script>","sep":"\u2028\u2029","esc":"\"\\\/\b\f\n\r\t","uni":"é😀\u00e9"}`,
		`{"int":12345678901234567890123,"neg":-42,"frac":1.50,"zero":0.0}`,
		`{"big":1e21,"small":1E-7,"scaled":1.50e1,"plus":2.5E+3,"negzero":-0,"negzerofrac":-0.00}`,
		`[5e-1,0.5e1,123.456e1,-1.5e-3,1e0,-12E+2,0e5,-0.0e-2,9.99e-1]`,
		`{"": "empty key", "dup": 1, "dup": 2}`,
	}
	for _, in := range inputs {
		before, err := CanonicalJSON([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		var stored string
		if err := h.pool.QueryRow(h.ctx, `SELECT $1::jsonb::text`, in).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		after, err := CanonicalJSON([]byte(stored))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("canonical bytes of %s\nbefore jsonb %s\n after jsonb %s", in, before, after)
		}
	}
}

// A Go float is marshalled with an exponent when it is very large or very
// small; the canonical bytes must still match what jsonb gives back.
func TestCanonicalJSONOfFloats(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	type reading struct {
		Values []float64 `json:"values"`
	}
	v := reading{Values: []float64{1e21, 1.5e300, 1e-7, 2.5e-10, -3e25, 0.1, 100}}
	before, err := CanonicalJSONOf(v)
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := h.pool.QueryRow(h.ctx, `SELECT $1::jsonb::text`, string(before)).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if after, _ := CanonicalJSON([]byte(stored)); !bytes.Equal(before, after) {
		t.Errorf("canonical bytes\nbefore jsonb %s\n after jsonb %s", before, after)
	}
}

func TestVerifyChainOfNothing(t *testing.T) {
	if v, err := VerifyChain(nil); v != 0 || err != nil {
		t.Errorf("VerifyChain(nil) = %d, %v", v, err)
	}
	e := JournalEvent{Version: 1, PrevHash: []byte("not genesis"), Data: []byte(`{}`)}
	e.Hash, _ = e.ComputeHash()
	if v, _ := VerifyChain([]JournalEvent{e}); v != 1 {
		t.Errorf("a chain not starting at the genesis hash verified: %d", v)
	}
}
