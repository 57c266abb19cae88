package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/pgstore"
)

// twoNodes opens two stores (two nodes) on one fresh database.
func twoNodes(t *testing.T) (a, b *pgstore.Store, url string) {
	t.Helper()
	a, url = openTemp(t)
	b, err := pgstore.Open(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return a, b, url
}

// sql runs statement on url directly, as an operator (or a dead node's lapsed clock) would.
func sql(t *testing.T, url, statement string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(t.Context(), statement, args...)
	require.NoError(t, err)
}

// killNode makes node's liveness lapse, as it does lease time after a kill -9.
func killNode(t *testing.T, url, node string) {
	t.Helper()
	sql(t, url, `UPDATE nodes SET alive_until = now() - interval '1 second' WHERE id = $1`, node)
}

// TestLockSessionAcrossNodes: concurrent holders of one session's lock on two nodes never
// overlap; another session's lock is independent; a waiter gives up with its context; a lock
// held by a node whose connection dies is released.
func TestLockSessionAcrossNodes(t *testing.T) {
	a, b, _ := twoNodes(t)
	const id = "vp_cs_test_lockedlockedlock1"
	var inside, overlaps, runs atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		s := []*pgstore.Store{a, b}[i%2]
		wg.Go(func() {
			for range 5 {
				unlock, err := s.LockSession(t.Context(), id)
				if !assert.NoError(t, err) {
					return
				}
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				runs.Add(1)
				time.Sleep(time.Millisecond) // a holder doing work, so overlaps would show
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(40), runs.Load())
	assert.Zero(t, overlaps.Load(), "two holders of one session's lock at once")

	unlock, err := a.LockSession(t.Context(), id)
	require.NoError(t, err)
	other, err := b.LockSession(t.Context(), "vp_cs_test_otherotherother1")
	require.NoError(t, err, "another session is not blocked")
	other()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	_, err = b.LockSession(ctx, id)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "the waiter gives up with its context")

	// The holder's node goes away: its connections end, and with them the lock.
	require.NoError(t, a.Close())
	got, err := b.LockSession(t.Context(), id)
	require.NoError(t, err)
	got()
	unlock() // after Close: harmless
}

// TestClaimSessionOneOwner: of two nodes asking for a session's work at once, exactly one gets
// it and keeps it; when that node dies the other takes over, and the first, should it come back,
// no longer has it.
func TestClaimSessionOneOwner(t *testing.T) {
	a, b, url := twoNodes(t)
	sess := testSession(1)
	require.NoError(t, a.CreateSession(t.Context(), sess))
	var wins atomic.Int64
	var wg sync.WaitGroup
	owners := make([]*pgstore.Store, 0, 2)
	var mu sync.Mutex
	for _, s := range []*pgstore.Store{a, b, a, b} {
		wg.Go(func() {
			mine, err := s.ClaimSession(t.Context(), sess.ID)
			assert.NoError(t, err)
			if mine {
				wins.Add(1)
				mu.Lock()
				owners = append(owners, s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.NotEmpty(t, owners)
	owner := owners[0]
	for _, o := range owners {
		assert.Same(t, owner, o, "two nodes own one session")
	}
	other := a
	if owner == a {
		other = b
	}
	mine, err := owner.ClaimSession(t.Context(), sess.ID)
	require.NoError(t, err)
	assert.True(t, mine, "the owner keeps it")
	mine, err = other.ClaimSession(t.Context(), sess.ID)
	require.NoError(t, err)
	assert.False(t, mine, "a live owner's session is not taken")

	killNode(t, url, owner.Node())
	alive, err := other.NodeAlive(t.Context(), owner.Node())
	require.NoError(t, err)
	assert.False(t, alive)
	mine, err = other.ClaimSession(t.Context(), sess.ID)
	require.NoError(t, err)
	assert.True(t, mine, "a dead node's session is taken over")
	mine, err = owner.ClaimSession(t.Context(), sess.ID)
	require.NoError(t, err)
	assert.False(t, mine, "the taken-over session stays with its new owner")
}

// TestClaimOutboxLeases: due messages are leased to one node; another node gets none of them
// while the lease holds, and gets them once it lapses; a recorded outcome ends the lease.
func TestClaimOutboxLeases(t *testing.T) {
	a, b, url := twoNodes(t)
	sess := testSession(2)
	sess.Attempts = nil
	sess.Status = bridge.StatusPending
	require.NoError(t, a.CreateSession(t.Context(), sess))
	now := time.Now()
	_, err := a.UpdateSession(t.Context(), sess.ID, func(s *bridge.Session, out *bridge.Outbox) error {
		for _, id := range []string{"vp_evt_1", "vp_evt_2", "vp_evt_3"} {
			out.Add(&bridge.OutboxMessage{ID: id, MerchantID: "acme", Type: bridge.EventCancelled, Payload: []byte("{}"), CreatedAt: now, NextAttemptAt: now})
		}
		return nil
	})
	require.NoError(t, err)

	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for _, s := range []*pgstore.Store{a, b} {
		wg.Go(func() {
			got, err := s.ClaimOutbox(t.Context(), now, 10)
			assert.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			for _, m := range got {
				seen[m.ID]++
			}
		})
	}
	wg.Wait()
	assert.Equal(t, map[string]int{"vp_evt_1": 1, "vp_evt_2": 1, "vp_evt_3": 1}, seen, "each message claimed exactly once")
	again, err := b.ClaimOutbox(t.Context(), now, 10)
	require.NoError(t, err)
	assert.Empty(t, again, "leased messages are not claimed again")

	// vp_evt_1 is delivered: its lease ends with the record. The lease on the others lapses, as
	// when their node dies mid-delivery.
	_, err = a.UpdateOutbox(t.Context(), "vp_evt_1", func(m *bridge.OutboxMessage) error { m.DeliveredAt = now; return nil })
	require.NoError(t, err)
	sql(t, url, `UPDATE outbox SET lease_until = now() - interval '1 second' WHERE lease_until IS NOT NULL`)
	again, err = b.ClaimOutbox(t.Context(), now, 10)
	require.NoError(t, err)
	var ids []string
	for _, m := range again {
		ids = append(ids, m.ID)
	}
	assert.Equal(t, []string{"vp_evt_2", "vp_evt_3"}, ids)
}

// TestTakeRateExactAcrossNodes: 40 takes of one bucket of 30, spread over two nodes at once,
// allow exactly 30 (a window long enough that nothing refills meanwhile).
func TestTakeRateExactAcrossNodes(t *testing.T) {
	a, b, _ := twoNodes(t)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		s := []*pgstore.Store{a, b}[i%2]
		wg.Go(func() {
			ok, tokens, err := s.TakeRate(t.Context(), "key_1", 30, 24*time.Hour)
			if assert.NoError(t, err) && ok {
				allowed.Add(1)
				assert.GreaterOrEqual(t, tokens, 0.0)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(30), allowed.Load())
	ok, _, err := a.TakeRate(t.Context(), "key_2", 30, 24*time.Hour)
	require.NoError(t, err)
	assert.True(t, ok, "another key has its own bucket")
}

// TestIdempotencyNamesItsNode: a reservation records the node that holds it.
func TestIdempotencyNamesItsNode(t *testing.T) {
	a, b, _ := twoNodes(t)
	now := time.Now()
	rec := &bridge.IdempotencyRecord{Key: "k\x00one", RequestHash: "h", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	existing, err := a.ReserveIdempotency(t.Context(), rec)
	require.NoError(t, err)
	require.Nil(t, existing)
	existing, err = b.ReserveIdempotency(t.Context(), rec)
	require.NoError(t, err)
	require.NotNil(t, existing)
	assert.Equal(t, a.Node(), existing.Node)
	alive, err := b.NodeAlive(t.Context(), existing.Node)
	require.NoError(t, err)
	assert.True(t, alive)
}

// recorder is a local publisher that keeps what it gets.
type recorder struct {
	mu  sync.Mutex
	evs []*bridge.Event
}

func (r *recorder) Publish(ev *bridge.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

func (r *recorder) events() []*bridge.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*bridge.Event(nil), r.evs...)
}

// TestFanoutAcrossNodes: an event published on one node reaches the other node's local
// publisher, in order, small and large alike, and provider tokens never cross the database in
// clear; a node with another master key reads nothing.
func TestFanoutAcrossNodes(t *testing.T) {
	a, b, url := twoNodes(t)
	key := []byte(strings.Repeat("m", 32))
	kr, err := bridge.NewKeyring(key)
	require.NoError(t, err)
	other, err := bridge.NewKeyring([]byte(strings.Repeat("x", 32)))
	require.NoError(t, err)
	localA, localB, localC := &recorder{}, &recorder{}, &recorder{}
	fa, err := pgstore.NewFanout(t.Context(), a, kr, localA)
	require.NoError(t, err)
	defer fa.Close()
	fb, err := pgstore.NewFanout(t.Context(), b, kr, localB)
	require.NoError(t, err)
	defer fb.Close()
	fc, err := pgstore.NewFanout(t.Context(), b, other, localC)
	require.NoError(t, err)
	defer fc.Close()

	// A raw listener sees exactly what crosses the database.
	raw, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer raw.Close(context.Background())
	_, err = raw.Exec(t.Context(), "LISTEN paybridge_agent_events")
	require.NoError(t, err)

	agent := bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1"}
	const token = "bearer-token-in-clear"
	big := strings.Repeat("x", 20000) // too large for a NOTIFY payload
	for i, data := range []any{
		map[string]any{"formFields": map[string]string{"X-BEARER-TOKEN": token}, "attempt": 1},
		map[string]any{"note": big, "attempt": 2},
		map[string]any{"attempt": 3},
	} {
		fa.Publish(&bridge.Event{Agent: agent, Type: bridge.EventHandoff, ID: "vp_evt_" + string(rune('a'+i)), SessionID: "vp_cs_test_1", Data: data})
	}
	require.Len(t, localA.events(), 3, "the publishing node's own sockets get them at once")
	require.Eventually(t, func() bool { return len(localB.events()) == 3 }, 10*time.Second, 5*time.Millisecond)
	for i, ev := range localB.events() {
		assert.Equal(t, "vp_evt_"+string(rune('a'+i)), ev.ID, "in publication order")
		assert.Equal(t, agent, ev.Agent)
		assert.Equal(t, bridge.EventHandoff, ev.Type)
	}
	assert.Contains(t, string(localB.events()[0].Data.(json.RawMessage)), token, "the other node's sockets get the tokens")
	assert.Contains(t, string(localB.events()[1].Data.(json.RawMessage)), big)

	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		n, err := raw.WaitForNotification(ctx)
		cancel()
		require.NoError(t, err)
		assert.NotContains(t, n.Payload, token, "a token crossed the database in clear")
		assert.NotContains(t, n.Payload, "agent-1")
	}
	assert.Empty(t, localC.events(), "a node with another master key delivers nothing")
	assert.Len(t, localA.events(), 3, "a node does not deliver its own events twice")
}

// TestLeaseTimeIsTheConfiguredOne: a node's liveness and its outbox leases last the configured
// lease time by the database's clock, whatever its form (90s is "1m30s" to Go).
func TestLeaseTimeIsTheConfiguredOne(t *testing.T) {
	s, url := openTemp(t, pgstore.WithLeaseTTL(90*time.Second))
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var left float64
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT extract(epoch FROM alive_until - now()) FROM nodes WHERE id = $1`, s.Node()).Scan(&left))
	assert.InDelta(t, 90, left, 5)
}

// credentialRecorder is a bridge.CredentialWatcher that keeps what it hears.
type credentialRecorder struct {
	mu      sync.Mutex
	keys    []string
	revoked []bridge.AgentTokenRevocation
}

func (c *credentialRecorder) KeyEnds(key *bridge.APIKey, _ time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, key.ID)
}

func (c *credentialRecorder) AgentTokensRevoked(rec *bridge.AgentTokenRevocation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revoked = append(c.revoked, *rec)
}

func (c *credentialRecorder) heard() (keys []string, revoked []bridge.AgentTokenRevocation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.keys...), append([]bridge.AgentTokenRevocation(nil), c.revoked...)
}

// TestCredentialEventsAcrossNodes: a key that ends or an agent's tokens revoked on one node is
// heard by every other node's watcher (which closes the sockets it opened there), sealed on the
// way, and not by the node it came from, which heard it from its own key service.
func TestCredentialEventsAcrossNodes(t *testing.T) {
	a, b, url := twoNodes(t)
	kr, err := bridge.NewKeyring([]byte(strings.Repeat("m", 32)))
	require.NoError(t, err)
	fa, err := pgstore.NewFanout(t.Context(), a, kr, &recorder{})
	require.NoError(t, err)
	defer fa.Close()
	fb, err := pgstore.NewFanout(t.Context(), b, kr, &recorder{})
	require.NoError(t, err)
	defer fb.Close()
	onA, onB := &credentialRecorder{}, &credentialRecorder{}
	fa.ForwardCredentials(onA)
	fb.ForwardCredentials(onB)

	raw, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer raw.Close(context.Background())
	_, err = raw.Exec(t.Context(), "LISTEN paybridge_agent_events")
	require.NoError(t, err)

	rec := &bridge.AgentTokenRevocation{Agent: bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1"}, Epoch: 3}
	fa.KeyEnds(&bridge.APIKey{ID: "key_revoked", MerchantID: "acme", Hash: "hash-of-the-key"}, time.Now())
	fa.AgentTokensRevoked(rec)
	require.Eventually(t, func() bool { k, r := onB.heard(); return len(k) == 1 && len(r) == 1 }, 10*time.Second, 5*time.Millisecond)
	keys, revoked := onB.heard()
	assert.Equal(t, []string{"key_revoked"}, keys)
	assert.Equal(t, *rec, revoked[0])
	keys, revoked = onA.heard()
	assert.Empty(t, keys, "the node it came from heard it from its own key service")
	assert.Empty(t, revoked)

	for range 2 {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		n, err := raw.WaitForNotification(ctx)
		cancel()
		require.NoError(t, err)
		assert.NotContains(t, n.Payload, "key_revoked", "sealed on the way")
		assert.NotContains(t, n.Payload, "agent-1")
	}
}

// TestLastSecretKeyAcrossNodes: two nodes each revoking one of a merchant's last two active
// secret keys at once leave exactly one of them active, never none: the check and the
// revocation run under one lock across the nodes. Each round is a merchant of its own.
func TestLastSecretKeyAcrossNodes(t *testing.T) {
	a, b, _ := twoNodes(t)
	const rounds = 20
	var merchants bridge.StaticMerchants
	for n := range rounds {
		merchants = append(merchants, &bridge.Merchant{ID: fmt.Sprintf("m%d", n), Name: "M", Status: bridge.MerchantActive})
	}
	onA := bridge.NewKeyService(bridge.KeyServiceOptions{Store: a, Merchants: merchants})
	onB := bridge.NewKeyService(bridge.KeyServiceOptions{Store: b, Merchants: merchants})
	for _, m := range merchants {
		_, k1, err := onA.CreateKey(t.Context(), m.ID, bridge.KeySecret, bridge.ModeTest)
		require.NoError(t, err)
		_, k2, err := onB.CreateKey(t.Context(), m.ID, bridge.KeySecret, bridge.ModeTest)
		require.NoError(t, err)
		var wg sync.WaitGroup
		var revoked atomic.Int32
		for _, tc := range []struct {
			keys *bridge.KeyService
			id   string
		}{{onA, k1.ID}, {onB, k2.ID}} {
			wg.Go(func() {
				if _, err := tc.keys.RevokeKey(t.Context(), m.ID, tc.id); err == nil {
					revoked.Add(1)
				} else {
					assert.Equal(t, bridge.CodeValidationError, bridge.AsError(err).Code, "%s: %v", m.ID, err)
				}
			})
		}
		wg.Wait()
		keys, err := a.ListAPIKeys(t.Context(), m.ID)
		require.NoError(t, err)
		active := 0
		for _, k := range keys {
			if k.RevokedAt.IsZero() {
				active++
			}
		}
		assert.Equal(t, int32(1), revoked.Load(), "%s: exactly one of the two revocations goes through", m.ID)
		assert.Equal(t, 1, active, "%s: one active secret key is left", m.ID)
	}
}
