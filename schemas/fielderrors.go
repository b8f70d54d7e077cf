package schemas

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// FieldError is one violated constraint of a document, in the shape of the
// errors[] member of a problem+json response.
type FieldError struct {
	// Field is the JSON pointer of the offending value ("/name",
	// "/actor/user_id"), of the missing or unknown property, or "" for the
	// document itself.
	Field string `json:"field"`
	// Message says what is wrong in plain English ("is required",
	// "unknown field", "must be at most 64 characters long").
	Message string `json:"message"`
}

func (fe FieldError) String() string {
	if fe.Field == "" {
		return fe.Message
	}
	return fe.Field + ": " + fe.Message
}

var english = message.NewPrinter(language.English)

// fieldErrors flattens a validation error tree into one FieldError per
// violated leaf, without duplicates, sorted by field then message.
func fieldErrors(verr *jsonschema.ValidationError) []FieldError {
	seen := map[FieldError]bool{}
	var out []FieldError
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		for _, fe := range leafErrors(e) {
			if !seen[fe] {
				seen[fe] = true
				out = append(out, fe)
			}
		}
	}
	walk(verr)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Field != out[j].Field {
			return out[i].Field < out[j].Field
		}
		return out[i].Message < out[j].Message
	})
	return out
}

// leafErrors describes one leaf of the tree. Required and
// additionalProperties are reported per property, at the property's path.
func leafErrors(e *jsonschema.ValidationError) []FieldError {
	at := pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return perProperty(at, k.Missing, "is required")
	case *kind.AdditionalProperties:
		return perProperty(at, k.Properties, "unknown field")
	case *kind.Type:
		return []FieldError{{at, "must be " + typeNames(k.Want)}}
	case *kind.MinLength:
		if k.Want == 1 {
			return []FieldError{{at, "must not be empty"}}
		}
		return []FieldError{{at, fmt.Sprintf("must be at least %d characters long", k.Want)}}
	case *kind.MaxLength:
		return []FieldError{{at, fmt.Sprintf("must be at most %d characters long", k.Want)}}
	case *kind.Pattern:
		return []FieldError{{at, "must match the pattern " + k.Want}}
	case *kind.Format:
		return []FieldError{{at, formatMessage(k.Want)}}
	case *kind.Minimum:
		return []FieldError{{at, "must be at least " + k.Want.RatString()}}
	case *kind.Maximum:
		return []FieldError{{at, "must be at most " + k.Want.RatString()}}
	case *kind.FalseSchema:
		return []FieldError{{at, "is not allowed"}}
	case *kind.Not:
		return []FieldError{{at, notMessage(e.SchemaURL)}}
	}
	return []FieldError{{at, e.ErrorKind.LocalizedString(english)}}
}

// notMessage describes a failed "not" from the subschema it refuses, found
// in FS at schemaURL (the schema holding the "not"): "must not be <title>"
// when the subschema has a title (defs/account.json's amount refuses
// {"title": "zero", ...}), "must not match the pattern <p>" when it is a
// pattern, and "is not allowed" otherwise.
func notMessage(schemaURL string) string {
	if msg, ok := notMessages.Load(schemaURL); ok {
		return msg.(string)
	}
	msg := "is not allowed"
	var sub struct {
		Title   string `json:"title"`
		Pattern string `json:"pattern"`
	}
	if raw, ok := schemaAt(schemaURL); ok {
		var holder struct {
			Not json.RawMessage `json:"not"`
		}
		if json.Unmarshal(raw, &holder) == nil && json.Unmarshal(holder.Not, &sub) == nil {
			switch {
			case sub.Title != "":
				msg = "must not be " + sub.Title
			case sub.Pattern != "":
				msg = "must not match the pattern " + sub.Pattern
			}
		}
	}
	notMessages.Store(schemaURL, msg)
	return msg
}

var notMessages sync.Map // schema URL → message

// schemaAt returns the raw JSON of the (sub)schema at a BaseURI URL with a
// JSON pointer fragment, read from FS.
func schemaAt(url string) (json.RawMessage, bool) {
	file, frag, _ := strings.Cut(url, "#")
	b, err := fs.ReadFile(FS, strings.TrimPrefix(file, BaseURI))
	if err != nil || !strings.HasPrefix(file, BaseURI) {
		return nil, false
	}
	raw := json.RawMessage(b)
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil, false
		}
		if raw = obj[tok]; raw == nil {
			return nil, false
		}
	}
	return raw, true
}

func perProperty(at string, props []string, msg string) []FieldError {
	out := make([]FieldError, len(props))
	for i, p := range props {
		out[i] = FieldError{at + "/" + escape(p), msg}
	}
	return out
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteString("/" + escape(t))
	}
	return b.String()
}

// escape encodes a JSON pointer reference token (RFC 6901).
func escape(token string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(token)
}

func typeNames(want []string) string {
	names := make([]string, len(want))
	for i, w := range want {
		switch w {
		case "null":
			names[i] = "null"
		case "object", "array", "integer":
			names[i] = "an " + w
		default:
			names[i] = "a " + w
		}
	}
	return strings.Join(names, " or ")
}

func formatMessage(format string) string {
	switch format {
	case "uuid":
		return "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
	case "date-time":
		return "must be an RFC 3339 date-time (2006-01-02T15:04:05Z)"
	case "email":
		return "must be an email address"
	case "uri":
		return "must be an absolute URI"
	}
	return "must be a valid " + format
}
