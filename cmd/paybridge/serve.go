package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/config"
)

// loadConfig is the --config flag every configured command shares.
func loadConfig(path string, getenv func(string) string) (*config.Config, error) {
	if path == "" {
		return nil, errors.New("--config is required (see config/example.yaml, or run `paybridge demo` to try it without one)")
	}
	return config.Load(path, getenv)
}

// runServe is `paybridge serve --config F`.
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
	if err := cfg.CheckServable(); err != nil {
		return config.Locate(err, *cfgPath)
	}
	logger := newLogger(stderr, cfg.Log.Format, cfg.Log.SlogLevel())
	for _, w := range cfg.Warnings() {
		logger.Warn("configuration", "warning", w)
	}
	a, err := newApp(cfg, appOptions{logger: logger})
	if err != nil {
		return err
	}
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
