package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// TestFullFlow is the mission's main path over a real socket against the running server: handoff,
// the provider page through the form POST, expiry refused by the provider, the browser's report,
// a restart with new tokens, older reports ignored, and a verified ACCEPT.
func TestFullFlow(t *testing.T) {
	h := newHarness(t, unrationed)
	agent, ready := h.connect("agent-7")
	var snap struct{ Sessions []any }
	require.NoError(t, json.Unmarshal(ready.Data, &snap))
	assert.Empty(t, snap.Sessions)

	created := h.createSession("agent-7", nil)
	assert.Equal(t, bridge.StatusActive, created.Status)
	assert.Equal(t, 1, created.Attempt)
	require.NotNil(t, created.VCC)

	first := agent.handoff()
	assert.Equal(t, created.ID, first.SessionID)
	assert.Equal(t, 1, first.Attempt)
	require.NotEmpty(t, first.IframeURL)
	require.NotEmpty(t, first.FormFields[bridge.FieldBearerToken])
	require.NotEmpty(t, first.FormFields[bridge.FieldRefreshToken])

	// The widget's form POST shows the capture page, framed (no X-Frame-Options).
	page := postForm(t, first)
	assert.Equal(t, http.StatusOK, page.StatusCode)
	assert.Empty(t, page.Header.Get("X-Frame-Options"))
	assert.Contains(t, body(t, page), `data-pcipal-state="capture"`)

	// The provider session expires: the same POST is now refused with X-Frame-Options: deny.
	h.control("POST", "/_control/sessions/"+created.VCC.SessionGUID+"/expire", nil)
	refused := postForm(t, first)
	assert.Equal(t, "deny", strings.ToLower(refused.Header.Get("X-Frame-Options")))

	// The browser reports it; paybridge restarts with a new provider session and new tokens.
	agent.send(map[string]any{"type": "frame.refused", "sessionId": created.ID, "attempt": 1})
	agent.next("session.restarting")
	second := agent.handoff()
	assert.Equal(t, 2, second.Attempt)
	assert.NotEqual(t, first.IframeURL, second.IframeURL)
	assert.NotEqual(t, first.FormFields[bridge.FieldBearerToken], second.FormFields[bridge.FieldBearerToken])
	assert.NotEqual(t, first.FormFields[bridge.FieldRefreshToken], second.FormFields[bridge.FieldRefreshToken])
	page2 := postForm(t, second)
	assert.Empty(t, page2.Header.Get("X-Frame-Options"))
	assert.Contains(t, body(t, page2), `data-pcipal-state="capture"`)

	// A late report about attempt 1 restarts nothing: that socket evidently missed attempt 2,
	// so it gets attempt 2's handoff again; then the reply to the message sent after it (the
	// socket handles messages in order), with no restart in between.
	agent.send(map[string]any{"type": "frame.refused", "sessionId": created.ID, "attempt": 1})
	agent.send(map[string]any{"type": "no.such.message"})
	again := agent.handoff()
	assert.Equal(t, 2, again.Attempt)
	assert.Equal(t, second.FormFields, again.FormFields)
	agent.next("error")
	assert.Equal(t, 2, h.getSession(created.ID).Attempt)

	// The customer pays; the poll (due after the poll interval) learns and verifies it.
	current := h.getSession(created.ID)
	h.control("POST", "/_control/sessions/"+current.VCC.SessionGUID+"/complete", map[string]any{"decision": "ACCEPT"})
	h.clock.Advance(3 * time.Second)
	done := agent.next("session.succeeded")
	assert.Equal(t, created.ID, done.SessionID)

	got := h.getSession(created.ID)
	assert.Equal(t, bridge.StatusSucceeded, got.Status)
	require.NotNil(t, got.Result)
	assert.Equal(t, bridge.DecisionAccept, got.Result.Decision)
	assert.NotEmpty(t, got.Result.TransactionID)
	assert.Nil(t, got.Failure)

	// Nothing secret reached the logs: keys, the agent token, provider tokens, the VCC secret.
	h.logs.AssertNoSecrets(t, h.secretKey, h.publishableKey, agent.token, h.merchant.VCC.ClientSecret,
		first.FormFields[bridge.FieldBearerToken], first.FormFields[bridge.FieldRefreshToken],
		second.FormFields[bridge.FieldBearerToken], second.FormFields[bridge.FieldRefreshToken])
}

