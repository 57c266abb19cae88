package pgstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paybridge/paybridge/bridge"
)

// locker holds session locks as session-level advisory locks (pg_advisory_lock), each on a
// connection of its own pool held for as long as the lock: the lock ends with an unlock, or with
// the connection when the node dies, so a crashed node never leaves a session locked. Within one
// node an in-process lock is taken first, so a node waits on the database with at most one
// connection per session.
type locker struct {
	pool  *pgxpool.Pool
	local bridge.LocalLocker

	mu     sync.Mutex
	held   map[*pgxpool.Conn]bool // connections holding a lock now
	closed bool
}

var _ bridge.Locker = (*Store)(nil)

// sessionLockSpace is the first key of the two-key advisory lock form, so session locks never
// meet the migration lock or an unrelated application's locks on the same database.
const sessionLockSpace int32 = 0x70627365 // "pbse"

func (l *locker) init(cfg *pgxpool.Config, conns int32) error {
	lc := cfg.Copy()
	lc.MaxConns, lc.MinConns = conns, 0
	lc.MaxConnIdleTime = time.Minute
	pool, err := pgxpool.NewWithConfig(context.Background(), lc)
	if err != nil {
		return err
	}
	l.pool = pool
	return nil
}

// close ends every lock still held (its holder's unlock becomes a no-op) and the pool: closing
// the store must not wait for a trigger that will never unlock.
func (l *locker) close() {
	l.mu.Lock()
	l.closed = true
	held := l.held
	l.held = nil
	l.mu.Unlock()
	for conn := range held {
		discard(conn)
	}
	if l.pool != nil {
		l.pool.Close()
	}
}

// hold records conn as holding a lock; false once the locker is closed.
func (l *locker) hold(conn *pgxpool.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if l.held == nil {
		l.held = make(map[*pgxpool.Conn]bool)
	}
	l.held[conn] = true
	return true
}

// drop forgets conn; false if close took it already.
func (l *locker) drop(conn *pgxpool.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held[conn] {
		return false
	}
	delete(l.held, conn)
	return true
}

// lockKey maps a session id onto the advisory lock's second key. Two ids sharing a key only
// serialise each other, which is harmless.
func lockKey(id string) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int32(h.Sum32())
}

// LockSession implements bridge.Locker: the lock of session id across every node on the
// database, or ctx's error when it ends first.
func (s *Store) LockSession(ctx context.Context, id string) (func(), error) {
	unlockLocal, err := s.locks.local.LockSession(ctx, id)
	if err != nil {
		return nil, err
	}
	conn, err := s.locks.pool.Acquire(ctx)
	if err != nil {
		unlockLocal()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("pgstore: lock session %s: %w", id, err)
	}
	key := lockKey(id)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, sessionLockSpace, key); err != nil {
		// The lock may have been granted just as ctx ended: closing the connection ends it.
		discard(conn)
		unlockLocal()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("pgstore: lock session %s: %w", id, err)
	}
	if !s.locks.hold(conn) {
		discard(conn)
		unlockLocal()
		return nil, errors.New("pgstore: lock session: store closed")
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			defer unlockLocal()
			if !s.locks.drop(conn) {
				return // the store closed, and the connection with its lock
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var released bool
			err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1, $2)`, sessionLockSpace, key).Scan(&released)
			if err != nil || !released {
				discard(conn) // the connection's end releases whatever it holds
				s.log.Warn("session unlock failed; connection closed instead", "session", id, "err", errors.Join(err))
			} else {
				conn.Release()
			}
		})
	}, nil
}

// discard closes a pooled connection instead of returning it, with everything it holds.
func discard(conn *pgxpool.Conn) {
	c := conn.Hijack()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
