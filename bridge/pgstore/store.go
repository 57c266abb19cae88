// Package pgstore is paybridge's bridge.Store on PostgreSQL, for several nodes sharing one
// database. It passes the same conformance suite (bridge/storetest) as the embedded bbolt store.
//
// Each record is one row: the whole record as a JSON document, written by encoding/json exactly
// as boltstore writes it (so provider tokens are only ever there sealed), beside copies of the
// fields its queries select and order on, all indexed. Updates are read-modify-write in one
// transaction under a row lock (SELECT ... FOR UPDATE), so concurrent updates of one record,
// from any node, are serialised and never lost.
//
// Open creates and migrates the schema itself: versioned migrations are embedded in the package
// and applied under a transaction-scoped advisory lock, so nodes starting at once migrate once.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paybridge/paybridge/bridge"
)

// ErrSchema means the database was migrated by a newer paybridge than this one (Open refuses to
// misread it) or its migration table is unreadable.
var ErrSchema = errors.New("unsupported schema version")

// Option configures Open.
type Option func(*options)

type options struct {
	log       *slog.Logger
	leaseTTL  time.Duration
	lockConns int32
}

// DefaultLeaseTTL is how long a node's claims outlive its last heartbeat.
const DefaultLeaseTTL = 15 * time.Second

// WithLeaseTTL sets how long this node's claims (sessions' background work, webhook deliveries,
// idempotency reservations) outlive its last heartbeat: after a crash, other nodes take over
// within about this long. Default DefaultLeaseTTL.
func WithLeaseTTL(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.leaseTTL = d
		}
	}
}

// WithLockConns caps the connections that hold session locks (default 32): a lock is an
// advisory lock held on its own connection for as long as a trigger runs, so these never compete
// with the queries the trigger makes.
func WithLockConns(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.lockConns = int32(n)
		}
	}
}

// WithLogger sends the store's operational messages (never record contents, never the
// connection password) to log; by default they are discarded.
func WithLogger(log *slog.Logger) Option {
	return func(o *options) { o.log = log }
}

// Store is a bridge.Store on a pgx connection pool. Its methods are safe for concurrent use, by
// any number of processes on the same database.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	node     string        // this process's id among the nodes: random per Open
	leaseTTL time.Duration // see WithLeaseTTL
	locks    locker        // session locks (Locker)
	stop     context.CancelFunc
	stopped  chan struct{} // closed when the heartbeat has stopped
}

var _ bridge.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value string; pool settings
// such as pool_max_conns are read from it), creates or migrates the schema, and returns the
// store. It fails with ErrSchema if the database was migrated by a newer paybridge. Close closes
// the pool.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{log: slog.New(slog.DiscardHandler), leaseTTL: DefaultLeaseTTL, lockConns: 32}
	for _, opt := range opts {
		opt(&o)
	}
	// pgx redacts the password from its own parse errors; ours never repeat the url.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	where := []any{"host", cfg.ConnConfig.Host, "port", cfg.ConnConfig.Port, "database", cfg.ConnConfig.Database}
	version, err := migrate(ctx, pool, o.log)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	s := &Store{pool: pool, log: o.log, node: bridge.RandomBase62(16), leaseTTL: o.leaseTTL}
	if err := s.locks.init(cfg, o.lockConns); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if err := s.heartbeat(ctx); err != nil {
		s.locks.close()
		pool.Close()
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	s.stop, s.stopped = stop, make(chan struct{})
	go s.beat(bg)
	o.log.Info("store opened", append(where, "schemaVersion", version, "node", s.node)...)
	return s, nil
}

// Ping implements bridge.Store: it runs a query on a pooled connection. On failure every idle
// pooled connection is closed, so service resumes cleanly when the database returns.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.pool.Ping(ctx); err != nil {
		if ctx.Err() != nil {
			return err // the caller gave up (a probe that hung up): says nothing of the database
		}
		// The database is unreachable: the pooled connections are likely broken too. Dropping
		// them now means the first requests after it returns get fresh ones instead of errors.
		s.pool.Reset()
		if s.locks.pool != nil {
			s.locks.pool.Reset()
		}
		return fmt.Errorf("pgstore: ping: %w", err)
	}
	return nil
}

// Close implements bridge.Store. It waits for borrowed connections to be returned and closes
// them all; closing twice is harmless.
func (s *Store) Close() error {
	s.stop()
	<-s.stopped
	s.locks.close()
	s.pool.Close()
	s.log.Info("store closed")
	return nil
}

// tx runs fn in a transaction, unless ctx is already done, and commits if fn returns nil. An
// error from fn rolls everything back and is returned unchanged.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		// The rollback's own error adds nothing: the transaction is gone either way.
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: commit: %w", err)
	}
	return nil
}

// querier is what both the pool and a transaction can run.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// getDoc decodes the single json document query returns into a new T, or returns ErrNotFound
// (naming kind and id) if there is no row.
func getDoc[T any](ctx context.Context, q querier, kind, id, query string, args ...any) (*T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var raw []byte
	err := q.QueryRow(ctx, query, args...).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: %s %s: %w", kind, id, bridge.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: read %s %s: %w", kind, id, err)
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("pgstore: decode %s %s: %w", kind, id, err)
	}
	return &v, nil
}

// listDocs decodes every json document query returns, in order.
func listDocs[T any](ctx context.Context, q querier, kind, query string, args ...any) ([]*T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list %ss: %w", kind, err)
	}
	raws, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("pgstore: list %ss: %w", kind, err)
	}
	list := make([]*T, 0, len(raws))
	for _, raw := range raws {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("pgstore: decode %s: %w", kind, err)
		}
		list = append(list, &v)
	}
	return list, nil
}

// lockDoc reads the record with id for update (the row stays locked until tx ends) and decodes
// it twice: the original, and a private copy for fn to change.
func lockDoc[T any](ctx context.Context, tx pgx.Tx, kind, id, query string) (old, next *T, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var raw []byte
	err = tx.QueryRow(ctx, query, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fmt.Errorf("pgstore: %s %s: %w", kind, id, bridge.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pgstore: lock %s %s: %w", kind, id, err)
	}
	old, next = new(T), new(T)
	if err := json.Unmarshal(raw, old); err != nil {
		return nil, nil, fmt.Errorf("pgstore: decode %s %s: %w", kind, id, err)
	}
	if err := json.Unmarshal(raw, next); err != nil {
		return nil, nil, fmt.Errorf("pgstore: decode %s %s: %w", kind, id, err)
	}
	return old, next, nil
}

// encode is json.Marshal with the error naming what failed.
func encode(kind, id string, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("pgstore: encode %s %s: %w", kind, id, err)
	}
	return raw, nil
}

// writeErr wraps an error of a write: a unique violation is bridge.ErrConflict (an id, hash,
// attempt GUID or event id that already exists); others are storage failures.
func writeErr(what string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return fmt.Errorf("pgstore: %s: %s exists: %w", what, pgErr.ConstraintName, bridge.ErrConflict)
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}

// nanos is t as Unix nanoseconds, the form ordering columns hold. Instants outside int64's range
// (before 1678 or after 2262, the zero time among them) clamp to its ends rather than wrap.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minNanosTime):
		return math.MinInt64
	case t.After(maxNanosTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minNanosTime = time.Unix(0, math.MinInt64)
	maxNanosTime = time.Unix(0, math.MaxInt64)
)
