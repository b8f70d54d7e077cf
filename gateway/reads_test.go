package gateway

import (
	"net/http/httptest"
	"testing"
)

func TestListParamsClampsLimit(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  int
		bad   bool
	}{
		{"", DefaultLimit, false},
		{"limit=1", 1, false},
		{"limit=200", MaxLimit, false},
		{"limit=201", MaxLimit, false},
		{"limit=1000000", MaxLimit, false},
		{"limit=9223372036854775807", MaxLimit, false},
		{"limit=99999999999999999999", 0, true},
		{"limit=0", 0, true},
		{"limit=-1", 0, true},
		{"limit=ten", 0, true},
	} {
		t.Run(tc.query, func(t *testing.T) {
			p, bad := listParams(httptest.NewRequest("GET", "/roles?"+tc.query, nil), "name")
			if got := bad != ""; got != tc.bad {
				t.Fatalf("refused %v (%q), want %v", got, bad, tc.bad)
			}
			if !tc.bad && p.Limit != tc.want {
				t.Fatalf("limit %d, want %d", p.Limit, tc.want)
			}
		})
	}
}
