// Package schemas is Strata's public contract: the JSON Schemas of every
// command payload and event version, the command envelope, asyncapi.yaml,
// openapi.yaml and a frozen sample of every schema, all embedded in FS.
//
// The set is data-driven. A file's place in the tree is its type:
//
//	commands/<service>/<CommandType>.json     "<service>.<CommandType>"      (e.g. auth.CreateRole)
//	events/<service>/<EventType>.v<N>.json    "<service>.<EventType>.v<N>"   (e.g. auth.RoleCreated.v1)
//	commands/envelope.json                    the command envelope on <service>.commands
//	defs/<service>.json                       value types shared by a service's command schemas
//
// and its "$id" is BaseURI followed by that path. Adding a service is adding
// files; Load picks them up.
package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// FS holds every contract file, under the paths described in the package
// comment, plus asyncapi.yaml, openapi.yaml, README.md and testdata/ (the
// frozen samples). The gateway serves /openapi.yaml from it.
//
//go:embed README.md asyncapi.yaml openapi.yaml commands defs events testdata
var FS embed.FS

// BaseURI prefixes the "$id" of every schema; the rest of the URI is the
// file's path in FS.
const BaseURI = "https://strata.dev/schemas/"

// EnvelopeSchemaURI is the "$id" of the command envelope schema.
const EnvelopeSchemaURI = BaseURI + "commands/envelope.json"

var (
	// ErrUnknownType is returned (wrapped) for a command or event type that
	// has no schema.
	ErrUnknownType = errors.New("schemas: no schema for type")
	// ErrMalformed is returned (wrapped) when a payload is not one JSON value.
	ErrMalformed = errors.New("schemas: malformed JSON")
)

// ValidationError reports a document that does not satisfy its schema.
// Errors lists one FieldError per violated constraint, sorted by field.
type ValidationError struct {
	Type   string // the qualified type validated against, e.g. "auth.RoleCreated.v1"
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.String()
	}
	return fmt.Sprintf("schemas: invalid %s: %s", e.Type, strings.Join(parts, "; "))
}

// Registry holds every schema of FS, compiled once. It is immutable and safe
// for concurrent use.
type Registry struct {
	commands map[string]*jsonschema.Schema // "auth.CreateRole" → schema
	events   map[string]*jsonschema.Schema // "auth.RoleCreated.v1" → schema
	envelope *jsonschema.Schema
}

// Load compiles every schema in FS, with format assertions on ("format":
// "uuid" and "date-time" are enforced). References are resolved inside FS
// only, never over the network. It fails if a file is misplaced or misnamed,
// if its "$id" is not BaseURI plus its path, or if a schema does not compile.
func Load() (*Registry, error) { return load(FS) }

var (
	commandFile = regexp.MustCompile(`^commands/([a-z][a-z0-9-]*)/([A-Z][A-Za-z0-9]*)\.json$`)
	eventFile   = regexp.MustCompile(`^events/([a-z][a-z0-9-]*)/([A-Z][A-Za-z0-9]*\.v[1-9][0-9]*)\.json$`)
)

