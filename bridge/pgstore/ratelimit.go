package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paybridge/paybridge/bridge"
)

var _ bridge.SharedRateLimiter = (*Store)(nil)

// Queries of the shared token buckets, by the database's clock.
const (
	// sqlTakeRate refills key's bucket up to this take and spends one token if it has one, under
	// the row's lock, in one statement; no row when the bucket does not exist yet.
	sqlTakeRate = `WITH cur AS (
			SELECT least($2::float8, tokens + greatest(0, extract(epoch FROM clock_timestamp() - at))::float8 * $3::float8) AS t,
				greatest(at, clock_timestamp()) AS now
			FROM rate_buckets WHERE key = $1 FOR UPDATE
		)
		UPDATE rate_buckets r SET tokens = CASE WHEN cur.t >= 1 THEN cur.t - 1 ELSE cur.t END, at = cur.now
		FROM cur WHERE r.key = $1
		RETURNING cur.t >= 1, r.tokens`
	sqlNewBucket = `INSERT INTO rate_buckets (key, tokens, at) VALUES ($1, $2, clock_timestamp()) ON CONFLICT (key) DO NOTHING`
)

// TakeRate implements bridge.SharedRateLimiter with one row per key, read and written under its
// row lock: whichever nodes serve a key, their takes are serialised and the limit is exact. The
// commit does not wait for the disk (synchronous_commit off, for this transaction only): a crash
// of the database may forget the last takes, which only returns a few requests to a bucket,
// while every create of a busy key would otherwise queue behind the previous one's fsync.
func (s *Store) TakeRate(ctx context.Context, key string, limit int, window time.Duration) (bool, float64, error) {
	if limit <= 0 || window <= 0 {
		return false, 0, fmt.Errorf("pgstore: rate limit %d per %s", limit, window)
	}
	perSecond := float64(limit) / window.Seconds()
	var allowed bool
	var tokens float64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, sqlTakeRate, key, float64(limit), perSecond).Scan(&allowed, &tokens)
		if !isNoRows(err) {
			return err
		}
		// The key's first take: make its bucket full, then take.
		if _, err := tx.Exec(ctx, sqlNewBucket, key, float64(limit)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, sqlTakeRate, key, float64(limit), perSecond).Scan(&allowed, &tokens)
	})
	if err != nil {
		return false, 0, fmt.Errorf("pgstore: rate limit: %w", err)
	}
	return allowed, tokens, nil
}
