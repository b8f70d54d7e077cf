package account

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/strata-cqrs/strata/aggregates"
)

// Message channels.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
	ChannelPush  = "push"
)

// Template limits, in characters; the command schemas say the same.
const (
	MaxSubject       = 200
	MaxBody          = 10_000
	MaxVariableValue = 1000
	MaxVariables     = 100
	MaxMembers       = 10_000
)

// CreateMessageTemplate creates a template with a unique name. Subject and
// body may hold {{placeholder}}s, filled in when a group message is sent.
type CreateMessageTemplate struct {
	Name    string `json:"name"`
	Channel string `json:"channel"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// UpdateMessageTemplate replaces a template's name, subject and body; the
// channel stays.
type UpdateMessageTemplate struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// DeleteMessageTemplate deletes a template; a deleted one accepts nothing.
type DeleteMessageTemplate struct{}

func (CreateMessageTemplate) CommandType() string { return "CreateMessageTemplate" }
func (UpdateMessageTemplate) CommandType() string { return "UpdateMessageTemplate" }
func (DeleteMessageTemplate) CommandType() string { return "DeleteMessageTemplate" }

// MessageTemplateCreated records a new template and its placeholders.
type MessageTemplateCreated struct {
	Name         string   `json:"name"`
	Channel      string   `json:"channel"`
	Subject      string   `json:"subject"`
	Body         string   `json:"body"`
	Placeholders []string `json:"placeholders"`
}

// MessageTemplateUpdated records a template's new text.
type MessageTemplateUpdated struct {
	Name         string   `json:"name"`
	Subject      string   `json:"subject"`
	Body         string   `json:"body"`
	Placeholders []string `json:"placeholders"`
}

// MessageTemplateDeleted records that a template no longer exists.
type MessageTemplateDeleted struct {
	Name string `json:"name"`
}

func (MessageTemplateCreated) EventType() string { return "MessageTemplateCreated" }
func (MessageTemplateUpdated) EventType() string { return "MessageTemplateUpdated" }
func (MessageTemplateDeleted) EventType() string { return "MessageTemplateDeleted" }

// MessageTemplate is the state of one template.
type MessageTemplate struct {
	Name, Channel, Subject, Body string
	Placeholders                 []string
	Deleted                      bool
}

// MessageTemplateDefinition registers the MessageTemplate aggregate.
func MessageTemplateDefinition() *aggregates.Definition {
	return aggregates.Define(aggregates.Spec[MessageTemplate]{
		Service:  Service,
		Type:     "message-template",
		Commands: []aggregates.Command{CreateMessageTemplate{}, UpdateMessageTemplate{}, DeleteMessageTemplate{}},
		Events:   []aggregates.Event{MessageTemplateCreated{}, MessageTemplateUpdated{}, MessageTemplateDeleted{}},
		Creates:  creates[CreateMessageTemplate](),
		Decide:   DecideMessageTemplate,
		Evolve:   EvolveMessageTemplate,
		Keys: func(t MessageTemplate) []aggregates.UniqueKey {
			return nameKey("message_template_name", t.Name, CodeTemplateExists, !t.Deleted)
		},
	})
}

// DecideMessageTemplate decides a command against a template's state.
func DecideMessageTemplate(t MessageTemplate, c aggregates.Command, ctx aggregates.Context) ([]aggregates.Event, error) {
	if t.Deleted {
		return nil, aggregates.Reject(aggregates.CodeDeleted, "message template %q is deleted", t.Name)
	}
	switch c := c.(type) {
	case CreateMessageTemplate:
		if c.Channel != ChannelEmail && c.Channel != ChannelSMS && c.Channel != ChannelPush {
			return nil, aggregates.Reject(CodeInvalidTemplate, "channel must be email, sms or push, not %q", c.Channel)
		}
		name, placeholders, err := checkTemplate(c.Name, c.Channel, c.Subject, c.Body)
		if err != nil {
			return nil, err
		}
		return []aggregates.Event{MessageTemplateCreated{Name: name, Channel: c.Channel, Subject: c.Subject,
			Body: c.Body, Placeholders: placeholders}}, nil
	case UpdateMessageTemplate:
		name, placeholders, err := checkTemplate(c.Name, t.Channel, c.Subject, c.Body)
		if err != nil {
			return nil, err
		}
		if name == t.Name && c.Subject == t.Subject && c.Body == t.Body {
			return nil, aggregates.Reject(aggregates.CodeInvalid, "message template %q already reads so", t.Name)
		}
		return []aggregates.Event{MessageTemplateUpdated{Name: name, Subject: c.Subject, Body: c.Body,
			Placeholders: placeholders}}, nil
	case DeleteMessageTemplate:
		return []aggregates.Event{MessageTemplateDeleted{Name: t.Name}}, nil
	}
	return nil, unhandled("message template", c)
}

// checkTemplate checks a template's name and text and returns the trimmed
// name and its placeholders.
func checkTemplate(name, channel, subject, body string) (string, []string, error) {
	name, err := checkName("message template", name)
	if err != nil {
		return "", nil, err
	}
	switch {
	case channel == ChannelSMS && subject != "":
		return "", nil, aggregates.Reject(CodeInvalidTemplate, "an sms template has no subject")
	case channel == ChannelEmail && strings.TrimSpace(subject) == "":
		return "", nil, aggregates.Reject(CodeInvalidTemplate, "an email template needs a subject")
	case utf8.RuneCountInString(subject) > MaxSubject || strings.ContainsAny(subject, "\x00\r\n"):
		return "", nil, aggregates.Reject(CodeInvalidTemplate, "the subject is one line of at most %d characters", MaxSubject)
	case strings.TrimSpace(body) == "" || utf8.RuneCountInString(body) > MaxBody || strings.ContainsRune(body, 0):
		return "", nil, aggregates.Reject(CodeInvalidTemplate, "the body is 1-%d characters", MaxBody)
	}
	inSubject, err := Placeholders(subject)
	if err != nil {
		return "", nil, aggregates.Reject(CodeInvalidTemplate, "subject: %v", err)
	}
	inBody, err := Placeholders(body)
	if err != nil {
		return "", nil, aggregates.Reject(CodeInvalidTemplate, "body: %v", err)
	}
	all := append(append([]string{}, inSubject...), inBody...)
	slices.Sort(all)
	return name, slices.Compact(all), nil
}

// placeholderName is what may stand between {{ and }}.
var placeholderName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]{0,63}$`)

