package main

import (
	"context"
	"sort"

	"github.com/outreach-dev/outreach/worker"
)

// reportCredentials logs, as a worker starts, which providers and
// credential refs it can serve and, a warning each, the accounts in the
// database it cannot (worker.CheckAccounts). A worker's missing
// configuration is its own problem: it is said here, and its tasks for
// such accounts are handed back to other workers, the accounts unchanged.
func reportCredentials(ctx context.Context, env *Env, w *worker.Worker) {
	log := env.Logger
	usable, unusable := env.Credentials()
	names := make([]string, 0, len(unusable))
	for n := range unusable {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		log.WarnContext(ctx, "provider credentials set but unusable", "credentials", n, "error", unusable[n].Error())
	}
	if len(usable) == 0 {
		log.WarnContext(ctx, "this worker has no usable provider credentials: it will send nothing "+
			"(set UNIPILE_DSN and UNIPILE_API_KEY[_<REF>], PARTOO_API_KEY[_<REF>], or ALTEGIO_PARTNER_TOKEN[_<REF>] and ALTEGIO_USER_TOKEN[_<REF>])")
	} else {
		log.InfoContext(ctx, "provider credentials this worker serves", "credentials", usable)
	}
	if _, err := w.CheckAccounts(ctx); err != nil {
		log.WarnContext(ctx, "could not check which accounts this worker serves", "error", err.Error())
	}
}
