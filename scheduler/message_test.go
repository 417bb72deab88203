package scheduler

import (
	"strings"
	"testing"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/registry"
	"github.com/outreach-dev/outreach/store"
)

func TestRender(t *testing.T) {
	var ts templates
	claimed := func(tmpl string, vars map[string]any, p *store.Person) store.Claimed {
		return store.Claimed{Target: &store.Target{Identifier: "jane", MessageTemplate: tmpl, Vars: vars}, Person: p}
	}
	jane := &store.Person{FirstName: "Jane", LastName: "Doe", Headline: "CTO"}
	for _, tc := range []struct {
		name          string
		provider      provider.Name
		c             store.Claimed
		want, wantErr string
	}{
		{"profile fields", "unipile", claimed("Hi {{.FirstName}} ({{.Headline}})", nil, jane), "Hi Jane (CTO)", ""},
		{"vars", "unipile", claimed("Loved {{.Vars.company}}", map[string]any{"company": "Acme"}, jane), "Loved Acme", ""},
		{"vars names without a profile", "partoo", claimed("Hi {{.FirstName}}", map[string]any{"first_name": "Al"}, nil), "Hi Al", ""},
		{"missing variable fails", "unipile", claimed("Loved {{.Vars.company}}", map[string]any{}, jane), "", "company"},
		{"bad template fails", "unipile", claimed("Hi {{.FirstName", nil, jane), "", "message template"},
		{"300 characters fit", "unipile", claimed(strings.Repeat("ü", 300), nil, jane), strings.Repeat("ü", 300), ""},
		{"301 characters do not", "unipile", claimed(strings.Repeat("ü", 301), nil, jane), "", "301 characters"},
		{"other providers have no note limit", "altegio", claimed(strings.Repeat("x", 400), nil, nil), strings.Repeat("x", 400), ""},
		{"empty template, no note", "unipile", claimed("  ", nil, jane), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ts.render(tc.provider, maxChars(t, tc.provider), tc.c)
			if tc.wantErr != "" {
				if got.Err == nil || !strings.Contains(got.Err.Error(), tc.wantErr) {
					t.Fatalf("render error = %v, want one mentioning %q", got.Err, tc.wantErr)
				}
				return
			}
			if got.Err != nil || got.Message != tc.want {
				t.Errorf("render = %q, %v; want %q", got.Message, got.Err, tc.want)
			}
		})
	}
}

func TestCheckMessage(t *testing.T) {
	for _, tc := range []struct{ text, wantErr string }{
		{"", ""},
		{"Hi {{.FirstName}} {{.LastName}} ({{.Headline}}, {{.Identifier}})", ""},
		{"Loved {{.Vars.company}}{{with .Vars.city}} in {{.}}{{end}}", ""},
		{"{{if .FirstName}}Hi {{.FirstName}}{{else}}Hello{{end}}", ""},
		{"{{range $k, $v := .Vars}}{{$k}}={{$v}} {{.Anything}}{{end}}", ""},
		{"{{with .Vars}}{{.company}} {{$.FirstName}}{{end}}", ""},
		{"{{.FirstName | printf \"%.10s\"}}", ""},
		{"Hi {{.FirstName", "unclosed action"},
		{"Hi {{.FirstName}", "bad character"},
		{"Hi {{.Firstname}}", "no field Firstname"},
		{"Hi {{.FirstName.Initial}}", ".FirstName is text"},
		{"{{with .Vars}}{{$.Company}}{{end}}", "no field Company"},
		{"{{if .Nope}}x{{end}}", "no field Nope"},
		{"{{.Vars.a}}{{else}}", "unexpected"},
		{"{{nofunc .FirstName}}", "not defined"},
	} {
		err := CheckMessage(tc.text)
		if tc.wantErr == "" && err != nil {
			t.Errorf("CheckMessage(%q) = %v, want nil", tc.text, err)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckMessage(%q) = %v, want an error mentioning %q", tc.text, err, tc.wantErr)
		}
	}
}

// maxChars is the note limit of the provider in the default registry.
func maxChars(t *testing.T, name provider.Name) int {
	t.Helper()
	r, err := registry.Default().Rules(name)
	if err != nil {
		t.Fatal(err)
	}
	return r.MaxMessageChars
}
