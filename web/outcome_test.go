package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// chaseResult is a Chase Orbital flow's paymentResultData, with a card number a careless gateway
// put in it.
func chaseResult(amount string) map[string]any {
	return map[string]any{"paymentResultData": map[string]string{
		"ApprovalStatus": "1", "RespCode": "00", "TxRefNum": "5F0A1B2C3D", "Amount": amount, "Currency": "GBP",
		"CardNumber": "4111 1111 1111 1111",
	}}
}

// TestGatewayProfilesThroughTheAPI: result data is read through the merchant's gateway profile.
// A Chase Orbital result completes a session for a merchant whose flow is Chase; the same result
// for a CyberSource merchant is unreadable: the session fails with
// transaction_verification_failed, is not restarted, no second VCC session is made, and no
// card-number-like value reaches the session, the logs or the merchant webhook.
func TestGatewayProfilesThroughTheAPI(t *testing.T) {
	const card = "4111"
	t.Run("chase_orbital merchant", func(t *testing.T) {
		h := newHarness(t, func(c *harnessConfig) {
			c.merchant.VCC.Gateway, _ = bridge.BuiltinProfile(bridge.ProfileChaseOrbital)
		})
		agent, _ := h.connect("agent-1")
		s := h.createSession("agent-1", nil)
		agent.handoff()
		h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", chaseResult("1240"))
		h.clock.Advance(3 * time.Second)
		agent.next("session.succeeded")
		got := h.getSession(s.ID)
		assert.Equal(t, bridge.StatusSucceeded, got.Status)
		require.NotNil(t, got.Result)
		assert.Equal(t, bridge.DecisionAccept, got.Result.Decision)
		assert.Equal(t, "1", got.Result.GatewayStatus)
		assert.Equal(t, "00", got.Result.ReasonCode)
		assert.Equal(t, "5F0A1B2C3D", got.Result.TransactionID)
		assert.Empty(t, got.Result.Data, "a readable result keeps only its typed fields")
	})
	t.Run("cybersource merchant gets a Chase result", func(t *testing.T) {
		h := newHarness(t, func(c *harnessConfig) {
			c.merchant.Webhook = bridge.MerchantWebhook{URL: "https://crm.acme.test/hook", Secret: "whsec_test"}
		})
		agent, _ := h.connect("agent-1")
		s := h.createSession("agent-1", nil)
		agent.handoff()
		h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", chaseResult("1240"))
		h.clock.Advance(3 * time.Second)
		ev := agent.next("session.failed")
		var failed bridge.SessionEventData
		require.NoError(t, json.Unmarshal(ev.Data, &failed))
		assert.Equal(t, bridge.CodeTransactionVerificationFailed, failed.Code)
		assert.Contains(t, failed.Error, "Do not take it again", "the agent is told not to take the payment again")

		r := h.do("GET", "/v1/sessions/"+s.ID, h.secretKey, nil)
		require.Equal(t, http.StatusOK, r.Status)
		got := r.Session(t)
		assert.Equal(t, bridge.StatusFailed, got.Status)
		require.NotNil(t, got.Failure)
		assert.Equal(t, bridge.CodeTransactionVerificationFailed, got.Failure.Code)
		assert.Equal(t, 1, got.Attempt, "not restarted")
		require.NotNil(t, got.Result)
		assert.Equal(t, bridge.DecisionUnknown, got.Result.Decision)
		assert.Contains(t, got.Result.Data, "ApprovalStatus", "the raw keys are kept for reconciliation")
		assert.NotContains(t, string(r.Body), card, "no card number in the REST response")

		h.clock.Advance(time.Minute)
		assert.Equal(t, 1, h.vcc.Stats().CreateSession, "no second VCC session")
		assert.NotContains(t, h.logs.String(), card, "no card number in the logs")
		assert.NotContains(t, string(ev.Data), card, "nor in the agent event")
		due, err := h.store.DueOutbox(context.Background(), h.clock.Now().Add(time.Hour), 10)
		require.NoError(t, err)
		require.Len(t, due, 1, "the merchant webhook")
		assert.Contains(t, string(due[0].Payload), "transaction_verification_failed")
		assert.Contains(t, string(due[0].Payload), "Do not take it again")
		assert.NotContains(t, string(due[0].Payload), card, "no card number in the webhook")
	})
	t.Run("approved for another amount", func(t *testing.T) {
		h := newHarness(t, func(c *harnessConfig) {
			c.merchant.VCC.Gateway, _ = bridge.BuiltinProfile(bridge.ProfileChaseOrbital)
		})
		agent, _ := h.connect("agent-1")
		s := h.createSession("agent-1", nil)
		agent.handoff()
		h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", chaseResult("124"))
		h.clock.Advance(3 * time.Second)
		agent.next("session.failed")
		got := h.getSession(s.ID)
		require.NotNil(t, got.Failure)
		assert.Equal(t, bridge.CodeTransactionVerificationFailed, got.Failure.Code)
	})
}