// TestOutcomes covers each terminal path and what the agent and the API see.
func TestOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		create   map[string]any // extra create fields
		act      func(h *harness, s bridge.SessionView)
		event    string
		status   bridge.Status
		failure  bridge.Code
		decision string
	}{
		{
			name: "reject is a charge failure",
			act: func(h *harness, s bridge.SessionView) {
				h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", map[string]any{"decision": "REJECT"})
				h.clock.Advance(3 * time.Second)
			},
			event: "session.failed", status: bridge.StatusFailed, failure: bridge.CodeProviderChargeFailed, decision: "REJECT",
		},
		{
			name: "provider error is a charge failure",
			act: func(h *harness, s bridge.SessionView) {
				h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", map[string]any{"decision": "ERROR"})
				h.clock.Advance(3 * time.Second)
			},
			event: "session.failed", status: bridge.StatusFailed, failure: bridge.CodeProviderChargeFailed, decision: "ERROR",
		},
		{
			name: "amount mismatch fails verification",
			act: func(h *harness, s bridge.SessionView) {
				h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", map[string]any{"decision": "ACCEPT", "amount": "999"})
				h.clock.Advance(3 * time.Second)
			},
			event: "session.failed", status: bridge.StatusFailed, failure: bridge.CodeTransactionVerificationFailed, decision: "ACCEPT",
		},
		{
			name:   "ttl passed expires",
			create: map[string]any{"expiresIn": 600},
			act:    func(h *harness, _ bridge.SessionView) { h.clock.Advance(11 * time.Minute) },
			event:  "session.expired", status: bridge.StatusExpired,
		},
		{
			// paybridge saw nothing for 31 minutes (the clock jumps): the attempt's PCI Pal session
			// ended at 15 and VCC purged it at 30, so whether the customer paid is gone with it.
			name:  "ttl passed after VCC purged an attempt it never saw end fails unverified",
			act:   func(h *harness, _ bridge.SessionView) { h.clock.Advance(31 * time.Minute) },
			event: "session.failed", status: bridge.StatusFailed, failure: bridge.CodeTransactionVerificationFailed,
		},
		{
			name: "cancel",
			act: func(h *harness, s bridge.SessionView) {
				r := h.do("POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil)
				require.Equal(h.t, http.StatusOK, r.Status, "%s", r.Body)
				assert.Equal(h.t, bridge.StatusCancelled, r.Session(h.t).Status)
			},
			event: "session.cancelled", status: bridge.StatusCancelled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			agent, _ := h.connect("agent-1")
			s := h.createSession("agent-1", tt.create)
			agent.handoff()
			tt.act(h, s)
			ev := agent.next(tt.event)
			var data bridge.SessionEventData
			require.NoError(t, json.Unmarshal(ev.Data, &data))
			assert.Equal(t, tt.status, data.Session.Status)
			assert.Equal(t, tt.failure, data.Code)

			got := h.getSession(s.ID)
			assert.Equal(t, tt.status, got.Status)
			if tt.failure != "" {
				require.NotNil(t, got.Failure)
				assert.Equal(t, tt.failure, got.Failure.Code)
				assert.NotEmpty(t, got.Failure.Error)
				assert.NotEmpty(t, data.Fix)
			} else {
				assert.Nil(t, got.Failure)
			}
			if tt.decision != "" {
				require.NotNil(t, got.Result)
				assert.Equal(t, tt.decision, got.Result.Decision)
			}
		})
	}
}

