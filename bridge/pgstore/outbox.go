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
	sqlInsertOutbox = `INSERT INTO outbox (id, merchant_id, pending, next_ns, doc, mode, session_id, type, created_ns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	sqlUpdateOutbox = `UPDATE outbox SET merchant_id = $2, pending = $3, next_ns = $4, doc = $5,
		mode = $6, session_id = $7, type = $8, created_ns = $9, lease_until = NULL WHERE id = $1`
	sqlEventCursor = `SELECT created_ns FROM outbox WHERE id = $1 AND merchant_id = $2 AND mode = $3`
	sqlPurgeEvents = `DELETE FROM outbox WHERE created_ns < $1 AND NOT pending`
	// sqlOutboxPending reads only outbox_pending_created (an index-only scan once vacuumed).
	sqlOutboxPending = `SELECT count(*), coalesce(min(created_ns), 0) FROM outbox WHERE pending`
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
	m, err := getDoc[bridge.OutboxMessage](ctx, s.pool, "outbox message", id, sqlOutbox, id)
	if err != nil {
		return nil, err
	}
	m.Fill()
	return m, nil
}

// ListEvents implements bridge.OutboxStore, through outbox_events (or its by-type or by-session
// sibling when that filter is set).
func (s *Store) ListEvents(ctx context.Context, f bridge.EventFilter) ([]*bridge.OutboxMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.MerchantID == "" || f.Mode == "" {
		return nil, errors.New("pgstore: ListEvents needs MerchantID and Mode")
	}
	query, args := eventsQuery(f)
	if f.StartingAfter != "" {
		// A cursor from another merchant or mode is as unknown as a made-up one.
		var createdNs int64
		err := s.pool.QueryRow(ctx, sqlEventCursor, f.StartingAfter, f.MerchantID, string(f.Mode)).Scan(&createdNs)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("pgstore: event %s: %w", f.StartingAfter, bridge.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("pgstore: read cursor %s: %w", f.StartingAfter, err)
		}
		args = append(args, createdNs, f.StartingAfter)
	}
	list, err := listDocs[bridge.OutboxMessage](ctx, s.pool, "outbox message", query, args...)
	for _, m := range list {
		m.Fill()
	}
	return list, err
}

// eventsQuery builds the query of f without its cursor's values, which follow args when
// f.StartingAfter is set. Only the filters in use appear in the SQL, so the planner picks the
// index that matches them.
func eventsQuery(f bridge.EventFilter) (string, []any) {
	limit := bridge.ListLimit(f.Limit)
	var q strings.Builder
	args := []any{f.MerchantID, string(f.Mode), limit}
	q.WriteString(`SELECT doc FROM outbox WHERE merchant_id = $1 AND mode = $2`)
	if f.Type != "" {
		args = append(args, string(f.Type))
		fmt.Fprintf(&q, ` AND type = $%d`, len(args))
	}
	if f.SessionID != "" {
		args = append(args, f.SessionID)
		fmt.Fprintf(&q, ` AND session_id = $%d`, len(args))
	}
	if f.StartingAfter != "" {
		fmt.Fprintf(&q, ` AND (created_ns, id) < ($%d, $%d)`, len(args)+1, len(args)+2)
	}
	q.WriteString(` ORDER BY created_ns DESC, id DESC LIMIT $3`)
	return q.String(), args
}

// PurgeEvents implements bridge.OutboxStore, through outbox_done_by_created.
func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	tag, err := s.pool.Exec(ctx, sqlPurgeEvents, nanos(before))
	if err != nil {
		return 0, writeErr("purge events", err)
	}
	return int(tag.RowsAffected()), nil
}

// OutboxPending implements bridge.OutboxStore, through outbox_pending_created.
func (s *Store) OutboxPending(ctx context.Context) (int, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	var count, oldest int64
	if err := s.pool.QueryRow(ctx, sqlOutboxPending).Scan(&count, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("pgstore: count pending outbox: %w", err)
	}
	if count == 0 {
		return 0, time.Time{}, nil
	}
	return int(count), time.Unix(0, oldest).UTC(), nil
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
		next.Fill()
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
	// A message that does not name its mode is listed in the mode its payload tells.
	m.Fill()
	doc, err := encode("outbox message", m.ID, m)
	if err != nil {
		return nil, err
	}
	return []any{m.ID, m.MerchantID, m.Pending(), nanos(m.NextAttemptAt), string(doc),
		string(m.Mode), m.SessionID, string(m.Type), nanos(m.CreatedAt)}, nil
}
