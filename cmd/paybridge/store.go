package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
	"github.com/paybridge/paybridge/bridge/pgstore"
	"github.com/paybridge/paybridge/config"
)

// openStore opens the store cfg names: PostgreSQL when store.url is set (several nodes), else
// bbolt in the data directory. boltTimeout bounds the wait for bbolt's file lock (0: the
// default). The URL is never logged or quoted in an error: it may hold a password.
func openStore(ctx context.Context, cfg *config.Config, logger *slog.Logger, boltTimeout time.Duration) (bridge.Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Store.Shared() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := pgstore.Open(ctx, cfg.Store.URL, pgstore.WithLogger(logger), pgstore.WithLeaseTTL(cfg.Store.LeaseTTL))
		if err != nil {
			return nil, fmt.Errorf("store.url: %w", err)
		}
		return s, nil
	}
	return boltstore.Open(filepath.Join(cfg.DataDir, "paybridge.db"), boltstore.Options{Logger: logger, Timeout: boltTimeout})
}
