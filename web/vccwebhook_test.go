package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/vcc/vccstub"
	"github.com/paybridge/paybridge/webhook"
)

const (
	vccHookClient = "vcc-acme"
	vccHookSecret = "vcc-hook-client-secret"
	vccHookSign   = "vcc-hook-signing-secret"
)

// TestVCCWebhookBearer: VCC (the stub) gets a token from /oauth/token and posts the outcome; the
// session succeeds from the webhook alone (the poller's clock never moves), after paybridge
// fetched and verified the status itself.
func TestVCCWebhookBearer(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) {
		c.merchant.VCCWebhook = bridge.VCCWebhookAuth{ClientID: vccHookClient, ClientSecret: vccHookSecret}
	})
	h.vcc.SetWebhook(&vccstub.WebhookTarget{URL: h.srv.URL + "/v1/webhooks/vcc", TokenURL: h.srv.URL + "/oauth/token",
		ClientID: vccHookClient, ClientSecret: vccHookSecret})
	agent, _ := h.connect("agent-1")
	s := h.createSession("agent-1", nil)
	agent.handoff()
	gets := h.vcc.Stats().GetSession
	h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", map[string]any{"decision": "ACCEPT"})
	agent.next("session.succeeded")
	assert.Equal(t, bridge.StatusSucceeded, h.getSession(s.ID).Status)
	assert.Greater(t, h.vcc.Stats().GetSession, gets, "the outcome was fetched from VCC, not taken from the body")
	require.Eventually(t, func() bool { return h.vcc.Stats().WebhooksSent == 1 }, eventWait, time.Millisecond)
	h.logs.AssertNoSecrets(t, vccHookSecret)
}

// TestVCCWebhookSignature: the HMAC alternative, a forged body, and a duplicate that changes
// nothing.
func TestVCCWebhookSignature(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.merchant.VCCWebhook.SigningSecret = vccHookSign })
	h.vcc.SetWebhook(&vccstub.WebhookTarget{URL: h.srv.URL + "/v1/webhooks/vcc", SigningSecret: vccHookSign})
	agent, _ := h.connect("agent-1")
	s := h.createSession("agent-1", nil)
	agent.handoff()
	h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", map[string]any{"decision": "REJECT"})
	agent.next("session.failed")

	status, err := json.Marshal(map[string]any{"sessionGuid": s.VCC.SessionGUID, "sessionState": "Finished",
		"paymentResultData": map[string]string{"decision": "ACCEPT"}})
	require.NoError(t, err)
	sig := webhook.Sign(status, h.clock.Now(), vccHookSign)
	dup := h.do("POST", "/v1/webhooks/vcc", "", string(status), webhook.Header, sig)
	assert.Equal(t, http.StatusOK, dup.Status, "%s", dup.Body)
	got := h.getSession(s.ID)
	assert.Equal(t, bridge.StatusFailed, got.Status, "a webhook body claiming ACCEPT changes nothing: VCC says REJECT")
	assert.Equal(t, "REJECT", got.Result.Decision)

	tampered := strings.Replace(string(status), "Finished", "Finishe", 1)
	assertErrorEnvelope(t, h.do("POST", "/v1/webhooks/vcc", "", tampered, webhook.Header, sig), http.StatusUnauthorized, bridge.CodeWebhookInvalidSignature)
	stale := webhook.Sign(status, h.clock.Now().Add(-time.Hour), vccHookSign)
	assertErrorEnvelope(t, h.do("POST", "/v1/webhooks/vcc", "", string(status), webhook.Header, stale), http.StatusUnauthorized, bridge.CodeWebhookInvalidSignature)
	assertErrorEnvelope(t, h.do("POST", "/v1/webhooks/vcc", "", string(status)), http.StatusUnauthorized, bridge.CodeWebhookMissingSignature)
}

// TestOAuthToken: the client-credentials grant for VCC, its failures, and that a token is only
// good for the webhook.
func TestOAuthToken(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) {
		c.merchant.VCCWebhook = bridge.VCCWebhookAuth{ClientID: vccHookClient, ClientSecret: vccHookSecret}
	})
	form := func(v url.Values) *response {
		return h.do("POST", "/oauth/token", "", v.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	}
	ok := form(url.Values{"grant_type": {"client_credentials"}, "client_id": {vccHookClient}, "client_secret": {vccHookSecret}})
	require.Equal(t, http.StatusOK, ok.Status, "%s", ok.Body)
	tok := ok.JSON(t)
	assert.Equal(t, "Bearer", tok["token_type"])
	assert.Equal(t, float64(3600), tok["expires_in"])
	token := tok["access_token"].(string)

	bad := form(url.Values{"grant_type": {"client_credentials"}, "client_id": {vccHookClient}, "client_secret": {"wrong"}})
	m := assertErrorEnvelope(t, bad, http.StatusUnauthorized, bridge.CodeWebhookInvalidSignature)
	assert.Equal(t, "invalid_client", m["error"], "OAuth clients read the error field")
	assertErrorEnvelope(t, form(url.Values{"grant_type": {"client_credentials"}}), http.StatusUnauthorized, bridge.CodeWebhookMissingSignature)
	assertErrorEnvelope(t, form(url.Values{"grant_type": {"password"}}), http.StatusBadRequest, bridge.CodeValidationError)

	// The webhook token is no API key, and it expires.
	assertErrorEnvelope(t, h.do("GET", "/v1/sessions", token, nil), http.StatusUnauthorized, bridge.CodeAuthInvalidKey)
	unknown := h.do("POST", "/v1/webhooks/vcc", token, `{"sessionGuid":"00000000-0000-0000-0000-000000000000"}`)
	assert.Equal(t, http.StatusOK, unknown.Status, "an unknown session is acknowledged and ignored")
	h.clock.Advance(time.Hour)
	assertErrorEnvelope(t, h.do("POST", "/v1/webhooks/vcc", token, `{"sessionGuid":"x"}`), http.StatusUnauthorized, bridge.CodeWebhookInvalidSignature)
	h.logs.AssertNoSecrets(t, vccHookSecret, token)
}
