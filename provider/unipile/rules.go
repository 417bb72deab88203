package unipile

import "github.com/outreach-dev/outreach/provider"

// Rules returns what outreach knows of Unipile beyond the Client: LinkedIn
// identifiers (NormalizeIdentifier; a member id needs no lookup), the
// 300-character note (MaxMessageLen) and the error types of its spec by
// kind (the classification table).
func Rules() provider.Rules {
	return provider.Rules{
		Normalize:       normalize,
		MaxMessageChars: MaxMessageLen,
		ErrorTypes:      errorTypes,
	}
}

func normalize(identifier string) (provider.Identifier, error) {
	n, err := NormalizeIdentifier(identifier)
	if err != nil {
		return provider.Identifier{}, err
	}
	if IsProviderID(n) {
		return provider.Identifier{Normalized: n, ProviderID: n}, nil
	}
	return provider.Identifier{Normalized: n}, nil
}

// errorTypes lists the error types of the classification table of kind k.
func errorTypes(k provider.Kind) []string {
	return provider.TypesOf(classification, func(typ string, c class) (string, provider.Kind) { return typ, c.Kind }, k)
}
