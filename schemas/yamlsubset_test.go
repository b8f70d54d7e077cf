package schemas

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// go.mod has no YAML library (gopkg.in/yaml.v3 is only in the module graph,
// without source), so the tests read asyncapi.yaml and openapi.yaml with this
// reader of the block-style subset they are written in: mappings, sequences
// ("- "), plain and quoted scalars (all kept as strings, null included), flow
// sequences of scalars ("[a, b]", and "[]", which has no children), and
// literal/folded block scalars (kept as their indicator, "|"). A line it
// cannot place (a multi-line plain scalar, tab indentation, a duplicate key)
// is an error, so a document that drifts out of the subset fails loudly
// instead of being misread.

// yamlDoc maps the path of every scalar (keys and sequence indexes joined by
// pathSep) to its value, and marks the paths of mappings and sequences in
// containers.
type yamlDoc struct {
	scalars    map[string]string
	containers map[string]bool
}

const pathSep = "\x1f"

func yamlPath(parts ...string) string { return strings.Join(parts, pathSep) }

// has reports whether the node at parts exists.
func (d yamlDoc) has(parts ...string) bool {
	p := yamlPath(parts...)
	_, ok := d.scalars[p]
	return ok || d.containers[p]
}

// get returns the scalar at parts.
func (d yamlDoc) get(parts ...string) string { return d.scalars[yamlPath(parts...)] }

// children returns the keys (or indexes) directly under parts, in document order.
func (d yamlDoc) children(order []string, parts ...string) []string {
	prefix := yamlPath(parts...) + pathSep
	var out []string
	for _, p := range order {
		rest, ok := strings.CutPrefix(p, prefix)
		if ok && !strings.Contains(rest, pathSep) {
			out = append(out, rest)
		}
	}
	return out
}

type yamlFrame struct {
	indent    int
	name      string
	container bool // a key with no inline value: children follow (not a sequence item)
}

