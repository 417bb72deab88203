package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/worker"
)

// TestWorkerReportsCredentials checks the worker's start-up report: the
// credential refs it serves, a warning per account in the database it
// cannot serve (name, provider, credentials_ref, missing setting), never a
// secret, and no account changed.
func TestWorkerReportsCredentials(t *testing.T) {
	st := cliEnv(t)
	for _, k := range []string{"UNIPILE_API_KEY", "PARTOO_API_KEY", "ALTEGIO_PARTNER_TOKEN", "ALTEGIO_USER_TOKEN"} {
		t.Setenv(k, "") // whatever the machine has
	}
	const uniKey, partooKey, altegioKey = "sk-uni-SECRET-acme-0c3e", "sk-partoo-SECRET-2f7a", "sk-altegio-SECRET-88b1"
	t.Setenv("UNIPILE_DSN", "http://127.0.0.1:1")
	t.Setenv("UNIPILE_API_KEY_ACME", uniKey)
	t.Setenv("PARTOO_API_KEY", partooKey)
	t.Setenv("ALTEGIO_PARTNER_TOKEN", altegioKey) // without its user token
	t.Setenv("LOG_FORMAT", "json")
	ctx := context.Background()
	for _, a := range []store.NewAccount{
		{Name: "li-main", Provider: "unipile", ProviderAccountID: "main"},
		{Name: "li-acme", Provider: "unipile", ProviderAccountID: "acme", CredentialsRef: "acme"},
		{Name: "pa", Provider: "partoo", ProviderAccountID: "pa"},
		{Name: "al", Provider: "altegio", ProviderAccountID: "42"},
	} {
		if _, err := st.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	var out, logs bytes.Buffer
	env, err := LoadEnv(os.Environ(), &out, &logs)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Store: st, Clients: env.Client, Logger: env.Logger})
	if err != nil {
		t.Fatal(err)
	}
	reportCredentials(ctx, env, w)
	got := logs.String()
	for _, want := range []string{
		`"credentials":["partoo/default","unipile/acme"]`,
		`"credentials":"altegio/default","error":"ALTEGIO_USER_TOKEN is not set"`,
		`"account":"li-main","provider":"unipile","credentials_ref":"default","error":"UNIPILE_API_KEY is not set"`,
		`"account":"al","provider":"altegio","credentials_ref":"default"`,
		`"served":2,"accounts":4`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("start-up logs lack %s:\n%s", want, got)
		}
	}
	for _, secret := range []string{uniKey, partooKey, altegioKey} {
		if strings.Contains(got, secret) {
			t.Errorf("a secret in the logs:\n%s", got)
		}
	}
	accounts, err := st.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if a.Status != store.AccountActive {
			t.Errorf("account %s is %s, want active", a.Name, a.Status)
		}
	}
}
