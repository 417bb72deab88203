package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/console"
	"github.com/outreach-dev/outreach/dashboard"
	"github.com/outreach-dev/outreach/store"
)

// consolePath is where the operator console is served, beside the asynq
// dashboard at "/".
const consolePath = "/console"

// dashboardOptions are the dashboard's access settings. Empty fields are
// filled from DASHBOARD_USER, DASHBOARD_PASSWORD and DASHBOARD_READ_ONLY.
type dashboardOptions struct {
	User, Password string
	ReadOnly       bool
	// ready, if set, receives the URL once the server listens.
	ready func(url string)
}

func runDashboard(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "dashboard", `dashboard [flags]

Serves the asynq dashboard (queues, tasks, retries, servers) for REDIS_URL
at /, and the outreach console (accounts, budgets, campaigns, targets, why
they wait; pause and resume) for DATABASE_URL at /console/, behind the same
auth and read-only mode. It binds to localhost unless told otherwise; on
another address, set basic auth. Payloads are shown as task type, target
id, and the target's account and campaign names.

Changes (pause, delete, run) are refused with 403 when the browser says
they come from another site. Behind a proxy that rewrites the Host header,
list the public origin in DASHBOARD_TRUSTED_ORIGINS.

Environment: DASHBOARD_USER and DASHBOARD_PASSWORD (basic auth, like
--basic-auth), DASHBOARD_READ_ONLY=true (like --read-only),
DASHBOARD_TRUSTED_ORIGINS=https://ops.example.com[,…] (other origins whose
pages may change the queues).`)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	auth := fs.String("basic-auth", "", "require HTTP basic auth as USER:PASSWORD (prefer the environment: flags show in ps)")
	ro := fs.Bool("read-only", false, "view only: refuse deleting, archiving, pausing or running tasks and queues")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	o := dashboardOptions{ReadOnly: *ro}
	if *auth != "" {
		u, p, ok := strings.Cut(*auth, ":")
		if !ok || u == "" || p == "" {
			return usagef("--basic-auth wants USER:PASSWORD")
		}
		o.User, o.Password = u, p
	}
	// Check Redis now, for a clear error rather than an empty dashboard.
	rdb, err := env.OpenRedis(ctx)
	if err != nil {
		return err
	}
	rdb.Close()
	stop, err := serveDashboard(ctx, env, *addr, o)
	if err != nil {
		return err
	}
	defer stop()
	<-ctx.Done()
	return nil
}

// serveDashboard serves the dashboard on addr (nothing if addr is empty)
// until ctx ends or stop is called.
func serveDashboard(ctx context.Context, env *Env, addr string, o dashboardOptions) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	if o.User == "" && o.Password == "" {
		o.User, o.Password = env.Dashboard.User, env.Dashboard.Password
		if (o.User == "") != (o.Password == "") {
			return nil, usagef("set both DASHBOARD_USER and DASHBOARD_PASSWORD, or neither")
		}
	}
	if v := env.Dashboard.ReadOnly; v != "" && !o.ReadOnly {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, usagef("DASHBOARD_READ_ONLY=%q: want true or false", v)
		}
		o.ReadOnly = b
	}
	opt, err := env.RedisOpt()
	if err != nil {
		return nil, err
	}
	var trusted []string
	for _, origin := range strings.Split(env.Dashboard.TrustedOrigins, ",") {
		if origin = strings.TrimSpace(origin); origin != "" {
			trusted = append(trusted, origin)
		}
	}
	do := dashboard.Options{RedisConnOpt: opt, ReadOnly: o.ReadOnly, User: o.User, Password: o.Password,
		TrustedOrigins: trusted}
	// The operator console, on the same server behind the same checks.
	st, err := env.OpenStore(ctx, store.PoolSize(4))
	if err != nil {
		env.Logger.WarnContext(ctx, "serving the dashboard without the console: the database is unreachable", "error", err)
	} else {
		cons, err := console.New(console.Options{Store: st, Prefix: consolePath, ReadOnly: o.ReadOnly, Logger: env.Logger})
		if err != nil {
			st.Close()
			return nil, err
		}
		do.Console, do.ConsolePath = cons, consolePath
		do.TargetLabel = console.TargetLabeler(st, 2*time.Second)
	}
	closeStore := func() {
		if st != nil {
			st.Close()
		}
	}
	d, err := dashboard.New(do)
	if err != nil {
		closeStore()
		return nil, usagef("%v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("/", d)
	a, stopHTTP, err := serveHTTP(ctx, env, "dashboard", addr, mux)
	if err != nil {
		d.Close()
		closeStore()
		return nil, err
	}
	url := "http://" + a.String() + "/"
	if !isLoopback(a.String()) && o.User == "" {
		env.Logger.WarnContext(ctx, "the dashboard listens beyond localhost without basic auth: anyone who reaches it can delete tasks",
			"addr", a.String(), "read_only", o.ReadOnly)
	}
	env.Logger.InfoContext(ctx, "serving dashboard", "url", url, "console", do.Console != nil, "read_only", o.ReadOnly, "basic_auth", o.User != "")
	if o.ready != nil {
		o.ready(url)
	} else {
		fmt.Fprintf(env.Stdout, "dashboard on %s\n", url)
		if do.Console != nil {
			fmt.Fprintf(env.Stdout, "console on %s%s/\n", strings.TrimSuffix(url, "/"), consolePath)
		}
	}
	return func() {
		stopHTTP()
		d.Close()
		closeStore()
	}, nil
}
