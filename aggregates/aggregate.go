// Package aggregates holds the pure domain model shared by every service:
// the interfaces commands and events implement, typed rejections, and the
// Definition each aggregate registers with the runtime. Nothing here does I/O.
package aggregates

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Command is a request to change one aggregate. CommandType is the bare name
// ("CreateRole"); the registry qualifies it with the service ("auth.CreateRole").
type Command interface {
	CommandType() string
}

// Event is a fact an aggregate recorded. EventType is the bare past-tense name
// ("RoleCreated"); on Kafka it becomes "<service>.<EventType>.v<N>".
type Event interface {
	EventType() string
}

// SecretCommand is a command whose secret (a password hash) never travels
// with it: the gateway stages the secret under the command's id in a
// non-journal table, and the runtime moves it to the aggregate in the same
// transaction as the events, or discards it on rejection. Secrets therefore
// never reach an event, the journal's Kafka topics or the command topic.
type SecretCommand interface {
	Command
	SecretKind() string
}

// Versioned lets an event declare a schema version other than 1. A breaking
// change to an event's data is a new version, never an edit of the old one.
type Versioned interface {
	EventVersion() int
}

// EventVersion returns the schema version of e (1 unless e says otherwise).
func EventVersion(e Event) int {
	if v, ok := e.(Versioned); ok {
		return v.EventVersion()
	}
	return 1
}

// CanonicalID spells an aggregate id as the journal does (UUIDs in lower
// case), so one aggregate never goes by two ids.
func CanonicalID(id string) string { return strings.ToLower(id) }

// Ref names one aggregate instance.
type Ref struct {
	Type string // aggregate type within the same service, e.g. "permission"
	ID   string
}

// Snapshot is the state of an aggregate as loaded by the runtime.
type Snapshot struct {
	State   any
	Version int64 // 0 when the aggregate has no events
}

// Context carries everything Decide may depend on besides state and command.
// Time and related aggregates come in as data, so Decide stays pure.
type Context struct {
	Now         time.Time
	AggregateID string
	Related     map[Ref]Snapshot
	Actor       Actor
}

// Actor is who issued a command, as the gateway signed it: the user and
// the object-level grants ("accounts:write:any") the user held then, so an
// aggregate can check ownership against its own state instead of a read
// model that may lag.
type Actor struct {
	UserID string
	Grants []string
}

// Has reports whether the actor held grant when the command was issued.
func (a Actor) Has(grant string) bool {
	for _, g := range a.Grants {
		if g == grant {
			return true
		}
	}
	return false
}

// Owns reports whether the actor may act on an object owned by owner:
// they are the owner, or they hold the grant that reaches every owner's.
func (a Actor) Owns(owner, anyGrant string) bool {
	return (owner != "" && a.UserID == owner) || a.Has(anyGrant)
}

// Related returns the state of a related aggregate that the command declared
// through Definition.Needs. ok is false when the aggregate has no events.
// The runtime keys Context.Related by CanonicalID, so an id may be spelt
// in any case.
func Related[S any](c Context, typ, id string) (state S, ok bool) {
	snap, found := c.Related[Ref{Type: typ, ID: CanonicalID(id)}]
	if !found || snap.Version == 0 {
		return state, false
	}
	s, isS := snap.State.(S)
	return s, isS
}

// UniqueKey is a claim on a value that must be unique across all aggregates
// of a service (a role name, an email). Code is the rejection code used when
// another aggregate already holds the key.
type UniqueKey struct {
	Scope string
	Key   string
	Code  string
}

// Definition registers one aggregate type with the runtime. The runtime
// (worker, relay, projector) is written once and driven by these values.
type Definition struct {
	Service string // "auth"
	Type    string // "role"; the event topic is "<service>.<type>"

	// Commands and Events list one zero value of every type, so the runtime
	// can decode them by name.
	Commands []Command
	Events   []Event

	// Creates reports whether a command creates the aggregate: such a command
	// is refused on an existing aggregate, every other one on a missing one.
	Creates func(Command) bool
	// Upserts reports whether a command is valid on a missing and on an
	// existing aggregate alike (optional).
	Upserts func(Command) bool
	// Needs lists the related aggregates a command must see.
	Needs func(Command) []Ref
	// New returns the zero state.
	New func() any
	// Decide turns a command into events or a *Rejection.
	Decide func(state any, cmd Command, ctx Context) ([]Event, error)
	// Evolve applies one event.
	Evolve func(state any, e Event) any
	// Keys lists the unique keys a state holds; the runtime claims the keys
	// that appear and releases the ones that disappear, in the same
	// transaction as the events.
	Keys func(state any) []UniqueKey
	// Authorize, when set, decides whether the actor may send the command
	// to an existing aggregate. The runtime asks it before it compares an
	// expected version, so a refused actor learns nothing of the state.
	Authorize func(state any, cmd Command, actor Actor) error

	idx index
}

