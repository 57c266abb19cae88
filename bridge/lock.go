package bridge

import (
	"context"
	"sync"
)

// Locker serialises the lifecycle's work on one session: every trigger runs under its session's
// lock, so concurrent triggers make exactly one new attempt. A Store that several processes share
// supplies its own (a row or advisory lock) by implementing Locker; otherwise the Service uses a
// LocalLocker, right for a store only one process opens (bbolt holds a file lock).
type Locker interface {
	// LockSession takes the lock of session id, or gives up when ctx ends, and returns its
	// unlock.
	LockSession(ctx context.Context, id string) (unlock func(), err error)
}

// LocalLocker is the Locker of a single process (bbolt): an in-memory mutex per session id,
// without a global lock. Waiting honours the waiter's context: work that holds a session for long
// (a restart waiting on a slow VCC) delays others only as long as they are willing to wait. The
// zero value is ready to use.
type LocalLocker struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	held    chan struct{} // one slot: full while someone holds the key
	waiters int
}

// LockSession implements Locker.
func (k *LocalLocker) LockSession(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyedLock)
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{held: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.waiters++
	k.mu.Unlock()
	select {
	case l.held <- struct{}{}:
		return func() { <-l.held; k.leave(key, l) }, nil
	case <-ctx.Done():
		k.leave(key, l)
		return nil, ctx.Err()
	}
}

func (k *LocalLocker) leave(key string, l *keyedLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l.waiters--
	if l.waiters == 0 {
		delete(k.locks, key)
	}
}
