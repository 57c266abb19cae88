package bridge

import (
	"context"
	"time"
)

// Several nodes on one store share the background work and the limits through these interfaces,
// which a shared Store (pgstore) implements. A single-node store (bbolt) implements none: each
// has an in-process meaning that the Service and the web server fall back to.

// Leaser decides which node does a session's background work (polling VCC, expiry, replaced
// attempts, giving up on an abandoned create), so that it is done by exactly one node, never
// doubled, and taken over when that node dies.
type Leaser interface {
	// ClaimSession reports whether this node does session id's background work now. It claims
	// the session when no live node holds it; a node that stops renewing its liveness loses its
	// sessions after a bounded time.
	ClaimSession(ctx context.Context, id string) (bool, error)
}

// LocalLeaser is the Leaser of a store only one process opens: that process does all the work.
type LocalLeaser struct{}

// ClaimSession implements Leaser: always this process.
func (LocalLeaser) ClaimSession(context.Context, string) (bool, error) { return true, nil }

// OutboxClaimer is an OutboxStore that leases due messages to the node delivering them, so two
// nodes never deliver one message at once; a message whose node died is due again once the
// lease lapses.
type OutboxClaimer interface {
	// ClaimOutbox returns up to limit due messages (as DueOutbox) that no node holds a lease on,
	// earliest first, and leases them to this node. UpdateOutbox ends a message's lease.
	ClaimOutbox(ctx context.Context, now time.Time, limit int) ([]*OutboxMessage, error)
}

// NodeDirectory knows which nodes sharing the store are alive. IdempotencyRecord.Node names the
// node holding a reservation; a reservation of a dead node is released.
type NodeDirectory interface {
	// NodeAlive reports whether node has renewed its liveness within the lease time.
	NodeAlive(ctx context.Context, node string) (bool, error)
}

// SharedRateLimiter is a token bucket every node shares: limit requests per window per key,
// refilling evenly, bursting up to limit.
type SharedRateLimiter interface {
	// TakeRate spends one request of key's bucket if it has one, and returns whether it did and
	// the tokens left afterwards (a fraction while refilling).
	TakeRate(ctx context.Context, key string, limit int, window time.Duration) (allowed bool, tokens float64, err error)
}
