package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
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
	m, err := outbox.read(s, ctx, id)
	if err != nil {
		return nil, err
	}
	m.Fill()
	return m, nil
}

// UpdateOutbox implements bridge.OutboxStore. fn runs inside the write transaction on a private
// copy, a fresh one each time should the group commit rerun it (see UpdateSession); an error from
// fn is returned unchanged and nothing is written.
func (s *Store) UpdateOutbox(ctx context.Context, id string, fn func(*bridge.OutboxMessage) error) (*bridge.OutboxMessage, error) {
	return outbox.update(s, ctx, id, func(m *bridge.OutboxMessage) error {
		m.Fill()
		return fn(m)
	})
}

// ListEvents implements bridge.OutboxStore. It walks outbox_order backwards within the
// merchant's and mode's prefix; the type and session of each entry are in its value, so a
// filtered page decodes only the messages it returns.
func (s *Store) ListEvents(ctx context.Context, f bridge.EventFilter) ([]*bridge.OutboxMessage, error) {
	if f.MerchantID == "" || f.Mode == "" {
		return nil, fmt.Errorf("boltstore: ListEvents needs MerchantID and Mode")
	}
	limit := bridge.ListLimit(f.Limit)
	prefix := orderPrefix(f.MerchantID, f.Mode)
	var list []*bridge.OutboxMessage
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutboxOrder).Cursor()
		var k, v []byte
		if f.StartingAfter != "" {
			after, err := outbox.get(tx, f.StartingAfter)
			if err == nil {
				after.Fill()
				// A cursor from another merchant or mode is as unknown as a made-up one.
				if after.MerchantID != f.MerchantID || after.Mode != f.Mode {
					err = fmt.Errorf("boltstore: event %s: %w", f.StartingAfter, bridge.ErrNotFound)
				}
			}
			if err != nil {
				return err
			}
			k = lastBefore(c, eventOrderKey(after))
		} else {
			// prefix ends in \x00; the same prefix ending in \x01 is past all its keys.
			end := bytes.Clone(prefix)
			end[len(end)-1] = 1
			k = lastBefore(c, end)
		}
		if k != nil {
			// lastBefore leaves the cursor on k; read its value.
			_, v = c.Seek(k)
		}
		for n := 0; k != nil && bytes.HasPrefix(k, prefix) && len(list) < limit; k, v = c.Prev() {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			typ, session, _ := bytes.Cut(v, []byte{0})
			if f.Type != "" && string(typ) != string(f.Type) || f.SessionID != "" && string(session) != f.SessionID {
				continue
			}
			m, err := outbox.get(tx, string(k[len(prefix)+8:]))
			if err != nil {
				return fmt.Errorf("boltstore: outbox_order points at a missing message: %w", err)
			}
			m.Fill()
			list = append(list, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// PurgeEvents implements bridge.OutboxStore, through outbox_created, in one write transaction.
func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		end := timeKey(before)
		var ids []string
		c := tx.Bucket(bucketOutboxCreated).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], end) < 0; k, _ = c.Next() {
			ids = append(ids, string(k[8:]))
		}
		// Deleted after the walk: deleting under a bbolt cursor can skip keys.
		for _, id := range ids {
			m, err := outbox.get(tx, id)
			if err != nil {
				return fmt.Errorf("boltstore: outbox_created points at a missing message: %w", err)
			}
			if m.Pending() {
				continue
			}
			m.Fill()
			if err := deleteOutbox(tx, m); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// OutboxPending implements bridge.OutboxStore. outbox_due holds the pending messages only, each
// entry's value their CreatedAt, so nothing is decoded (entries written before the value was kept
// are read from their message).
func (s *Store) OutboxPending(ctx context.Context) (int, time.Time, error) {
	var (
		count  int
		oldest time.Time
	)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutboxDue).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if count++; count%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var created time.Time
			if len(v) == 8 {
				created = keyTime(v)
			} else {
				m, err := outbox.get(tx, string(k[8:]))
				if err != nil {
					return fmt.Errorf("boltstore: outbox_due points at a missing message: %w", err)
				}
				created = m.CreatedAt
			}
			if oldest.IsZero() || created.Before(oldest) {
				oldest = created
			}
		}
		return nil
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	return count, oldest, nil
}

// putOutbox writes next and moves its index entries from old's (nil for a new message).
func putOutbox(tx *bolt.Tx, old, next *bridge.OutboxMessage) error {
	// A message written before messages had a mode is indexed by the mode its payload tells.
	next.Fill()
	if old != nil {
		old.Fill()
	}
	due := tx.Bucket(bucketOutboxDue)
	if old != nil && old.Pending() {
		if err := due.Delete(dueKey(old)); err != nil {
			return err
		}
	}
	if next.Pending() {
		if err := due.Put(dueKey(next), timeKey(next.CreatedAt)); err != nil {
			return err
		}
	}
	if old != nil {
		if err := deleteEventIndexes(tx, old); err != nil {
			return err
		}
	}
	if err := putEventIndexes(tx, next); err != nil {
		return err
	}
	return putJSON(tx, bucketOutbox, []byte(next.ID), next)
}

// putEventIndexes writes m's outbox_order and outbox_created entries. A message without a mode
// (written before messages had one, and whose payload does not tell) is not listed.
func putEventIndexes(tx *bolt.Tx, m *bridge.OutboxMessage) error {
	if m.Mode != "" {
		value := append([]byte(m.Type), 0)
		value = append(value, m.SessionID...)
		if err := tx.Bucket(bucketOutboxOrder).Put(eventOrderKey(m), value); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketOutboxCreated).Put(createdKey(m), nil)
}

// deleteEventIndexes removes m's outbox_order and outbox_created entries.
func deleteEventIndexes(tx *bolt.Tx, m *bridge.OutboxMessage) error {
	if m.Mode != "" {
		if err := tx.Bucket(bucketOutboxOrder).Delete(eventOrderKey(m)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketOutboxCreated).Delete(createdKey(m))
}

// deleteOutbox deletes a message that is not pending, with its index entries.
func deleteOutbox(tx *bolt.Tx, m *bridge.OutboxMessage) error {
	if err := deleteEventIndexes(tx, m); err != nil {
		return err
	}
	return tx.Bucket(bucketOutbox).Delete([]byte(m.ID))
}

// backfillEventIndexes indexes the messages of a file written before outbox_order and
// outbox_created existed; initSchema runs it once, when it creates those buckets.
func backfillEventIndexes(tx *bolt.Tx) error {
	return tx.Bucket(bucketOutbox).ForEach(func(k, _ []byte) error {
		m, err := outbox.get(tx, string(k))
		if err != nil {
			return err
		}
		m.Fill()
		return putEventIndexes(tx, m)
	})
}

// dueKey is m's key in outbox_due: NextAttemptAt (8 bytes) then id, earliest first.
func dueKey(m *bridge.OutboxMessage) []byte {
	return append(timeKey(m.NextAttemptAt), m.ID...)
}

// eventOrderKey is m's key in outbox_order: merchant \0 mode \0 createdAt id. Walking it
// backwards gives newest first, ties broken by id descending.
func eventOrderKey(m *bridge.OutboxMessage) []byte {
	return append(append(orderPrefix(m.MerchantID, m.Mode), timeKey(m.CreatedAt)...), m.ID...)
}

// createdKey is m's key in outbox_created: createdAt id, oldest first.
func createdKey(m *bridge.OutboxMessage) []byte {
	return append(timeKey(m.CreatedAt), m.ID...)
}

// keyTime decodes timeKey.
func keyTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)^(1<<63))).UTC()
}
