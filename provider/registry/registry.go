// Package registry lists the providers outreach speaks to, each with the
// rules its own package owns (identifiers, note length, error types). The
// scheduler and the worker look a provider's rules up here by name.
package registry

import (
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/altegio"
	"github.com/outreach-dev/outreach/provider/partoo"
	"github.com/outreach-dev/outreach/provider/unipile"
)

// Default returns the rules of every provider outreach speaks to.
func Default() provider.Registry {
	return provider.Registry{
		provider.Unipile: unipile.Rules(),
		provider.Partoo:  partoo.Rules(),
		provider.Altegio: altegio.Rules(),
	}
}
