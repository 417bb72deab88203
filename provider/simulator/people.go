package simulator

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Person is a Unipile (LinkedIn) profile the simulator knows. Any public
// identifier resolves to a plausible generated Person (see README.md for
// the slug conventions); SetPerson registers explicit ones.
type Person struct {
	// Slug is the public identifier ("jane-doe"). Required.
	Slug string
	// ProviderID is the member id; "" derives it from Slug (ProviderID).
	ProviderID string
	FirstName  string
	LastName   string
	Headline   string
	// NetworkDistance is FIRST_DEGREE, SECOND_DEGREE, THIRD_DEGREE or
	// OUT_OF_NETWORK; "" means SECOND_DEGREE.
	NetworkDistance string
	IsRelationship  bool
	// InvitationType (SENT or RECEIVED) and InvitationStatus (PENDING,
	// IGNORED, WITHDRAWN) describe an invitation between every account and
	// this person. A SENT/PENDING one makes invites answer
	// already_invited_recently, SENT/WITHDRAWN cannot_resend_yet.
	InvitationType   string
	InvitationStatus string
	// Unknown makes lookups and invites answer 404 resource_not_found.
	Unknown bool
	// InviteError, if set, is the Unipile error type every invitation to
	// this person answers (such as "blocked_recipient").
	InviteError string
}

// SetPerson registers or replaces an explicit profile, for every account.
func (s *Simulator) SetPerson(p Person) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setPersonLocked(p)
}

func (s *Simulator) setPersonLocked(p Person) {
	p.Slug = strings.ToLower(p.Slug)
	g := generate(p.Slug)
	if p.ProviderID == "" {
		p.ProviderID = g.ProviderID
	}
	if p.FirstName == "" && p.LastName == "" {
		p.FirstName, p.LastName = g.FirstName, g.LastName
	}
	if p.Headline == "" {
		p.Headline = g.Headline
	}
	if p.NetworkDistance == "" {
		p.NetworkDistance = "SECOND_DEGREE"
	}
	s.people[p.Slug] = &p
	s.byProvider[p.ProviderID] = p.Slug
}

// personBySlug returns the explicit or generated person. Callers hold s.mu.
func (s *Simulator) personBySlug(slug string) *Person {
	slug = strings.ToLower(slug)
	if p := s.people[slug]; p != nil {
		return p
	}
	g := generate(slug)
	s.byProvider[g.ProviderID] = slug
	return &g
}

// personByProviderID finds the person behind a provider id: one looked up
// or registered before, else a generated person whose public identifier is
// the id itself. Callers hold s.mu.
func (s *Simulator) personByProviderID(id string) *Person {
	if slug, ok := s.byProvider[id]; ok {
		return s.personBySlug(slug)
	}
	g := generate(strings.ToLower(id))
	g.Slug, g.ProviderID = id, id
	return &g
}

// ProviderID is the member id the simulator gives the public identifier
// slug: "ACoAA" followed by 34 characters derived from a hash of the
// lower-cased slug.
func ProviderID(slug string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	sum := sha256.Sum256([]byte(strings.ToLower(slug)))
	var b strings.Builder
	b.WriteString("ACoAA")
	for i := range 34 {
		b.WriteByte(alphabet[int(sum[i%32]+byte(i/32)*7)%len(alphabet)])
	}
	return b.String()
}

var (
	firstNames = []string{"Jane", "John", "Amélie", "Lucas", "Sofia", "Noah", "Chloé", "Liam", "Emma", "Mateo", "Inès", "Hugo", "Maya", "Leo", "Zoé", "Omar"}
	lastNames  = []string{"Doe", "Martin", "Bernard", "Dubois", "Smith", "Garcia", "Müller", "Rossi", "Nguyen", "Kowalski", "Silva", "Petit", "Durand", "Lopez", "Khan", "Berg"}
	headlines  = []string{
		"Head of Growth at Acme", "Sales Director | B2B SaaS", "Founder & CEO at Northwind",
		"Marketing Manager at Globex", "Software Engineer at Initech", "Recruiter at Umbrella",
		"VP Sales EMEA", "Customer Success Lead at Hooli", "Product Manager at Stark Industries",
		"Operations Manager at Wayne Enterprises",
	}
)

// prefixes are the slug conventions of generated people.
var prefixes = []struct {
	prefix string
	apply  func(p *Person, rest string)
}{
	{"unknown-", func(p *Person, _ string) { p.Unknown = true }},
	{"connected-", func(p *Person, _ string) { p.NetworkDistance, p.IsRelationship = "FIRST_DEGREE", true }},
	{"pending-", func(p *Person, _ string) { p.InvitationType, p.InvitationStatus = "SENT", "PENDING" }},
	{"received-", func(p *Person, _ string) { p.InvitationType, p.InvitationStatus = "RECEIVED", "PENDING" }},
	{"withdrawn-", func(p *Person, _ string) { p.InvitationType, p.InvitationStatus = "SENT", "WITHDRAWN" }},
	{"third-", func(p *Person, _ string) { p.NetworkDistance = "THIRD_DEGREE" }},
	{"outofnetwork-", func(p *Person, _ string) { p.NetworkDistance = "OUT_OF_NETWORK" }},
	{"fail-", func(p *Person, rest string) {
		// fail-<error_type>-anything: invitations answer that type.
		typ, _, _ := strings.Cut(rest, "-")
		if _, ok := unipileStatus[typ]; ok {
			p.InviteError = typ
		}
	}},
}

// generate makes the deterministic person behind a slug.
func generate(slug string) Person {
	sum := sha256.Sum256([]byte(slug))
	h := binary.BigEndian.Uint64(sum[:8])
	p := Person{Slug: slug, ProviderID: ProviderID(slug), NetworkDistance: "SECOND_DEGREE"}
	if h%4 == 3 {
		p.NetworkDistance = "THIRD_DEGREE"
	}
	for _, c := range prefixes {
		if rest, ok := strings.CutPrefix(slug, c.prefix); ok {
			c.apply(&p, rest)
			slug = rest
			break
		}
	}
	// Names come from the slug when it looks like first-last[-digits].
	var words []string
	for _, w := range strings.Split(slug, "-") {
		if w != "" && strings.IndexFunc(w, func(r rune) bool { return !unicode.IsLetter(r) }) < 0 {
			words = append(words, title(w))
		}
	}
	p.FirstName = firstNames[h%uint64(len(firstNames))]
	p.LastName = lastNames[(h>>8)%uint64(len(lastNames))]
	switch {
	case len(words) >= 2:
		p.FirstName, p.LastName = words[0], words[len(words)-1]
	case len(words) == 1:
		p.FirstName = words[0]
	}
	p.Headline = headlines[(h>>16)%uint64(len(headlines))]
	return p
}

func title(w string) string {
	r, n := utf8.DecodeRuneInString(w)
	return string(unicode.ToUpper(r)) + w[n:]
}
