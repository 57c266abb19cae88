package web_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// TestKeyCannotRevokeItself (issue 13 item 2): DELETE of the caller's own key is refused with a
// fix saying to use another key or roll it; another secret key may revoke it.
func TestKeyCannotRevokeItself(t *testing.T) {
	h := newHarness(t)
	made := h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "secret", "mode": "test"})
	require.Equal(t, http.StatusCreated, made.Status, "%s", made.Body)
	k := made.JSON(t)
	id, plain := k["id"].(string), k["key"].(string)

	m := assertErrorEnvelope(t, h.do("DELETE", "/api/merchants/api-keys/"+id, plain, nil), http.StatusBadRequest, bridge.CodeValidationError)
	assert.Contains(t, m["error"], "cannot revoke itself")
	assert.Equal(t, "id", m["param"])
	assert.Contains(t, m["fix"], "/api/merchants/api-keys/"+id+"/roll")
	require.Equal(t, http.StatusOK, h.do("GET", "/v1/sessions", plain, nil).Status, "the key still works")

	require.Equal(t, http.StatusOK, h.do("DELETE", "/api/merchants/api-keys/"+id, h.secretKey, nil).Status, "another key may revoke it")
	assertErrorEnvelope(t, h.do("GET", "/v1/sessions", plain, nil), http.StatusUnauthorized, bridge.CodeAuthKeyExpired)
	h.logs.AssertNoSecrets(t, plain, h.secretKey)
}

// TestPendingMerchantAskingForLiveKey: a merchant under onboarding review asking, with its test
// key, for a live key hears merchant_not_onboarded (what it can act on), not that test keys
// cannot manage live ones; an approved merchant's test key still hears the latter.
func TestPendingMerchantAskingForLiveKey(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) {
		c.others = append(c.others,
			&bridge.Merchant{ID: "review", Status: bridge.MerchantPendingApproval},
			&bridge.Merchant{ID: "refused", Status: bridge.MerchantDenied})
	})
	tests := []struct {
		merchant string
		key      func() string
		status   int
		code     bridge.Code
	}{
		{"review", func() string { return storedKey(t, h, "review", bridge.KeySecret, bridge.ModeTest) }, http.StatusForbidden, bridge.CodeMerchantNotOnboarded},
		{"refused", func() string { return storedKey(t, h, "refused", bridge.KeySecret, bridge.ModeTest) }, http.StatusForbidden, bridge.CodeMerchantNotOnboarded},
		{"acme", func() string { return h.secretKey }, http.StatusForbidden, bridge.CodeAuthKeyTypeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.merchant, func(t *testing.T) {
			m := assertErrorEnvelope(t, h.do("POST", "/api/merchants/api-keys", tt.key(), map[string]any{"type": "secret", "mode": "live"}), tt.status, tt.code)
			if tt.code == bridge.CodeMerchantNotOnboarded {
				assert.Contains(t, m["error"], tt.merchant)
			}
		})
	}
	// Test keys stay self-serve for the pending merchant.
	made := h.do("POST", "/api/merchants/api-keys", storedKey(t, h, "review", bridge.KeySecret, bridge.ModeTest), map[string]any{"type": "publishable", "mode": "test"})
	assert.Equal(t, http.StatusCreated, made.Status, "%s", made.Body)
}

// TestRolledKeyManagingKeysSaysRolled: a rolled key managing keys, in its grace window and after
// it, is told it was rolled and when, and which key replaced it; not merely that it expired.
func TestRolledKeyManagingKeysSaysRolled(t *testing.T) {
	h := newHarness(t)
	made := h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "secret", "mode": "test"}).JSON(t)
	h.clock.Advance(time.Minute)
	rolledAt := h.clock.Now().UTC()
	rolled := h.do("POST", "/api/merchants/api-keys/"+made["id"].(string)+"/roll", h.secretKey, map[string]any{"graceSeconds": 3600})
	require.Equal(t, http.StatusCreated, rolled.Status, "%s", rolled.Body)
	successor := rolled.JSON(t)["id"].(string)
	oldKey := made["key"].(string)

	for _, phase := range []struct {
		name    string
		advance time.Duration
		says    string
	}{
		{"in its grace window", 0, "until " + rolledAt.Add(time.Hour).Format(time.RFC3339)},
		{"after it", time.Hour, "grace window has ended (at " + rolledAt.Add(time.Hour).Format(time.RFC3339) + ")"},
	} {
		t.Run(phase.name, func(t *testing.T) {
			h.clock.Advance(phase.advance)
			m := assertErrorEnvelope(t, h.do("POST", "/api/merchants/api-keys", oldKey, map[string]any{"type": "secret", "mode": "test"}),
				http.StatusUnauthorized, bridge.CodeAuthKeyExpired)
			assert.Contains(t, m["error"], "was rolled at "+rolledAt.Format(time.RFC3339))
			assert.Contains(t, m["error"], phase.says)
			assert.NotContains(t, m["error"], "expired")
			assert.Contains(t, m["fix"], successor)
		})
	}
	h.logs.AssertNoSecrets(t, oldKey)
}