// templateError is a syntax error in a template.
type templateError string

func (e templateError) Error() string { return string(e) }

// Placeholders returns the distinct placeholder names of a text, in order
// of first appearance. "{{ name }}" is a placeholder; a "{{" without its
// "}}", a "}}" without its "{{", or an invalid name is an error.
func Placeholders(text string) ([]string, error) {
	var out []string
	err := walk(text, func(lit string) {}, func(name string) {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	})
	return out, err
}

// Render fills a text's placeholders from vars. Missing variables are
// reported, in order, with the rendered text left empty.
func Render(text string, vars map[string]string) (string, []string, error) {
	var b strings.Builder
	var missing []string
	err := walk(text, func(lit string) { b.WriteString(lit) }, func(name string) {
		v, ok := vars[name]
		if !ok {
			if !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
			return
		}
		b.WriteString(v)
	})
	if err != nil || len(missing) > 0 {
		return "", missing, err
	}
	return b.String(), nil, nil
}

// walk splits text into literals and placeholders.
func walk(text string, literal func(string), placeholder func(string)) error {
	for {
		open := strings.Index(text, "{{")
		close := strings.Index(text, "}}")
		switch {
		case open < 0 && close < 0:
			literal(text)
			return nil
		case open < 0 || (close >= 0 && close < open):
			return templateError("\"}}\" without \"{{\"")
		}
		literal(text[:open])
		rest := text[open+2:]
		end := strings.Index(rest, "}}")
		if end < 0 {
			return templateError("\"{{\" without \"}}\"")
		}
		name := strings.TrimSpace(rest[:end])
		if !placeholderName.MatchString(name) {
			return templateError("invalid placeholder {{" + rest[:end] + "}}: a name is a letter or _ then letters, digits, _ or .")
		}
		placeholder(name)
		text = rest[end+2:]
	}
}

