package bridge_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/vcc"
)

// leases is a faithful in-memory model of pgstore's session owners: a session belongs to the
// first node that claims it until that node is no longer alive.
type leases struct {
	mu    sync.Mutex
	owner map[string]string
	alive map[string]bool
}

type nodeLeaser struct {
	*leases
	node string
}

func (l nodeLeaser) ClaimSession(_ context.Context, id string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o := l.owner[id]; o == "" || o == l.node || !l.alive[o] {
		l.owner[id] = l.node
		return true, nil
	}
	return false, nil
}

// TestBackgroundWorkOneNodeAtATime: two services (nodes) on one store. The node that created a
// session polls it; the other learns of it but leaves it alone while the owner lives, and takes it
// over (finding the payment) once the owner dies.
func TestBackgroundWorkOneNodeAtATime(t *testing.T) {
	w := newWorld(t)
	l := &leases{owner: map[string]string{}, alive: map[string]bool{"a": true, "b": true}}
	node := func(name string) *bridge.Service {
		svc, err := bridge.NewService(bridge.ServiceOptions{
			Store: w.store, Merchants: bridge.StaticMerchants{w.merchant}, Publisher: w.hub, Keyring: w.keyring, Clock: w.clock,
			Provider: vcc.New(vcc.Options{Clock: w.clock, RequestTimeout: 2 * time.Second, MaxRetries: -1}),
			Leaser:   nodeLeaser{l, name}, ReloadInterval: 3 * time.Second,
		})
		require.NoError(t, err)
		return svc
	}
	a, b := node("a"), node("b")
	w.svc = a
	s := w.create(30 * time.Minute)

	// The first node to sweep a session owns it: node a, which has it from the create, where
	// node b learns of it only by reading the open sessions.
	polls := func() int { return w.stub.Stats().GetSession }
	w.clock.Advance(3 * time.Second)
	before := polls()
	a.Sweep(w.ctx)
	assert.Equal(t, before+1, polls(), "the owner polls")
	b.Sweep(w.ctx)
	assert.Equal(t, before+1, polls(), "node b polled a session node a owns")
	assert.Equal(t, 1, b.Stats().OpenSessions, "node b knows the session node a created")

	w.complete(s.Current().SessionGUID, "ACCEPT")
	w.clock.Advance(3 * time.Second)
	b.Sweep(w.ctx)
	assert.Equal(t, bridge.StatusActive, w.get(s.ID).Status, "node b left it to its live owner")

	l.mu.Lock()
	l.alive["a"] = false // node a dies
	l.mu.Unlock()
	w.clock.Advance(3 * time.Second)
	b.Sweep(w.ctx)
	assert.Equal(t, bridge.StatusSucceeded, w.get(s.ID).Status, "node b took over and found the payment")
	assert.Equal(t, "b", l.owner[s.ID])
}
