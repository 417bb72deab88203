package main

import (
	"context"
	"net/http"

	"github.com/outreach-dev/outreach/inbound"
	"github.com/outreach-dev/outreach/metrics"
	"github.com/outreach-dev/outreach/store"
)

// webhookPath is where the metrics server of `outreach worker` (and of
// `outreach demo --metrics-addr`) receives Unipile's webhooks.
const webhookPath = "/webhooks/unipile"

// mountWebhooks adds POST /webhooks/unipile to mux when
// UNIPILE_WEBHOOK_SECRET is set: Unipile's new_relation and
// account_status webhooks, authenticated by the header
// UNIPILE_WEBHOOK_HEADER (default Unipile-Auth) carrying the secret
// (docs/acceptances.md). Without a secret nothing is mounted: polling
// alone finds acceptances.
func mountWebhooks(ctx context.Context, env *Env, mux *http.ServeMux, st *store.Store, m *metrics.Metrics) error {
	if env.Webhook.Secret == "" {
		env.Logger.DebugContext(ctx, "no UNIPILE_WEBHOOK_SECRET: Unipile webhooks are not received; polling finds acceptances")
		return nil
	}
	h, err := inbound.NewUnipile(inbound.UnipileConfig{Store: st, Secret: env.Webhook.Secret, Header: env.Webhook.Header,
		Metrics: m, Logger: env.Logger})
	if err != nil {
		return usagef("UNIPILE_WEBHOOK_SECRET: %v", err)
	}
	mux.Handle(webhookPath, h)
	env.Logger.InfoContext(ctx, "receiving Unipile webhooks", "path", webhookPath)
	return nil
}
