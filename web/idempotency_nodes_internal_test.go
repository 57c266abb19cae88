package web

import (
	"bytes"
	"context"
	"hash/maphash"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
	"github.com/paybridge/paybridge/bridge/bridgetest"
)

// nodeStore is one node's view of a store several nodes share, as pgstore gives it: its
// reservations name the node, and nodes' liveness is known (here a map the test controls).
type nodeStore struct {
	*boltstore.Store
	node  string
	mu    *sync.Mutex
	alive map[string]bool
}

func (s nodeStore) ReserveIdempotency(ctx context.Context, rec *bridge.IdempotencyRecord) (*bridge.IdempotencyRecord, error) {
	r := *rec
	r.Node = s.node
	return s.Store.ReserveIdempotency(ctx, &r)
}

func (s nodeStore) NodeAlive(_ context.Context, node string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alive[node], nil
}

// TestIdempotencyWaitsForALiveNode: a duplicate on node B of a request node A is running waits
// while A is alive, however recent A's reservation, and runs the request once A's liveness lapses
// (A died mid-request), without waiting out idempotencyStale.
func TestIdempotencyWaitsForALiveNode(t *testing.T) {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bolt.Close() })
	keyring, err := bridge.NewKeyring(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	clock := bridgetest.NewManualClock(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	var mu sync.Mutex
	alive := map[string]bool{"node-a": true, "node-b": true}
	me := &caller{Principal: &bridge.Principal{Key: &bridge.APIKey{ID: "key_1", Mode: bridge.ModeTest}, Merchant: &bridge.Merchant{ID: "acme"}}}

	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	entered := make(chan string, 2)
	handler := func(node string) http.HandlerFunc {
		s := &Server{store: nodeStore{bolt, node, &mu, alive}, keyring: keyring, clock: clock, logger: (&bridgetest.LogSink{}).Logger(),
			idempotencyTTL: time.Hour, started: clock.Now().Add(-time.Hour), lockSeed: maphash.MakeSeed()}
		h := s.authenticated(func(*http.Request) (*caller, error) { return me, nil }, s.idempotent(func(w http.ResponseWriter, _ *http.Request) error {
			entered <- node
			if node == "node-a" {
				<-release // node A never finishes: it is about to die
			}
			writeJSON(w, http.StatusCreated, map[string]string{"by": node})
			return nil
		}))
		return func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				s.writeErrorBody(w, r.Context(), bridge.AsError(err))
			}
		}
	}
	a, b := handler("node-a"), handler("node-b")
	serve := func(h http.HandlerFunc, wait time.Duration) *httptest.ResponseRecorder {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, "POST", "/v1/agent_tokens", bytes.NewReader([]byte(`{}`)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "k-1")
		rec := httptest.NewRecorder()
		h(rec, req)
		return rec
	}

	next := func() string {
		select {
		case node := <-entered:
			return node
		case <-time.After(10 * time.Second):
			return "none"
		}
	}
	go serve(a, time.Minute)
	require.Equal(t, "node-a", next())

	// A is alive: B's duplicate waits for it (until the caller gives up) and never runs.
	waited := serve(b, 300*time.Millisecond)
	assert.NotEqual(t, http.StatusCreated, waited.Code, "%s", waited.Body)
	assert.Empty(t, entered, "the duplicate ran while the first node was alive")

	// A dies: its liveness lapses, and B's retry runs the request itself.
	mu.Lock()
	alive["node-a"] = false
	mu.Unlock()
	retry := serve(b, 5*time.Second)
	assert.Equal(t, http.StatusCreated, retry.Code, "%s", retry.Body)
	assert.JSONEq(t, `{"by":"node-b"}`, retry.Body.String())
	assert.Equal(t, "node-b", next())
}
