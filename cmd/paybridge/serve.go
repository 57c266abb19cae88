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
	logger := newLogger(stderr, cfg.Log.Format, cfg.Log.SlogLevel())
	for _, w := range cfg.Warnings() {
		logger.Warn("configuration", "warning", w)
	}
	a, err := newApp(cfg, appOptions{logger: logger})
	if err != nil {
		return err
	}
	// On bbolt, `paybridge keys` and `paybridge backup` reach this process through its admin
	// socket, since the store's file lock keeps them out of the file.
	adm, err := startAdmin(cfg, a)
	if err != nil {
		_ = a.listener.Close()
		_ = a.store.Close()
		return err
	}
	defer adm.stop()
	return a.run(ctx)
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