// TestLatePaymentThroughTheAPI: a payment the customer makes after the merchant cancelled is
// recorded: the session becomes succeeded with result.late, and the agent is told.
func TestLatePaymentThroughTheAPI(t *testing.T) {
	h := newHarness(t)
	agent, _ := h.connect("agent-1")
	s := h.createSession("agent-1", nil)
	agent.handoff()
	r := h.do("POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil)
	require.Equal(t, http.StatusOK, r.Status, "cancel: %s", r.Body)
	agent.next("session.cancelled")

	h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", map[string]any{"decision": "ACCEPT"})
	h.clock.Advance(11 * time.Second)
	agent.next("session.succeeded")
	got := h.getSession(s.ID)
	assert.Equal(t, bridge.StatusSucceeded, got.Status)
	require.NotNil(t, got.Result)
	assert.True(t, got.Result.Late)
}

// TestSocketRestartFlood: a socket sending 100 session.restart messages in a second makes at most
// one new attempt.
func TestSocketRestartFlood(t *testing.T) {
	h := newHarness(t)
	agent, _ := h.connect("agent-1")
	s := h.createSession("agent-1", nil)
	agent.handoff()
	h.clock.Advance(bridge.DefaultBrowserRestartEvery)
	for range 100 {
		require.NoError(t, agent.write(map[string]any{"type": "session.restart", "sessionId": s.ID}))
	}
	// The socket answers messages in order: once an unknown message is answered, every restart
	// before it was handled (or dropped by the socket's message rate).
	deadline := time.Now().Add(eventWait)
	for answered := false; !answered; {
		require.True(t, time.Now().Before(deadline), "the socket never answered the marker")
		require.NoError(t, agent.write(map[string]any{"type": "flush.marker"}))
		wait := time.After(200 * time.Millisecond)
	drain:
		for {
			select {
			case ev := <-agent.events:
				if ev.Type == "error" && strings.Contains(string(ev.Data), "flush.marker") {
					answered = true
					break drain
				}
			case <-wait:
				break drain
			}
		}
	}
	assert.Equal(t, 2, h.vcc.Stats().CreateSession, "one new attempt")
	assert.Equal(t, 2, h.getSession(s.ID).Attempt)
}

// TestSessionRefresh: a widget about to post an attempt's tokens again asks first: a young
// attempt comes back as it is, one past the provider lifetime is renewed before its tokens are
// posted anywhere.
func TestSessionRefresh(t *testing.T) {
	h := newHarness(t)
	agent, _ := h.connect("agent-1")
	s := h.createSession("agent-1", map[string]any{"expiresIn": 3600})
	first := agent.handoff()
	agent.send(map[string]any{"type": "session.refresh", "sessionId": s.ID, "attempt": 1})
	again := agent.handoff()
	assert.Equal(t, 1, again.Attempt)
	assert.Equal(t, first.FormFields, again.FormFields)

	h.clock.Advance(16 * time.Minute)
	agent.send(map[string]any{"type": "session.refresh", "sessionId": s.ID, "attempt": 1})
	agent.next("session.restarting")
	renewed := agent.handoff()
	assert.Equal(t, 2, renewed.Attempt)
	assert.NotEqual(t, first.FormFields, renewed.FormFields)
	assert.Equal(t, 2, agent.handoff().Attempt, "and the answer to this socket")
}

// TestAccountConfigurationZero: 0 is a real account configuration id (production flows use it):
// it reaches VCC, which answers for it, rather than being refused or taken as "not given".
func TestAccountConfigurationZero(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.merchant.VCC.AccountConfigurationIDs = []int{0, 1, 2} })
	r := h.do("POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP", "accountConfigurationId": 0})
	env := assertErrorEnvelope(t, r, http.StatusBadRequest, bridge.CodeValidationError)
	assert.Contains(t, env["error"], "configuration Id: 0", "VCC was asked for configuration 0 (the stub account has 1 and 2)")
	assert.Equal(t, "accountConfigurationId", env["param"])

	s := h.createSession("agent-1", map[string]any{"accountConfigurationId": 2})
	require.NotNil(t, s.AccountConfigurationID)
	assert.Equal(t, 2, *s.AccountConfigurationID)
}