// EvolveMessageTemplate applies one event to a template's state.
func EvolveMessageTemplate(t MessageTemplate, e aggregates.Event) MessageTemplate {
	switch e := e.(type) {
	case MessageTemplateCreated:
		t = MessageTemplate{Name: e.Name, Channel: e.Channel, Subject: e.Subject, Body: e.Body, Placeholders: e.Placeholders}
	case MessageTemplateUpdated:
		t.Name, t.Subject, t.Body, t.Placeholders = e.Name, e.Subject, e.Body, e.Placeholders
	case MessageTemplateDeleted:
		t.Deleted = true
	}
	return t
}

// CreateMessageGroup creates a group with a unique name.
type CreateMessageGroup struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// AddGroupMember adds a user to a group.
type AddGroupMember struct {
	UserID string `json:"user_id"`
}

// RemoveGroupMember removes a user from a group.
type RemoveGroupMember struct {
	UserID string `json:"user_id"`
}

// SendGroupMessage renders a template with variables and sends it to every
// member of the group.
type SendGroupMessage struct {
	TemplateID string            `json:"template_id"`
	Variables  map[string]string `json:"variables"`
}

func (CreateMessageGroup) CommandType() string { return "CreateMessageGroup" }
func (AddGroupMember) CommandType() string     { return "AddGroupMember" }
func (RemoveGroupMember) CommandType() string  { return "RemoveGroupMember" }
func (SendGroupMessage) CommandType() string   { return "SendGroupMessage" }

// MessageGroupCreated records a new group.
type MessageGroupCreated struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// GroupMemberAdded records a new member.
type GroupMemberAdded struct {
	UserID string `json:"user_id"`
}

// GroupMemberRemoved records a member's removal.
type GroupMemberRemoved struct {
	UserID string `json:"user_id"`
}

// GroupMessageSent records one send: the rendered message and the members
// it went to, in the order they joined. The messages read model holds one
// delivery per recipient.
type GroupMessageSent struct {
	TemplateID string   `json:"template_id"`
	Channel    string   `json:"channel"`
	Subject    string   `json:"subject"`
	Body       string   `json:"body"`
	Recipients []string `json:"recipients"`
}

func (MessageGroupCreated) EventType() string { return "MessageGroupCreated" }
func (GroupMemberAdded) EventType() string    { return "GroupMemberAdded" }
func (GroupMemberRemoved) EventType() string  { return "GroupMemberRemoved" }
func (GroupMessageSent) EventType() string    { return "GroupMessageSent" }

// MessageGroup is the state of one group.
type MessageGroup struct {
	Name    string
	Members []string // user ids, in the order they joined
}

// MessageGroupDefinition registers the MessageGroup aggregate.
func MessageGroupDefinition() *aggregates.Definition {
	return aggregates.Define(aggregates.Spec[MessageGroup]{
		Service:  Service,
		Type:     "message-group",
		Commands: []aggregates.Command{CreateMessageGroup{}, AddGroupMember{}, RemoveGroupMember{}, SendGroupMessage{}},
		Events:   []aggregates.Event{MessageGroupCreated{}, GroupMemberAdded{}, GroupMemberRemoved{}, GroupMessageSent{}},
		Creates:  creates[CreateMessageGroup](),
		Needs: func(c aggregates.Command) []aggregates.Ref {
			if s, ok := c.(SendGroupMessage); ok {
				return []aggregates.Ref{{Type: "message-template", ID: s.TemplateID}}
			}
			return nil
		},
		Decide: DecideMessageGroup,
		Evolve: EvolveMessageGroup,
		Keys: func(g MessageGroup) []aggregates.UniqueKey {
			return nameKey("message_group_name", g.Name, CodeGroupExists, true)
		},
	})
}

