package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paybridge/paybridge/bridge"
)

// Queries of idempotency records. A record is expired at t when t is not before its ExpiresAt
// (expires_ns <= t); every query uses this one rule, so a record never counts as both live and
// expired.
const (
	// sqlReserve inserts the record, or replaces one that has expired. ON CONFLICT DO UPDATE
	// locks the existing row even when its WHERE is false, so the record sqlReservedBy then
	// reads in the same transaction cannot be released or replaced in between.
	sqlReserve = `INSERT INTO idempotency AS i (key, request_hash, done, status, body, created_ns, expires_ns, resource_id, node)
		VALUES ($1, $2, false, 0, NULL, $3, $4, $5, $6)
		ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, done = false, status = 0,
			body = NULL, created_ns = excluded.created_ns, expires_ns = excluded.expires_ns, resource_id = excluded.resource_id,
			node = excluded.node
		WHERE i.expires_ns <= excluded.created_ns
		RETURNING true`
	sqlReservedBy = `SELECT request_hash, done, status, body, created_ns, expires_ns, resource_id, node FROM idempotency WHERE key = $1`
	sqlComplete   = `UPDATE idempotency SET done = true, status = $2, body = $3 WHERE key = $1`
	sqlRelease    = `DELETE FROM idempotency WHERE key = $1`
	sqlRecord     = `SELECT request_hash, done, status, body, created_ns, expires_ns, resource_id, node FROM idempotency
		WHERE key = $1 AND expires_ns > $2`
	sqlPurge = `DELETE FROM idempotency WHERE expires_ns <= $1`
)

// ReserveIdempotency implements bridge.IdempotencyStore with one INSERT ... ON CONFLICT: of
// concurrent reservations of one key, on any node, exactly one wins. The reservation records this
// node (IdempotencyRecord.Node), so a duplicate elsewhere waits while it is alive. rec.CreatedAt is taken as
// now: an existing record expired by then is replaced.
func (s *Store) ReserveIdempotency(ctx context.Context, rec *bridge.IdempotencyRecord) (*bridge.IdempotencyRecord, error) {
	if rec.Key == "" {
		return nil, errors.New("pgstore: idempotency record has no key")
	}
	var existing *bridge.IdempotencyRecord
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var won bool
		err := tx.QueryRow(ctx, sqlReserve, []byte(rec.Key), rec.RequestHash, nanos(rec.CreatedAt), nanos(rec.ExpiresAt), rec.ResourceID, s.node).Scan(&won)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("pgstore: reserve idempotency key: %w", err)
		}
		existing, err = scanRecord(rec.Key, tx.QueryRow(ctx, sqlReservedBy, []byte(rec.Key)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return existing, nil
}

// CompleteIdempotency implements bridge.IdempotencyStore; ErrNotFound if key has no record.
func (s *Store) CompleteIdempotency(ctx context.Context, key string, status int, body []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, sqlComplete, []byte(key), status, body)
	if err != nil {
		return fmt.Errorf("pgstore: complete idempotency key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: idempotency record: %w", bridge.ErrNotFound)
	}
	return nil
}

// ReleaseIdempotency implements bridge.IdempotencyStore. Releasing a key with no record is not
// an error: the outcome the caller wants already holds.
func (s *Store) ReleaseIdempotency(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, sqlRelease, []byte(key)); err != nil {
		return fmt.Errorf("pgstore: release idempotency key: %w", err)
	}
	return nil
}

// IdempotencyRecord implements bridge.IdempotencyStore.
func (s *Store) IdempotencyRecord(ctx context.Context, key string, now time.Time) (*bridge.IdempotencyRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return scanRecord(key, s.pool.QueryRow(ctx, sqlRecord, []byte(key), nanos(now)))
}

// PurgeIdempotency implements bridge.IdempotencyStore, through the expiry index.
func (s *Store) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	tag, err := s.pool.Exec(ctx, sqlPurge, nanos(now))
	if err != nil {
		return 0, fmt.Errorf("pgstore: purge idempotency records: %w", err)
	}
	if n := tag.RowsAffected(); n > 0 {
		s.log.Debug("purged expired idempotency records", "count", n)
	}
	return int(tag.RowsAffected()), nil
}

// scanRecord reads the record of key from row, or returns ErrNotFound. The key itself is not
// repeated in errors: it holds the client's Idempotency-Key.
func scanRecord(key string, row pgx.Row) (*bridge.IdempotencyRecord, error) {
	rec := bridge.IdempotencyRecord{Key: key}
	var status int32
	var createdNs, expiresNs int64
	err := row.Scan(&rec.RequestHash, &rec.Done, &status, &rec.Body, &createdNs, &expiresNs, &rec.ResourceID, &rec.Node)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: idempotency record: %w", bridge.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: read idempotency record: %w", err)
	}
	rec.Status = int(status)
	rec.CreatedAt, rec.ExpiresAt = time.Unix(0, createdNs).UTC(), time.Unix(0, expiresNs).UTC()
	return &rec, nil
}
