package bridge_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/vcc"
)

// drain returns the types of the events a subscription holds now.
func drain(sub *bridge.Subscription) []string {
	var types []string
	for {
		select {
		case msg := <-sub.Messages():
			var ev struct{ Type string }
			_ = json.Unmarshal(msg, &ev)
			types = append(types, ev.Type)
		default:
			return types
		}
	}
}

// webhookTypes returns the types of the merchant webhooks queued for s, oldest first.
func (w *world) webhookTypes() []bridge.EventType {
	w.t.Helper()
	due, err := w.store.DueOutbox(w.ctx, w.clock.Now().Add(time.Hour), 100)
	require.NoError(w.t, err)
	var types []bridge.EventType
	for _, m := range due {
		types = append(types, m.Type)
	}
	return types
}

// paidLate checks that session id succeeded late and returns it.
func (w *world) paidLate(t *testing.T, id string) *bridge.Session {
	t.Helper()
	got := w.get(id)
	assert.Equal(t, bridge.StatusSucceeded, got.Status)
	require.NotNil(t, got.Result)
	assert.True(t, got.Result.Late)
	return got
}

// createDigital starts a digital session (a link VCC texts to the customer) with ttl (0: the
// default).
func (w *world) createDigital(t *testing.T, ttl time.Duration) *bridge.Session {
	t.Helper()
	s, err := w.svc.CreateSession(w.ctx, &bridge.CreateSessionInput{MerchantID: "acme", Mode: bridge.ModeTest,
		AgentID: "agent-1", Amount: 1240, Currency: "GBP", Channel: bridge.ChannelDigital, ExpiresIn: ttl})
	require.NoError(t, err)
	return s
}

