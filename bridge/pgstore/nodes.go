package pgstore

import (
	"context"
	"fmt"
	"time"
)

// Node liveness: every node renews its row in nodes (alive_until = now() + the lease time, by the
// database's clock, so the nodes' own clocks never have to agree) every third of the lease time.
// A node that stops renewing (kill -9, a partition) is dead once alive_until has passed: the
// sessions it polled, the webhook deliveries and the idempotency reservations it held go to the
// nodes still alive.
const (
	sqlHeartbeat = `INSERT INTO nodes (id, alive_until) VALUES ($1, now() + $2::float8 * interval '1 second')
		ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until`
	sqlNodeGone   = `DELETE FROM nodes WHERE id = $1`
	sqlForgetDead = `DELETE FROM nodes WHERE alive_until < now() - interval '1 hour'`
	sqlNodeAlive  = `SELECT EXISTS (SELECT 1 FROM nodes WHERE id = $1 AND alive_until > now())`
	// sqlClaimSession makes this node the session's owner unless a live node is.
	sqlClaimSession = `INSERT INTO session_owners AS o (session_id, node) VALUES ($1, $2)
		ON CONFLICT (session_id) DO UPDATE SET node = excluded.node
		WHERE o.node = excluded.node
			OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = o.node AND n.alive_until > now())
		RETURNING true`
)

// Node returns this store's node id: random per Open, so a restarted process is a new node and
// whatever the old one held lapses with it.
func (s *Store) Node() string { return s.node }

// LeaseTTL returns how long this node's claims outlive its last heartbeat.
func (s *Store) LeaseTTL() time.Duration { return s.leaseTTL }

// heartbeat renews this node's liveness once.
func (s *Store) heartbeat(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, sqlHeartbeat, s.node, s.leaseTTL.Seconds()); err != nil {
		return fmt.Errorf("pgstore: node heartbeat: %w", err)
	}
	return nil
}

// beat renews this node's liveness until ctx ends, then says it is gone, so that its claims pass
// to other nodes at once after a clean shutdown rather than after the lease time.
func (s *Store) beat(ctx context.Context) {
	defer close(s.stopped)
	t := time.NewTicker(s.leaseTTL / 3)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			gone, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := s.pool.Exec(gone, sqlNodeGone, s.node); err != nil {
				s.log.Warn("node shutdown not recorded; its claims lapse with the lease", "err", err)
			}
			return
		case <-t.C:
		}
		hb, cancel := context.WithTimeout(ctx, s.leaseTTL/3)
		if err := s.heartbeat(hb); err != nil && ctx.Err() == nil {
			s.log.Warn("node heartbeat failed", "err", err)
		}
		if n%100 == 0 {
			_, _ = s.pool.Exec(hb, sqlForgetDead) // housekeeping: best effort
		}
		cancel()
	}
}

// NodeAlive reports whether node has renewed its liveness within the lease time.
func (s *Store) NodeAlive(ctx context.Context, node string) (bool, error) {
	var alive bool
	if err := s.pool.QueryRow(ctx, sqlNodeAlive, node).Scan(&alive); err != nil {
		return false, fmt.Errorf("pgstore: node liveness: %w", err)
	}
	return alive, nil
}

// ClaimSession implements bridge.Leaser: this node does session id's background work if it owns
// the session or the owner is no longer alive (it then takes the session over). Of several nodes
// asking at once, exactly one owns it.
func (s *Store) ClaimSession(ctx context.Context, id string) (bool, error) {
	var mine bool
	err := s.pool.QueryRow(ctx, sqlClaimSession, id, s.node).Scan(&mine)
	if isNoRows(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: claim session %s: %w", id, err)
	}
	return mine, nil
}
