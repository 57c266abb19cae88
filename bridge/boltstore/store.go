// Package boltstore is paybridge's embedded durable bridge.Store on bbolt: one file, used by one
// process, every write fsynced before it returns, so a crash (even kill -9) loses nothing that was
// reported as written.
//
// Records are JSON (encoding/json) in one bucket per kind; the indexes live in their own buckets
// and are always written in the same transaction as the record they point at, so they cannot
// disagree with it after a crash.
package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/paybridge/paybridge/bridge"
)

// SchemaVersion is the layout of buckets and keys this package writes. Open refuses a file with
// a newer version, written by a newer paybridge, rather than misread it.
const SchemaVersion = 1

// DefaultTimeout is how long Open waits for the file lock when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// Errors Open returns (wrapped, with the file's path).
var (
	// ErrLocked means another process (or another open Store) holds the file.
	ErrLocked = errors.New("database file is locked by another process")
	// ErrSchema means the file's schema version is newer than this package or unreadable.
	ErrSchema = errors.New("unsupported schema version")
)

// Bucket names. The layout is SchemaVersion 1; changing it means a new version and a migration.
var (
	bucketMeta         = []byte("meta")          // schemaVersion → decimal
	bucketSessions     = []byte("sessions")      // id → JSON bridge.Session
	bucketSessionGUID  = []byte("session_guid")  // VCC session guid → session id
	bucketSessionOrder = []byte("session_order") // merchant \0 mode \0 createdAt \0 id → nil
	bucketSessionOpen  = []byte("session_open")  // id → nil, pending and active sessions only
	bucketKeys         = []byte("keys")          // id → JSON bridge.APIKey
	bucketKeyHash      = []byte("key_hash")      // hash → key id
	bucketOutbox       = []byte("outbox")        // id → JSON bridge.OutboxMessage
	bucketOutboxDue    = []byte("outbox_due")    // nextAttemptAt id → createdAt, pending only
	// outbox_order and outbox_created came with the events API; a file without them has them
	// made and filled when it is opened (same schema version: an older paybridge ignores them).
	bucketOutboxOrder   = []byte("outbox_order")   // merchant \0 mode \0 createdAt id → type \0 sessionId
	bucketOutboxCreated = []byte("outbox_created") // createdAt id → nil
	bucketIdempotency   = []byte("idempotency")    // key → JSON bridge.IdempotencyRecord

	allBuckets = [][]byte{
		bucketMeta, bucketSessions, bucketSessionGUID, bucketSessionOrder, bucketSessionOpen,
		bucketKeys, bucketKeyHash, bucketOutbox, bucketOutboxDue, bucketIdempotency,
		bucketOutboxOrder, bucketOutboxCreated,
	}

	keySchemaVersion = []byte("schemaVersion")
)

// Options configures Open.
type Options struct {
	// Timeout is how long Open waits for the lock on a file another process has open; 0 means
	// DefaultTimeout. A second paybridge on the same data directory fails fast with ErrLocked
	// instead of hanging.
	Timeout time.Duration
	// Logger receives operational messages (never record contents); nil discards them.
	Logger *slog.Logger
}

// Store is a bridge.Store in one bbolt file. Its methods are safe for concurrent use.
type Store struct {
	db    *bolt.DB
	group *group // every write goes through it
	path  string
	log   *slog.Logger
}

var _ bridge.Store = (*Store)(nil)

// Open opens the store in the file at path, creating the file (0600) and its parent directories
// (0700) if needed. It fails with ErrLocked if another process holds the file for longer than
// opts.Timeout, and with ErrSchema if the file was written by a newer schema.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: create directory for %s: %w", path, err)
	}
	// NoSync stays false: bbolt fsyncs every commit, which is what makes a reported write
	// survive kill -9 and power loss. Durability matters more here than write throughput.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: %s: %w (waited %s; is another paybridge using the same data directory?)", path, ErrLocked, opts.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	if err := initSchema(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: %s: %w", path, err)
	}
	log.Info("store opened", "path", path, "schemaVersion", SchemaVersion)
	return &Store{db: db, group: &group{db: db}, path: path, log: log}, nil
}

// initSchema creates the buckets of a new file and checks the version of an existing one. It runs
// in one transaction, so a refused file is left exactly as it was.
func initSchema(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			raw := meta.Get(keySchemaVersion)
			v, err := strconv.Atoi(string(raw))
			switch {
			case err != nil || v < 1:
				return fmt.Errorf("%w: unreadable schema version %q", ErrSchema, raw)
			case v > SchemaVersion:
				return fmt.Errorf("%w: the file has schema version %d, this paybridge knows up to %d; run a newer paybridge", ErrSchema, v, SchemaVersion)
			}
			// v < SchemaVersion would migrate here; version 1 is the first.
		}
		backfill := tx.Bucket(bucketOutbox) != nil && tx.Bucket(bucketOutboxOrder) == nil
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if backfill {
			if err := backfillEventIndexes(tx); err != nil {
				return fmt.Errorf("index events: %w", err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte(strconv.Itoa(SchemaVersion)))
	})
}

// Path returns the file the store lives in.
func (s *Store) Path() string { return s.path }

