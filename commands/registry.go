package commands

import (
	"fmt"

	"github.com/strata-cqrs/strata/aggregates"
)

// Registry indexes aggregate definitions by service, type, command and
// event, so the runtime can route any message to its aggregate.
type Registry struct {
	defs      []*aggregates.Definition
	byType    map[string]*aggregates.Definition // "auth.role"
	byCommand map[string]*aggregates.Definition // "auth.CreateRole"
	byEvent   map[string]*aggregates.Definition // "auth.RoleCreated.v1"
}

// NewRegistry builds a registry. It fails if two definitions claim the same
// aggregate, command or event type.
func NewRegistry(defs ...*aggregates.Definition) (*Registry, error) {
	r := &Registry{
		byType:    map[string]*aggregates.Definition{},
		byCommand: map[string]*aggregates.Definition{},
		byEvent:   map[string]*aggregates.Definition{},
	}
	for _, d := range defs {
		if err := r.add(d); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Registry) add(d *aggregates.Definition) error {
	if d.Service == "" || d.Type == "" || d.Decide == nil || d.Evolve == nil || d.Creates == nil {
		return fmt.Errorf("registry: definition %q is incomplete", d.Topic())
	}
	if _, dup := r.byType[d.Topic()]; dup {
		return fmt.Errorf("registry: aggregate %s registered twice", d.Topic())
	}
	r.byType[d.Topic()] = d
	for _, c := range d.Commands {
		q := d.QualifiedCommand(c)
		if _, dup := r.byCommand[q]; dup {
			return fmt.Errorf("registry: command %s registered twice", q)
		}
		r.byCommand[q] = d
	}
	for _, e := range d.Events {
		q := d.QualifiedEvent(e)
		if _, dup := r.byEvent[q]; dup {
			return fmt.Errorf("registry: event %s registered twice", q)
		}
		r.byEvent[q] = d
	}
	r.defs = append(r.defs, d)
	return nil
}

// Definitions returns every definition, in registration order.
func (r *Registry) Definitions() []*aggregates.Definition { return r.defs }

// Services returns the distinct services, in registration order.
func (r *Registry) Services() []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range r.defs {
		if !seen[d.Service] {
			seen[d.Service] = true
			out = append(out, d.Service)
		}
	}
	return out
}

// Service returns the definitions of one service.
func (r *Registry) Service(service string) []*aggregates.Definition {
	var out []*aggregates.Definition
	for _, d := range r.defs {
		if d.Service == service {
			out = append(out, d)
		}
	}
	return out
}

// Aggregate returns the definition of "<service>.<type>".
func (r *Registry) Aggregate(service, typ string) (*aggregates.Definition, bool) {
	d, ok := r.byType[service+"."+typ]
	return d, ok
}

// ForCommand returns the definition handling a qualified command type.
func (r *Registry) ForCommand(qualified string) (*aggregates.Definition, bool) {
	d, ok := r.byCommand[qualified]
	return d, ok
}

// ForEvent returns the definition emitting a qualified event type.
func (r *Registry) ForEvent(ceType string) (*aggregates.Definition, bool) {
	d, ok := r.byEvent[ceType]
	return d, ok
}

// CommandTopic is the Kafka topic carrying a service's commands.
func CommandTopic(service string) string { return service + ".commands" }

// DLQTopic is where a service's undecodable commands go.
func DLQTopic(service string) string { return service + ".commands.dlq" }