// DecideMessageGroup decides a command against a group's state.
func DecideMessageGroup(g MessageGroup, c aggregates.Command, ctx aggregates.Context) ([]aggregates.Event, error) {
	switch c := c.(type) {
	case CreateMessageGroup:
		name, err := checkName("message group", c.Name)
		if err != nil {
			return nil, err
		}
		if err := checkText("description", c.Description, MaxDescription); err != nil {
			return nil, err
		}
		return []aggregates.Event{MessageGroupCreated{Name: name, Description: strings.TrimSpace(c.Description)}}, nil
	case AddGroupMember:
		c.UserID = aggregates.CanonicalID(c.UserID) // one user, however the id is spelt
		if slices.Contains(g.Members, c.UserID) {
			return nil, aggregates.Reject(CodeAlreadyMember, "user %s is already a member of %q", c.UserID, g.Name)
		}
		if len(g.Members) >= MaxMembers {
			return nil, aggregates.Reject(aggregates.CodeInvalid, "a group has at most %d members", MaxMembers)
		}
		return []aggregates.Event{GroupMemberAdded(c)}, nil
	case RemoveGroupMember:
		c.UserID = aggregates.CanonicalID(c.UserID)
		if !slices.Contains(g.Members, c.UserID) {
			return nil, aggregates.Reject(CodeNotMember, "user %s is not a member of %q", c.UserID, g.Name)
		}
		return []aggregates.Event{GroupMemberRemoved(c)}, nil
	case SendGroupMessage:
		return g.send(c, ctx)
	}
	return nil, unhandled("message group", c)
}

func (g MessageGroup) send(c SendGroupMessage, ctx aggregates.Context) ([]aggregates.Event, error) {
	c.TemplateID = aggregates.CanonicalID(c.TemplateID)
	t, ok := aggregates.Related[MessageTemplate](ctx, "message-template", c.TemplateID)
	if !ok || t.Deleted {
		return nil, aggregates.Reject(CodeTemplateNotFound, "message template %s does not exist", c.TemplateID)
	}
	if len(g.Members) == 0 {
		return nil, aggregates.Reject(CodeNoMembers, "group %q has no members", g.Name)
	}
	if len(c.Variables) > MaxVariables {
		return nil, aggregates.Reject(aggregates.CodeInvalid, "at most %d variables", MaxVariables)
	}
	for k, v := range c.Variables {
		if utf8.RuneCountInString(v) > MaxVariableValue || strings.ContainsRune(v, 0) {
			return nil, aggregates.Reject(aggregates.CodeInvalid, "variable %q is longer than %d characters", k, MaxVariableValue)
		}
	}
	subject, missingS, err := Render(t.Subject, c.Variables)
	if err != nil {
		return nil, aggregates.Reject(CodeInvalidTemplate, "subject: %v", err)
	}
	body, missingB, err := Render(t.Body, c.Variables)
	if err != nil {
		return nil, aggregates.Reject(CodeInvalidTemplate, "body: %v", err)
	}
	if missing := append(missingS, missingB...); len(missing) > 0 {
		slices.Sort(missing)
		return nil, aggregates.Reject(CodeMissingVariable, "no value for %s", strings.Join(slices.Compact(missing), ", "))
	}
	return []aggregates.Event{GroupMessageSent{TemplateID: c.TemplateID, Channel: t.Channel, Subject: subject,
		Body: body, Recipients: slices.Clone(g.Members)}}, nil
}

// EvolveMessageGroup applies one event to a group's state. It never
// mutates the slice of the state it was given.
func EvolveMessageGroup(g MessageGroup, e aggregates.Event) MessageGroup {
	switch e := e.(type) {
	case MessageGroupCreated:
		g.Name = e.Name
	case GroupMemberAdded:
		g.Members = append(slices.Clip(g.Members), e.UserID)
	case GroupMemberRemoved:
		g.Members = slices.DeleteFunc(slices.Clone(g.Members), func(id string) bool { return id == e.UserID })
	}
	return g
}
