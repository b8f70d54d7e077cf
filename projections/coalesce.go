package projections

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// A run is consecutive queued inserts of one SQL text that may be sent as
// one multi-row INSERT: row i's arguments are args[i*width:(i+1)*width].
type run struct {
	sql   string
	shape *insertShape // nil: the statement is sent as it is
	args  []any
	rows  int
}

// insertShape is an INSERT … VALUES (…) [ON CONFLICT … DO NOTHING] split
// around its one row of values, whose parameters are $1…$width.
type insertShape struct {
	head, row, tail string
	width           int
}

// insertPattern matches the statements a run may merge: one row of values
// and either no conflict clause (a duplicate fails the statement, as it
// failed the single insert) or DO NOTHING (a later row of the run that
// conflicts with an earlier one is skipped, as the single inserts skipped
// it). DO UPDATE is never merged: Postgres refuses to update a row twice in
// one statement.
var insertPattern = regexp.MustCompile(`(?is)^(\s*INSERT\s+INTO\s+[\w."]+\s*\([^()]*\)\s*VALUES\s*)\((.*)\)(\s*(?:ON\s+CONFLICT\s*(?:\([^()]*\))?\s*DO\s+NOTHING)?\s*)$`)

var paramPattern = regexp.MustCompile(`\$(\d+)`)

// shapes caches the analysis of each SQL text queued (a projection queues
// a handful of texts, millions of times).
var shapes sync.Map // string → *insertShape (nil when not mergeable)

// shapeOf returns the insert shape of sql for n arguments, or nil.
func shapeOf(sql string, n int) *insertShape {
	v, ok := shapes.Load(sql)
	if !ok {
		v = analyse(sql)
		shapes.Store(sql, v)
	}
	if s := v.(*insertShape); s != nil && s.width == n {
		return s
	}
	return nil
}

// analyse splits a mergeable insert into its shape; nil when it is not one.
func analyse(sql string) *insertShape {
	m := insertPattern.FindStringSubmatch(sql)
	if m == nil || !balanced(m[2]) || !plainRow(m[2]) || paramPattern.MatchString(m[1]+m[3]) {
		return nil
	}
	width := 0
	for _, p := range paramPattern.FindAllStringSubmatch(m[2], -1) {
		i, _ := strconv.Atoi(p[1])
		width = max(width, i)
	}
	if width == 0 {
		return nil
	}
	return &insertShape{head: m[1], row: m[2], tail: m[3], width: width}
}

// notPlain finds what a row must not hold to be merged: a comment, a
// string literal holding a "$" (renumbering would change it), or a
// subquery, which in a merged insert would not see the rows inserted
// before it by the same statement.
var notPlain = regexp.MustCompile(`(?i)--|/\*|'[^']*\$[^']*'|\b(SELECT|WITH|TABLE|VALUES)\b`)

// plainRow reports whether a row of values may be repeated with renumbered
// parameters.
func plainRow(row string) bool { return !notPlain.MatchString(row) }

// balanced reports whether the parentheses of s pair up, so the text
// between VALUES' parentheses is one row, not "a), (b".
func balanced(s string) bool {
	depth := 0
	for _, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			if depth--; depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}

// maxRunRows bounds the rows of one merged insert.
const maxRunRows = 256

// chunk is the size of the next statement of a run of n rows: the
// largest power of two not above n (and maxRunRows), so a projection's
// inserts use a few prepared statements, not one per run length.
func chunk(n int) int {
	c := 1
	for c*2 <= n && c*2 <= maxRunRows {
		c *= 2
	}
	return c
}

// sql returns the statement inserting rows rows of this shape.
func (s *insertShape) sql(rows int) string {
	var b strings.Builder
	b.WriteString(s.head)
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		b.WriteString(paramPattern.ReplaceAllStringFunc(s.row, func(p string) string {
			i, _ := strconv.Atoi(p[1:])
			return "$" + strconv.Itoa(i+r*s.width)
		}))
		b.WriteByte(')')
	}
	b.WriteString(s.tail)
	return b.String()
}

// statements returns the run as statements: SQL texts with their arguments.
func (r *run) statements(emit func(sql string, args []any)) {
	if r.shape == nil || r.rows == 1 {
		emit(r.sql, r.args)
		return
	}
	w := r.shape.width
	for done := 0; done < r.rows; {
		n := chunk(r.rows - done)
		emit(r.shape.sqlCached(n), r.args[done*w:(done+n)*w])
		done += n
	}
}

// sqlCached memoises sql per row count.
func (s *insertShape) sqlCached(rows int) string {
	key := sqlKey{s, rows}
	if v, ok := mergedSQL.Load(key); ok {
		return v.(string)
	}
	q := s.sql(rows)
	mergedSQL.Store(key, q)
	return q
}

type sqlKey struct {
	shape *insertShape
	rows  int
}

var mergedSQL sync.Map // sqlKey → string
