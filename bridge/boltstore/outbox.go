package boltstore

import (
	"bytes"
	"context"
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
			m, err := outbox.get(tx, string(k[8:]))
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

// outbox is the table of merchant webhook messages; the due index follows each write.
var outbox = table[bridge.OutboxMessage]{bucket: bucketOutbox, kind: "outbox message",
	id: func(m *bridge.OutboxMessage) string { return m.ID }, put: putOutbox}

// OutboxMessage implements bridge.OutboxStore.
func (s *Store) OutboxMessage(ctx context.Context, id string) (*bridge.OutboxMessage, error) {
	return outbox.read(s, ctx, id)
}

// UpdateOutbox implements bridge.OutboxStore. fn runs inside the write transaction on a private
// copy, a fresh one each time should the group commit rerun it (see UpdateSession); an error from
// fn is returned unchanged and nothing is written.
func (s *Store) UpdateOutbox(ctx context.Context, id string, fn func(*bridge.OutboxMessage) error) (*bridge.OutboxMessage, error) {
	return outbox.update(s, ctx, id, fn)
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