// TestLatePayment: VCC cannot end a provider session, so a customer can still pay after paybridge
// cancelled or expired the session. A verified ACCEPT then makes the session succeeded with
// result.late, tells the agent and the merchant; a REJECT changes nothing; the watch ends when
// VCC no longer keeps the results.
func TestLatePayment(t *testing.T) {
	sc := bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest}
	t.Run("accept after cancel", func(t *testing.T) {
		w := newWorld(t)
		sub := w.hub.Subscribe(agent1)
		defer sub.Close()
		s := w.create(0)
		_, err := w.svc.CancelSession(w.ctx, sc, s.ID)
		require.NoError(t, err)
		cancelled := w.get(s.ID)
		require.Equal(t, bridge.StatusCancelled, cancelled.Status)
		assert.True(t, cancelled.Open(), "a cancelled session is still watched")
		drain(sub)

		w.complete(s.Current().SessionGUID, bridge.DecisionAccept)
		w.clock.Advance(11 * time.Second)
		w.svc.Sweep(w.ctx)

		got := w.paidLate(t, s.ID)
		assert.Nil(t, got.Failure)
		assert.False(t, got.Open(), "nothing left to watch")
		assert.Equal(t, []string{string(bridge.EventSucceeded)}, drain(sub), "the agent hears of the payment")
		assert.Equal(t, []bridge.EventType{bridge.EventCancelled, bridge.EventSucceeded}, w.webhookTypes(), "and so does the merchant")
		assert.Equal(t, int64(1), w.svc.Stats().Late)
	})
	t.Run("accept after expiry", func(t *testing.T) {
		w := newWorld(t)
		s := w.create(5 * time.Minute)
		w.clock.Advance(5*time.Minute + time.Second)
		w.svc.Sweep(w.ctx)
		require.Equal(t, bridge.StatusExpired, w.get(s.ID).Status)

		w.complete(s.Current().SessionGUID, bridge.DecisionAccept)
		w.clock.Advance(11 * time.Second)
		w.svc.Sweep(w.ctx)
		w.paidLate(t, s.ID)
		assert.Equal(t, []bridge.EventType{bridge.EventExpired, bridge.EventSucceeded}, w.webhookTypes())
	})
	t.Run("digital link paid a day after the session expired", func(t *testing.T) {
		w := newWorld(t)
		s := w.createDigital(t, 5*time.Minute)
		w.clock.Advance(5*time.Minute + time.Second)
		w.svc.Sweep(w.ctx)
		expired := w.get(s.ID)
		require.Equal(t, bridge.StatusExpired, expired.Status)
		assert.Equal(t, s.Current().StartedAt.Add(bridge.DigitalLinkLifetime+15*time.Minute), expired.WatchUntil,
			"the texted link is payable for 72 hours: watched until then and VCC's retention")

		// Well past VCC's retention of the session's end here, the customer pays on the link.
		w.clock.Advance(24 * time.Hour)
		w.svc.Sweep(w.ctx)
		require.Equal(t, bridge.StatusExpired, w.get(s.ID).Status)
		w.complete(s.Current().SessionGUID, bridge.DecisionAccept)
		w.clock.Advance(time.Minute + time.Second) // links are asked about once a minute by then
		w.svc.Sweep(w.ctx)
		w.paidLate(t, s.ID)
		assert.Equal(t, []bridge.EventType{bridge.EventExpired, bridge.EventSucceeded}, w.webhookTypes())
	})
	t.Run("digital link watch ends when the link does", func(t *testing.T) {
		w := newWorld(t)
		s := w.createDigital(t, 0)
		_, err := w.svc.CancelSession(w.ctx, sc, s.ID)
		require.NoError(t, err)
		for range 3 { // the stub ends the link after 72 hours, then purges it
			w.clock.Advance(25 * time.Hour)
			w.svc.Sweep(w.ctx)
		}
		got := w.get(s.ID)
		assert.Equal(t, bridge.StatusCancelled, got.Status)
		assert.False(t, got.Open(), "nothing left to watch once the link ended unpaid")
		assert.Equal(t, []bridge.EventType{bridge.EventCancelled}, w.webhookTypes())
	})
	t.Run("accept reported by webhook after cancel", func(t *testing.T) {
		w := newWorld(t)
		s := w.create(0)
		_, err := w.svc.CancelSession(w.ctx, sc, s.ID)
		require.NoError(t, err)
		w.complete(s.Current().SessionGUID, bridge.DecisionAccept)
		require.NoError(t, w.svc.ProviderNotified(w.ctx, "acme", s.Current().SessionGUID))
		assert.Equal(t, bridge.StatusSucceeded, w.get(s.ID).Status)
	})
	t.Run("reject after cancel changes nothing", func(t *testing.T) {
		w := newWorld(t)
		s := w.create(0)
		_, err := w.svc.CancelSession(w.ctx, sc, s.ID)
		require.NoError(t, err)
		w.complete(s.Current().SessionGUID, bridge.DecisionReject)
		w.clock.Advance(11 * time.Second)
		w.svc.Sweep(w.ctx)
		got := w.get(s.ID)
		assert.Equal(t, bridge.StatusCancelled, got.Status)
		assert.Nil(t, got.Result)
		assert.False(t, got.Open(), "the provider session is over: no longer watched")
		assert.Equal(t, []bridge.EventType{bridge.EventCancelled}, w.webhookTypes())
	})
	t.Run("the watch ends with VCC's retention", func(t *testing.T) {
		w := newWorld(t)
		s := w.create(0)
		_, err := w.svc.CancelSession(w.ctx, sc, s.ID)
		require.NoError(t, err)
		w.clock.Advance(16 * time.Minute)
		w.svc.Sweep(w.ctx)
		assert.False(t, w.get(s.ID).Open())
		open, err := w.store.OpenSessions(w.ctx)
		require.NoError(t, err)
		assert.Empty(t, open)
	})
	t.Run("a payment in the watch's last seconds is asked about when the watch ends", func(t *testing.T) {
		w := newWorld(t)
		s := w.create(0)
		_, err := w.svc.CancelSession(w.ctx, sc, s.ID)
		require.NoError(t, err)
		w.clock.Advance(15*time.Minute - 5*time.Second)
		w.svc.Sweep(w.ctx) // asks VCC: still running
		require.Equal(t, bridge.StatusCancelled, w.get(s.ID).Status)
		w.complete(s.Current().SessionGUID, bridge.DecisionAccept)
		w.clock.Advance(5 * time.Second)
		w.svc.Sweep(w.ctx) // the watch ends: VCC still holds the result for 15 minutes
		got := w.paidLate(t, s.ID)
		assert.False(t, got.Open(), "nothing left to watch")
	})
	t.Run("the watch survives a restart of the process", func(t *testing.T) {
		w := newWorld(t)
		s := w.create(0)
		_, err := w.svc.CancelSession(w.ctx, sc, s.ID)
		require.NoError(t, err)
		w.restartService()
		w.complete(s.Current().SessionGUID, bridge.DecisionAccept)
		w.clock.Advance(11 * time.Second)
		w.svc.Sweep(w.ctx)
		assert.Equal(t, bridge.StatusSucceeded, w.get(s.ID).Status)
	})
}

