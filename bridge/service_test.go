package bridge_test

import (
	"bytes"
	"context"
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
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
	"github.com/paybridge/paybridge/vcc"
	"github.com/paybridge/paybridge/vcc/vccstub"
)

// world is the Service on the real store and VCC client, against the stubs, with one clock moved
// by hand and no background loop: tests call Sweep, so every step is deterministic.
type world struct {
	t         *testing.T
	clock     *bridgetest.ManualClock
	store     *boltstore.Store
	hub       *bridge.Hub
	keyring   *bridge.Keyring
	storePath string
	svc       *bridge.Service
	stub      *vccstub.Server
	merchant  *bridge.Merchant
	ctx       context.Context
}

var start = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, clock: bridgetest.NewManualClock(start), ctx: context.Background()}
	pci := pcipalstub.New(pcipalstub.Options{Clock: w.clock})
	w.stub = vccstub.New(vccstub.Options{Clock: w.clock, PCIPal: pci})
	mux := http.NewServeMux()
	mux.Handle("/session/", pci)
	mux.Handle("/", w.stub)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(w.stub.Close)
	pci.SetBaseURL(srv.URL)
	w.stub.SetBaseURL(srv.URL)
	acct := vccstub.DefaultAccount()
	w.merchant = &bridge.Merchant{ID: "acme", Status: bridge.MerchantActive, VCC: bridge.VCCAccount{
		TokenURL: w.stub.TokenURL(), APIBaseURL: w.stub.PaymentAPIURL(), ClientID: acct.ClientID, ClientSecret: acct.ClientSecret,
		AccountConfigurationIDs: []int{1, 2}, DefaultAccountConfigurationID: new(1),
	}, Webhook: bridge.MerchantWebhook{URL: "https://crm.acme.test/hook", Secret: "whsec_test"}}

	var err error
	w.storePath = filepath.Join(t.TempDir(), "db")
	w.store, err = boltstore.Open(w.storePath, boltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.store.Close() })
	keyring, err := bridge.NewKeyring(bytes.Repeat([]byte{3}, 32))
	require.NoError(t, err)
	w.hub = bridge.NewHub(nil, 0)
	w.keyring = keyring
	w.restartService()
	return w
}

// restartService replaces the service with a new one on the same store, as a process restart
// does: nothing in memory survives.
func (w *world) restartService() {
	w.t.Helper()
	var err error
	w.svc, err = bridge.NewService(bridge.ServiceOptions{
		Store: w.store, Merchants: bridge.StaticMerchants{w.merchant}, Publisher: w.hub, Keyring: w.keyring, Clock: w.clock,
		Provider: vcc.New(vcc.Options{Clock: w.clock, RequestTimeout: 2 * time.Second, MaxRetries: -1}),
	})
	require.NoError(w.t, err)
}

var agent1 = bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1"}

func (w *world) create(ttl time.Duration) *bridge.Session {
	w.t.Helper()
	s, err := w.svc.CreateSession(w.ctx, &bridge.CreateSessionInput{MerchantID: "acme", Mode: bridge.ModeTest,
		AgentID: "agent-1", Amount: 1240, Currency: "GBP", ExpiresIn: ttl})
	require.NoError(w.t, err)
	return s
}

func (w *world) get(id string) *bridge.Session {
	w.t.Helper()
	s, err := w.store.Session(w.ctx, id)
	require.NoError(w.t, err)
	return s
}

func (w *world) complete(guid, decision string) {
	w.t.Helper()
	_, err := w.stub.Complete(guid, decision, "")
	require.NoError(w.t, err)
}

// TestPaymentJustBeforeTTLIsNotExpired: the customer pays a second before the TTL and the sweep
// after it finds the payment, not an expiry; the merchant is told of a success.
func TestPaymentJustBeforeTTLIsNotExpired(t *testing.T) {
	w := newWorld(t)
	s := w.create(5 * time.Minute)
	w.clock.Advance(5*time.Minute - time.Second)
	w.complete(s.Current().SessionGUID, bridge.DecisionAccept)
	w.clock.Advance(2 * time.Second) // past the TTL before any poll came
	w.svc.Sweep(w.ctx)

	got := w.get(s.ID)
	assert.Equal(t, bridge.StatusSucceeded, got.Status)
	due, err := w.store.DueOutbox(w.ctx, w.clock.Now(), 10)
	require.NoError(t, err)
	require.Len(t, due, 1)
	assert.Equal(t, bridge.EventSucceeded, due[0].Type, "the merchant hears of the payment, not an expiry")
}

