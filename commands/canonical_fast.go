package commands

import (
	"bytes"
	"slices"
	"unicode/utf8"
)

// canonicalBytes re-encodes JSON text canonically without decoding it into
// maps, for the common case: object keys and strings with no escapes, no
// U+2028 or U+2029 and valid UTF-8, no duplicate keys, one value and
// nothing after it. ok is false for anything else, and the caller takes
// the generic path; TestCanonicalBytesMatchesGeneric holds the two to the
// same output. The relay re-encodes every event it reads from jsonb, and
// decoding into maps was a fifth of its CPU.
func canonicalBytes(in []byte) (out []byte, ok bool) {
	c := canonicalizer{in: in}
	out, ok = c.value(make([]byte, 0, len(in)), 0)
	c.space()
	return out, ok && c.i == len(in)
}

type canonicalizer struct {
	in []byte
	i  int
}

// maxCanonicalDepth bounds the nesting the fast path follows.
const maxCanonicalDepth = 64

func (c *canonicalizer) space() {
	for c.i < len(c.in) {
		switch c.in[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

func (c *canonicalizer) value(out []byte, depth int) ([]byte, bool) {
	c.space()
	if c.i >= len(c.in) || depth > maxCanonicalDepth {
		return out, false
	}
	switch b := c.in[c.i]; {
	case b == '{':
		return c.object(out, depth)
	case b == '[':
		return c.array(out, depth)
	case b == '"':
		s, ok := c.str()
		return append(out, s...), ok
	case b == '-' || b >= '0' && b <= '9':
		n, ok := c.number()
		return append(out, numericText(string(n))...), ok
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(c.in[c.i:], []byte(lit)) {
			c.i += len(lit)
			return append(out, lit...), true
		}
	}
	return out, false
}

// member is one object member as written: its key (quotes included) and
// its span in the output.
type member struct {
	key        []byte
	start, end int
}

func (c *canonicalizer) object(out []byte, depth int) ([]byte, bool) {
	c.i++ // {
	start := len(out)
	var members []member
	c.space()
	if c.i < len(c.in) && c.in[c.i] == '}' {
		c.i++
		return append(out, "{}"...), true
	}
	for {
		c.space()
		key, ok := c.str()
		if !ok {
			return out, false
		}
		c.space()
		if c.i >= len(c.in) || c.in[c.i] != ':' {
			return out, false
		}
		c.i++
		m := member{key: key, start: len(out)}
		out = append(out, key...)
		out = append(out, ':')
		if out, ok = c.value(out, depth+1); !ok {
			return out, false
		}
		m.end = len(out)
		members = append(members, m)
		c.space()
		if c.i >= len(c.in) {
			return out, false
		}
		c.i++
		if c.in[c.i-1] == '}' {
			break
		}
		if c.in[c.i-1] != ',' {
			return out, false
		}
	}
	// Keys hold no escapes, so their bytes between the quotes order them as
	// Go orders the decoded keys (with the quotes, "a" would sort after
	// "a b": '"' is above ' ' and '!').
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b member) int { return bytes.Compare(unquoted(a.key), unquoted(b.key)) })
	for i := 1; i < len(sorted); i++ {
		if bytes.Equal(sorted[i-1].key, sorted[i].key) {
			return out, false // the generic path keeps the last; leave it to it
		}
	}
	written := slices.Clone(out[start:])
	out = append(out[:start], '{')
	for i, m := range sorted {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, written[m.start-start:m.end-start]...)
	}
	return append(out, '}'), true
}

func unquoted(key []byte) []byte { return key[1 : len(key)-1] }

func (c *canonicalizer) array(out []byte, depth int) ([]byte, bool) {
	c.i++ // [
	out = append(out, '[')
	c.space()
	if c.i < len(c.in) && c.in[c.i] == ']' {
		c.i++
		return append(out, ']'), true
	}
	for {
		var ok bool
		if out, ok = c.value(out, depth+1); !ok {
			return out, false
		}
		c.space()
		if c.i >= len(c.in) {
			return out, false
		}
		c.i++
		switch c.in[c.i-1] {
		case ']':
			return append(out, ']'), true
		case ',':
			out = append(out, ',')
		default:
			return out, false
		}
	}
}

// str returns a string token, quotes included, when it needs no escaping
// either way: no backslash, no control character, valid UTF-8 and neither
// U+2028 nor U+2029 (which the encoder escapes).
func (c *canonicalizer) str() ([]byte, bool) {
	if c.i >= len(c.in) || c.in[c.i] != '"' {
		return nil, false
	}
	start := c.i
	ascii := true
	for c.i++; c.i < len(c.in); c.i++ {
		switch b := c.in[c.i]; {
		case b == '"':
			c.i++
			s := c.in[start:c.i]
			if !ascii && (!utf8.Valid(s) || bytes.Contains(s, []byte("\u2028")) || bytes.Contains(s, []byte("\u2029"))) {
				return nil, false
			}
			return s, true
		case b == '\\' || b < 0x20:
			return nil, false
		case b >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// number returns a number token if it is valid JSON:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (c *canonicalizer) number() ([]byte, bool) {
	start := c.i
	digits := func() int {
		n := 0
		for c.i < len(c.in) && c.in[c.i] >= '0' && c.in[c.i] <= '9' {
			c.i++
			n++
		}
		return n
	}
	if c.in[c.i] == '-' {
		c.i++
	}
	if c.i < len(c.in) && c.in[c.i] == '0' {
		c.i++
	} else if digits() == 0 {
		return nil, false
	}
	if c.i < len(c.in) && c.in[c.i] == '.' {
		c.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if c.i < len(c.in) && (c.in[c.i] == 'e' || c.in[c.i] == 'E') {
		c.i++
		if c.i < len(c.in) && (c.in[c.i] == '+' || c.in[c.i] == '-') {
			c.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return c.in[start:c.i], true
}
