package scheduler

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// MessageData is what a campaign's message template sees.
type MessageData struct {
	FirstName, LastName, Headline string
	// Identifier is the target's identifier as the user gave it.
	Identifier string
	// Vars are the target's own variables (targets.vars).
	Vars map[string]any
}

// parseMessage parses a campaign's message template the one way the
// scheduler renders it.
func parseMessage(text string) (*template.Template, error) {
	return template.New("message").Option("missingkey=error").Parse(text)
}

// CheckMessage reports whether a campaign's message template would render:
// it parses it as the scheduler does and checks that the fields it names
// on the message's data ({{.FirstName}}, {{$.Vars.x}}) exist. Inside
// {{with}} and {{range}} the data changes and is not checked; a missing
// key of .Vars shows only per target. An empty template is fine (no note).
func CheckMessage(text string) error {
	t, err := parseMessage(text)
	if err != nil {
		return err
	}
	if t.Tree == nil {
		return nil
	}
	return checkFields(t.Tree.Root, true)
}

// checkFields walks a template's nodes; root says whether dot is the
// MessageData there.
func checkFields(n parse.Node, root bool) error {
	switch n := n.(type) {
	case nil:
		return nil
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkFields(c, root); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return checkFields(n.Pipe, root)
	case *parse.TemplateNode:
		return checkFields(n.Pipe, root)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := checkFields(c, root); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := checkFields(a, root); err != nil {
				return err
			}
		}
	case *parse.IfNode:
		return checkBranch(&n.BranchNode, root, root)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode, root, false)
	case *parse.RangeNode:
		return checkBranch(&n.BranchNode, root, false)
	case *parse.FieldNode:
		if root {
			return checkField(n.Ident, n)
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			return checkField(n.Ident[1:], n)
		}
	case *parse.ChainNode:
		return checkFields(n.Node, root)
	}
	return nil
}

// checkBranch checks an if, with or range: its pipeline and else branch
// see the outer dot, its body sees inner.
func checkBranch(b *parse.BranchNode, root, inner bool) error {
	if err := checkFields(b.Pipe, root); err != nil {
		return err
	}
	if err := checkFields(b.List, inner); err != nil {
		return err
	}
	return checkFields(b.ElseList, root)
}

// checkField checks a chain of field names on MessageData.
func checkField(idents []string, n parse.Node) error {
	if len(idents) == 0 {
		return nil
	}
	f, ok := reflect.TypeFor[MessageData]().FieldByName(idents[0])
	if !ok || !f.IsExported() {
		return fmt.Errorf("%s: no field %s; the message has %s", n, idents[0], messageFields())
	}
	if len(idents) > 1 && f.Type.Kind() != reflect.Map {
		return fmt.Errorf("%s: .%s is text and has no field %s", n, idents[0], idents[1])
	}
	return nil
}

// messageFields lists MessageData's fields as a template names them.
func messageFields() string {
	t := reflect.TypeFor[MessageData]()
	var names []string
	for i := 0; i < t.NumField(); i++ {
		names = append(names, "."+t.Field(i).Name)
	}
	return strings.Join(names, ", ")
}

// templates caches parsed campaign templates by text.
type templates struct {
	mu    sync.Mutex
	cache map[string]*template.Template
	errs  map[string]error
}

func (ts *templates) get(text string) (*template.Template, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t, ok := ts.cache[text]; ok {
		return t, nil
	}
	if err, ok := ts.errs[text]; ok {
		return nil, err
	}
	t, err := parseMessage(text)
	if ts.cache == nil {
		ts.cache, ts.errs = map[string]*template.Template{}, map[string]error{}
	}
	if len(ts.cache) > 1000 {
		clear(ts.cache)
	}
	if err != nil {
		ts.errs[text] = err
		return nil, err
	}
	ts.cache[text] = t
	return t, nil
}

// maxMessageChars is the longest note the provider takes (its
// provider.Rules), 0 for no limit.
func (s *Scheduler) maxMessageChars(name provider.Name) int {
	rules, err := s.cfg.Rules.Rules(name)
	if err != nil {
		return 0
	}
	return rules.MaxMessageChars
}

// render renders the campaign's message for a claimed target and checks
// its length against limit (the provider's MaxMessageChars, 0 for none),
// counted in characters.
func (ts *templates) render(name provider.Name, limit int, c store.Claimed) store.Prepared {
	text := c.Target.MessageTemplate
	if strings.TrimSpace(text) == "" {
		return store.Prepared{}
	}
	t, err := ts.get(text)
	if err != nil {
		return store.Prepared{Err: fmt.Errorf("message template: %v", err), ErrType: "bad_template"}
	}
	d := MessageData{Identifier: c.Target.Identifier, Vars: c.Target.Vars}
	if c.Person != nil {
		d.FirstName, d.LastName, d.Headline = c.Person.FirstName, c.Person.LastName, c.Person.Headline
	}
	if d.FirstName == "" {
		if v, ok := c.Target.Vars["first_name"].(string); ok {
			d.FirstName = v
		}
	}
	if d.LastName == "" {
		if v, ok := c.Target.Vars["last_name"].(string); ok {
			d.LastName = v
		}
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return store.Prepared{Err: fmt.Errorf("message template: %v", err), ErrType: "bad_template"}
	}
	msg := strings.TrimSpace(buf.String())
	if limit > 0 {
		if n := utf8.RuneCountInString(msg); n > limit {
			return store.Prepared{Err: fmt.Errorf("message is %d characters after templating; %s takes at most %d", n, name, limit),
				ErrType: "too_many_characters"}
		}
	}
	return store.Prepared{Message: msg}
}
