package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/altegio"
	"github.com/outreach-dev/outreach/provider/partoo"
	"github.com/outreach-dev/outreach/provider/unipile"
	"github.com/outreach-dev/outreach/store"
)

// Env is the configuration read from the environment, and the process's
// standard streams.
//
//	DATABASE_URL             postgres://… (default postgres://postgres@127.0.0.1:5432/outreach?sslmode=disable)
//	REDIS_URL                redis://host:port/db, rediss://…, redis-sentinel://h1,h2?master=NAME, redis-cluster://h1,h2, redis-socket://… (default redis://127.0.0.1:6379/0)
//	UNIPILE_DSN              Unipile base URL or DSN, e.g. https://api1.unipile.com:13111
//	UNIPILE_API_KEY          the key for accounts whose credentials_ref is "default";
//	UNIPILE_API_KEY_<REF>    the key for credentials_ref <ref> (upper-cased)
//	PARTOO_URL, PARTOO_API_KEY[_<REF>]
//	ALTEGIO_URL, ALTEGIO_PARTNER_TOKEN[_<REF>], ALTEGIO_USER_TOKEN[_<REF>]
//	PROVIDER_TIMEOUT         one provider call's timeout (default 30s)
//	LOG_FORMAT               text or json (default: text on a terminal, else json)
//	LOG_LEVEL                debug, info, warn, error (default info)
//	DASHBOARD_USER, DASHBOARD_PASSWORD, DASHBOARD_READ_ONLY, DASHBOARD_TRUSTED_ORIGINS (see dashboard.go)
//	UNIPILE_WEBHOOK_SECRET, UNIPILE_WEBHOOK_HEADER (see webhooks.go)
//	SIMULATOR_UNIPILE_API_KEY, SIMULATOR_PARTOO_API_KEY, SIMULATOR_ALTEGIO_PARTNER_TOKEN, SIMULATOR_ALTEGIO_USER_TOKEN (see simulate.go)
//
// It is read once, in main; no other code reads the environment.
type Env struct {
	DatabaseURL string
	RedisURL    string
	Timeout     time.Duration

	UnipileURL, PartooURL, AltegioURL string
	secrets                           map[string]string // env name → value, provider credentials only

	// Dashboard holds DASHBOARD_USER, DASHBOARD_PASSWORD,
	// DASHBOARD_READ_ONLY and DASHBOARD_TRUSTED_ORIGINS as set, checked
	// when a dashboard is served.
	Dashboard struct{ User, Password, ReadOnly, TrustedOrigins string }
	// Simulator holds the SIMULATOR_* keys `outreach simulate` accepts
	// (empty: the simulator's defaults).
	Simulator struct{ UnipileAPIKey, PartooAPIKey, AltegioPartnerToken, AltegioUserToken string }
	// Webhook holds UNIPILE_WEBHOOK_SECRET and UNIPILE_WEBHOOK_HEADER
	// (see webhooks.go).
	Webhook struct{ Secret, Header string }

	Logger         *slog.Logger
	Stdout, Stderr io.Writer

	mu      sync.Mutex
	clients map[string]provider.Client
}

// LoadEnv reads the configuration from environ, a list of KEY=value
// (os.Environ() in main).
func LoadEnv(environ []string, stdout, stderr io.Writer) (*Env, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	get := func(k, def string) string {
		if v, ok := lookup(k); ok && v != "" {
			return v
		}
		return def
	}
	e := &Env{
		DatabaseURL: get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/outreach?sslmode=disable"),
		RedisURL:    get("REDIS_URL", "redis://127.0.0.1:6379/0"),
		UnipileURL:  get("UNIPILE_DSN", ""),
		PartooURL:   get("PARTOO_URL", partoo.DefaultBaseURL),
		AltegioURL:  get("ALTEGIO_URL", altegio.DefaultBaseURL),
		Stdout:      stdout, Stderr: stderr,
		secrets: map[string]string{},
		clients: map[string]provider.Client{},
	}
	if v := get("PROVIDER_TIMEOUT", ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("PROVIDER_TIMEOUT=%q: want a duration such as 30s", v)
		}
		e.Timeout = d
	} else {
		e.Timeout = 30 * time.Second
	}
	e.Dashboard.User, e.Dashboard.Password = get("DASHBOARD_USER", ""), get("DASHBOARD_PASSWORD", "")
	e.Dashboard.ReadOnly, e.Dashboard.TrustedOrigins = get("DASHBOARD_READ_ONLY", ""), get("DASHBOARD_TRUSTED_ORIGINS", "")
	e.Simulator.UnipileAPIKey = get("SIMULATOR_UNIPILE_API_KEY", "")
	e.Simulator.PartooAPIKey = get("SIMULATOR_PARTOO_API_KEY", "")
	e.Simulator.AltegioPartnerToken = get("SIMULATOR_ALTEGIO_PARTNER_TOKEN", "")
	e.Simulator.AltegioUserToken = get("SIMULATOR_ALTEGIO_USER_TOKEN", "")
	e.Webhook.Secret, e.Webhook.Header = get("UNIPILE_WEBHOOK_SECRET", ""), get("UNIPILE_WEBHOOK_HEADER", "")
	for k := range vars {
		for _, p := range []string{"UNIPILE_API_KEY", "PARTOO_API_KEY", "ALTEGIO_PARTNER_TOKEN", "ALTEGIO_USER_TOKEN"} {
			if k == p || strings.HasPrefix(k, p+"_") {
				if v, ok := lookup(k); ok {
					e.secrets[k] = v
				}
			}
		}
	}
	level := slog.LevelInfo
	if err := level.UnmarshalText([]byte(get("LOG_LEVEL", "info"))); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", get("LOG_LEVEL", ""))
	}
	format := get("LOG_FORMAT", "")
	if format == "" {
		format = "json"
		if f, ok := stderr.(*os.File); ok && isTerminal(f) {
			format = "text"
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "json":
		e.Logger = slog.New(slog.NewJSONHandler(stderr, opts))
	case "text":
		e.Logger = slog.New(slog.NewTextHandler(stderr, opts))
	default:
		return nil, fmt.Errorf("LOG_FORMAT=%q: want text or json", format)
	}
	return e, nil
}

