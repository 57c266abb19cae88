package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/paybridge/paybridge/bridge"
)

// Queries of sessions. Each is served by an index of migrations/0001_initial.sql; plan_test.go
// checks that PostgreSQL plans them so.
const (
	sqlSession       = `SELECT doc FROM sessions WHERE id = $1`
	sqlSessionLock   = `SELECT doc FROM sessions WHERE id = $1 FOR UPDATE`
	sqlSessionByGUID = `SELECT s.doc FROM session_guids g JOIN sessions s ON s.id = g.session_id WHERE g.guid = $1`
	sqlOpenSessions  = `SELECT doc FROM sessions WHERE open ORDER BY id`
	sqlInsertSession = `INSERT INTO sessions (id, merchant_id, mode, agent_id, status, created_ns, version, doc, open)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	sqlUpdateSession = `UPDATE sessions SET merchant_id = $2, mode = $3, agent_id = $4, status = $5,
		created_ns = $6, version = $7, doc = $8, open = $9 WHERE id = $1`
	sqlInsertGUIDs = `INSERT INTO session_guids (guid, session_id) SELECT unnest($2::text[]), $1`
	sqlDeleteGUIDs = `DELETE FROM session_guids WHERE session_id = $1 AND guid = ANY($2::text[])`
	sqlCursor      = `SELECT created_ns FROM sessions WHERE id = $1 AND merchant_id = $2 AND mode = $3`
)

// CreateSession implements bridge.SessionStore. It stores the session's JSON form: BearerToken
// and RefreshToken are not part of it, so only the sealed tokens reach the database.
func (s *Store) CreateSession(ctx context.Context, sess *bridge.Session) error {
	if err := validSession(sess); err != nil {
		return err
	}
	doc, err := encode("session", sess.ID, sess)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlInsertSession, sessionArgs(sess, doc)...); err != nil {
			return writeErr("create session "+sess.ID, err)
		}
		if guids := attemptGUIDs(sess); len(guids) > 0 {
			if _, err := tx.Exec(ctx, sqlInsertGUIDs, sess.ID, guids); err != nil {
				return writeErr("create session "+sess.ID, err)
			}
		}
		return nil
	})
}

// Session implements bridge.SessionStore.
func (s *Store) Session(ctx context.Context, id string) (*bridge.Session, error) {
	return getDoc[bridge.Session](ctx, s.pool, "session", id, sqlSession, id)
}

// SessionByGUID implements bridge.SessionStore.
func (s *Store) SessionByGUID(ctx context.Context, guid string) (*bridge.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if guid == "" {
		return nil, fmt.Errorf("pgstore: no session has an empty attempt guid: %w", bridge.ErrNotFound)
	}
	return getDoc[bridge.Session](ctx, s.pool, "session with attempt guid", guid, sqlSessionByGUID, guid)
}

// UpdateSession implements bridge.SessionStore. The row stays locked (SELECT ... FOR UPDATE)
// from the read to the commit, so concurrent updates of one session, on any node, run one after
// another and each sees the one before. fn runs exactly once, on a private copy, and must not
// call the Store for the same session (it would wait for its own lock). The result is fn's copy
// as written, so in-memory fields fn set (an attempt's tokens) are still in it. The outbox
// messages fn adds are inserted in the same transaction.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*bridge.Session, *bridge.Outbox) error) (*bridge.Session, error) {
	var updated *bridge.Session
	err := s.tx(ctx, func(tx pgx.Tx) error {
		old, next, err := lockDoc[bridge.Session](ctx, tx, "session", id, sqlSessionLock)
		if err != nil {
			return err
		}
		var out bridge.Outbox
		if err := fn(next, &out); err != nil {
			return err
		}
		next.Version = old.Version + 1
		if next.ID != old.ID {
			return fmt.Errorf("pgstore: an update may not change a session's id (%s to %s)", old.ID, next.ID)
		}
		if err := validSession(next); err != nil {
			return err
		}
		doc, err := encode("session", id, next)
		if err != nil {
			return err
		}

		// One round trip for every write of the update.
		var b pgx.Batch
		b.Queue(sqlUpdateSession, sessionArgs(next, doc)...)
		gone, added := diffGUIDs(attemptGUIDs(old), attemptGUIDs(next))
		if len(gone) > 0 {
			b.Queue(sqlDeleteGUIDs, id, gone)
		}
		if len(added) > 0 {
			b.Queue(sqlInsertGUIDs, id, added)
		}
		for _, m := range out.Messages() {
			args, err := outboxArgs(m)
			if err != nil {
				return err
			}
			b.Queue(sqlInsertOutbox, args...)
		}
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return writeErr("update session "+id, err)
		}
		updated = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// ListSessions implements bridge.SessionStore. It reads one index backwards from the cursor
// (merchant, mode and, when filtered, agent or status, then creation time and id), so it reads
// only the rows it returns, plus those of the other filter when both are given.
func (s *Store) ListSessions(ctx context.Context, f bridge.SessionFilter) ([]*bridge.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.MerchantID == "" || f.Mode == "" {
		return nil, errors.New("pgstore: ListSessions needs MerchantID and Mode")
	}
	query, args := listQuery(f)
	if f.StartingAfter != "" {
		// A cursor from another merchant or mode is as unknown as a made-up one.
		var createdNs int64
		err := s.pool.QueryRow(ctx, sqlCursor, f.StartingAfter, f.MerchantID, string(f.Mode)).Scan(&createdNs)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("pgstore: session %s: %w", f.StartingAfter, bridge.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("pgstore: read cursor %s: %w", f.StartingAfter, err)
		}
		args = append(args, createdNs, f.StartingAfter)
	}
	return listDocs[bridge.Session](ctx, s.pool, "session", query, args...)
}

// listQuery builds the query of f without its cursor's values, which follow args when
// f.StartingAfter is set. Only the filters in use appear in the SQL, so the planner picks the
// index that matches them.
func listQuery(f bridge.SessionFilter) (string, []any) {
	limit := bridge.ListLimit(f.Limit)
	var q strings.Builder
	args := []any{f.MerchantID, string(f.Mode), limit}
	q.WriteString(`SELECT doc FROM sessions WHERE merchant_id = $1 AND mode = $2`)
	if f.AgentID != "" {
		args = append(args, f.AgentID)
		fmt.Fprintf(&q, ` AND agent_id = $%d`, len(args))
	}
	if f.Status != "" {
		args = append(args, string(f.Status))
		fmt.Fprintf(&q, ` AND status = $%d`, len(args))
	}
	if f.StartingAfter != "" {
		fmt.Fprintf(&q, ` AND (created_ns, id) < ($%d, $%d)`, len(args)+1, len(args)+2)
	}
	q.WriteString(` ORDER BY created_ns DESC, id DESC LIMIT $3`)
	return q.String(), args
}

// OpenSessions implements bridge.SessionStore, in id order.
func (s *Store) OpenSessions(ctx context.Context) ([]*bridge.Session, error) {
	return listDocs[bridge.Session](ctx, s.pool, "session", sqlOpenSessions)
}

// validSession checks what the columns rely on.
func validSession(s *bridge.Session) error {
	switch {
	case s.ID == "":
		return errors.New("pgstore: session has no id")
	case s.MerchantID == "" || strings.ContainsRune(s.MerchantID, 0):
		return fmt.Errorf("pgstore: session %s: merchant id is empty or holds a NUL byte", s.ID)
	case !s.Mode.Valid():
		return fmt.Errorf("pgstore: session %s: invalid mode %q", s.ID, s.Mode)
	case strings.ContainsRune(s.AgentID, 0):
		return fmt.Errorf("pgstore: session %s: agent id holds a NUL byte", s.ID)
	}
	return nil
}

// sessionArgs are the arguments of sqlInsertSession and sqlUpdateSession.
func sessionArgs(s *bridge.Session, doc []byte) []any {
	return []any{s.ID, s.MerchantID, string(s.Mode), s.AgentID, string(s.Status), nanos(s.CreatedAt), s.Version, string(doc), s.Open()}
}

// attemptGUIDs returns the distinct VCC session GUIDs of s's attempts; an attempt VCC never
// answered has none.
func attemptGUIDs(s *bridge.Session) []string {
	var out []string
	seen := make(map[string]bool, len(s.Attempts))
	for _, a := range s.Attempts {
		if a.SessionGUID != "" && !seen[a.SessionGUID] {
			seen[a.SessionGUID] = true
			out = append(out, a.SessionGUID)
		}
	}
	return out
}

// diffGUIDs returns the guids in old but not next, and those in next but not old.
func diffGUIDs(old, next []string) (gone, added []string) {
	inOld := make(map[string]bool, len(old))
	for _, g := range old {
		inOld[g] = true
	}
	inNext := make(map[string]bool, len(next))
	for _, g := range next {
		inNext[g] = true
		if !inOld[g] {
			added = append(added, g)
		}
	}
	for _, g := range old {
		if !inNext[g] {
			gone = append(gone, g)
		}
	}
	return gone, added
}
