// Package console serves outreach's operator console: accounts (status,
// working hours, budget per window, activity, pause and resume),
// campaigns (progress, failure reasons, their targets page by page) and
// targets (attempts, message, why they wait), as server-rendered HTML with
// embedded CSS and SVG charts, no JavaScript. Pages refresh themselves.
//
// The console does no access control of its own beyond refusing actions
// when read-only and refusing cross-site form posts: mount it behind the
// dashboard's middleware (basic auth, read-only, Origin checks), as
// cmd/outreach does, so both share one address and one set of rules.
package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configures the console.
type Options struct {
	// Store is the outreach database. Required.
	Store *store.Store
	// Prefix is the URL path the console is mounted under, such as
	// "/console" (no trailing slash). Required.
	Prefix string
	// DashboardURL is the asynq dashboard's address, linked from the
	// navigation; "" means "/".
	DashboardURL string
	// ReadOnly hides the actions and refuses them.
	ReadOnly bool
	// Refresh is how often pages reload themselves; 0 means 15 s, negative
	// never.
	Refresh time.Duration
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Console is the console's http.Handler.
type Console struct {
	o    Options
	tmpl map[string]*template.Template
	mux  *http.ServeMux
}

// New returns the console. It fails without a store or with a prefix that
// does not start with "/" or ends with one.
func New(o Options) (*Console, error) {
	if o.Store == nil {
		return nil, errors.New("console: Store is required")
	}
	if !strings.HasPrefix(o.Prefix, "/") || strings.HasSuffix(o.Prefix, "/") {
		return nil, fmt.Errorf("console: prefix %q must start with / and not end with one", o.Prefix)
	}
	if o.DashboardURL == "" {
		o.DashboardURL = "/"
	}
	if o.Refresh == 0 {
		o.Refresh = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{o: o, tmpl: map[string]*template.Template{}}
	funcs := c.funcs()
	for _, page := range []string{"accounts", "account", "campaigns", "campaign", "target"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse template %s: %w", page, err)
		}
		c.tmpl[page] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console: static files: %w", err)
	}
	p := o.Prefix
	mux := http.NewServeMux()
	mux.Handle("GET "+p+"/static/", http.StripPrefix(p+"/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET "+p+"/{$}", c.accounts)
	mux.HandleFunc("GET "+p+"/accounts/{id}", c.account)
	mux.HandleFunc("POST "+p+"/accounts/{id}/pause", c.pause)
	mux.HandleFunc("POST "+p+"/accounts/{id}/resume", c.resume)
	mux.HandleFunc("GET "+p+"/campaigns", c.campaigns)
	mux.HandleFunc("GET "+p+"/campaigns/{id}", c.campaign)
	mux.HandleFunc("GET "+p+"/targets/{id}", c.target)
	mux.HandleFunc("GET "+p+"/zone", c.zone)
	mux.Handle("GET "+p, http.RedirectHandler(p+"/", http.StatusFound))
	c.mux = mux
	return c, nil
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	c.mux.ServeHTTP(w, r)
}

// page is what every template receives.
type page struct {
	Title    string
	Section  string // accounts or campaigns, for the navigation
	Prefix   string
	Dash     string
	ReadOnly bool
	Refresh  int // seconds, 0 for none
	Now      time.Time
	Flash    string
	// Zone is the viewer's time zone (the tz cookie, else UTC), Path the
	// page's path (for the zone form to come back to), Zones the choices
	// offered.
	Zone  string
	Path  string
	Zones []string
	Data  any
}

// zoneCookie holds the viewer's time zone.
const zoneCookie = "outreach_tz"

// zones are offered in the zone form; any IANA name is accepted.
var zones = []string{"UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Moscow", "America/New_York",
	"America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Dubai", "Asia/Kolkata",
	"Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"}

// viewerZone returns the viewer's zone from its cookie, UTC if none or unknown.
func viewerZone(r *http.Request) *time.Location {
	if ck, err := r.Cookie(zoneCookie); err == nil && ck.Value != "" {
		if loc, err := time.LoadLocation(ck.Value); err == nil {
			return loc
		}
	}
	return time.UTC
}

// zone sets the viewer's time zone and goes back to the page it came from
// (a page of the console, never elsewhere).
func (c *Console) zone(w http.ResponseWriter, r *http.Request) {
	tz := strings.TrimSpace(r.URL.Query().Get("tz"))
	if _, err := time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
		http.Error(w, fmt.Sprintf("unknown time zone %q: want an IANA name such as Europe/Paris", tz), http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: zoneCookie, Value: tz, Path: c.o.Prefix + "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
	back := r.URL.Query().Get("back")
	if !strings.HasPrefix(back, c.o.Prefix+"/") || strings.HasPrefix(back, "//") || strings.ContainsAny(back, "\\\r\n") {
		back = c.o.Prefix + "/"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, name, title, section string, data any) {
	loc := viewerZone(r)
	p := page{Title: title, Section: section, Prefix: c.o.Prefix, Dash: c.o.DashboardURL, ReadOnly: c.o.ReadOnly,
		Now: c.o.Now().In(loc), Flash: r.URL.Query().Get("done"), Zone: loc.String(), Path: r.URL.RequestURI(), Zones: zones, Data: data}
	if c.o.Refresh > 0 {
		p.Refresh = int(c.o.Refresh / time.Second)
	}
	t, err := c.tmpl[name].Clone()
	if err != nil {
		c.fail(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	t.Funcs(template.FuncMap{"utc": viewerTime(loc)})
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		c.fail(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(b.String()))
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	c.o.Logger.ErrorContext(r.Context(), "console page failed", "path", r.URL.Path, "error", err)
	http.Error(w, "the console could not read the database; see the server's log", http.StatusInternalServerError)
}

func pathID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

// accountsPerPage is how many accounts the account list shows at once.
const accountsPerPage = 100

type accountsPage struct {
	Accounts []accountView
	Filter   store.AccountFilter
	// Counts holds how many accounts have each status, All their sum.
	Counts   map[store.AccountStatus]int
	All      int
	Statuses []store.AccountStatus
	Next     string // the next page's URL, "" on the last page
	First    string // the first page's URL, "" on the first page
}

func (c *Console) accounts(w http.ResponseWriter, r *http.Request) {
	ctx, now := r.Context(), c.o.Now()
	q := r.URL.Query()
	f := store.AccountFilter{Status: store.AccountStatus(q.Get("status")), Search: strings.TrimSpace(q.Get("q")),
		After: q.Get("after"), Limit: accountsPerPage}
	list, err := c.o.Store.ConsoleAccounts(ctx, now, f)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p := accountsPage{Filter: f, Statuses: []store.AccountStatus{store.AccountActive, store.AccountPaused, store.AccountDisabled}}
	if p.Counts, err = c.o.Store.AccountStatusCounts(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	for _, n := range p.Counts {
		p.All += n
	}
	base := url.Values{}
	if f.Status != "" {
		base.Set("status", string(f.Status))
	}
	if f.Search != "" {
		base.Set("q", f.Search)
	}
	self := c.o.Prefix + "/"
	if len(list) > f.Limit {
		list = list[:f.Limit]
		next := url.Values{}
		for k, v := range base {
			next[k] = v
		}
		next.Set("after", list[len(list)-1].Name)
		p.Next = self + "?" + next.Encode()
	}
	if f.After != "" {
		p.First = self + "?" + base.Encode()
	}
	p.Accounts = make([]accountView, len(list))
	for i, a := range list {
		p.Accounts[i] = newAccountView(a, now)
	}
	c.render(w, r, "accounts", "Accounts", "accounts", p)
}

type accountPage struct {
	A       accountView
	Chart   template.HTML
	Ledger  []store.LedgerRow
	Waiting []waitingView
	// Reasons counts the listed waiting targets by reason, most first.
	Reasons []reasonCount
	Camps   []*store.ConsoleCampaign
}

type reasonCount struct {
	Reason string
	Count  int
}

type waitingView struct {
	T    store.TargetRow
	Wait store.Wait
}

// chartDays is how many days the account page's chart covers.
const chartDays = 3

func (c *Console) account(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctx, now := r.Context(), c.o.Now()
	a, err := c.o.Store.ConsoleAccount(ctx, id, now)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p := accountPage{A: newAccountView(a, now)}
	if p.Ledger, err = c.o.Store.RecentLedger(ctx, id, 25); err != nil {
		c.fail(w, r, err)
		return
	}
	since := now.Truncate(time.Hour).Add(-chartDays*24*time.Hour + time.Hour)
	hours, err := c.o.Store.SendsPerHour(ctx, id, store.ActionInvite, since, now)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p.Chart = hourChart(hours, since, chartDays*24, a)
	waiting, err := c.o.Store.WaitingTargets(ctx, id, 50)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if p.Camps, err = c.o.Store.AccountCampaigns(ctx, id, now); err != nil {
		c.fail(w, r, err)
		return
	}
	status := map[int64]store.CampaignStatus{}
	for _, cc := range p.Camps {
		status[cc.ID] = cc.Status
	}
	ids := make([]int64, len(waiting))
	for i, t := range waiting {
		ids[i] = t.ID
	}
	waits, err := c.o.Store.Waits(ctx, ids)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	byReason := map[string]int{}
	for _, t := range waiting {
		wv := waitingView{T: t, Wait: waits[t.ID]}
		p.Waiting = append(p.Waiting, wv)
		if byReason[wv.Wait.Reason] == 0 {
			p.Reasons = append(p.Reasons, reasonCount{Reason: wv.Wait.Reason})
		}
		byReason[wv.Wait.Reason]++
	}
	for i := range p.Reasons {
		p.Reasons[i].Count = byReason[p.Reasons[i].Reason]
	}
	sort.SliceStable(p.Reasons, func(i, j int) bool { return p.Reasons[i].Count > p.Reasons[j].Count })
	c.render(w, r, "account", a.Name, "accounts", p)
}

// pauseDurations are the pause choices the console offers; 0 stops the
// account until an operator resumes it.
var pauseDurations = map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "stop": 0}

func (c *Console) pause(w http.ResponseWriter, r *http.Request) {
	id, ok := c.action(w, r)
	if !ok {
		return
	}
	d, known := pauseDurations[r.PostFormValue("for")]
	if !known {
		http.Error(w, "pause for: want 1h, 24h or stop", http.StatusBadRequest)
		return
	}
	var err error
	if d == 0 {
		err = c.o.Store.DisableAccount(r.Context(), id, "stopped by an operator in the console")
	} else {
		err = c.o.Store.PauseAccount(r.Context(), id, c.o.Now().Add(d), "paused by an operator in the console")
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.o.Logger.InfoContext(r.Context(), "account paused from the console", "account_id", id, "for", r.PostFormValue("for"))
	c.back(w, r, id, "paused")
}

func (c *Console) resume(w http.ResponseWriter, r *http.Request) {
	id, ok := c.action(w, r)
	if !ok {
		return
	}
	if err := c.o.Store.ResumeAccount(r.Context(), id); err != nil {
		c.fail(w, r, err)
		return
	}
	c.o.Logger.InfoContext(r.Context(), "account resumed from the console", "account_id", id)
	c.back(w, r, id, "resumed")
}

// action checks that an action may run: the console is writable and the
// form comes from this site. It answers the request itself when not.
func (c *Console) action(w http.ResponseWriter, r *http.Request) (int64, bool) {
	if c.o.ReadOnly {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the console is read-only", http.StatusMethodNotAllowed)
		return 0, false
	}
	if !sameOrigin(r) {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return 0, false
	}
	id, ok := pathID(r)
	if !ok {
		http.NotFound(w, r)
		return 0, false
	}
	return id, true
}

// sameOrigin reports whether a form post comes from a page of this site:
// the browser's Sec-Fetch-Site says same-origin (or none: typed or a
// tool), or, without it, the Origin header names this host. A post with
// neither header (not a browser) is allowed: basic auth guards it.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// back redirects after an action to the page it came from (the accounts
// list or the account's page), never elsewhere.
func (c *Console) back(w http.ResponseWriter, r *http.Request, id int64, done string) {
	to := fmt.Sprintf("%s/accounts/%d", c.o.Prefix, id)
	if r.PostFormValue("back") == "list" {
		to = c.o.Prefix + "/"
	}
	http.Redirect(w, r, to+"?done="+done, http.StatusSeeOther)
}

func (c *Console) campaigns(w http.ResponseWriter, r *http.Request) {
	list, err := c.o.Store.ConsoleCampaigns(r.Context(), 0, c.o.Now())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	views := make([]campaignView, len(list))
	for i, cc := range list {
		views[i] = newCampaignView(cc, c.o.Now())
	}
	c.render(w, r, "campaigns", "Campaigns", "campaigns", views)
}

type campaignPage struct {
	C          campaignView
	Filter     store.TargetFilter
	Statuses   []store.TargetStatus
	ErrorTypes []store.ReasonCount
	Targets    []store.TargetRow
	Next       string // the next page's URL, "" on the last page
	First      string // the first page's URL, "" on the first page
}

func (c *Console) campaign(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctx, now := r.Context(), c.o.Now()
	list, err := c.o.Store.ConsoleCampaigns(ctx, id, now)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	f := store.TargetFilter{CampaignID: id, Status: q.Get("status"), ErrorType: q.Get("error_type"), After: q.Get("after"), Limit: 50}
	p := campaignPage{C: newCampaignView(list[0], now), Filter: f,
		Statuses: store.TargetStatuses()}
	if p.ErrorTypes, err = c.o.Store.ErrorTypes(ctx, id); err != nil {
		c.fail(w, r, err)
		return
	}
	if p.Targets, err = c.o.Store.CampaignTargets(ctx, f); err != nil {
		c.fail(w, r, err)
		return
	}
	base := url.Values{}
	if f.Status != "" {
		base.Set("status", f.Status)
	}
	if f.ErrorType != "" {
		base.Set("error_type", f.ErrorType)
	}
	self := fmt.Sprintf("%s/campaigns/%d", c.o.Prefix, id)
	if len(p.Targets) > f.Limit {
		p.Targets = p.Targets[:f.Limit]
		next := url.Values{}
		for k, v := range base {
			next[k] = v
		}
		next.Set("after", p.Targets[len(p.Targets)-1].Identifier)
		p.Next = self + "?" + next.Encode()
	}
	if f.After != "" {
		p.First = self + "?" + base.Encode()
	}
	c.render(w, r, "campaign", list[0].Name, "campaigns", p)
}

type targetPage struct {
	T      *store.ConsoleTarget
	A      accountView
	Wait   store.Wait
	Ledger []store.LedgerRow
}

func (c *Console) target(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctx, now := r.Context(), c.o.Now()
	t, err := c.o.Store.ConsoleTargetByID(ctx, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	a, err := c.o.Store.ConsoleAccount(ctx, t.AccountID, now)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	waits, err := c.o.Store.Waits(ctx, []int64{id})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p := targetPage{T: t, A: newAccountView(a, now), Wait: waits[id]}
	if p.Ledger, err = c.o.Store.TargetLedger(ctx, id); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "target", "Target "+strconv.FormatInt(id, 10), "campaigns", p)
}
