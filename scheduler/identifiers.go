package scheduler

import (
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/registry"
	"github.com/outreach-dev/outreach/store"
)

// Normalize normalises a target's identifier by the rules of its account's
// provider in registry.Default(): a LinkedIn URL or slug for Unipile (a
// member id needs no lookup), a user id for Partoo, an email or phone
// number for Altegio.
func Normalize(name provider.Name, identifier string) store.Normalized {
	return normalizer(registry.Default())(name, identifier)
}

// normalizer returns the store.NormalizeFunc of the providers in reg.
func normalizer(reg provider.Registry) store.NormalizeFunc {
	return func(name provider.Name, identifier string) store.Normalized {
		rules, err := reg.Rules(name)
		if err != nil {
			return store.Normalized{Err: err}
		}
		id, err := rules.Normalize(identifier)
		if err != nil {
			return store.Normalized{Err: err}
		}
		return store.Normalized{Identifier: id.Normalized, ProviderID: id.ProviderID}
	}
}