// TestBrowserRestartsAreRationed: one socket reporting refused frames and asking for restarts
// as fast as it can makes one new attempt, not maxAttempts of them.
func TestBrowserRestartsAreRationed(t *testing.T) {
	w := newWorld(t)
	s := w.create(0)
	w.clock.Advance(bridge.DefaultBrowserRestartEvery)
	for i := range 100 {
		if i%2 == 0 {
			_, _ = w.svc.FrameRefused(w.ctx, agent1, s.ID, w.get(s.ID).Current().Number)
		} else {
			_, _ = w.svc.RestartFromAgent(w.ctx, agent1, s.ID)
		}
	}
	got := w.get(s.ID)
	assert.Equal(t, bridge.StatusActive, got.Status)
	assert.Len(t, got.Attempts, 2, "one new attempt")
	_, err := w.svc.RestartFromAgent(w.ctx, agent1, s.ID)
	assert.Equal(t, bridge.CodeRateLimitExceeded, bridge.ErrorCode(err))
}

// TestReconcile: the report lists exactly the attempts whose VCC result disagrees with their
// session, and nothing once the lifecycle has caught up.
func TestReconcile(t *testing.T) {
	sc := bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest}
	kinds := func(w *world) []string {
		t.Helper()
		found, err := w.svc.Reconcile(w.ctx, start)
		require.NoError(t, err)
		var out []string
		for _, d := range found {
			out = append(out, d.Kind)
		}
		return out
	}
	w := newWorld(t)
	paid := w.create(0)
	w.complete(paid.Current().SessionGUID, bridge.DecisionAccept)
	declined := w.create(0)
	w.complete(declined.Current().SessionGUID, bridge.DecisionReject)
	w.clock.Advance(3 * time.Second)
	w.svc.Sweep(w.ctx)
	require.Equal(t, bridge.StatusSucceeded, w.get(paid.ID).Status)
	require.Equal(t, bridge.StatusFailed, w.get(declined.ID).Status)
	assert.Empty(t, kinds(w), "the record agrees with VCC")

	late := w.create(0)
	_, err := w.svc.CancelSession(w.ctx, sc, late.ID)
	require.NoError(t, err)
	w.complete(late.Current().SessionGUID, bridge.DecisionAccept)
	assert.Equal(t, []string{bridge.DiscrepancyPaidNotRecorded}, kinds(w), "paid at VCC, cancelled here")
	w.clock.Advance(11 * time.Second)
	w.svc.Sweep(w.ctx)
	assert.Empty(t, kinds(w), "the late payment is recorded")

	twice := w.create(0)
	first := twice.Current().SessionGUID
	w.clock.Advance(bridge.DefaultBrowserRestartEvery)
	_, err = w.svc.RestartSession(w.ctx, sc, twice.ID)
	require.NoError(t, err)
	w.complete(w.get(twice.ID).Current().SessionGUID, bridge.DecisionAccept)
	w.clock.Advance(3 * time.Second)
	w.svc.Sweep(w.ctx)
	require.Equal(t, bridge.StatusSucceeded, w.get(twice.ID).Status)
	w.complete(first, bridge.DecisionAccept)
	assert.Equal(t, []string{bridge.DiscrepancyPaidTwice}, kinds(w), "the customer paid on both pages")
}

// recordingProvider passes calls to the real VCC client and keeps every create request.
type recordingProvider struct {
	bridge.PaymentProvider
	creates []bridge.ProviderRequest
}

func (p *recordingProvider) CreateSession(ctx context.Context, m *bridge.Merchant, req *bridge.ProviderRequest) (*bridge.ProviderSession, error) {
	p.creates = append(p.creates, *req)
	return p.PaymentProvider.CreateSession(ctx, m, req)
}

