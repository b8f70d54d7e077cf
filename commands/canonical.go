package commands

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The fast canonical encoders below produce exactly what CanonicalJSON
// produces from json.Marshal (canonical_test.go checks it on random
// values), without decoding into maps: flat event structs and the hashed
// event envelope are written field by field in sorted key order. Anything
// else falls back to the generic path.

// flatField is one field of a flat struct, in canonical (sorted) order.
type flatField struct {
	name      string
	index     int
	omitempty bool
	kind      reflect.Kind
	isTime    bool
}

var flatTypes sync.Map // reflect.Type → flatType

type flatType struct {
	fields []flatField
	ok     bool
}

var timeType = reflect.TypeFor[time.Time]()

// flatFields returns the sorted fields of a struct made only of strings,
// bools, integers and times; ok is false for any other type.
func flatFields(t reflect.Type) ([]flatField, bool) {
	if f, ok := flatTypes.Load(t); ok {
		return f.(flatType).fields, f.(flatType).ok
	}
	var fields []flatField
	ok := t.Kind() == reflect.Struct
	for i := 0; ok && i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if !sf.IsExported() || name == "-" || name == "" || strings.Contains(opts, "string") {
			ok = false
			break
		}
		f := flatField{name: name, index: i, omitempty: strings.Contains(opts, "omitempty"), kind: sf.Type.Kind(),
			isTime: sf.Type == timeType}
		switch {
		case f.isTime && !f.omitempty:
		case f.kind == reflect.String, f.kind == reflect.Bool,
			f.kind >= reflect.Int && f.kind <= reflect.Int64, f.kind >= reflect.Uint && f.kind <= reflect.Uint64:
		default:
			ok = false
		}
		fields = append(fields, f)
	}
	if ok {
		sort.Slice(fields, func(i, j int) bool { return fields[i].name < fields[j].name })
	}
	flatTypes.Store(t, flatType{fields, ok})
	return fields, ok
}

// canonicalFlat encodes a flat struct canonically; ok is false when v is
// not one.
func canonicalFlat(v any) ([]byte, bool) {
	rv := reflect.ValueOf(v)
	fields, ok := flatFields(rv.Type())
	if !ok {
		return nil, false
	}
	b := make([]byte, 0, 128)
	b = append(b, '{')
	first := true
	for _, f := range fields {
		fv := rv.Field(f.index)
		if f.omitempty && fv.IsZero() {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, f.name)
		b = append(b, ':')
		switch {
		case f.isTime:
			t := fv.Interface().(time.Time)
			if y := t.Year(); y < 0 || y > 9999 {
				return nil, false
			}
			b = appendString(b, t.Format(time.RFC3339Nano))
		case f.kind == reflect.String:
			b = appendString(b, fv.String())
		case f.kind == reflect.Bool:
			b = strconv.AppendBool(b, fv.Bool())
		case f.kind >= reflect.Int && f.kind <= reflect.Int64:
			b = strconv.AppendInt(b, fv.Int(), 10)
		default:
			b = strconv.AppendUint(b, fv.Uint(), 10)
		}
	}
	return append(b, '}'), true
}

// appendString appends s as a JSON string the way the canonical encoder
// does (encoding/json without HTML escaping).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return appendStringSlow(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendStringSlow encodes with encoding/json. Invalid UTF-8 bytes first
// become U+FFFD, as decoding the generic path's "\ufffd" escapes and
// encoding again yields.
func appendStringSlow(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		var fixed strings.Builder
		for _, r := range s { // each invalid byte ranges as one utf8.RuneError
			fixed.WriteRune(r)
		}
		s = fixed.String()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// canonicalEnvelope writes the hashed envelope of an event whose data is
// already canonical; its keys are in sorted order by construction.
func canonicalEnvelope(e *JournalEvent, data []byte) []byte {
	b := make([]byte, 0, 256+len(data))
	b = append(b, `{"aggregate_id":`...)
	b = appendString(b, e.AggregateID)
	b = append(b, `,"aggregate_type":`...)
	b = appendString(b, e.AggregateType)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	b = append(b, `,"event_id":`...)
	b = appendString(b, e.EventID)
	b = append(b, `,"metadata":{"actor":`...)
	b = appendString(b, e.Metadata.Actor)
	b = append(b, `,"causation_id":`...)
	b = appendString(b, e.Metadata.CausationID)
	b = append(b, `,"command_id":`...)
	b = appendString(b, e.Metadata.CommandID)
	b = append(b, `,"correlation_id":`...)
	b = appendString(b, e.Metadata.CorrelationID)
	b = append(b, `},"occurred_at":`...)
	b = appendString(b, e.OccurredAt.UTC().Format("2006-01-02T15:04:05.000000Z"))
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, e.Version, 10)
	return append(b, '}')
}
