package provider

import (
	"errors"
	"slices"
)

// Rules is what outreach knows of one provider beyond its Client: how it
// spells a person, how long a note it takes, and which of its error types
// mean what. Each provider package gives its own (unipile.Rules,
// partoo.Rules, altegio.Rules); the scheduler and the worker look them up
// by Name in a Registry and never switch on a provider's name.
type Rules struct {
	// Normalize turns an identifier as a user gave it into the one form
	// the provider takes, so that one person always maps to one string.
	// Its error says why the identifier is refused and quotes it.
	Normalize func(identifier string) (Identifier, error)
	// MaxMessageChars is the longest note an invitation takes, counted in
	// characters (runes, not bytes); 0 means the provider takes no note
	// limit of its own.
	MaxMessageChars int
	// ErrorTypes lists the provider's error types (Error.Type) that it
	// classifies as kind; the worker counts an account's recent
	// answers of a kind by them.
	ErrorTypes func(kind Kind) []string
}

// Identifier is a normalised identifier.
type Identifier struct {
	// Normalized is the identifier in the provider's one form (a LinkedIn
	// slug, a Partoo user id, an email or phone number).
	Normalized string
	// ProviderID is set when the identifier needs no lookup: a LinkedIn
	// member id, a Partoo user id, an Altegio email or phone.
	ProviderID string
}

// Registry holds the rules of each provider by name.
type Registry map[Name]Rules

// ErrUnknownProvider is wrapped by Registry.Rules for a name it does not
// hold.
var ErrUnknownProvider = errors.New("unknown provider")

// Rules returns the rules of the provider n; an error wrapping
// ErrUnknownProvider if the registry does not hold it.
func (r Registry) Rules(n Name) (Rules, error) {
	rules, ok := r[n]
	if !ok {
		return Rules{}, &unknownProvider{n}
	}
	return rules, nil
}

type unknownProvider struct{ name Name }

func (e *unknownProvider) Error() string { return "unknown provider " + string(e.name) }
func (e *unknownProvider) Unwrap() error { return ErrUnknownProvider }

// TypesOf returns the types of classified errors (type → kind) whose kind
// is kind, sorted: the ErrorTypes of a provider's classification table.
func TypesOf[M ~map[K]V, K comparable, V any](table M, typeOf func(K, V) (string, Kind), kind Kind) []string {
	var out []string
	for k, v := range table {
		if t, kd := typeOf(k, v); kd == kind && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}