func load(fsys fs.FS) (*Registry, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(fsLoader{fsys})

	r := &Registry{commands: map[string]*jsonschema.Schema{}, events: map[string]*jsonschema.Schema{}}
	var err error
	if r.envelope, err = c.Compile(EnvelopeSchemaURI); err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	for _, dir := range []struct {
		root string
		re   *regexp.Regexp
		into map[string]*jsonschema.Schema
	}{{"commands", commandFile, r.commands}, {"events", eventFile, r.events}} {
		err := fs.WalkDir(fsys, dir.root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || p == "commands/envelope.json" {
				return err
			}
			m := dir.re.FindStringSubmatch(p)
			if m == nil {
				return fmt.Errorf("schemas: %s does not follow %s/<service>/<Type>.json", p, dir.root)
			}
			sch, err := c.Compile(BaseURI + p)
			if err != nil {
				return fmt.Errorf("schemas: %w", err)
			}
			dir.into[m[1]+"."+m[2]] = sch
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// fsLoader resolves BaseURI URLs to files of an fs.FS and refuses every other
// URL, so compiling never touches the network. The draft 2020-12 metaschemas
// are built into jsonschema and never reach a loader.
type fsLoader struct{ fsys fs.FS }

func (l fsLoader) Load(url string) (any, error) {
	p, ok := strings.CutPrefix(url, BaseURI)
	if !ok {
		return nil, fmt.Errorf("%s is outside %s; only embedded schemas are loaded", url, BaseURI)
	}
	b, err := fs.ReadFile(l.fsys, p)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if obj, ok := doc.(map[string]any); ok && obj["$id"] != url {
		return nil, fmt.Errorf("%s: $id is %v, want %s", p, obj["$id"], url)
	}
	return doc, nil
}

// ValidateCommand validates a command payload (what travels as the
// envelope's payload, and for most routes what a client sends as the HTTP
// body; a body with a password, such as POST /users, has its own request
// schema in openapi.yaml instead) against the schema of qualifiedType
// ("auth.CreateRole"). An empty payload is taken as {}, as the command
// decoder does.
//
// It returns nil, nil when the payload is valid; the violations, sorted by
// field, when it is not (an unknown property is reported as its path, e.g.
// "/colour", with message "unknown field"); and an error wrapping
// ErrUnknownType or ErrMalformed when the type has no schema or the payload
// is not JSON.
func (r *Registry) ValidateCommand(qualifiedType string, payload []byte) ([]FieldError, error) {
	sch, ok := r.commands[qualifiedType]
	if !ok {
		return nil, fmt.Errorf("%w: command %q", ErrUnknownType, qualifiedType)
	}
	return validate(sch, payload)
}

// ValidateEvent validates event data against the schema of ceType
// ("auth.RoleCreated.v1"). It returns nil when the data is valid, a
// *ValidationError when it is not, and an error wrapping ErrUnknownType or
// ErrMalformed when the type has no schema or the data is not JSON.
func (r *Registry) ValidateEvent(ceType string, data []byte) error {
	sch, ok := r.events[ceType]
	if !ok {
		return fmt.Errorf("%w: event %q", ErrUnknownType, ceType)
	}
	return asError(ceType)(validate(sch, data))
}

// ValidateEnvelope validates the value of a <service>.commands record against
// commands/envelope.json (the payload is only checked to be an object; use
// ValidateCommand for it). Results are as for ValidateCommand.
func (r *Registry) ValidateEnvelope(value []byte) ([]FieldError, error) {
	return validate(r.envelope, value)
}

// HasCommand reports whether qualifiedType ("auth.CreateRole") has a schema.
func (r *Registry) HasCommand(qualifiedType string) bool {
	_, ok := r.commands[qualifiedType]
	return ok
}

// HasEvent reports whether ceType ("auth.RoleCreated.v1") has a schema.
func (r *Registry) HasEvent(ceType string) bool {
	_, ok := r.events[ceType]
	return ok
}

// Commands returns every qualified command type with a schema, sorted.
func (r *Registry) Commands() []string { return sortedKeys(r.commands) }

// Events returns every CloudEvents type with a schema, sorted.
func (r *Registry) Events() []string { return sortedKeys(r.events) }

// DataSchemaURI returns the "$id" of the schema of ceType, the value of the
// ce_dataschema header: "auth.RoleCreated.v1" →
// "https://strata.dev/schemas/events/auth/RoleCreated.v1.json". It only maps
// names (use HasEvent to know whether the schema exists) and returns "" when
// ceType has no "<service>." prefix.
func DataSchemaURI(ceType string) string {
	service, rest, ok := strings.Cut(ceType, ".")
	if !ok || service == "" || rest == "" {
		return ""
	}
	return BaseURI + path.Join("events", service, rest+".json")
}

// CommandSchemaURI returns the "$id" of the payload schema of qualifiedType:
// "auth.CreateRole" → "https://strata.dev/schemas/commands/auth/CreateRole.json",
// or "" when qualifiedType has no "<service>." prefix.
func CommandSchemaURI(qualifiedType string) string {
	service, name, ok := strings.Cut(qualifiedType, ".")
	if !ok || service == "" || name == "" {
		return ""
	}
	return BaseURI + path.Join("commands", service, name+".json")
}

func validate(sch *jsonschema.Schema, data []byte) ([]FieldError, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	err = sch.Validate(doc)
	var verr *jsonschema.ValidationError
	if errors.As(err, &verr) {
		return fieldErrors(verr), nil
	}
	return nil, err
}

// asError turns validate's result into the error ValidateEvent returns.
func asError(typ string) func([]FieldError, error) error {
	return func(fes []FieldError, err error) error {
		if err != nil || len(fes) == 0 {
			return err
		}
		return &ValidationError{Type: typ, Errors: fes}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
