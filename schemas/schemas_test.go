package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/strata-cqrs/strata/aggregates"
	"github.com/strata-cqrs/strata/aggregates/account"
	"github.com/strata-cqrs/strata/aggregates/auth"
)

// definitions lists every aggregate the code can run. A new service adds its
// Definitions() here; the tests then demand a schema and a frozen sample for
// each of its commands and events.
func definitions() []*aggregates.Definition {
	return slices.Concat(auth.Definitions(), account.Definitions())
}

func mustLoad(t *testing.T) *Registry {
	t.Helper()
	r, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return r
}

func readFS(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(FS, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

// eventFilePath is the path of an event's schema (and, under testdata/, its sample).
func eventFilePath(d *aggregates.Definition, e aggregates.Event) string {
	return strings.TrimPrefix(DataSchemaURI(d.QualifiedEvent(e)), BaseURI)
}

func commandFilePath(d *aggregates.Definition, c aggregates.Command) string {
	return strings.TrimPrefix(CommandSchemaURI(d.QualifiedCommand(c)), BaseURI)
}

func TestEveryTypeHasASchema(t *testing.T) {
	r := mustLoad(t)
	var events, commands []string
	for _, d := range definitions() {
		for _, e := range d.Events {
			typ := d.QualifiedEvent(e)
			events = append(events, typ)
			if !r.HasEvent(typ) {
				t.Errorf("event %s has no schema (want %s)", typ, eventFilePath(d, e))
			}
		}
		for _, c := range d.Commands {
			typ := d.QualifiedCommand(c)
			commands = append(commands, typ)
			if !r.HasCommand(typ) {
				t.Errorf("command %s has no schema (want %s)", typ, commandFilePath(d, c))
			}
		}
	}
	// And no schema describes a type the code does not have (a typo, or a
	// service missing from definitions()).
	slices.Sort(events)
	slices.Sort(commands)
	if got := r.Events(); !slices.Equal(got, events) {
		t.Errorf("event schemas = %v, Go event types = %v", got, events)
	}
	if got := r.Commands(); !slices.Equal(got, commands) {
		t.Errorf("command schemas = %v, Go command types = %v", got, commands)
	}
}

func TestDataSchemaURIIsTheSchemaID(t *testing.T) {
	for _, d := range definitions() {
		for _, e := range d.Events {
			typ := d.QualifiedEvent(e)
			var doc struct {
				ID string `json:"$id"`
			}
			if err := json.Unmarshal(readFS(t, eventFilePath(d, e)), &doc); err != nil {
				t.Fatal(err)
			}
			if got := DataSchemaURI(typ); got != doc.ID {
				t.Errorf("DataSchemaURI(%s) = %s, schema $id = %s", typ, got, doc.ID)
			}
		}
	}
	for in, want := range map[string]string{
		"auth.RoleCreated.v1":       "https://strata.dev/schemas/events/auth/RoleCreated.v1.json",
		"account.FundsDeposited.v2": "https://strata.dev/schemas/events/account/FundsDeposited.v2.json",
		"RoleCreated":               "",
		"":                          "",
	} {
		if got := DataSchemaURI(in); got != want {
			t.Errorf("DataSchemaURI(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFrozenEventSamples proves the Go event structs and the schemas agree:
// every frozen sample validates, decodes into its struct (which rejects
// unknown fields), and re-encodes to the same JSON, which validates too.
func TestFrozenEventSamples(t *testing.T) {
	r := mustLoad(t)
	for _, d := range definitions() {
		for _, e := range d.Events {
			typ := d.QualifiedEvent(e)
			t.Run(typ, func(t *testing.T) {
				sample := readFS(t, "testdata/"+eventFilePath(d, e))
				if err := r.ValidateEvent(typ, sample); err != nil {
					t.Fatalf("sample does not validate: %v", err)
				}
				ev, err := d.DecodeEvent(typ, sample)
				if err != nil {
					t.Fatalf("sample does not decode: %v", err)
				}
				again, err := json.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.ValidateEvent(typ, again); err != nil {
					t.Errorf("re-encoded %s does not validate: %v", again, err)
				}
				if !jsonEqual(t, sample, again) {
					t.Errorf("re-encoded = %s, sample = %s", again, sample)
				}
			})
		}
	}
}

func TestFrozenCommandSamples(t *testing.T) {
	r := mustLoad(t)
	for _, d := range definitions() {
		for _, c := range d.Commands {
			typ := d.QualifiedCommand(c)
			t.Run(typ, func(t *testing.T) {
				sample := readFS(t, "testdata/"+commandFilePath(d, c))
				fes, err := r.ValidateCommand(typ, sample)
				if err != nil || len(fes) > 0 {
					t.Fatalf("sample does not validate: %v %v", fes, err)
				}
				cmd, ok, err := d.DecodeCommand(typ, sample)
				if !ok || err != nil {
					t.Fatalf("sample does not decode: ok=%v err=%v", ok, err)
				}
				if reflect.TypeOf(cmd) != reflect.TypeOf(c) {
					t.Fatalf("decoded %T, want %T", cmd, c)
				}
				again, err := json.Marshal(cmd)
				if err != nil {
					t.Fatal(err)
				}
				if fes, err := r.ValidateCommand(typ, again); err != nil || len(fes) > 0 {
					t.Errorf("re-encoded %s does not validate: %v %v", again, fes, err)
				}
			})
		}
	}
}

// TestSchemaPropertiesMatchStructs compares each schema's properties with
// its struct's JSON fields. Events always carry every field (no omitempty),
// so each one must also be required.
func TestSchemaPropertiesMatchStructs(t *testing.T) {
	for _, d := range definitions() {
		for _, e := range d.Events {
			fields, always := jsonFields(reflect.TypeOf(e))
			props, required := schemaProperties(t, eventFilePath(d, e))
			if !slices.Equal(props, fields) {
				t.Errorf("%s: schema properties %v, struct fields %v", d.QualifiedEvent(e), props, fields)
			}
			if !slices.Equal(required, always) {
				t.Errorf("%s: schema requires %v, struct always emits %v", d.QualifiedEvent(e), required, always)
			}
		}
		for _, c := range d.Commands {
			fields, _ := jsonFields(reflect.TypeOf(c))
			props, required := schemaProperties(t, commandFilePath(d, c))
			if !slices.Equal(props, fields) {
				t.Errorf("%s: schema properties %v, struct fields %v", d.QualifiedCommand(c), props, fields)
			}
			for _, r := range required {
				if !slices.Contains(fields, r) {
					t.Errorf("%s: schema requires %q, which the struct lacks", d.QualifiedCommand(c), r)
				}
			}
		}
	}
}

func jsonFields(typ reflect.Type) (all, always []string) {
	all, always = []string{}, []string{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		all = append(all, name)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			always = append(always, name)
		}
	}
	slices.Sort(all)
	slices.Sort(always)
	return all, always
}

func schemaProperties(t *testing.T, name string) (props, required []string) {
	t.Helper()
	var doc struct {
		Properties           map[string]json.RawMessage `json:"properties"`
		Required             []string                   `json:"required"`
		AdditionalProperties *bool                      `json:"additionalProperties"`
	}
	if err := json.Unmarshal(readFS(t, name), &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if doc.AdditionalProperties == nil || *doc.AdditionalProperties {
		t.Errorf("%s: additionalProperties must be false", name)
	}
	props = []string{}
	for p := range doc.Properties {
		props = append(props, p)
	}
	slices.Sort(props)
	required = append([]string{}, doc.Required...)
	slices.Sort(required)
	return props, required
}

// TestSchemaExamplesValidate keeps the "examples" of every schema honest.
func TestSchemaExamplesValidate(t *testing.T) {
	r := mustLoad(t)
	check := func(name string, validate func([]byte) error) {
		var doc struct {
			Examples []json.RawMessage `json:"examples"`
		}
		if err := json.Unmarshal(readFS(t, name), &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(doc.Examples) == 0 {
			t.Errorf("%s has no examples", name)
		}
		for _, ex := range doc.Examples {
			if err := validate(ex); err != nil {
				t.Errorf("%s: example %s: %v", name, ex, err)
			}
		}
	}
	fieldErrs := func(fes []FieldError, err error) error {
		if err == nil && len(fes) > 0 {
			err = &ValidationError{Errors: fes}
		}
		return err
	}
	for _, typ := range r.Events() {
		check(strings.TrimPrefix(DataSchemaURI(typ), BaseURI), func(b []byte) error { return r.ValidateEvent(typ, b) })
	}
	for _, typ := range r.Commands() {
		check(strings.TrimPrefix(CommandSchemaURI(typ), BaseURI), func(b []byte) error { return fieldErrs(r.ValidateCommand(typ, b)) })
	}
	check("commands/envelope.json", func(b []byte) error { return fieldErrs(r.ValidateEnvelope(b)) })
}

func TestValidateCommandReportsFieldErrors(t *testing.T) {
	r := mustLoad(t)
	namePattern := "must match the pattern ^[\\p{L}\\p{N}][\\p{L}\\p{N} ._-]{0,63}$"
	for _, tc := range []struct {
		name, typ, payload string
		want               []FieldError
	}{
		{"AcceptsUnicodeRoleName", "auth.CreateRole", `{"name": "Équipe support 北京", "description": ""}`, nil},
		{"AcceptsOmittedDescription", "auth.CreateRole", `{"name": "ops"}`, nil},
		{"TakesEmptyPayloadAsEmptyObject", "auth.DeleteRole", ``, nil},
		{"UnknownField", "auth.CreateRole", `{"name": "ops", "colour": "red"}`,
			[]FieldError{{"/colour", "unknown field"}}},
		{"UnknownFieldOnEmptyCommand", "auth.DeletePermission", `{"force": true}`,
			[]FieldError{{"/force", "unknown field"}}},
		{"MissingRequired", "auth.CreateRole", `{"description": "no name"}`,
			[]FieldError{{"/name", "is required"}}},
		{"BadPermissionName", "auth.CreatePermission", `{"name": "Roles:Write"}`,
			[]FieldError{{"/name", "must match the pattern ^[a-z][a-z0-9-]*(:[a-z][a-z0-9-]*){1,2}$"}}},
		{"PermissionNameWithoutAction", "auth.CreatePermission", `{"name": "roles"}`,
			[]FieldError{{"/name", "must match the pattern ^[a-z][a-z0-9-]*(:[a-z][a-z0-9-]*){1,2}$"}}},
		{"LeadingSpaceInRoleName", "auth.RenameRole", `{"name": " ops"}`,
			[]FieldError{{"/name", namePattern}}},
		{"EmptyRoleName", "auth.CreateRole", `{"name": ""}`,
			[]FieldError{{"/name", namePattern}, {"/name", "must not be empty"}}},
		{"RoleNameTooLong", "auth.CreateRole", `{"name": "` + strings.Repeat("r", 65) + `"}`,
			[]FieldError{{"/name", "must be at most 64 characters long"}, {"/name", namePattern}}},
		{"DescriptionTooLong", "auth.CreatePermission", `{"name": "a:b", "description": "` + strings.Repeat("é", 1001) + `"}`,
			[]FieldError{{"/description", "must be at most 1000 characters long"}}},
		{"BadUUID", "auth.GrantPermission", `{"permission_id": "not-a-uuid"}`,
			[]FieldError{{"/permission_id", "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"}}},
		{"WrongType", "auth.CreateRole", `{"name": 42}`,
			[]FieldError{{"/name", "must be a string"}}},
		{"NotAnObject", "auth.CreateRole", `["ops"]`,
			[]FieldError{{"", "must be an object"}}},
		{"AcceptsUnicodeUserName", "auth.RegisterUser", `{"email": "Zoe@Example.com", "name": "Zoë Ångström"}`, nil},
		{"BadEmail", "auth.RegisterUser", `{"email": "not an email", "name": "Ada"}`,
			[]FieldError{{"/email", "must be an email address"}}},
		{"EmailTooLong", "auth.RegisterUser", `{"email": "` + strings.Repeat("a", 64) + "@" + strings.Repeat("b", 190) + `.com", "name": "Ada"}`,
			[]FieldError{{"/email", "must be an email address"}}}, // an address is at most 254 characters (RFC 5321)
		{"BlankUserName", "auth.RegisterUser", `{"email": "ada@example.com", "name": "   "}`,
			[]FieldError{{"/name", "must match the pattern \\S"}}},
		{"PasswordIsNeverACommandField", "auth.RegisterUser", `{"email": "ada@example.com", "name": "Ada", "password": "correct horse battery"}`,
			[]FieldError{{"/password", "unknown field"}}},
		{"PasswordIsNotInChangePassword", "auth.ChangePassword", `{"password": "correct horse battery"}`,
			[]FieldError{{"/password", "unknown field"}}},
		{"UnknownEmailLogin", "auth.RecordLogin", `{"email": "nobody", "succeeded": false, "reason": "bad_credentials", "at": "2025-01-14T09:31:05Z"}`, nil},
		{"SuccessfulLoginNeedsUserID", "auth.RecordLogin", `{"email": "ada@example.com", "succeeded": true, "at": "2025-01-14T09:31:05Z"}`,
			[]FieldError{{"/user_id", "is required"}}},
		{"SuccessfulLoginHasNoReason", "auth.RecordLogin",
			`{"email": "ada@example.com", "user_id": "0192f4a0-1e2d-7c3b-a4f5-6e7d8c9b0a1f", "succeeded": true, "reason": "throttled", "at": "2025-01-14T09:31:05Z"}`,
			[]FieldError{{"/reason", "is not allowed"}}},
		{"FailedLoginNeedsReason", "auth.RecordLogin", `{"email": "ada@example.com", "succeeded": false, "at": "2025-01-14T09:31:05Z"}`,
			[]FieldError{{"/reason", "is required"}}},
		{"UnknownLoginReason", "auth.RecordLogin", `{"email": "ada@example.com", "succeeded": false, "reason": "bored", "at": "2025-01-14T09:31:05Z"}`,
			[]FieldError{{"/reason", "value must be one of 'bad_credentials', 'user_disabled', 'throttled'"}}},
		{"SeveralAtOnceSortedByField", "auth.CreateRole", `{"description": 7, "x": 1, "y": 2}`,
			[]FieldError{{"/description", "must be a string"}, {"/name", "is required"}, {"/x", "unknown field"}, {"/y", "unknown field"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.ValidateCommand(tc.typ, []byte(tc.payload))
			if err != nil {
				t.Fatalf("ValidateCommand: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestValidateCommandErrors(t *testing.T) {
	r := mustLoad(t)
	t.Run("UnknownType", func(t *testing.T) {
		_, err := r.ValidateCommand("auth.Frobnicate", []byte(`{}`))
		if !errors.Is(err, ErrUnknownType) {
			t.Errorf("err = %v, want ErrUnknownType", err)
		}
	})
	for name, payload := range map[string]string{
		"NotJSON":      `{"name": `,
		"TrailingData": `{"name": "ops"} {}`,
	} {
		t.Run(name, func(t *testing.T) {
			fes, err := r.ValidateCommand("auth.CreateRole", []byte(payload))
			if !errors.Is(err, ErrMalformed) || fes != nil {
				t.Errorf("got %v, %v; want nil, ErrMalformed", fes, err)
			}
		})
	}
}

func TestValidateEventRejects(t *testing.T) {
	r := mustLoad(t)
	t.Run("UnknownField", func(t *testing.T) {
		err := r.ValidateEvent("auth.RoleCreated.v1", []byte(`{"name": "ops", "description": "", "secret": "x"}`))
		var verr *ValidationError
		if !errors.As(err, &verr) {
			t.Fatalf("err = %v, want *ValidationError", err)
		}
		want := []FieldError{{"/secret", "unknown field"}}
		if verr.Type != "auth.RoleCreated.v1" || !slices.Equal(verr.Errors, want) {
			t.Errorf("got %s %q, want auth.RoleCreated.v1 %q", verr.Type, verr.Errors, want)
		}
	})
	t.Run("MissingField", func(t *testing.T) {
		err := r.ValidateEvent("auth.PermissionGranted.v1", []byte(`{"permission_id": "0192f4a1-7c3e-7b2a-9f10-3d5e8a1c2b4f"}`))
		if err == nil || !strings.Contains(err.Error(), "/permission_name: is required") {
			t.Errorf("err = %v, want /permission_name: is required", err)
		}
	})
	t.Run("UnknownType", func(t *testing.T) {
		if err := r.ValidateEvent("auth.RoleCreated.v9", []byte(`{}`)); !errors.Is(err, ErrUnknownType) {
			t.Errorf("err = %v, want ErrUnknownType", err)
		}
	})
}

func TestEnvelope(t *testing.T) {
	r := mustLoad(t)
	sample := readFS(t, "testdata/commands/envelope.json")
	t.Run("FrozenSampleValidates", func(t *testing.T) {
		if fes, err := r.ValidateEnvelope(sample); err != nil || len(fes) > 0 {
			t.Fatalf("got %v, %v", fes, err)
		}
		var env struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(sample, &env); err != nil {
			t.Fatal(err)
		}
		if fes, err := r.ValidateCommand(env.Type, env.Payload); err != nil || len(fes) > 0 {
			t.Errorf("payload of %s: %v, %v", env.Type, fes, err)
		}
	})
	t.Run("RejectsClientSetFieldsAndBadValues", func(t *testing.T) {
		var env map[string]any
		if err := json.Unmarshal(sample, &env); err != nil {
			t.Fatal(err)
		}
		env["expected_version"] = -1
		env["issued_at"] = "yesterday"
		env["version"] = 3
		delete(env["actor"].(map[string]any), "user_id")
		b, _ := json.Marshal(env)
		got, err := r.ValidateEnvelope(b)
		want := []FieldError{
			{"/actor/user_id", "is required"},
			{"/expected_version", "must be at least 0"},
			{"/issued_at", "must be an RFC 3339 date-time (2006-01-02T15:04:05Z)"},
			{"/version", "unknown field"},
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("got %q, %v\nwant %q", got, err, want)
		}
	})
}

// TestLoadStaysOffline checks the loader: references resolve inside the FS,
// a network reference is refused, and misplaced files or wrong $ids fail Load.
func TestLoadStaysOffline(t *testing.T) {
	base := fstest.MapFS{}
	for _, name := range []string{"commands/envelope.json", "defs/auth.json", "commands/auth/CreateRole.json", "events/auth/RoleCreated.v1.json"} {
		base[name] = &fstest.MapFile{Data: readFS(t, name)}
	}
	if _, err := load(base); err != nil {
		t.Fatalf("minimal tree: %v", err)
	}
	schema := func(id, extra string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(`{"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "` + id + `"` + extra + `}`)}
	}
	for name, add := range map[string]fstest.MapFS{
		"NetworkRef": {"commands/x/Y.json": schema(BaseURI+"commands/x/Y.json", `, "$ref": "https://example.com/remote.json"`)},
		"WrongID":    {"commands/x/Y.json": schema(BaseURI+"commands/x/Z.json", ``)},
		"Misnamed":   {"events/x/Y.json": schema(BaseURI+"events/x/Y.json", ``)},
		"MissingRef": {"commands/x/Y.json": schema(BaseURI+"commands/x/Y.json", `, "$ref": "../../defs/x.json"`)},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for k, v := range base {
				fsys[k] = v
			}
			for k, v := range add {
				fsys[k] = v
			}
			if _, err := load(fsys); err == nil {
				t.Error("load succeeded, want an error")
			}
		})
	}
}

func TestAsyncAPIDocumentsEveryChannelAndEvent(t *testing.T) {
	doc, order, err := parseYAMLSubset(string(readFS(t, "asyncapi.yaml")))
	if err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	if got := doc.get("asyncapi"); got != "3.0.0" {
		t.Errorf("asyncapi = %q", got)
	}
	checkRefs(t, "asyncapi.yaml", doc, order)
	services := map[string]bool{}
	for _, d := range definitions() {
		services[d.Service] = true
		topic := d.Topic()
		if got := doc.get("channels", topic, "address"); got != topic {
			t.Errorf("channels.%s.address = %q, want %q", topic, got, topic)
		}
		documented := doc.children(order, "channels", topic, "messages")
		var want []string
		for _, e := range d.Events {
			typ := d.QualifiedEvent(e)
			want = append(want, typ)
			if got := doc.get("channels", topic, "messages", typ, "$ref"); got != "#/components/messages/"+typ {
				t.Errorf("channels.%s.messages.%s.$ref = %q", topic, typ, got)
			}
			msg := []string{"components", "messages", typ}
			if got := doc.get(append(msg, "payload", "$ref")...); got != "./"+eventFilePath(d, e) {
				t.Errorf("%s payload $ref = %q, want ./%s", typ, got, eventFilePath(d, e))
			}
			if got := doc.get(append(msg, "headers", "allOf", "1", "properties", "ce_type", "const")...); got != typ {
				t.Errorf("%s ce_type const = %q", typ, got)
			}
			if got := doc.get(append(msg, "headers", "allOf", "1", "properties", "ce_dataschema", "const")...); got != DataSchemaURI(typ) {
				t.Errorf("%s ce_dataschema const = %q, want %q", typ, got, DataSchemaURI(typ))
			}
		}
		slices.Sort(documented)
		slices.Sort(want)
		if !slices.Equal(documented, want) {
			t.Errorf("channel %s documents %v, the code emits %v", topic, documented, want)
		}
	}
	for service := range services {
		for _, topic := range []string{service + ".commands", service + ".commands.dlq"} {
			if got := doc.get("channels", topic, "address"); got != topic {
				t.Errorf("channels.%s.address = %q, want %q", topic, got, topic)
			}
		}
	}
	for _, h := range []string{"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_dataschema", "content-type",
		"strataversion", "stratacommandid", "stratacorrelationid", "stratacausationid", "strataactor", "stratahash", "strataprevhash"} {
		if !doc.has("components", "schemas", "EventHeaders", "properties", h) {
			t.Errorf("event header %s is not documented", h)
		}
	}
}

// permissionName is the shape of a permission (defs/auth.json#/$defs/permissionName).
var permissionName = regexp.MustCompile(`^[a-z][a-z0-9-]*(:[a-z][a-z0-9-]*){1,2}$`)

func TestOpenAPIDocumentsTheRoutes(t *testing.T) {
	doc, order, err := parseYAMLSubset(string(readFS(t, "openapi.yaml")))
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if got := doc.get("openapi"); got != "3.1.0" {
		t.Errorf("openapi = %q", got)
	}
	checkRefs(t, "openapi.yaml", doc, order)

	// Bearer JWTs are required everywhere unless an operation opts out.
	scheme := []string{"components", "securitySchemes", "bearerAuth"}
	if doc.get(append(scheme, "type")...) != "http" || doc.get(append(scheme, "scheme")...) != "bearer" ||
		doc.get(append(scheme, "bearerFormat")...) != "JWT" {
		t.Errorf("bearerAuth is not an HTTP bearer JWT scheme")
	}
	if got := doc.children(order, "security"); len(got) != 1 || !doc.has("security", "0", "bearerAuth") {
		t.Errorf("global security = %v, want [bearerAuth]", got)
	}

	command := func(name string) string { return "./commands/auth/" + name + ".json" }
	accountCommand := func(name string) string { return "./commands/account/" + name + ".json" }
	schema := func(name string) string { return "#/components/schemas/" + name }
	routes := []struct {
		method, path string
		permission   string // x-permission
		body         string // $ref of the request body schema, if any
		sync         bool   // answers at once, never 202 Accepted
	}{
		{"post", "/auth/login", "public", schema("LoginRequest"), true},
		{"post", "/auth/refresh", "public", schema("RefreshRequest"), true},
		{"post", "/auth/logout", "public", schema("LogoutRequest"), true},
		{"get", "/auth/me", "authenticated", "", true},
		{"get", "/.well-known/jwks.json", "public", "", true},
		{"post", "/permissions", "permissions:write", command("CreatePermission"), false},
		{"get", "/permissions", "permissions:read", "", false},
		{"get", "/permissions/{id}", "permissions:read", "", false},
		{"delete", "/permissions/{id}", "permissions:write", "", false},
		{"post", "/roles", "roles:write", command("CreateRole"), false},
		{"get", "/roles", "roles:read", "", false},
		{"get", "/roles/{id}", "roles:read", "", false},
		{"patch", "/roles/{id}", "roles:write", command("RenameRole"), false},
		{"delete", "/roles/{id}", "roles:write", "", false},
		{"post", "/roles/{id}/permissions", "roles:write", command("GrantPermission"), false},
		{"delete", "/roles/{id}/permissions/{permission_id}", "roles:write", "", false},
		// The password makes these two bodies request schemas, not commands.
		{"post", "/users", "users:write", schema("RegisterUserRequest"), false},
		{"get", "/users", "users:read", "", false},
		{"get", "/users/{id}", "users:read", "", false},
		{"post", "/users/{id}/roles", "roles:assign", command("AssignRole"), false},
		{"delete", "/users/{id}/roles/{role_id}", "roles:assign", "", false},
		{"post", "/users/{id}/password", "users:write", schema("ChangePasswordRequest"), false},
		{"post", "/users/{id}/disable", "users:write", "", false},
		{"post", "/users/{id}/enable", "users:write", "", false},
		{"post", "/accounts", "accounts:write", accountCommand("OpenAssetAccount"), false},
		{"get", "/accounts", "accounts:read", "", false},
		{"get", "/accounts/{id}", "accounts:read", "", false},
		{"post", "/accounts/{id}/deposits", "accounts:write", accountCommand("Deposit"), false},
		{"post", "/accounts/{id}/withdrawals", "accounts:write", accountCommand("Withdraw"), false},
		{"post", "/accounts/{id}/freeze", "accounts:write:any", accountCommand("FreezeAccount"), false},
		{"post", "/accounts/{id}/unfreeze", "accounts:write:any", "", false},
		{"post", "/accounts/{id}/close", "accounts:write", "", false},
		{"post", "/accounts/{id}/pay-plan", "accounts:write", accountCommand("ChangePayPlan"), false},
		{"get", "/accounts/{id}/ledger", "accounts:read", "", false},
		{"post", "/transfers", "accounts:write", accountCommand("TransferFunds"), false},
		{"get", "/transfers", "accounts:read", "", false},
		{"get", "/transfers/{id}", "accounts:read", "", false},
		{"post", "/pay-plans", "payplans:write", accountCommand("CreatePayPlan"), false},
		{"get", "/pay-plans", "payplans:read", "", false},
		{"get", "/pay-plans/{id}", "payplans:read", "", false},
		{"post", "/pay-plans/{id}/price", "payplans:write", accountCommand("ChangePayPlanPrice"), false},
		{"post", "/pay-plans/{id}/retire", "payplans:write", "", false},
		{"post", "/message-templates", "messages:write", accountCommand("CreateMessageTemplate"), false},
		{"get", "/message-templates", "messages:read", "", false},
		{"get", "/message-templates/{id}", "messages:read", "", false},
		{"put", "/message-templates/{id}", "messages:write", accountCommand("UpdateMessageTemplate"), false},
		{"delete", "/message-templates/{id}", "messages:write", "", false},
		{"post", "/message-groups", "messages:write", accountCommand("CreateMessageGroup"), false},
		{"get", "/message-groups", "messages:read", "", false},
		{"get", "/message-groups/{id}", "messages:read", "", false},
		{"post", "/message-groups/{id}/members", "messages:write", accountCommand("AddGroupMember"), false},
		{"delete", "/message-groups/{id}/members/{user_id}", "messages:write", "", false},
		{"post", "/message-groups/{id}/messages", "messages:write", accountCommand("SendGroupMessage"), false},
		{"get", "/message-groups/{id}/messages", "messages:read", "", false},
		{"get", "/commands/{id}", "authenticated", "", false},
		{"get", "/commands/{id}/stream", "authenticated", "", false},
		{"get", "/healthz", "public", "", false},
		{"get", "/readyz", "public", "", false},
		{"get", "/metrics", "public", "", false},
		{"get", "/openapi.yaml", "public", "", false},
	}
	want := map[string]bool{}
	for _, route := range routes {
		want[route.method+" "+route.path] = true
		op := []string{"paths", route.path, route.method}
		if !doc.has(op...) {
			t.Errorf("%s %s is not documented", route.method, route.path)
			continue
		}
		if got := doc.get(append(op, "x-permission")...); got != route.permission {
			t.Errorf("%s %s x-permission = %q, want %q", route.method, route.path, got, route.permission)
		}
		ref := doc.get(append(op, "requestBody", "content", "application/json", "schema", "$ref")...)
		if ref != route.body {
			t.Errorf("%s %s body $ref = %q, want %q", route.method, route.path, ref, route.body)
		}
		if route.method != "get" && !route.sync && !doc.has(append(op, "responses", "202")...) {
			t.Errorf("%s %s does not document 202 Accepted", route.method, route.path)
		}
		if route.sync && doc.has(append(op, "responses", "202")...) {
			t.Errorf("%s %s is synchronous but documents 202 Accepted", route.method, route.path)
		}
		security := append(op, "security")
		public := route.permission == "public"
		switch {
		case public && (!doc.has(security...) || len(doc.children(order, security...)) != 0):
			t.Errorf("%s %s is public but does not override security with []", route.method, route.path)
		case !public && doc.has(security...):
			t.Errorf("%s %s overrides the global bearerAuth requirement", route.method, route.path)
		case !public && !doc.has(append(op, "responses", "401")...):
			t.Errorf("%s %s does not document 401", route.method, route.path)
		case permissionName.MatchString(route.permission) && !doc.has(append(op, "responses", "403")...):
			t.Errorf("%s %s does not document 403", route.method, route.path)
		}
	}

	// Every documented operation is in the table above, so none escapes the
	// checks, and each declares a permission of a known shape.
	for _, path := range doc.children(order, "paths") {
		for _, method := range doc.children(order, "paths", path) {
			if !slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}, method) {
				continue
			}
			if !want[method+" "+path] {
				t.Errorf("%s %s is documented but not in this test's route table", method, path)
			}
			perm := doc.get("paths", path, method, "x-permission")
			if perm != "public" && perm != "authenticated" && !permissionName.MatchString(perm) {
				t.Errorf("%s %s x-permission = %q, want public, authenticated or a permission", method, path, perm)
			}
		}
	}
}

// TestEventSchemasCarryNoSecrets guards the analytics contract: no event
// property may be named like a password, hash, token or key.
func TestEventSchemasCarryNoSecrets(t *testing.T) {
	secretish := regexp.MustCompile(`(?i)password|passwd|secret|hash|token|private|salt|key`)
	r := mustLoad(t)
	for _, typ := range r.Events() {
		name := strings.TrimPrefix(DataSchemaURI(typ), BaseURI)
		props, _ := schemaProperties(t, name)
		for _, p := range props {
			if secretish.MatchString(p) {
				t.Errorf("%s has a property %q that looks like a secret", typ, p)
			}
		}
	}
}

// checkRefs resolves every $ref of a YAML document: "#/a/b" inside it, a
// relative file (with an optional fragment) inside FS.
func checkRefs(t *testing.T, name string, doc yamlDoc, order []string) {
	t.Helper()
	n := 0
	for _, p := range order {
		if !strings.HasSuffix(p, pathSep+"$ref") {
			continue
		}
		n++
		ref := doc.scalars[p]
		file, frag, _ := strings.Cut(ref, "#")
		if file != "" {
			b, err := fs.ReadFile(FS, strings.TrimPrefix(file, "./"))
			if err != nil {
				t.Errorf("%s: $ref %s: %v", name, ref, err)
			} else if frag != "" || !json.Valid(b) {
				t.Errorf("%s: $ref %s: want a whole JSON file", name, ref)
			}
			continue
		}
		var parts []string
		for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
			parts = append(parts, strings.NewReplacer("~1", "/", "~0", "~").Replace(tok))
		}
		if !doc.has(parts...) {
			t.Errorf("%s: $ref %s does not resolve", name, ref)
		}
	}
	if n == 0 {
		t.Errorf("%s: no $ref found; is the YAML reader broken?", name)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.NewDecoder(bytes.NewReader(a)).Decode(&x); err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
