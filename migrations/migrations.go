// Package migrations holds outreach's numbered SQL migrations, embedded in
// the binary and applied by `outreach migrate` (see store.Migrate).
package migrations

import "embed"

// FS holds the migration files, named NNNNN_description.sql in goose's
// format.
//
//go:embed *.sql
var FS embed.FS
