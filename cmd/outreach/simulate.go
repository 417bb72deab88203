package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/outreach-dev/outreach/provider/simulator"
)

func runSimulate(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "simulate", "simulate [flags]\n\nServes the Unipile, Partoo and Altegio APIs on one port, with limits and refusals, for tests and demos.")
	addr := fs.String("addr", "127.0.0.1:8089", "listen address")
	latency := fs.Duration("latency", 0, "delay of every answer")
	jitter := fs.Duration("jitter", 0, "extra random delay below this")
	errRate := fs.Float64("error-rate", 0, "share of requests answered with a transient error (0 to 1)")
	daily := fs.Int("daily-limit", 0, "invitations per account per day before limit_exceeded (0: none)")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := simulator.Config{Latency: *latency, Jitter: *jitter, ErrorRate: *errRate, Seed: *seed}
	if k := env.Simulator.UnipileAPIKey; k != "" {
		cfg.UnipileAPIKeys = []string{k}
	}
	if k := env.Simulator.PartooAPIKey; k != "" {
		cfg.PartooAPIKeys = []string{k}
	}
	if k := env.Simulator.AltegioPartnerToken; k != "" {
		cfg.AltegioPartnerTokens = []string{k}
	}
	if k := env.Simulator.AltegioUserToken; k != "" {
		cfg.AltegioUserTokens = []string{k}
	}
	if *daily > 0 {
		cfg.DefaultLimits = []simulator.Window{{Max: *daily, Per: 24 * time.Hour}}
	}
	sim := simulator.New(cfg)
	err := sim.ListenAndServe(ctx, *addr, func(a net.Addr) {
		env.Logger.InfoContext(ctx, "simulator listening", "addr", a.String())
		fmt.Fprintf(env.Stdout, "simulator listening on http://%s\n", a)
	})
	if errors.Is(err, http.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}
