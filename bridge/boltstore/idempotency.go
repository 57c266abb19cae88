package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paybridge/paybridge/bridge"
)

// A record is expired at t when t is not before its ExpiresAt; every method below uses this one
// rule, so a record never counts as both live and expired.
func expired(rec *bridge.IdempotencyRecord, t time.Time) bool { return !t.Before(rec.ExpiresAt) }

// ReserveIdempotency implements bridge.IdempotencyStore. rec.CreatedAt is taken as now: an
// existing record expired by then is replaced. The reservation is one write transaction, so of
// concurrent reservations of one key exactly one wins.
func (s *Store) ReserveIdempotency(ctx context.Context, rec *bridge.IdempotencyRecord) (*bridge.IdempotencyRecord, error) {
	if rec.Key == "" {
		return nil, errors.New("boltstore: idempotency record has no key")
	}
	var existing *bridge.IdempotencyRecord
	err := s.update(ctx, func(tx *bolt.Tx) error {
		existing = nil // afresh on every run: the group commit may rerun this
		cur, err := getIdempotency(tx, rec.Key)
		switch {
		case errors.Is(err, bridge.ErrNotFound):
		case err != nil:
			return err
		case !expired(cur, rec.CreatedAt):
			existing = cur
			return nil
		}
		return putJSON(tx, bucketIdempotency, []byte(rec.Key), rec)
	})
	if err != nil {
		return nil, err
	}
	return existing, nil
}

// CompleteIdempotency implements bridge.IdempotencyStore; ErrNotFound if key has no record.
func (s *Store) CompleteIdempotency(ctx context.Context, key string, status int, body []byte) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		rec, err := getIdempotency(tx, key)
		if err != nil {
			return err
		}
		rec.Done, rec.Status, rec.Body = true, status, body
		return putJSON(tx, bucketIdempotency, []byte(key), rec)
	})
}

// ReleaseIdempotency implements bridge.IdempotencyStore. Releasing a key with no record is not
// an error: the outcome the caller wants already holds.
func (s *Store) ReleaseIdempotency(ctx context.Context, key string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIdempotency).Delete([]byte(key))
	})
}

// IdempotencyRecord implements bridge.IdempotencyStore.
func (s *Store) IdempotencyRecord(ctx context.Context, key string, now time.Time) (*bridge.IdempotencyRecord, error) {
	var rec *bridge.IdempotencyRecord
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		rec, err = getIdempotency(tx, key)
		if err == nil && expired(rec, now) {
			rec, err = nil, fmt.Errorf("boltstore: idempotency record expired: %w", bridge.ErrNotFound)
		}
		return err
	})
	return rec, err
}

// PurgeIdempotency implements bridge.IdempotencyStore. It reads every record, in one write
// transaction; records live 24 h, so the bucket stays as small as a day's traffic.
func (s *Store) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	var purged int
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdempotency)
		var doomed [][]byte
		n := 0
		err := b.ForEach(func(k, v []byte) error {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var rec bridge.IdempotencyRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("boltstore: decode idempotency record: %w", err)
			}
			if expired(&rec, now) {
				// Deleting while ForEach walks the bucket is not allowed, and k is only
				// valid until the bucket changes: copy it and delete afterwards.
				doomed = append(doomed, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		purged = len(doomed)
		return nil
	})
	if err != nil {
		return 0, err
	}
	if purged > 0 {
		s.log.Debug("purged expired idempotency records", "count", purged)
	}
	return purged, nil
}

// getIdempotency decodes the record with key, or returns ErrNotFound.
func getIdempotency(tx *bolt.Tx, key string) (*bridge.IdempotencyRecord, error) {
	var rec bridge.IdempotencyRecord
	ok, err := getJSON(tx, bucketIdempotency, []byte(key), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("boltstore: idempotency record: %w", bridge.ErrNotFound)
	}
	return &rec, nil
}