// TestKeyingAtTTLPostponesExpiry: while the customer is keying, the TTL does not cut them off;
// after the grace, it does.
func TestKeyingAtTTLPostponesExpiry(t *testing.T) {
	w := newWorld(t)
	s := w.create(5 * time.Minute)
	_, err := w.stub.Keying(s.Current().SessionGUID)
	require.NoError(t, err)
	w.clock.Advance(5*time.Minute + time.Second)
	w.svc.Sweep(w.ctx)
	assert.Equal(t, bridge.StatusActive, w.get(s.ID).Status, "the customer is keying: not expired")

	w.complete(s.Current().SessionGUID, bridge.DecisionAccept)
	w.clock.Advance(3 * time.Second)
	w.svc.Sweep(w.ctx)
	assert.Equal(t, bridge.StatusSucceeded, w.get(s.ID).Status)

	// Keying that never ends: expired once the grace has passed.
	s2 := w.create(5 * time.Minute)
	_, err = w.stub.Keying(s2.Current().SessionGUID)
	require.NoError(t, err)
	w.clock.Advance(5*time.Minute + time.Second)
	w.svc.Sweep(w.ctx)
	assert.Equal(t, bridge.StatusActive, w.get(s2.ID).Status)
	w.clock.Advance(5 * time.Minute)
	w.svc.Sweep(w.ctx)
	assert.Equal(t, bridge.StatusExpired, w.get(s2.ID).Status)
}

// TestVCCUnreachableAtTTLPostponesExpiry: when VCC cannot say whether the customer paid, the
// session stays open within the grace and is settled once VCC answers again.
func TestVCCUnreachableAtTTLPostponesExpiry(t *testing.T) {
	w := newWorld(t)
	s := w.create(5 * time.Minute)
	w.complete(s.Current().SessionGUID, bridge.DecisionAccept)
	// VCC refuses paybridge's token from now on: no status can be read.
	w.stub.RevokeTokens()
	require.NoError(t, w.stub.SetFaults(vccstub.Faults{Token: vccstub.FaultInvalidClient}))
	w.clock.Advance(5*time.Minute + time.Second)
	w.svc.Sweep(w.ctx)
	assert.Equal(t, bridge.StatusActive, w.get(s.ID).Status, "VCC cannot say: not expired yet")

	w.stub.ClearFaults()
	w.clock.Advance(3 * time.Second)
	w.svc.Sweep(w.ctx)
	assert.Equal(t, bridge.StatusSucceeded, w.get(s.ID).Status, "the payment VCC had all along")
}

// TestPaymentOnReplacedAttempt: the agent restarted, but the customer paid on the first
// provider session: the payment wins. A decline there does not end the session: the customer
// may pay on the new page.
func TestPaymentOnReplacedAttempt(t *testing.T) {
	sc := bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest}
	t.Run("accept", func(t *testing.T) {
		w := newWorld(t)
		s := w.create(0)
		first := s.Current().SessionGUID
		restarted, err := w.svc.RestartSession(w.ctx, sc, s.ID)
		require.NoError(t, err)
		require.Equal(t, 2, restarted.Current().Number)
		w.complete(first, bridge.DecisionAccept)
		w.clock.Advance(11 * time.Second)
		w.svc.Sweep(w.ctx)
		got := w.get(s.ID)
		assert.Equal(t, bridge.StatusSucceeded, got.Status)
		require.NotNil(t, got.Result)
		assert.Equal(t, bridge.DecisionAccept, got.Result.Decision)
	})
	t.Run("accept reported by webhook", func(t *testing.T) {
		w := newWorld(t)
		s := w.create(0)
		first := s.Current().SessionGUID
		_, err := w.svc.RestartSession(w.ctx, sc, s.ID)
		require.NoError(t, err)
		w.complete(first, bridge.DecisionAccept)
		require.NoError(t, w.svc.ProviderNotified(w.ctx, "acme", first))
		assert.Equal(t, bridge.StatusSucceeded, w.get(s.ID).Status)
	})
	t.Run("decline is not the end", func(t *testing.T) {
		w := newWorld(t)
		s := w.create(0)
		first := s.Current().SessionGUID
		_, err := w.svc.RestartSession(w.ctx, sc, s.ID)
		require.NoError(t, err)
		w.complete(first, bridge.DecisionReject)
		w.clock.Advance(11 * time.Second)
		w.svc.Sweep(w.ctx)
		got := w.get(s.ID)
		assert.Equal(t, bridge.StatusActive, got.Status)
		assert.True(t, got.Attempts[0].ProviderEnded, "settled: not asked about again")
		assert.False(t, got.Attempts[1].ProviderEnded)
	})
}

