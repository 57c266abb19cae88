package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/config"
	"github.com/paybridge/paybridge/vcc"
)

// loadConfig is the --config flag every configured command shares.
func loadConfig(path string, getenv func(string) string) (*config.Config, error) {
	if path == "" {
		return nil, errors.New("--config is required (see config/example.yaml, or run `paybridge demo` to try it without one)")
	}
	return config.Load(path, getenv)
}

// runServe is `paybridge serve --config F`. SIGHUP reloads merchants and rate limits from F.
func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.Log.Format, cfg.Log.SlogLevel())
	for _, w := range cfg.Warnings() {
		logger.Warn("configuration", "warning", w)
	}
	// As loaded: newApp fills in what a port 0 bound to, which a reload must not see as a change.
	running := *cfg
	a, err := newApp(cfg, appOptions{logger: logger})
	if err != nil {
		return err
	}
	a.reloadOnSIGHUP(ctx, *cfgPath, getenv, &running)
	return a.run(ctx)
}

// runKeys is `paybridge keys create`: a new API key, printed once.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: paybridge keys create --config F --merchant M --type secret|publishable --mode test|live")
	}
	fs := newFlags("keys create", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	merchant := fs.String("merchant", "", "merchant id")
	typ := fs.String("type", "secret", "secret or publishable")
	mode := fs.String("mode", "test", "test or live")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *merchant == "" {
		return errors.New("keys create: --merchant is required")
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	// On PostgreSQL there is no file lock: this works beside running nodes.
	store, err := openStore(ctx, cfg, nil, 2*time.Second)
	if err != nil && !cfg.Store.Shared() {
		return fmt.Errorf("%w (a running paybridge holds the data directory: stop it, or create keys with POST /api/merchants/api-keys)", err)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	keys := bridge.NewKeyService(bridge.KeyServiceOptions{Store: store, Merchants: bridge.StaticMerchants(cfg.BridgeMerchants())})
	plain, key, err := keys.CreateKey(ctx, *merchant, bridge.KeyType(*typ), bridge.Mode(*mode))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", plain)
	fmt.Fprintf(stderr, "created %s key %s for merchant %s (%s); it is shown once: store it now\n", key.Type, key.ID, key.MerchantID, key.Mode)
	return nil
}

// runCheck is `paybridge check --config F`: validate the file and try every merchant's VCC
// credentials.
func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	offline := fs.Bool("offline", false, "validate only; do not contact VCC")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: valid, %d merchant(s)\n", *cfgPath, len(cfg.Merchants))
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if *offline {
		return nil
	}
	client := vcc.New(vcc.Options{RequestTimeout: cfg.VCC.RequestTimeout, MaxRetries: retries(cfg.VCC.MaxRetries)})
	failed := 0
	for _, m := range cfg.BridgeMerchants() {
		if !m.VCC.Configured() {
			fmt.Fprintf(stdout, "merchant %s: VCC credentials not configured (sessions answer merchant_not_configured)\n", m.ID)
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := client.Token(tctx, m)
		cancel()
		if err != nil {
			failed++
			e := bridge.AsError(err)
			fmt.Fprintf(stdout, "merchant %s: VCC token request failed: %s (%s)\n  fix: %s\n", m.ID, e.Message, e.Code, e.PublicFix())
			continue
		}
		fmt.Fprintf(stdout, "merchant %s: VCC credentials ok (%s)\n", m.ID, m.VCC.TokenURL)
	}
	if failed > 0 {
		return fmt.Errorf("%d merchant(s) failed the VCC credential check", failed)
	}
	return nil
}