// redisLogger routes go-redis's own log lines ("redis: connection pool:
// failed to dial …") through the process's slog logger, so that they
// follow LOG_FORMAT and LOG_LEVEL like every other line.
type redisLogger struct{ l *slog.Logger }

// Printf implements go-redis's logger. go-redis logs only what went wrong
// (pools that cannot dial, sentinel failovers), hence warnings.
func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(strings.TrimSpace(fmt.Sprintf(format, v...)), "redis: ")
	r.l.WarnContext(ctx, msg)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// secret returns the credential named base for ref: base itself for
// "default", base_REF otherwise.
func (e *Env) secret(base, ref string) (string, error) {
	name := base
	if ref != "" && ref != "default" {
		name = base + "_" + strings.ToUpper(ref)
	}
	v := e.secrets[name]
	if v == "" {
		return "", fmt.Errorf("%s is not set", name)
	}
	return v, nil
}

// Client returns the provider client for an account's provider and
// credentials reference, building it once. It implements worker.ClientFunc.
func (e *Env) Client(p provider.Name, ref string) (provider.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := string(p) + "/" + ref
	if c, ok := e.clients[key]; ok {
		return c, nil
	}
	var c provider.Client
	var err error
	switch p {
	case provider.Unipile:
		if e.UnipileURL == "" {
			return nil, errors.New("UNIPILE_DSN is not set")
		}
		key, kerr := e.secret("UNIPILE_API_KEY", ref)
		if kerr != nil {
			return nil, kerr
		}
		c, err = unipile.New(unipile.Config{BaseURL: e.UnipileURL, APIKey: key, Timeout: e.Timeout})
	case provider.Partoo:
		key, kerr := e.secret("PARTOO_API_KEY", ref)
		if kerr != nil {
			return nil, kerr
		}
		c, err = partoo.New(partoo.Config{BaseURL: e.PartooURL, APIKey: key, Timeout: e.Timeout})
	case provider.Altegio:
		pt, kerr := e.secret("ALTEGIO_PARTNER_TOKEN", ref)
		if kerr != nil {
			return nil, kerr
		}
		ut, kerr := e.secret("ALTEGIO_USER_TOKEN", ref)
		if kerr != nil {
			return nil, kerr
		}
		c, err = altegio.New(altegio.Config{BaseURL: e.AltegioURL, PartnerToken: pt, UserToken: ut, Timeout: e.Timeout})
	default:
		return nil, fmt.Errorf("unknown provider %q", p)
	}
	if err != nil {
		return nil, err
	}
	e.clients[key] = c
	return c, nil
}

// OpenStore connects to DATABASE_URL.
func (e *Env) OpenStore(ctx context.Context, opts ...store.Option) (*store.Store, error) {
	return store.Open(ctx, e.DatabaseURL, opts...)
}

// RedisOpt parses REDIS_URL (redis://, rediss://, redis-socket://,
// redis-sentinel://, redis-cluster://; see parseRedisURL).
func (e *Env) RedisOpt() (asynq.RedisConnOpt, error) {
	opt, err := parseRedisURL(e.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %v (want redis://host:port/db, rediss://…, redis-sentinel://…?master=NAME, redis-cluster://… or redis-socket://…)", err)
	}
	return opt, nil
}

// OpenRedis connects to REDIS_URL and checks that it answers.
func (e *Env) OpenRedis(ctx context.Context) (redis.UniversalClient, error) {
	opt, err := e.RedisOpt()
	if err != nil {
		return nil, err
	}
	rdb, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, errors.New("REDIS_URL: unsupported connection type")
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("connect to redis: %w", err)
	}
	return rdb, nil
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// credentialNames are the environment variables that hold provider
// credentials, by provider; a _<REF> suffix names credentials_ref <ref>.
var credentialNames = map[provider.Name][]string{
	provider.Unipile: {"UNIPILE_API_KEY"},
	provider.Partoo:  {"PARTOO_API_KEY"},
	provider.Altegio: {"ALTEGIO_PARTNER_TOKEN", "ALTEGIO_USER_TOKEN"},
}

// Credentials lists the provider credentials set in this process as
// "provider/ref" (ref as accounts.credentials_ref spells it): those it can
// build a client with, and those it cannot, with why (a key without its
// provider's URL, an Altegio partner token without its user token). Names
// only, never a secret.
func (e *Env) Credentials() (usable []string, unusable map[string]error) {
	refs := map[string]bool{}
	for name, v := range e.secrets {
		if v == "" {
			continue
		}
		for p, bases := range credentialNames {
			for _, base := range bases {
				switch {
				case name == base:
					refs[string(p)+"/default"] = true
				case strings.HasPrefix(name, base+"_"):
					refs[string(p)+"/"+strings.ToLower(strings.TrimPrefix(name, base+"_"))] = true
				}
			}
		}
	}
	unusable = map[string]error{}
	for r := range refs {
		p, ref, _ := strings.Cut(r, "/")
		if _, err := e.Client(provider.Name(p), ref); err != nil {
			unusable[r] = err
			continue
		}
		usable = append(usable, r)
	}
	sort.Strings(usable)
	return usable, unusable
}
