package testenv

import (
	"context"

	"github.com/outreach-dev/outreach/store/storetest"
)

// quietTemplate turns off, in the template database, the ramps that new
// accounts of some providers start on (docs/warmup.md): the tests insert
// accounts and expect the limits they set, in full. A test of warm-ups
// turns them on again (storetest.SetProviderWarmup).
func quietTemplate(ctx context.Context, dsn string) error {
	return storetest.QuietWarmups(ctx, dsn)
}
