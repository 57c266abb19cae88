package web_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/web"
)

// storedKey puts a key straight into the store for merchantID, as an earlier `paybridge keys
// create` would have (a merchant's status can change after its keys were made).
func storedKey(t *testing.T, h *harness, merchantID string, typ bridge.KeyType, mode bridge.Mode) string {
	t.Helper()
	plain, key := bridge.NewAPIKey(merchantID, typ, mode, h.clock.Now())
	require.NoError(t, h.store.CreateAPIKey(context.Background(), key))
	return plain
}

// TestEveryErrorCode walks all 27 codes through real requests: each reaches its code the way an
// integrator would meet it, with the code's status, the four body fields, a docs link whose
// anchor exists on the docs page, and the X-Request-Id header.
func TestEveryErrorCode(t *testing.T) {
	createBody := map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"}
	tests := []struct {
		code      bridge.Code
		configure func(*harnessConfig)
		request   func(t *testing.T, h *harness) *response
	}{
		{code: bridge.CodeAuthMissingBearer, request: func(t *testing.T, h *harness) *response {
			return h.do("GET", "/v1/sessions", "", nil)
		}},
		{code: bridge.CodeAuthInvalidKey, request: func(t *testing.T, h *harness) *response {
			return h.do("GET", "/v1/sessions", "vp_sk_test_"+strings.Repeat("Z", 32), nil)
		}},
		{code: bridge.CodeAuthKeyExpired, request: func(t *testing.T, h *harness) *response {
			made := h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "secret", "mode": "test"}).JSON(t)
			require.Equal(t, http.StatusOK, h.do("DELETE", "/api/merchants/api-keys/"+made["id"].(string), h.secretKey, nil).Status)
			return h.do("GET", "/v1/sessions", made["key"].(string), nil)
		}},
		{code: bridge.CodeAuthKeyTypeForbidden, request: func(t *testing.T, h *harness) *response {
			return h.do("GET", "/v1/sessions", h.publishableKey, nil)
		}},
		{code: bridge.CodeAuthMerchantInactive,
			configure: func(c *harnessConfig) {
				c.others = append(c.others, &bridge.Merchant{ID: "dormant", Status: bridge.MerchantInactive})
			},
			request: func(t *testing.T, h *harness) *response {
				return h.do("GET", "/v1/sessions", storedKey(t, h, "dormant", bridge.KeySecret, bridge.ModeTest), nil)
			}},
		{code: bridge.CodeMerchantNotOnboarded,
			configure: func(c *harnessConfig) {
				c.others = append(c.others, &bridge.Merchant{ID: "review", Status: bridge.MerchantPendingApproval})
			},
			request: func(t *testing.T, h *harness) *response {
				// A live key made before the merchant went back under review may not mint more.
				live := storedKey(t, h, "review", bridge.KeySecret, bridge.ModeLive)
				return h.do("POST", "/api/merchants/api-keys", live, map[string]any{"type": "secret", "mode": "live"})
			}},
		{code: bridge.CodeAuthServiceUnavailable, request: func(t *testing.T, h *harness) *response {
			require.NoError(t, h.store.Close()) // the key store becomes unreadable
			return h.do("GET", "/v1/sessions", h.secretKey, nil)
		}},
		{code: bridge.CodeSessionNotFound, request: func(t *testing.T, h *harness) *response {
			return h.do("GET", "/v1/sessions/vp_cs_test_AAAAAAAAAAAAAAAA", h.secretKey, nil)
		}},
		{code: bridge.CodeSessionExpired, request: func(t *testing.T, h *harness) *response {
			s := h.createSession("agent-1", map[string]any{"expiresIn": 300})
			h.clock.Advance(5 * time.Minute)
			return h.do("POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil)
		}},
		{code: bridge.CodeSessionWrongState, request: func(t *testing.T, h *harness) *response {
			s := h.createSession("agent-1", nil)
			h.do("POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil)
			return h.do("POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil)
		}},
		{code: bridge.CodeSessionIntegrityError, request: func(t *testing.T, h *harness) *response {
			s := h.createSession("agent-1", nil)
			// The stored record is damaged: its sealed provider tokens no longer open.
			_, err := h.store.UpdateSession(context.Background(), s.ID, func(x *bridge.Session, _ *bridge.Outbox) error {
				x.Attempts[0].SealedTokens[len(x.Attempts[0].SealedTokens)-1] ^= 0xff
				return nil
			})
			require.NoError(t, err)
			return h.do("GET", "/v1/sessions/"+s.ID, h.secretKey, nil)
		}},
		{code: bridge.CodeValidationError, request: func(t *testing.T, h *harness) *response {
			return h.do("POST", "/v1/sessions", h.secretKey, `{"agentId":"agent-1","amount":"1240","currency":"GBP"}`)
		}},
		{code: bridge.CodeValidationMissingField, request: func(t *testing.T, h *harness) *response {
			return h.do("POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": "agent-1", "amount": 1240})
		}},
		{code: bridge.CodeValidationInvalidAmount, request: func(t *testing.T, h *harness) *response {
			return h.do("POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": "agent-1", "amount": 0, "currency": "GBP"})
		}},
		{code: bridge.CodeMerchantNotConfigured,
			configure: func(c *harnessConfig) {
				c.others = append(c.others, &bridge.Merchant{ID: "fresh", Status: bridge.MerchantActive})
			},
			request: func(t *testing.T, h *harness) *response {
				return h.do("POST", "/v1/sessions", storedKey(t, h, "fresh", bridge.KeySecret, bridge.ModeTest), createBody)
			}},
		{code: bridge.CodeRateLimitExceeded,
			configure: func(c *harnessConfig) { c.server.PerIPLimit = web.RateLimit{Limit: 1, Window: time.Minute} },
			request: func(t *testing.T, h *harness) *response {
				h.do("GET", "/v1/sessions", h.secretKey, nil)
				r := h.do("GET", "/v1/sessions", h.secretKey, nil)
				// Every request is metered per IP, the docs page too: refill the bucket so the
				// docs link check below can fetch it.
				h.clock.Advance(time.Minute)
				return r
			}},
		{code: bridge.CodeRateLimitExceededPerKey,
			configure: func(c *harnessConfig) { c.server.PerKeyLimit = web.RateLimit{Limit: 1, Window: time.Minute} },
			request: func(t *testing.T, h *harness) *response {
				h.createSession("agent-1", nil)
				return h.do("POST", "/v1/sessions", h.secretKey, createBody)
			}},
		{code: bridge.CodeProviderUnavailable, request: func(t *testing.T, h *harness) *response {
			h.control("PUT", "/_control/faults", map[string]any{"create": "http_503"})
			return h.do("POST", "/v1/sessions", h.secretKey, createBody)
		}},
		{code: bridge.CodeProviderAttestationFailed,
			configure: func(c *harnessConfig) { c.service.MaxAttempts = 1 },
			request: func(t *testing.T, h *harness) *response {
				s := h.createSession("agent-1", nil)
				return h.do("POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil)
			}},
		{code: bridge.CodeProviderChargeFailed, request: func(t *testing.T, h *harness) *response {
			s := h.createSession("agent-1", nil)
			h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", map[string]any{"decision": "REJECT"})
			return h.do("POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil)
		}},
		{code: bridge.CodeInternalError, request: func(t *testing.T, h *harness) *response {
			// The store fails while VCC is answering: the session cannot be recorded.
			h.control("PUT", "/_control/faults", map[string]any{"latencyMs": 300})
			done := make(chan *response, 1)
			go func() { done <- h.do("POST", "/v1/sessions", h.secretKey, createBody) }()
			require.Eventually(t, func() bool { return h.vcc.Stats().CreateSession == 1 }, eventWait, time.Millisecond)
			require.NoError(t, h.store.Close())
			return <-done
		}},
		{code: bridge.CodeWebhookMissingSignature,
			configure: func(c *harnessConfig) { c.merchant.VCCWebhook.SigningSecret = "vcc-signing-secret" },
			request: func(t *testing.T, h *harness) *response {
				return h.do("POST", "/v1/webhooks/vcc", "", `{"sessionGuid":"x"}`)
			}},
		{code: bridge.CodeWebhookInvalidSignature,
			configure: func(c *harnessConfig) { c.merchant.VCCWebhook.SigningSecret = "vcc-signing-secret" },
			request: func(t *testing.T, h *harness) *response {
				return h.do("POST", "/v1/webhooks/vcc", "vp_wt_forged.token", `{"sessionGuid":"x"}`)
			}},
		{code: bridge.CodeWebhookNotConfigured, request: func(t *testing.T, h *harness) *response {
			return h.do("POST", "/v1/webhooks/vcc", "", `{"sessionGuid":"x"}`)
		}},
		{code: bridge.CodeOriginForbidden, request: func(t *testing.T, h *harness) *response {
			return h.do("POST", "/v1/sessions", h.publishableKey, createBody,
				"Origin", "https://phish.example", "X-Agent-Token", h.agentToken("agent-1"))
		}},
		{code: bridge.CodeTransactionVerificationFailed, request: func(t *testing.T, h *harness) *response {
			s := h.createSession("agent-1", nil)
			h.control("POST", "/_control/sessions/"+s.VCC.SessionGUID+"/complete", map[string]any{"decision": "ACCEPT", "amount": "124"})
			return h.do("POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil)
		}},
		{code: bridge.CodeUnsupportedMediaType, request: func(t *testing.T, h *harness) *response {
			return h.do("POST", "/v1/sessions", h.secretKey, createBody, "Content-Type", "text/plain")
		}},
	}
	require.Len(t, tests, len(bridge.Codes), "one row per code")
	seen := map[bridge.Code]bool{}
	for _, tt := range tests {
		require.False(t, seen[tt.code], "duplicate row for %s", tt.code)
		seen[tt.code] = true
		t.Run(string(tt.code), func(t *testing.T) {
			var configure []func(*harnessConfig)
			if tt.configure != nil {
				configure = append(configure, tt.configure)
			}
			h := newHarness(t, configure...)
			r := tt.request(t, h)
			m := assertErrorEnvelope(t, r, bridge.Info(tt.code).Status, tt.code)

			// The docs link resolves: the page has this code's anchor.
			docs := m["docs"].(string)
			page, frag, _ := strings.Cut(docs, "#")
			resp, err := http.Get(page)
			require.NoError(t, err)
			html, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Contains(t, string(html), `id="`+frag+`"`)
			if r.Status == http.StatusTooManyRequests {
				assert.NotEmpty(t, r.Header.Get("Retry-After"))
			}
			assert.NotContains(t, string(r.Body), h.secretKey)
			assert.NotContains(t, string(r.Body), h.merchant.VCC.ClientSecret)
		})
	}
}
