package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paybridge/paybridge/bridge"
)

var _ bridge.SharedRateLimiter = (*Store)(nil)

// TakeRate implements bridge.SharedRateLimiter with one row per key, read and written under its
// row lock, by the database's clock: whichever nodes serve a key, their takes are serialised and
// the limit is exact.
func (s *Store) TakeRate(ctx context.Context, key string, limit int, window time.Duration) (bool, float64, error) {
	if limit <= 0 || window <= 0 {
		return false, 0, fmt.Errorf("pgstore: rate limit %d per %s", limit, window)
	}
	perSecond := float64(limit) / window.Seconds()
	var allowed bool
	var tokens float64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO rate_buckets (key, tokens, at) VALUES ($1, $2, clock_timestamp()) ON CONFLICT (key) DO NOTHING`,
			key, float64(limit)); err != nil {
			return err
		}
		var at time.Time
		// clock_timestamp after the row lock: the refill counts up to this take, not up to when
		// the transaction began waiting.
		if err := tx.QueryRow(ctx, `SELECT least($2::float8, tokens + greatest(0, extract(epoch FROM clock_timestamp() - at))::float8 * $3::float8),
				greatest(at, clock_timestamp()) FROM rate_buckets WHERE key = $1 FOR UPDATE`,
			key, float64(limit), perSecond).Scan(&tokens, &at); err != nil {
			return err
		}
		if allowed = tokens >= 1; allowed {
			tokens--
		}
		_, err := tx.Exec(ctx, `UPDATE rate_buckets SET tokens = $2, at = $3 WHERE key = $1`, key, tokens, at)
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("pgstore: rate limit: %w", err)
	}
	return allowed, tokens, nil
}
