package web_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/vcc/vccstub"
	"github.com/paybridge/paybridge/web"
)

// TestVCCFailures: each documented VCC failure, produced by the stub through its control API,
// answers with the mapped code and status, quotes the upstream text, gives a fix for the person
// who can act, leaves a failed session for audit, and leaks no secret.
func TestVCCFailures(t *testing.T) {
	tests := []struct {
		name       string
		faults     vccstub.Faults
		status     int
		code       bridge.Code
		param      string
		upstream   string // the documented text, quoted in error
		fixMention string // who must act, as the fix says
		creates    int    // create requests VCC received
	}{
		{
			name: "invalid client credentials", faults: vccstub.Faults{Token: "invalid_client"},
			status: 422, code: bridge.CodeMerchantNotConfigured,
			upstream: "invalid_client", fixMention: "API Admin", creates: 0,
		},
		{
			name: "provider credentials wrong in the VCC account", faults: vccstub.Faults{Create: "invalid_client_key"},
			status: 422, code: bridge.CodeMerchantNotConfigured,
			upstream: "Provider's authorization endpoint returned error message 'invalid_client_key'", fixMention: "VCC support", creates: 1,
		},
		{
			name: "unknown account configuration", faults: vccstub.Faults{Create: "unknown_account_configuration"},
			status: 400, code: bridge.CodeValidationError, param: "accountConfigurationId",
			upstream: "Account configuration does not exists for account: sandbox, configuration Id: 1.", fixMention: "Vonage", creates: 1,
		},
		{
			name: "provider permissions", faults: vccstub.Faults{Create: "provider_permissions"},
			status: 422, code: bridge.CodeMerchantNotConfigured,
			upstream: "Provider's authorization endpoint returned error message 'invalid_client'/'invalid_client' for account name: sandbox, configuration id: 1", fixMention: "permission", creates: 1,
		},
		{
			name: "vcc unavailable, after retries", faults: vccstub.Faults{Create: "http_503"},
			status: 502, code: bridge.CodeProviderUnavailable, fixMention: "try again", creates: 4,
		},
		{
			// A create that timed out may have been made: it is not retried (no orphans).
			name: "vcc times out", faults: vccstub.Faults{Create: "timeout"},
			status: 502, code: bridge.CodeProviderUnavailable, fixMention: "try again", creates: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *harnessConfig) {
				c.vcc.RequestTimeout = 300 * time.Millisecond
				if tt.faults.Create == "timeout" {
					c.vcc.MaxRetries = 1
				}
			})
			h.control("PUT", "/_control/faults", tt.faults)
			r := h.do("POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"})
			m := assertErrorEnvelope(t, r, tt.status, tt.code)
			if tt.upstream != "" {
				assert.Contains(t, m["error"], tt.upstream)
			}
			assert.Contains(t, m["fix"], tt.fixMention)
			if tt.param != "" {
				assert.Equal(t, tt.param, m["param"])
			}
			assert.Equal(t, tt.creates, h.vcc.Stats().CreateSession)
			for _, secret := range []string{h.merchant.VCC.ClientSecret, h.secretKey} {
				assert.NotContains(t, string(r.Body), secret)
			}

			// The failed attempt is kept, failed, with the same code.
			list := h.do("GET", "/v1/sessions?status=failed", h.secretKey, nil)
			require.Equal(t, http.StatusOK, list.Status)
			data := list.JSON(t)["data"].([]any)
			require.Len(t, data, 1)
			failure := data[0].(map[string]any)["failure"].(map[string]any)
			assert.Equal(t, string(tt.code), failure["code"])
			h.logs.AssertNoSecrets(t, h.merchant.VCC.ClientSecret, h.secretKey, h.publishableKey)
		})
	}
}

// TestConcurrentCreatesShareOneToken: 200 concurrent creates for one merchant cause exactly one
// token request at VCC.
func TestConcurrentCreatesShareOneToken(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) {
		c.server.PerKeyLimit = web.RateLimit{Limit: 1000, Window: time.Minute}
		c.vcc.RequestTimeout = 30 * time.Second // 200 creates at once on a loaded 2-core machine
	})
	const n = 200
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", h.srv.URL+"/v1/sessions", jsonBody(map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"}))
			req.Header.Set("Authorization", "Bearer "+h.secretKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				statuses[i] = resp.StatusCode
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for i, s := range statuses {
		require.Equal(t, http.StatusCreated, s, "request %d", i)
	}
	stats := h.vcc.Stats()
	assert.Equal(t, 1, stats.TokenRequests)
	assert.Equal(t, n, stats.CreateSession)
}