// TestTerminalSessionsRefuseOperations: a second cancel is a 409 naming what is allowed, and
// operations on an expired session are 410.
func TestTerminalSessionsRefuseOperations(t *testing.T) {
	h := newHarness(t)
	s := h.createSession("agent-1", nil)
	require.Equal(t, http.StatusOK, h.do("POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil).Status)
	again := h.do("POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil)
	m := assertErrorEnvelope(t, again, http.StatusConflict, bridge.CodeSessionWrongState)
	assert.Contains(t, m["fix"], "cancelled")
	restart := h.do("POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil)
	assertErrorEnvelope(t, restart, http.StatusConflict, bridge.CodeSessionWrongState)

	e := h.createSession("agent-1", map[string]any{"expiresIn": 300})
	h.clock.Advance(301 * time.Second)
	assertErrorEnvelope(t, h.do("POST", "/v1/sessions/"+e.ID+"/cancel", h.secretKey, nil), http.StatusGone, bridge.CodeSessionExpired)
	assertErrorEnvelope(t, h.do("POST", "/v1/sessions/"+e.ID+"/restart", h.secretKey, nil), http.StatusGone, bridge.CodeSessionExpired)
	assert.Equal(t, bridge.StatusExpired, h.getSession(e.ID).Status, "reading an expired session shows it, with its final status")
}

// TestReconnectAndSecondTab: every socket of the agent gets every event, a reconnect gets the
// current handoff in its snapshot, and other agents get nothing.
func TestReconnectAndSecondTab(t *testing.T) {
	h := newHarness(t)
	tab1, _ := h.connect("agent-1")
	tab2, _ := h.connect("agent-1")
	other, _ := h.connect("agent-2")

	s := h.createSession("agent-1", nil)
	h1, h2 := tab1.handoff(), tab2.handoff()
	assert.Equal(t, h1.FormFields, h2.FormFields)
	assert.Equal(t, s.ID, h2.SessionID)

	reloaded, ready := h.connect("agent-1")
	var snap bridge.ReadyData
	require.NoError(t, json.Unmarshal(ready.Data, &snap))
	require.Len(t, snap.Sessions, 1)
	require.NotNil(t, snap.Sessions[0].Handoff)
	assert.Equal(t, s.ID, snap.Sessions[0].Session.ID)
	assert.Equal(t, h1.IframeURL, snap.Sessions[0].Handoff.IframeURL)
	assert.Equal(t, h1.FormFields, snap.Sessions[0].Handoff.FormFields, "the reconnect gets the current tokens")

	// A restart reaches all three of agent-1's sockets and none of agent-2's: agent-2's next event
	// is the reply to its own message.
	require.Equal(t, http.StatusOK, h.do("POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil).Status)
	for _, sock := range []*agentSocket{tab1, tab2, reloaded} {
		sock.next("session.restarting")
		assert.Equal(t, 2, sock.handoff().Attempt)
	}
	other.send(map[string]any{"type": "ping?"})
	other.next("error")
}

// TestRestartTriggers covers the restart triggers not in the full flow: a reconnect after the
// provider lifetime, VCC reporting the provider session over, and the API.
func TestRestartTriggers(t *testing.T) {
	t.Run("reconnect after the provider lifetime restarts first", func(t *testing.T) {
		h := newHarness(t)
		s := h.createSession("agent-1", map[string]any{"expiresIn": 3600})
		h.clock.Advance(16 * time.Minute)
		_, ready := h.connect("agent-1")
		var snap bridge.ReadyData
		require.NoError(t, json.Unmarshal(ready.Data, &snap))
		require.Len(t, snap.Sessions, 1)
		assert.Equal(t, 2, snap.Sessions[0].Handoff.Attempt)
		assert.Equal(t, 2, h.getSession(s.ID).Attempt)
	})
	t.Run("vcc reports the provider session ended", func(t *testing.T) {
		h := newHarness(t)
		agent, _ := h.connect("agent-1")
		s := h.createSession("agent-1", nil)
		agent.handoff()
		h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/expire", nil)
		h.clock.Advance(3 * time.Second)
		var restarting bridge.SessionEventData
		require.NoError(t, json.Unmarshal(agent.next("session.restarting").Data, &restarting))
		assert.Equal(t, string(bridge.EndProviderExpired), restarting.Reason)
		assert.Equal(t, 2, agent.handoff().Attempt)
	})
	t.Run("api restart, and never while the customer is keying", func(t *testing.T) {
		h := newHarness(t)
		s := h.createSession("agent-1", nil)
		r := h.do("POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		v := r.Session(t)
		assert.Equal(t, 2, v.Attempt)
		h.control("POST", "/_control/sessions/"+v.VCC.SessionGUID+"/keying", nil)
		refused := h.do("POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil)
		m := assertErrorEnvelope(t, refused, http.StatusConflict, bridge.CodeSessionWrongState)
		assert.Contains(t, m["error"], "keying")
		assert.Equal(t, 2, h.getSession(s.ID).Attempt)
	})
}

// TestConcurrentTriggersMakeOneAttempt: many reports about the same expired attempt, from two
// tabs and the poller at once, start exactly one new provider session.
func TestConcurrentTriggersMakeOneAttempt(t *testing.T) {
	h := newHarness(t)
	tab1, _ := h.connect("agent-1")
	tab2, _ := h.connect("agent-1")
	s := h.createSession("agent-1", nil)
	tab1.handoff()
	tab2.handoff()
	before := h.vcc.Stats().CreateSession
	h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/expire", nil)

	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		for _, tab := range []*agentSocket{tab1, tab2} {
			wg.Go(func() {
				_ = tab.write(map[string]any{"type": "frame.refused", "sessionId": s.ID, "attempt": 1})
			})
		}
	}
	h.clock.Advance(3 * time.Second) // the poller sees Expired too
	wg.Wait()
	tab1.next("session.restarting")
	assert.Equal(t, 2, tab1.handoff().Attempt)
	// Flush: the replies to a later message on each tab come after anything the reports caused.
	for _, tab := range []*agentSocket{tab1, tab2} {
		tab.send(map[string]any{"type": "flush"})
	}
	for {
		ev := <-tab1.events
		require.NotEqual(t, "session.restarting", ev.Type, "a second restart happened")
		if ev.Type == "error" {
			break
		}
	}
	assert.Equal(t, 2, h.getSession(s.ID).Attempt)
	assert.Equal(t, before+1, h.vcc.Stats().CreateSession, "exactly one new VCC session")
}

// TestRestartsExhausted: after maxAttempts the session fails with provider_attestation_failed,
// naming the native reason.
func TestRestartsExhausted(t *testing.T) {
	h := newHarness(t, unrationed, func(c *harnessConfig) { c.service.MaxAttempts = 2 })
	agent, _ := h.connect("agent-1")
	s := h.createSession("agent-1", nil)
	agent.handoff()
	agent.send(map[string]any{"type": "frame.refused", "sessionId": s.ID, "attempt": 1})
	agent.next("session.restarting")
	assert.Equal(t, 2, agent.handoff().Attempt)
	agent.send(map[string]any{"type": "frame.refused", "sessionId": s.ID, "attempt": 2})
	var failed bridge.SessionEventData
	require.NoError(t, json.Unmarshal(agent.next("session.failed").Data, &failed))
	assert.Equal(t, bridge.CodeProviderAttestationFailed, failed.Code)
	assert.Contains(t, failed.Error, "ATTESTATION_EXPIRED")

	got := h.getSession(s.ID)
	assert.Equal(t, bridge.StatusFailed, got.Status)
	require.NotNil(t, got.Failure)
	assert.Equal(t, bridge.CodeProviderAttestationFailed, got.Failure.Code)
	r := h.do("POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil)
	assertErrorEnvelope(t, r, http.StatusConflict, bridge.CodeSessionWrongState)
}

// TestReconnectWhileVCCHangs: an agent reconnecting after the provider lifetime waits for the
// restart only so long; with VCC hanging, it gets its snapshot as it was instead of waiting out
// VCC (here a 2-minute request timeout, far beyond the wait for the event).
func TestReconnectWhileVCCHangs(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.vcc.RequestTimeout = 2 * time.Minute })
	s := h.createSession("agent-1", map[string]any{"expiresIn": 3600})
	h.clock.Advance(16 * time.Minute)
	h.control("PUT", "/_control/faults", map[string]any{"create": "timeout"})
	_, ready := h.connect("agent-1")
	var snap bridge.ReadyData
	require.NoError(t, json.Unmarshal(ready.Data, &snap))
	require.Len(t, snap.Sessions, 1)
	assert.Equal(t, s.ID, snap.Sessions[0].Session.ID)
	assert.Equal(t, 1, snap.Sessions[0].Handoff.Attempt, "the restart gave up; the agent has what there is")
}
