package web

import (
	"container/heap"
	"sync"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

// expiries ends agent sockets when a credential they hold reaches its end on the service clock
// (the agent token's expiry, a rolled key's grace end): one timer for every socket of the server,
// armed for the earliest deadline, rather than a timer per socket or a check at each ping.
type expiries struct {
	clock bridge.Clock

	mu    sync.Mutex
	queue expiryQueue
	armed time.Time   // when the timer fires; zero: not armed
	stop  func() bool // stops the armed timer
}

// expiry is one socket's earliest credential end.
type expiry struct {
	at    time.Time
	why   error
	c     *agentConn
	index int // in the queue
}

// expiryQueue is a min-heap of expiries by time.
type expiryQueue []*expiry

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q expiryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *expiryQueue) Push(x any) {
	e := x.(*expiry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *expiryQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	e.index = -1
	return e
}

// schedule ends c with why at at, unless c is already due to end no later.
func (x *expiries) schedule(c *agentConn, at time.Time, why error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch e := c.expiry; {
	case e == nil:
		c.expiry = &expiry{at: at, why: why, c: c}
		heap.Push(&x.queue, c.expiry)
	case at.Before(e.at) && e.index >= 0:
		e.at, e.why = at, why
		heap.Fix(&x.queue, e.index)
	default:
		return
	}
	x.arm()
}

// cancel forgets c's expiry (c has closed).
func (x *expiries) cancel(c *agentConn) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := c.expiry; e != nil && e.index >= 0 {
		heap.Remove(&x.queue, e.index)
	}
}

// arm sets the timer for the earliest expiry, if it is not set for it already. x.mu is held.
func (x *expiries) arm() {
	if len(x.queue) == 0 {
		return
	}
	next := x.queue[0].at
	if !x.armed.IsZero() && !next.Before(x.armed) {
		return
	}
	if x.stop != nil {
		x.stop()
	}
	x.armed = next
	x.stop = afterFunc(x.clock, next.Sub(x.clock.Now()), x.fire)
}

// fire ends every socket whose expiry has come, then arms the timer for the next one.
func (x *expiries) fire() {
	x.mu.Lock()
	now := x.clock.Now()
	var due []*expiry
	for len(x.queue) > 0 && !x.queue[0].at.After(now) {
		due = append(due, heap.Pop(&x.queue).(*expiry))
	}
	x.armed, x.stop = time.Time{}, nil
	x.arm()
	x.mu.Unlock()
	for _, e := range due {
		e.c.sub.End(e.why)
	}
}

// afterFunc runs f once clock has moved d on: with the clock's own timers if it has them (a test's
// manual clock), else with the wall clock's.
func afterFunc(clock bridge.Clock, d time.Duration, f func()) (stop func() bool) {
	if tc, ok := clock.(interface {
		AfterFunc(time.Duration, func()) func() bool
	}); ok {
		return tc.AfterFunc(d, f)
	}
	return time.AfterFunc(d, f).Stop
}
