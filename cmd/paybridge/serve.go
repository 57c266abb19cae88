package main

import (
	"context"
	"errors"
	"io"

	"github.com/paybridge/paybridge/config"
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
	if err := cfg.CheckServable(); err != nil {
		return config.Locate(err, *cfgPath)
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
	// On bbolt, `paybridge keys` and `paybridge backup` reach this process through its admin
	// socket, since the store's file lock keeps them out of the file.
	adm, err := startAdmin(cfg, a)
	if err != nil {
		_ = a.listener.Close()
		_ = a.store.Close()
		return err
	}
	defer adm.stop()
	a.reloadOnSIGHUP(ctx, *cfgPath, getenv, &running)
	return a.run(ctx)
}
