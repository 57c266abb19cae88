package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paybridge/paybridge/bridge"
)

// DueOutbox implements bridge.OutboxStore. outbox_due holds pending messages only, keyed by
// NextAttemptAt, so it reads exactly the messages it returns. A limit of 0 or less returns none.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]*bridge.OutboxMessage, error) {
	var list []*bridge.OutboxMessage
	err := s.view(ctx, func(tx *bolt.Tx) error {
		end := timeKey(now)
		c := tx.Bucket(bucketOutboxDue).Cursor()
		for k, _ := c.First(); k != nil && len(list) < limit; k, _ = c.Next() {
			if bytes.Compare(k[:8], end) > 0 {
				break
			}
			m, err := getOutbox(tx, string(k[8:]))
			if err != nil {
				return fmt.Errorf("boltstore: outbox_due points at a missing message: %w", err)
			}
			list = append(list, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// OutboxMessage implements bridge.OutboxStore.
func (s *Store) OutboxMessage(ctx context.Context, id string) (*bridge.OutboxMessage, error) {
	var m *bridge.OutboxMessage
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		m, err = getOutbox(tx, id)
		return err
	})
	return m, err
}

// UpdateOutbox implements bridge.OutboxStore. fn runs once, inside the write transaction, on a
// private copy; an error from fn is returned unchanged and nothing is written.
func (s *Store) UpdateOutbox(ctx context.Context, id string, fn func(*bridge.OutboxMessage) error) (*bridge.OutboxMessage, error) {
	var updated *bridge.OutboxMessage
	err := s.update(ctx, func(tx *bolt.Tx) error {
		old, err := getOutbox(tx, id)
		if err != nil {
			return err
		}
		next, err := getOutbox(tx, id)
		if err != nil {
			return err
		}
		if err := fn(next); err != nil {
			return err
		}
		if next.ID != old.ID {
			return fmt.Errorf("boltstore: UpdateOutbox may not change a message's id (%s to %s)", old.ID, next.ID)
		}
		if err := putOutbox(tx, old, next); err != nil {
			return err
		}
		updated = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// createOutbox writes a new message; ErrConflict if its id (the event id) exists.
func createOutbox(tx *bolt.Tx, m *bridge.OutboxMessage) error {
	if m.ID == "" {
		return errors.New("boltstore: outbox message has no id")
	}
	if tx.Bucket(bucketOutbox).Get([]byte(m.ID)) != nil {
		return fmt.Errorf("boltstore: outbox message %s exists: %w", m.ID, bridge.ErrConflict)
	}
	return putOutbox(tx, nil, m)
}

// getOutbox decodes the message with id, or returns ErrNotFound.
func getOutbox(tx *bolt.Tx, id string) (*bridge.OutboxMessage, error) {
	var m bridge.OutboxMessage
	ok, err := getJSON(tx, bucketOutbox, []byte(id), &m)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("boltstore: outbox message %s: %w", id, bridge.ErrNotFound)
	}
	return &m, nil
}

// putOutbox writes next and moves its outbox_due entry from old's (nil for a new message).
func putOutbox(tx *bolt.Tx, old, next *bridge.OutboxMessage) error {
	due := tx.Bucket(bucketOutboxDue)
	if old != nil && old.Pending() {
		if err := due.Delete(dueKey(old)); err != nil {
			return err
		}
	}
	if next.Pending() {
		if err := due.Put(dueKey(next), nil); err != nil {
			return err
		}
	}
	return putJSON(tx, bucketOutbox, []byte(next.ID), next)
}

// dueKey is m's key in outbox_due: NextAttemptAt (8 bytes) then id, earliest first.
func dueKey(m *bridge.OutboxMessage) []byte {
	return append(timeKey(m.NextAttemptAt), m.ID...)
}
