package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/paybridge/paybridge/bridge"
)

// sessions is the table of sessions; every index (guid, order, open) follows each write.
var sessions = table[bridge.Session]{bucket: bucketSessions, kind: "session",
	id: func(s *bridge.Session) string { return s.ID }, valid: validSession, put: putSession}

// CreateSession implements bridge.SessionStore. It stores a copy of sess as it is: BearerToken and
// RefreshToken never reach the file (they are not part of the JSON form).
func (s *Store) CreateSession(ctx context.Context, sess *bridge.Session) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return sessions.create(tx, sess) })
}

// Session implements bridge.SessionStore.
func (s *Store) Session(ctx context.Context, id string) (*bridge.Session, error) {
	return sessions.read(s, ctx, id)
}

// SessionByGUID implements bridge.SessionStore.
func (s *Store) SessionByGUID(ctx context.Context, guid string) (*bridge.Session, error) {
	var sess *bridge.Session
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		id := tx.Bucket(bucketSessionGUID).Get([]byte(guid))
		if guid == "" || id == nil {
			return fmt.Errorf("boltstore: no session has attempt guid %s: %w", guid, bridge.ErrNotFound)
		}
		sess, err = sessions.get(tx, string(id))
		return err
	})
	return sess, err
}

// UpdateSession implements bridge.SessionStore. fn runs inside the write transaction: it must be
// quick and must not call the Store (bbolt has one writer at a time, so that would deadlock). It
// shares the transaction with concurrent writes (group commit), so if another of them fails the
// transaction is rerun without it and fn runs again, on a fresh copy and a fresh Outbox: fn must
// set whatever it reports outside afresh on each run. Only the last run's copy is written. Concurrent updates of one session are serialised, never lost. The result
// is fn's copy as written, so in-memory fields fn set (an attempt's tokens) are still in it. The
// outbox messages fn adds are written in the same transaction.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*bridge.Session, *bridge.Outbox) error) (*bridge.Session, error) {
	var updated *bridge.Session
	err := s.update(ctx, func(tx *bolt.Tx) (err error) {
		var out bridge.Outbox
		updated, err = sessions.modify(tx, id, func(next *bridge.Session) error {
			version := next.Version
			if err := fn(next, &out); err != nil {
				return err
			}
			next.Version = version + 1
			return nil
		})
		if err != nil {
			return err
		}
		for _, m := range out.Messages() {
			if err := outbox.create(tx, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// ListSessions implements bridge.SessionStore. It walks session_order backwards from the cursor,
// so the cost is the number of sessions of the merchant and mode it has to skip over.
func (s *Store) ListSessions(ctx context.Context, f bridge.SessionFilter) ([]*bridge.Session, error) {
	if f.MerchantID == "" || f.Mode == "" {
		return nil, errors.New("boltstore: ListSessions needs MerchantID and Mode")
	}
	limit := bridge.ListLimit(f.Limit)
	prefix := orderPrefix(f.MerchantID, f.Mode)
	var list []*bridge.Session
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSessionOrder).Cursor()
		var k []byte
		if f.StartingAfter != "" {
			after, err := sessions.get(tx, f.StartingAfter)
			// A cursor from another merchant or mode is as unknown as a made-up one.
			if err == nil && (after.MerchantID != f.MerchantID || after.Mode != f.Mode) {
				err = fmt.Errorf("boltstore: session %s: %w", f.StartingAfter, bridge.ErrNotFound)
			}
			if err != nil {
				return err
			}
			k = lastBefore(c, orderKey(after))
		} else {
			// prefix ends in \x00; the same prefix ending in \x01 is past all its keys.
			end := bytes.Clone(prefix)
			end[len(end)-1] = 1
			k = lastBefore(c, end)
		}
		for n := 0; k != nil && bytes.HasPrefix(k, prefix) && len(list) < limit; k, _ = c.Prev() {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			sess, err := sessions.get(tx, string(k[len(prefix)+9:]))
			if err != nil {
				return fmt.Errorf("boltstore: session_order points at a missing session: %w", err)
			}
			if f.AgentID != "" && sess.AgentID != f.AgentID || f.Status != "" && sess.Status != f.Status {
				continue
			}
			list = append(list, sess)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// OpenSessions implements bridge.SessionStore, in id order.
func (s *Store) OpenSessions(ctx context.Context) ([]*bridge.Session, error) {
	var list []*bridge.Session
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessionOpen).ForEach(func(id, _ []byte) error {
			sess, err := sessions.get(tx, string(id))
			if err != nil {
				return fmt.Errorf("boltstore: session_open points at a missing session: %w", err)
			}
			list = append(list, sess)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// validSession checks what the indexes rely on.
func validSession(s *bridge.Session) error {
	switch {
	case s.ID == "":
		return errors.New("boltstore: session has no id")
	case s.MerchantID == "" || strings.ContainsRune(s.MerchantID, 0):
		return fmt.Errorf("boltstore: session %s: merchant id is empty or holds a NUL byte", s.ID)
	case !s.Mode.Valid():
		return fmt.Errorf("boltstore: session %s: invalid mode %q", s.ID, s.Mode)
	}
	return nil
}

// putSession writes next and brings every index from old (nil for a new session) to next.
func putSession(tx *bolt.Tx, old, next *bridge.Session) error {
	id := []byte(next.ID)

	guids := tx.Bucket(bucketSessionGUID)
	keep := make(map[string]bool, len(next.Attempts))
	for _, a := range next.Attempts {
		if a.SessionGUID == "" {
			continue // an attempt VCC never answered has no guid to find it by
		}
		keep[a.SessionGUID] = true
		if owner := guids.Get([]byte(a.SessionGUID)); owner != nil && !bytes.Equal(owner, id) {
			return fmt.Errorf("boltstore: attempt guid of session %s already belongs to session %s: %w", next.ID, owner, bridge.ErrConflict)
		}
		if err := guids.Put([]byte(a.SessionGUID), id); err != nil {
			return err
		}
	}
	if old != nil {
		for _, a := range old.Attempts {
			if a.SessionGUID != "" && !keep[a.SessionGUID] {
				if err := guids.Delete([]byte(a.SessionGUID)); err != nil {
					return err
				}
			}
		}
	}

	order := tx.Bucket(bucketSessionOrder)
	nextKey := orderKey(next)
	if old != nil {
		if oldKey := orderKey(old); !bytes.Equal(oldKey, nextKey) {
			if err := order.Delete(oldKey); err != nil {
				return err
			}
		}
	}
	if err := order.Put(nextKey, nil); err != nil {
		return err
	}

	open := tx.Bucket(bucketSessionOpen)
	if !next.Open() {
		if err := open.Delete(id); err != nil {
			return err
		}
	} else if err := open.Put(id, nil); err != nil {
		return err
	}

	return putJSON(tx, bucketSessions, id, next)
}

// orderPrefix is the session_order prefix of one merchant and mode.
func orderPrefix(merchantID string, mode bridge.Mode) []byte {
	p := make([]byte, 0, len(merchantID)+len(mode)+2)
	p = append(p, merchantID...)
	p = append(p, 0)
	p = append(p, mode...)
	return append(p, 0)
}

// orderKey is s's key in session_order: merchant \0 mode \0 createdAt \0 id. Walking it backwards
// gives newest first, ties broken by id descending.
func orderKey(s *bridge.Session) []byte {
	k := orderPrefix(s.MerchantID, s.Mode)
	k = append(k, timeKey(s.CreatedAt)...)
	k = append(k, 0)
	return append(k, s.ID...)
}