// TestCancelFindsPaymentOnReplacedAttempt: a cancel after the customer paid on a replaced
// attempt answers that the session succeeded.
func TestCancelFindsPaymentOnReplacedAttempt(t *testing.T) {
	w := newWorld(t)
	sc := bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest}
	s := w.create(0)
	first := s.Current().SessionGUID
	_, err := w.svc.RestartSession(w.ctx, sc, s.ID)
	require.NoError(t, err)
	w.complete(first, bridge.DecisionAccept)
	_, err = w.svc.CancelSession(w.ctx, sc, s.ID)
	assert.Equal(t, bridge.CodeSessionWrongState, bridge.ErrorCode(err))
	assert.Equal(t, bridge.StatusSucceeded, w.get(s.ID).Status)
}

// TestFailedCreateIsQuiet: a create VCC refuses is kept, failed, for audit, but neither the agent
// nor the merchant's webhook hears of a session the caller only ever saw as an error.
func TestFailedCreateIsQuiet(t *testing.T) {
	w := newWorld(t)
	sub := w.hub.Subscribe(agent1)
	defer sub.Close()
	require.NoError(t, w.stub.SetFaults(vccstub.Faults{Create: vccstub.FaultInvalidClientKey}))
	_, err := w.svc.CreateSession(w.ctx, &bridge.CreateSessionInput{MerchantID: "acme", Mode: bridge.ModeTest,
		AgentID: "agent-1", Amount: 1240, Currency: "GBP"})
	require.Equal(t, bridge.CodeMerchantNotConfigured, bridge.ErrorCode(err))

	list, err := w.store.ListSessions(w.ctx, bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, bridge.StatusFailed, list[0].Status)
	due, err := w.store.DueOutbox(w.ctx, w.clock.Now(), 10)
	require.NoError(t, err)
	assert.Empty(t, due)
	assert.Empty(t, sub.Messages())
}

// TestSnapshotWaitsForCreateInFlight: an agent connecting while a create waits on VCC gets the
// session with its handoff, not a snapshot without it (the handoff event went out before the
// socket subscribed).
func TestSnapshotWaitsForCreateInFlight(t *testing.T) {
	w := newWorld(t)
	require.NoError(t, w.stub.SetFaults(vccstub.Faults{LatencyMs: 300}))
	var created *bridge.Session
	var wg sync.WaitGroup
	wg.Go(func() { created = w.create(0) })
	require.Eventually(t, func() bool { return w.stub.Stats().CreateSession == 1 }, 5*time.Second, time.Millisecond)
	snap, err := w.svc.AgentSnapshot(w.ctx, agent1)
	require.NoError(t, err)
	wg.Wait()
	require.Len(t, snap.Sessions, 1)
	assert.Equal(t, created.ID, snap.Sessions[0].Session.ID)
	require.NotNil(t, snap.Sessions[0].Handoff, "the snapshot waited for the handoff")
	assert.Equal(t, 1, snap.Sessions[0].Handoff.Attempt)
	assert.NotEmpty(t, snap.Sessions[0].Handoff.FormFields[bridge.FieldBearerToken])
}

// TestStaleFrameRefusedGetsCurrentHandoff: a report about a replaced attempt means that socket
// missed the new handoff: it gets it back, and nothing restarts.
func TestStaleFrameRefusedGetsCurrentHandoff(t *testing.T) {
	w := newWorld(t)
	s := w.create(0)
	_, err := w.svc.RestartSession(w.ctx, bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest}, s.ID)
	require.NoError(t, err)
	creates := w.stub.Stats().CreateSession
	h, err := w.svc.FrameRefused(w.ctx, agent1, s.ID, 1)
	require.NoError(t, err)
	require.NotNil(t, h)
	assert.Equal(t, 2, h.Attempt)
	assert.NotEmpty(t, h.FormFields[bridge.FieldRefreshToken])
	assert.Equal(t, creates, w.stub.Stats().CreateSession, "no restart")

	w.clock.Advance(bridge.DefaultBrowserRestartEvery) // restarts from the browser are rationed
	h, err = w.svc.FrameRefused(w.ctx, agent1, s.ID, 2)
	require.NoError(t, err)
	assert.Nil(t, h, "a report about the current attempt restarts instead")
	assert.Equal(t, 3, w.get(s.ID).Current().Number)
}
