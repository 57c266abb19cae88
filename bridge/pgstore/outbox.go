package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paybridge/paybridge/bridge"
)

// Queries of the outbox. Messages are inserted only by UpdateSession, with their transition.
const (
	sqlOutbox       = `SELECT doc FROM outbox WHERE id = $1`
	sqlOutboxLock   = `SELECT doc FROM outbox WHERE id = $1 FOR UPDATE`
	sqlDueOutbox    = `SELECT doc FROM outbox WHERE pending AND next_ns <= $1 ORDER BY next_ns, id LIMIT $2`
	sqlInsertOutbox = `INSERT INTO outbox (id, merchant_id, pending, next_ns, doc) VALUES ($1, $2, $3, $4, $5)`
	sqlUpdateOutbox = `UPDATE outbox SET merchant_id = $2, pending = $3, next_ns = $4, doc = $5, lease_until = NULL WHERE id = $1`
	// sqlClaimOutbox leases due messages no live lease holds; SKIP LOCKED lets nodes claiming at
	// once take different messages instead of waiting on each other.
	sqlClaimOutbox = `UPDATE outbox SET lease_until = now() + $3::float8 * interval '1 second' WHERE id IN (
			SELECT id FROM outbox WHERE pending AND next_ns <= $1 AND (lease_until IS NULL OR lease_until <= now())
			ORDER BY next_ns, id LIMIT $2 FOR UPDATE SKIP LOCKED)
		RETURNING doc`
)

var _ bridge.OutboxClaimer = (*Store)(nil)

// ClaimOutbox implements bridge.OutboxClaimer: due messages leased to this node for the lease
// time (by the database's clock), earliest first. A node that dies mid-delivery leaves the lease
// to lapse, and the message is delivered by another (at least once; receivers deduplicate on the
// event id).
func (s *Store) ClaimOutbox(ctx context.Context, now time.Time, limit int) ([]*bridge.OutboxMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	list, err := listDocs[bridge.OutboxMessage](ctx, s.pool, "outbox message", sqlClaimOutbox, nanos(now), limit, s.leaseTTL.Seconds())
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *bridge.OutboxMessage) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list, nil
}

// DueOutbox implements bridge.OutboxStore. The due index holds pending messages only, ordered by
// NextAttemptAt, so it reads exactly the messages it returns. A limit of 0 or less returns none.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]*bridge.OutboxMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	return listDocs[bridge.OutboxMessage](ctx, s.pool, "outbox message", sqlDueOutbox, nanos(now), limit)
}

// OutboxMessage implements bridge.OutboxStore.
func (s *Store) OutboxMessage(ctx context.Context, id string) (*bridge.OutboxMessage, error) {
	return getDoc[bridge.OutboxMessage](ctx, s.pool, "outbox message", id, sqlOutbox, id)
}

// UpdateOutbox implements bridge.OutboxStore. fn runs once, under the row's lock, on a private
// copy; an error from fn is returned unchanged and nothing is written.
func (s *Store) UpdateOutbox(ctx context.Context, id string, fn func(*bridge.OutboxMessage) error) (*bridge.OutboxMessage, error) {
	var updated *bridge.OutboxMessage
	err := s.tx(ctx, func(tx pgx.Tx) error {
		old, next, err := lockDoc[bridge.OutboxMessage](ctx, tx, "outbox message", id, sqlOutboxLock)
		if err != nil {
			return err
		}
		if err := fn(next); err != nil {
			return err
		}
		if next.ID != old.ID {
			return fmt.Errorf("pgstore: an update may not change an outbox message's id (%s to %s)", old.ID, next.ID)
		}
		args, err := outboxArgs(next)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlUpdateOutbox, args...); err != nil {
			return writeErr("update outbox message "+id, err)
		}
		updated = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// outboxArgs checks m and returns the arguments of sqlInsertOutbox and sqlUpdateOutbox.
func outboxArgs(m *bridge.OutboxMessage) ([]any, error) {
	if m.ID == "" {
		return nil, errors.New("pgstore: outbox message has no id")
	}
	doc, err := encode("outbox message", m.ID, m)
	if err != nil {
		return nil, err
	}
	return []any{m.ID, m.MerchantID, m.Pending(), nanos(m.NextAttemptAt), string(doc)}, nil
}
