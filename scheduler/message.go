package scheduler

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"text/template"
	"unicode/utf8"

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

// maxMessage is the longest note each provider takes, in characters.
var maxMessage = map[string]int{"unipile": 300}

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
	t, err := template.New("message").Option("missingkey=error").Parse(text)
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

// render renders the campaign's message for a claimed target and checks
// its length for the provider, counted in characters.
func (ts *templates) render(provider string, c store.Claimed) store.Prepared {
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
	if limit, ok := maxMessage[provider]; ok {
		if n := utf8.RuneCountInString(msg); n > limit {
			return store.Prepared{Err: fmt.Errorf("message is %d characters after templating; %s takes at most %d", n, provider, limit),
				ErrType: "too_many_characters"}
		}
	}
	return store.Prepared{Message: msg}
}
