package commands

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// rawQuote quotes s as jsonb prints it: only quotes, backslashes and
// control characters are escaped, any other byte (invalid UTF-8, U+2028)
// stays as it is.
func rawQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// randomJSON writes a random JSON value with random spacing: keys and
// strings from weird, numbers jsonb and Go may print differently.
func randomJSON(r *rand.Rand, depth int) string {
	quote := func(s string) string {
		if r.IntN(2) == 0 {
			return strconv.Quote(s)
		}
		return rawQuote(s)
	}
	sp := func() string { return []string{"", "", " ", "\n\t", "  "}[r.IntN(5)] }
	numbers := []string{"0", "-0", "12", "-42", "1.50", "0.0", "-0.00", "1e21", "1E-7", "1.50e1", "2.5E+3",
		"12345678901234567890123", "5e-1", "-1.5e-3", "9.99e-1", "01", "1.", "-", "1e", ".5"}
	switch k := r.IntN(8); {
	case depth > 3 || k < 2:
		return quote(weird(r))
	case k == 2:
		return numbers[r.IntN(len(numbers))]
	case k == 3:
		return []string{"true", "false", "null", "nul", "True"}[r.IntN(5)]
	case k == 4:
		var parts []string
		for range r.IntN(4) {
			parts = append(parts, sp()+randomJSON(r, depth+1)+sp())
		}
		return "[" + strings.Join(parts, ",") + "]"
	default:
		keys := []string{"a", "b", "aa", "B", "", " ", "a b", "a!", "a\x7f", "é", "key", "data", `q"`, "tab\t"}
		var parts []string
		for range r.IntN(5) {
			key := keys[r.IntN(len(keys))]
			if r.IntN(3) == 0 {
				key = weird(r)
			}
			parts = append(parts, sp()+quote(key)+sp()+":"+sp()+randomJSON(r, depth+1)+sp())
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
}

// TestCanonicalBytesMatchesGeneric holds the fast path to the generic one:
// where it answers, the bytes are the same, and it answers only for valid
// JSON. It must answer often, or the relay gains nothing.
func TestCanonicalBytesMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var answered int
	const n = 20000
	for i := range n {
		in := randomJSON(r, 0)
		if r.IntN(10) == 0 {
			in += []string{" ", "\n", " x", "{}", ","}[r.IntN(5)]
		}
		checkCanonicalBytes(t, fmt.Sprintf("case %d", i), []byte(in))
		if _, ok := canonicalBytes([]byte(in)); ok {
			answered++
		}
	}
	if answered < n/4 {
		t.Fatalf("the fast path answered %d of %d", answered, n)
	}
	for _, in := range []string{`{"b":1,"a":{"d":[3,2,1],"c":null},"e":true}`, `{"a": 1, "b": [1, 2.50]}`,
		`{"name": "role-1", "description": "x"}`, `{"é":"日本","e":1}`,
		// A key that is another plus a byte below '"' sorts after it.
		`{"a b":2,"a":1}`, `{"x!":1,"x":2,"":3," ":4}`, `{"o":{"a!":[{"a b":1,"a":2}],"a":0}}`} {
		if _, ok := canonicalBytes([]byte(in)); !ok {
			t.Errorf("the fast path declined %s", in)
		}
		checkCanonicalBytes(t, in, []byte(in))
	}
	for _, in := range []string{"\"\u2028\"", "\"\u2029\"", "\"\xff\"", "{\"\u2028\":1}"} {
		checkCanonicalBytes(t, in, []byte(in))
	}
}

func checkCanonicalBytes(t *testing.T, name string, in []byte) {
	t.Helper()
	fast, ok := canonicalBytes(in)
	if !ok {
		return
	}
	generic, err := canonicalGenericJSON(in)
	if err != nil {
		t.Fatalf("%s: the fast path took %q, which the generic path refuses: %v", name, in, err)
	}
	if !bytes.Equal(fast, generic) {
		t.Fatalf("%s: %q\nfast    %s\ngeneric %s", name, in, fast, generic)
	}
}

func FuzzCanonicalBytes(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1,2,{"c":null}]}`, `[1e21, -0, "x"]`, `{"a":1,"a":2}`, `"\u2028"`, `{}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkCanonicalBytes(t, "fuzz", in) })
}