// TestCustomerSealedAtRest: the customer's personal data never reaches the data file in clear,
// yet a restart (a new VCC session) still sends it to VCC.
func TestCustomerSealedAtRest(t *testing.T) {
	w := newWorld(t)
	rec := &recordingProvider{PaymentProvider: vcc.New(vcc.Options{Clock: w.clock, RequestTimeout: 2 * time.Second, MaxRetries: -1})}
	svc, err := bridge.NewService(bridge.ServiceOptions{Store: w.store, Merchants: bridge.StaticMerchants{w.merchant},
		Publisher: w.hub, Keyring: w.keyring, Clock: w.clock, Provider: rec})
	require.NoError(t, err)
	customer := bridge.Customer{FirstName: "Ada", Surname: "Lovelace", Email: "ada.lovelace@example.com", Phone: "+447700900123",
		Street1: "12 St James's Square", City: "Westminster", Postcode: "SW1Y 4JH"}
	s, err := svc.CreateSession(w.ctx, &bridge.CreateSessionInput{MerchantID: "acme", Mode: bridge.ModeTest,
		AgentID: "agent-1", Amount: 1240, Currency: "GBP", Customer: customer})
	require.NoError(t, err)
	w.clock.Advance(bridge.DefaultBrowserRestartEvery)
	_, err = svc.RestartSession(w.ctx, bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest}, s.ID)
	require.NoError(t, err)

	require.Len(t, rec.creates, 2)
	assert.Equal(t, customer, rec.creates[0].Customer)
	assert.Equal(t, customer, rec.creates[1].Customer, "the restart's VCC request still has the customer")
	stored := w.get(s.ID)
	assert.Equal(t, bridge.Customer{}, stored.Customer, "read back sealed")
	assert.NotEmpty(t, stored.SealedCustomer)

	require.NoError(t, w.store.Close())
	data, err := os.ReadFile(w.storePath)
	require.NoError(t, err)
	for _, v := range []string{customer.Surname, customer.Email, customer.Phone, customer.Street1, customer.City, customer.Postcode} {
		assert.NotContains(t, string(data), v, "customer data in clear in the data file")
	}
}

// TestPurgedWhileAway: VCC purges a session 15 minutes after it ends. If its end went unseen
// (paybridge was away longer than that), a payment on it may have been purged with it: the
// session fails with transaction_verification_failed, telling the agent not to take the payment
// again, and no new provider session is started.
func TestPurgedWhileAway(t *testing.T) {
	w := newWorld(t)
	s := w.create(time.Hour)
	creates := w.stub.Stats().CreateSession
	_, err := w.stub.Expire(s.Current().SessionGUID)
	require.NoError(t, err)
	w.clock.Advance(16 * time.Minute) // no sweep meanwhile: paybridge was away
	w.svc.Sweep(w.ctx)

	got := w.get(s.ID)
	assert.Equal(t, bridge.StatusFailed, got.Status)
	require.NotNil(t, got.Failure)
	assert.Equal(t, bridge.CodeTransactionVerificationFailed, got.Failure.Code)
	assert.Contains(t, got.Failure.Error, "before taking it again")
	assert.Len(t, got.Attempts, 1, "no new attempt")
	assert.Equal(t, creates, w.stub.Stats().CreateSession, "no second provider session")
	assert.Equal(t, []bridge.EventType{bridge.EventFailed}, w.webhookTypes())
}

// TestAbandonedCreate: a process that died while VCC was asked to start a session leaves it
// pending. The process after it fails it once pendingGrace has passed, unverified: VCC may have
// opened a page or texted a link paybridge never learned the GUID of; it is never restarted, and
// reconciliation lists it for the back office.
func TestAbandonedCreate(t *testing.T) {
	w := newWorld(t)
	now := w.clock.Now().UTC()
	id := bridge.NewSessionID(bridge.ModeTest)
	require.NoError(t, w.store.CreateSession(w.ctx, &bridge.Session{ID: id, MerchantID: "acme", Mode: bridge.ModeTest,
		AgentID: "agent-1", Channel: bridge.ChannelAgentAssist, Amount: 1240, Currency: "GBP", Reference: "INV-77",
		Status: bridge.StatusPending, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(30 * time.Minute)}))
	w.restartService() // the process that wrote it is gone
	creates := w.stub.Stats().CreateSession

	w.svc.Sweep(w.ctx)
	require.Equal(t, bridge.StatusPending, w.get(id).Status, "within pendingGrace its create may still be answered")
	w.clock.Advance(2*time.Minute + time.Second)
	w.svc.Sweep(w.ctx)

	got := w.get(id)
	assert.Equal(t, bridge.StatusFailed, got.Status)
	require.NotNil(t, got.Failure)
	assert.Equal(t, bridge.CodeTransactionVerificationFailed, got.Failure.Code)
	assert.Contains(t, got.Failure.Error, "reference INV-77")
	assert.Empty(t, got.Attempts, "never restarted")
	assert.Equal(t, creates, w.stub.Stats().CreateSession, "no provider session started for it")

	found, err := w.svc.Reconcile(w.ctx, now.Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, bridge.DiscrepancyUnverified, found[0].Kind)
	assert.Equal(t, id, found[0].SessionID)
}