// Topic is the Kafka topic of the aggregate's events.
func (d *Definition) Topic() string { return d.Service + "." + d.Type }

// QualifiedCommand returns "<service>.<CommandType>".
func (d *Definition) QualifiedCommand(c Command) string {
	return d.Service + "." + c.CommandType()
}

// QualifiedEvent returns "<service>.<EventType>.v<N>", the CloudEvents type.
func (d *Definition) QualifiedEvent(e Event) string {
	return fmt.Sprintf("%s.%s.v%d", d.Service, e.EventType(), EventVersion(e))
}

// Spec is the typed form of a Definition. Domain packages fill a Spec with
// functions over their own state type; Define erases it for the runtime.
type Spec[S any] struct {
	Service   string
	Type      string
	Commands  []Command
	Events    []Event
	Creates   func(Command) bool
	Upserts   func(Command) bool
	Needs     func(Command) []Ref
	Decide    func(S, Command, Context) ([]Event, error)
	Evolve    func(S, Event) S
	Keys      func(S) []UniqueKey
	Authorize func(S, Command, Actor) error
}

// Define turns a typed Spec into a Definition.
func Define[S any](s Spec[S]) *Definition {
	d := &Definition{
		Service:  s.Service,
		Type:     s.Type,
		Commands: s.Commands,
		Events:   s.Events,
		Creates:  s.Creates,
		Upserts:  s.Upserts,
		Needs:    s.Needs,
		New:      func() any { var zero S; return zero },
		Decide: func(state any, c Command, ctx Context) ([]Event, error) {
			return s.Decide(state.(S), c, ctx)
		},
		Evolve: func(state any, e Event) any { return s.Evolve(state.(S), e) },
		Keys:   func(state any) []UniqueKey { return nil },
	}
	if s.Keys != nil {
		d.Keys = func(state any) []UniqueKey { return s.Keys(state.(S)) }
	}
	if s.Authorize != nil {
		d.Authorize = func(state any, c Command, a Actor) error { return s.Authorize(state.(S), c, a) }
	}
	if d.Needs == nil {
		d.Needs = func(Command) []Ref { return nil }
	}
	if d.Upserts == nil {
		d.Upserts = func(Command) bool { return false }
	}
	return d
}

// Fold applies events in order to the zero state.
func (d *Definition) Fold(events ...Event) any {
	s := d.New()
	for _, e := range events {
		s = d.Evolve(s, e)
	}
	return s
}

// index maps qualified names to prototypes, built once: decoding is on
// the hot path of every worker and projector.
type index struct {
	once     sync.Once
	commands map[string]Command
	events   map[string]Event
}

func (d *Definition) names() *index {
	d.idx.once.Do(func() {
		d.idx.commands = make(map[string]Command, len(d.Commands))
		for _, c := range d.Commands {
			d.idx.commands[d.QualifiedCommand(c)] = c
		}
		d.idx.events = make(map[string]Event, len(d.Events))
		for _, e := range d.Events {
			d.idx.events[d.QualifiedEvent(e)] = e
		}
	})
	return &d.idx
}

// CommandPrototype returns the zero value of a qualified command type
// ("auth.CreateRole"), or ok=false when it is not this aggregate's.
func (d *Definition) CommandPrototype(qualified string) (c Command, ok bool) {
	c, ok = d.names().commands[qualified]
	return c, ok
}

// DecodeEvent decodes the data of a qualified event type
// ("auth.RoleCreated.v1") into its struct.
func (d *Definition) DecodeEvent(qualified string, data []byte) (Event, error) {
	proto, ok := d.names().events[qualified]
	if !ok {
		return nil, fmt.Errorf("aggregates: %s has no event %q", d.Topic(), qualified)
	}
	return decodeInto(proto, data)
}

// DecodeCommand decodes a command payload of a qualified command type
// ("auth.CreateRole") into its struct. ok is false when the type is not one
// of this aggregate's commands.
func (d *Definition) DecodeCommand(qualified string, payload []byte) (c Command, ok bool, err error) {
	proto, ok := d.CommandPrototype(qualified)
	if !ok {
		return nil, false, nil
	}
	c, err = decodeInto(proto, payload)
	return c, true, err
}
