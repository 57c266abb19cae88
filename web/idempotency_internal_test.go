package web

import (
	"bytes"
	"context"
	"hash/maphash"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
	"github.com/paybridge/paybridge/bridge/bridgetest"
)

// TestIdempotentHandlerPanicFreesTheKey: a handler that panics leaves no reservation behind, so
// the retry runs at once instead of waiting for a first request that will never finish.
func TestIdempotentHandlerPanicFreesTheKey(t *testing.T) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	keyring, err := bridge.NewKeyring(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	logs := &bridgetest.LogSink{}
	clock := bridgetest.NewManualClock(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	s := &Server{store: store, keyring: keyring, clock: clock, logger: logs.Logger(), idempotencyTTL: time.Hour,
		started: clock.Now(), lockSeed: maphash.MakeSeed()}
	me := &caller{Principal: &bridge.Principal{Key: &bridge.APIKey{ID: "key_1", Mode: bridge.ModeTest}, Merchant: &bridge.Merchant{ID: "acme"}}}
	calls := 0
	h := s.authenticated(func(*http.Request) (*caller, error) { return me, nil }, s.idempotent(func(w http.ResponseWriter, _ *http.Request) error {
		if calls++; calls == 1 {
			panic("first call dies")
		}
		writeJSON(w, http.StatusCreated, map[string]int{"calls": calls})
		return nil
	}))
	serve := func() (rec *httptest.ResponseRecorder, panicked any) {
		// The service clock never moves here: a retry that polled would wait until this deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, "POST", "/v1/agent_tokens", bytes.NewReader([]byte(`{}`)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "k-1")
		rec = httptest.NewRecorder()
		defer func() { panicked = recover() }()
		if err := h(rec, req); err != nil {
			s.writeErrorBody(rec, ctx, bridge.AsError(err))
		}
		return rec, nil
	}
	_, panicked := serve()
	require.Equal(t, "first call dies", panicked)
	retry, panicked := serve()
	require.Nil(t, panicked)
	assert.Equal(t, http.StatusCreated, retry.Code, "%s", retry.Body)
	assert.JSONEq(t, `{"calls":2}`, retry.Body.String())
	again, _ := serve()
	assert.Equal(t, "true", again.Header().Get("Idempotent-Replayed"))
	assert.JSONEq(t, `{"calls":2}`, again.Body.String())
}