// Backup writes a consistent copy of the whole database to w, as of one read transaction, while
// writers carry on; the copy is a bbolt file Open accepts. size, if not nil, is told the copy's
// exact length before the first byte is written (a caller streaming it can announce it). The
// read transaction lasts until w has taken the last byte, and a write that must grow the file
// waits for it meanwhile: w should be a local file or a reader that keeps up.
func (s *Store) Backup(w io.Writer, size func(int64) error) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		if size != nil {
			if err := size(tx.Size()); err != nil {
				return err
			}
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("boltstore: backup of %s: %w", s.path, err)
	}
	return n, nil
}

// Ping implements bridge.Store: it runs a read transaction.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("boltstore: meta bucket missing")
		}
		return nil
	})
}

// Close implements bridge.Store. It waits for running transactions and releases the file lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close %s: %w", s.path, err)
	}
	s.log.Info("store closed", "path", s.path)
	return nil
}

// view runs fn in a read transaction unless ctx is already done.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// update runs fn in a write transaction shared with the concurrent writes (group commit: one
// fsync for all of them) and returns once it is committed and synced. fn may run more than once
// if another write of its round fails (the round is rolled back and rerun without it): it must
// set its results afresh on every run, never accumulate them. An error from fn is returned unchanged
// and nothing of fn's is written; ctx done before fn's turn returns ctx's error, fn not run.
//
// It is not db.Batch: Batch waits up to 10 ms for company, which caps a lone writer at ~100
// writes/s; the group commits a lone write at once.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return s.group.update(ctx, fn)
}

// table is one kind of record kept as JSON by id (sessions, API keys, outbox messages): where it
// lives, what to call it in errors, how to check it and how to write it with its indexes.
type table[T any] struct {
	bucket []byte
	kind   string
	id     func(*T) string
	valid  func(*T) error // nil: any value
	put    func(tx *bolt.Tx, old, next *T) error
}

// get decodes the record with id, or returns ErrNotFound.
func (t table[T]) get(tx *bolt.Tx, id string) (*T, error) {
	var v T
	ok, err := getJSON(tx, t.bucket, []byte(id), &v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("boltstore: %s %s: %w", t.kind, id, bridge.ErrNotFound)
	}
	return &v, nil
}

// read is get in a read transaction of its own.
func (t table[T]) read(s *Store, ctx context.Context, id string) (*T, error) {
	var v *T
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		v, err = t.get(tx, id)
		return err
	})
	return v, err
}

// create writes a new record; ErrConflict if its id exists.
func (t table[T]) create(tx *bolt.Tx, v *T) error {
	if t.valid != nil {
		if err := t.valid(v); err != nil {
			return err
		}
	}
	id := t.id(v)
	if id == "" {
		return fmt.Errorf("boltstore: %s has no id", t.kind)
	}
	if tx.Bucket(t.bucket).Get([]byte(id)) != nil {
		return fmt.Errorf("boltstore: %s %s exists: %w", t.kind, id, bridge.ErrConflict)
	}
	return t.put(tx, nil, v)
}

// modify is the read-modify-write of every Update method: fn runs on a private copy (a second
// decode, rather than a clone, keeps it private whatever fields T grows), a fresh one on every
// run of the transaction function; an error from fn is returned unchanged and nothing is written;
// fn may not change the id.
func (t table[T]) modify(tx *bolt.Tx, id string, fn func(*T) error) (*T, error) {
	old, err := t.get(tx, id)
	if err != nil {
		return nil, err
	}
	next, err := t.get(tx, id)
	if err != nil {
		return nil, err
	}
	if err := fn(next); err != nil {
		return nil, err
	}
	if t.id(next) != t.id(old) {
		return nil, fmt.Errorf("boltstore: an update may not change a %s's id (%s to %s)", t.kind, t.id(old), t.id(next))
	}
	if t.valid != nil {
		if err := t.valid(next); err != nil {
			return nil, err
		}
	}
	return next, t.put(tx, old, next)
}

// update is modify in a write transaction of its own.
func (t table[T]) update(s *Store, ctx context.Context, id string, fn func(*T) error) (*T, error) {
	var updated *T
	err := s.update(ctx, func(tx *bolt.Tx) (err error) {
		updated, err = t.modify(tx, id, fn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// getJSON decodes the value at key in bucket into v. It reports false if there is none. The
// decoded value shares no memory with bbolt's pages, so it outlives the transaction.
func getJSON(tx *bolt.Tx, bucket, key []byte, v any) (bool, error) {
	raw := tx.Bucket(bucket).Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("boltstore: decode %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

// putJSON encodes v as the value at key in bucket.
func putJSON(tx *bolt.Tx, bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("boltstore: encode %s/%s: %w", bucket, key, err)
	}
	return tx.Bucket(bucket).Put(key, raw)
}

// timeKey encodes t as 8 bytes that sort like the instants they encode: unix nanoseconds with the
// sign bit flipped, big-endian, so times before 1970 still sort before those after.
func timeKey(t time.Time) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixNano())^(1<<63))
	return b[:]
}

// lastBefore moves c to the greatest key less than key and returns it, or nil if there is none.
func lastBefore(c *bolt.Cursor, key []byte) []byte {
	k, _ := c.Seek(key)
	if k == nil {
		k, _ = c.Last()
		return k
	}
	k, _ = c.Prev()
	return k
}

// ctxCheckEvery is how many records a long scan reads between looks at its context.
const ctxCheckEvery = 256
