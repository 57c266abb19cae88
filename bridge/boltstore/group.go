package boltstore

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// maxRound bounds how many writes share one transaction, so one round's latency (and the cost of
// rerunning it when a member fails) stays bounded however deep the queue gets.
const maxRound = 128

// errRollback makes db.Update roll a round back after a member failed; no caller sees it.
var errRollback = errors.New("boltstore: roll the round back")

// errGoexit is what a write gets when its function called runtime.Goexit (t.FailNow, say) in
// another writer's goroutine: the leader's goroutine ended with it, the write did not happen.
var errGoexit = errors.New("boltstore: the write function called runtime.Goexit; nothing was written")

// PanicError is what a write whose function panicked panics with in its caller's goroutine: the
// function ran in the goroutine leading the round (perhaps another writer's), so the value is
// carried back, with the stack where it was raised.
type PanicError struct {
	Value any    // what fn panicked with
	Stack []byte // the stack of the goroutine that ran fn, at the panic
}

// Error implements error.
func (p *PanicError) Error() string {
	return fmt.Sprintf("boltstore: write function panicked: %v\n\n%s", p.Value, p.Stack)
}

// Unwrap returns the panic value if it is an error.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// group is the store's group commit: concurrent writes share one bbolt transaction and so one
// fsync. There is no timer (db.Batch waits up to 10 ms for company, which caps a lone writer at
// ~100 writes/s): a writer that finds no round running leads one at once; writers arriving while
// a round commits queue up, and when it ends the first of them leads the next round with all the
// others. A write is acknowledged only after the commit (and fsync) that holds it.
//
// A member whose function fails (error or panic) must fail alone and leave nothing on disk, but
// a bbolt transaction cannot undo part of itself: the round is rolled back and rerun without
// that member. So a function may run more than once; each run starts from the same committed
// state plus the writes of the members before it, and only the last run's writes are committed.
type group struct {
	db *bolt.DB

	mu      sync.Mutex
	queue   []*write // waiting for the next round, oldest first
	leading bool     // a round is running, or its leader is about to start it

	commits atomic.Uint64 // transactions committed, for tests and benchmarks
	writes  atomic.Uint64 // writes acknowledged as committed
}

// write is one caller's function waiting for, or in, a round.
type write struct {
	ctx      context.Context
	fn       func(*bolt.Tx) error
	err      error       // the result, once the round has settled it
	panicked *PanicError // fn panicked: re-raised in the caller's goroutine
	wake     chan bool   // true: lead the next round; false: settled, read err
}

// update runs fn in a write transaction shared with the writes queued alongside it and returns
// once that transaction is committed and synced, or fn's error (nothing of fn's written). It
// fails with ctx's error, fn never run, if ctx is done before fn's turn.
func (g *group) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &write{ctx: ctx, fn: fn, wake: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead || <-w.wake {
		g.lead(w)
	}
	if w.panicked != nil {
		panic(w.panicked)
	}
	return w.err
}

// round is the state of one round, kept where lead's deferred hand-off can see it.
type round struct {
	pending []*write // the members still to settle
	running *write   // the member whose fn is running now
	settled bool     // commit returned normally
}

// lead takes up to maxRound queued writes (self among them), commits them as one round, wakes
// them and hands the lead on to the oldest write still queued.
func (g *group) lead(self *write) {
	g.mu.Lock()
	n := min(len(g.queue), maxRound)
	members := slices.Clone(g.queue[:n])
	clear(g.queue[:n]) // the array outlives this round; let it not keep these writes alive
	g.queue = g.queue[n:]
	g.mu.Unlock()
	r := &round{pending: slices.Clone(members)} // commit deletes from pending in place

	defer func() {
		// Only a runtime.Goexit from a function, or a panic out of bbolt itself, leaves commit
		// abnormally (a function's panic is recovered). bbolt has rolled the transaction back;
		// the members still pending go back to the head of the queue, except self, whose
		// goroutine is ending, and the member that was running, which fails.
		var requeue []*write
		if !r.settled {
			for _, w := range r.pending {
				switch {
				case w == self:
				case w == r.running:
					w.err = errGoexit
					w.wake <- false
				default:
					requeue = append(requeue, w)
				}
			}
		}
		g.mu.Lock()
		if len(requeue) > 0 {
			g.queue = append(requeue, g.queue...)
		}
		if len(g.queue) > 0 {
			g.queue[0].wake <- true // it leads the next round, with everything queued by then
		} else {
			g.leading = false
		}
		g.mu.Unlock()
	}()

	g.commit(r)
	r.settled = true
	for _, w := range members {
		if w != self {
			w.wake <- false
		}
	}
}

// commit runs the round's members in one transaction and commits it. When a member fails, the
// transaction is rolled back, that member keeps its error and the others run again without it.
// A member whose context is done fails alone without running, so it costs no rollback.
func (g *group) commit(r *round) {
	for len(r.pending) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bolt.Tx) error {
			for i, w := range r.pending {
				if w.err = w.ctx.Err(); w.err != nil {
					continue
				}
				r.running = w
				w.err = w.call(tx)
				r.running = nil
				if w.err != nil {
					failed = i
					return errRollback
				}
			}
			return nil
		})
		if failed >= 0 {
			r.pending = slices.Delete(r.pending, failed, failed+1)
			continue
		}
		// err is nil, or Begin or Commit failed: then no member's write is on disk.
		ok := 0
		for _, w := range r.pending {
			if w.err == nil {
				w.err = err
				ok++
			}
		}
		if err == nil {
			g.commits.Add(1)
			g.writes.Add(uint64(ok))
		}
		r.pending = nil
	}
}

// call runs w's function, turning a panic into w's error so the round goes on.
func (w *write) call(tx *bolt.Tx) (err error) {
	w.panicked = nil
	defer func() {
		if v := recover(); v != nil {
			w.panicked = &PanicError{Value: v, Stack: debug.Stack()}
			err = w.panicked
		}
	}()
	return w.fn(tx)
}