// parseYAMLSubset parses src; order lists every path in document order.
func parseYAMLSubset(src string) (doc yamlDoc, order []string, err error) {
	doc = yamlDoc{scalars: map[string]string{}, containers: map[string]bool{}}
	var stack []yamlFrame
	seqIndex := map[string]int{}
	blockIndent := -1 // inside a block scalar owned by a key at this indent
	for n, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if blockIndent >= 0 {
			if strings.TrimSpace(line) == "" || indent > blockIndent {
				continue
			}
			blockIndent = -1
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasPrefix(trimmed, "\t") || strings.Contains(line[:indent], "\t") {
			return doc, nil, fmt.Errorf("line %d: tab in indentation", n+1)
		}
		item := strings.HasPrefix(trimmed, "- ") || trimmed == "-"
		for len(stack) > 0 {
			top := stack[len(stack)-1]
			if top.indent < indent || (item && top.indent == indent && top.container) {
				break
			}
			stack = stack[:len(stack)-1]
		}
		names := func() []string {
			out := make([]string, len(stack))
			for i, f := range stack {
				out[i] = f.name
			}
			return out
		}
		content := trimmed
		if item {
			parent := yamlPath(names()...)
			idx := seqIndex[parent]
			seqIndex[parent] = idx + 1
			stack = append(stack, yamlFrame{indent: indent, name: strconv.Itoa(idx)})
			content = strings.TrimPrefix(strings.TrimPrefix(trimmed, "-"), " ")
			indent += 2
			if looksLikeKey(content) {
				p := yamlPath(names()...)
				order = append(order, p)
				doc.containers[p] = true
			} else {
				p := yamlPath(names()...)
				order = append(order, p)
				doc.scalars[p], err = unquote(content)
				if err != nil {
					return doc, nil, fmt.Errorf("line %d: %w", n+1, err)
				}
				continue
			}
		}
		key, value, ok := splitKey(content)
		if !ok {
			return doc, nil, fmt.Errorf("line %d: not in the YAML subset: %q", n+1, trimmed)
		}
		if key, err = unquote(key); err != nil {
			return doc, nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		p := yamlPath(append(names(), key)...)
		if _, dup := doc.scalars[p]; dup || doc.containers[p] {
			return doc, nil, fmt.Errorf("line %d: duplicate key %q", n+1, key)
		}
		order = append(order, p)
		switch {
		case value == "":
			doc.containers[p] = true
			stack = append(stack, yamlFrame{indent: indent, name: key, container: true})
		case strings.HasPrefix(value, "|") || strings.HasPrefix(value, ">"):
			doc.scalars[p] = value
			blockIndent = indent
		case strings.HasPrefix(value, "[") && strings.HasSuffix(value, "]"):
			doc.containers[p] = true
			inner := strings.TrimSpace(value[1 : len(value)-1])
			if inner == "" {
				break // [] is an empty sequence, not one empty scalar
			}
			for i, v := range strings.Split(inner, ",") {
				ip := yamlPath(append(names(), key, strconv.Itoa(i))...)
				order = append(order, ip)
				if doc.scalars[ip], err = unquote(strings.TrimSpace(v)); err != nil {
					return doc, nil, fmt.Errorf("line %d: %w", n+1, err)
				}
			}
		default:
			if doc.scalars[p], err = unquote(value); err != nil {
				return doc, nil, fmt.Errorf("line %d: %w", n+1, err)
			}
		}
	}
	return doc, order, nil
}

func looksLikeKey(s string) bool {
	_, _, ok := splitKey(s)
	return ok && !strings.HasPrefix(s, "'") && !strings.HasPrefix(s, "\"")
}

// splitKey splits "key: value" or "key:"; a quoted key may contain ": ".
func splitKey(s string) (key, value string, ok bool) {
	if strings.HasPrefix(s, "'") || strings.HasPrefix(s, "\"") {
		end := strings.Index(s[1:], s[:1])
		if end < 0 {
			return "", "", false
		}
		rest := s[end+2:]
		if rest == ":" || strings.HasPrefix(rest, ": ") {
			return s[:end+2], strings.TrimSpace(strings.TrimPrefix(rest, ":")), true
		}
		return "", "", false
	}
	if k, v, found := strings.Cut(s, ": "); found {
		return k, strings.TrimSpace(v), true
	}
	if k, found := strings.CutSuffix(s, ":"); found {
		return k, "", true
	}
	return "", "", false
}

func unquote(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return "", fmt.Errorf("unterminated quote: %s", s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	case strings.HasPrefix(s, "\""):
		return strconv.Unquote(s)
	}
	return s, nil
}

func TestYAMLSubsetReader(t *testing.T) {
	src := `a: 1
b:
  c: 'it''s: quoted'
  "d e": "x\ty"
  seq:
    - plain
    - k: v
      k2: v2
  compact:
  - one
  flow: [x, 'y', z]
  none: []
  auth:
    - bearer: []
  text: |
    free: text
    - not an item
  after: yes
# comment
last: ''
`
	doc, order, err := parseYAMLSubset(src)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"a": "1", "b/c": "it's: quoted", "b/d e": "x\ty", "b/seq/0": "plain", "b/seq/1/k": "v", "b/seq/1/k2": "v2",
		"b/compact/0": "one", "b/flow/1": "y", "b/flow/2": "z", "b/text": "|", "b/after": "yes", "last": "",
	} {
		parts := strings.Split(path, "/")
		if got := doc.get(parts...); got != want || !doc.has(parts...) {
			t.Errorf("%s = %q (present %v), want %q", path, got, doc.has(parts...), want)
		}
	}
	if !doc.has("b", "seq", "1") || doc.has("b", "text", "free") {
		t.Error("containers misread")
	}
	for _, empty := range [][]string{{"b", "none"}, {"b", "auth", "0", "bearer"}} {
		if !doc.has(empty...) || len(doc.children(order, empty...)) != 0 {
			t.Errorf("%v: present %v, children %q; want an empty sequence", empty, doc.has(empty...), doc.children(order, empty...))
		}
	}
	for name, bad := range map[string]string{
		"MultiLinePlainScalar": "a: one\n  two\n",
		"TabIndent":            "a:\n\tb: 1\n",
		"DuplicateKey":         "a: 1\na: 2\n",
	} {
		if _, _, err := parseYAMLSubset(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
