package web_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// TestKeyLifecycle: create, roll with a grace window (the old key works inside it and is expired
// after it), revoke (at once), and keys are never shown again after creation.
func TestKeyLifecycle(t *testing.T) {
	h := newHarness(t)
	created := h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "secret", "mode": "test"})
	require.Equal(t, http.StatusCreated, created.Status, "%s", created.Body)
	k := created.JSON(t)
	oldKey := k["key"].(string)
	assert.Regexp(t, `^vp_sk_test_[0-9A-Za-z]{24,}$`, oldKey)
	require.Equal(t, http.StatusOK, h.do("GET", "/v1/sessions", oldKey, nil).Status)

	rolled := h.do("POST", "/api/merchants/api-keys/"+k["id"].(string)+"/roll", h.secretKey, map[string]any{"graceSeconds": 3600})
	require.Equal(t, http.StatusCreated, rolled.Status, "%s", rolled.Body)
	r := rolled.JSON(t)
	newKey := r["key"].(string)
	assert.NotEqual(t, oldKey, newKey)
	assert.Equal(t, r["id"], r["rolled"].(map[string]any)["rolledTo"])

	h.clock.Advance(59 * time.Minute)
	assert.Equal(t, http.StatusOK, h.do("GET", "/v1/sessions", oldKey, nil).Status, "inside the grace window")
	h.clock.Advance(time.Minute)
	assertErrorEnvelope(t, h.do("GET", "/v1/sessions", oldKey, nil), http.StatusUnauthorized, bridge.CodeAuthKeyExpired)
	assert.Equal(t, http.StatusOK, h.do("GET", "/v1/sessions", newKey, nil).Status)

	revoked := h.do("DELETE", "/api/merchants/api-keys/"+r["id"].(string), h.secretKey, nil)
	require.Equal(t, http.StatusOK, revoked.Status)
	assert.NotContains(t, string(revoked.Body), newKey)
	assertErrorEnvelope(t, h.do("GET", "/v1/sessions", newKey, nil), http.StatusUnauthorized, bridge.CodeAuthKeyExpired)

	list := h.do("GET", "/api/merchants/api-keys", h.secretKey, nil)
	require.Equal(t, http.StatusOK, list.Status)
	for _, secret := range []string{oldKey, newKey, h.secretKey, h.publishableKey} {
		assert.NotContains(t, string(list.Body), secret, "a key is shown only when made")
	}
	// Test keys cannot manage live keys, and a publishable key cannot manage any.
	assertErrorEnvelope(t, h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "secret", "mode": "live"}),
		http.StatusForbidden, bridge.CodeAuthKeyTypeForbidden)
	assertErrorEnvelope(t, h.do("POST", "/api/merchants/api-keys", h.publishableKey, map[string]any{"type": "secret", "mode": "test"}),
		http.StatusForbidden, bridge.CodeAuthKeyTypeForbidden)
	h.logs.AssertNoSecrets(t, oldKey, newKey, h.secretKey)
}

// TestRateLimitBurst: 60 creates in a burst from one key: 30 succeed, the rest are
// rate_limit_exceeded_per_key with Retry-After; another key is unaffected.
func TestRateLimitBurst(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.vcc.RequestTimeout = 30 * time.Second }) // 60 at once on a loaded machine
	other := h.newKey(bridge.KeySecret, bridge.ModeTest)
	body := map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"}
	statuses := make([]*response, 60)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", h.srv.URL+"/v1/sessions", jsonBody(body))
			req.Header.Set("Authorization", "Bearer "+h.secretKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				statuses[i] = &response{Status: resp.StatusCode, Header: resp.Header}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	created, limited := 0, 0
	for _, r := range statuses {
		require.NotNil(t, r)
		switch r.Status {
		case http.StatusCreated:
			created++
		case http.StatusTooManyRequests:
			limited++
			retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
			require.NoError(t, err)
			assert.GreaterOrEqual(t, retry, 1)
			assert.Equal(t, "0", r.Header.Get("X-RateLimit-Remaining"))
		}
		assert.Equal(t, "30", r.Header.Get("X-RateLimit-Limit"))
		assert.NotEmpty(t, r.Header.Get("X-RateLimit-Reset"))
	}
	assert.Equal(t, 30, created)
	assert.Equal(t, 30, limited)

	// The error itself, and another key meanwhile.
	m := assertErrorEnvelope(t, h.do("POST", "/v1/sessions", h.secretKey, body), http.StatusTooManyRequests, bridge.CodeRateLimitExceededPerKey)
	assert.Contains(t, m["error"], "30")
	ok := h.do("POST", "/v1/sessions", other, body)
	assert.Equal(t, http.StatusCreated, ok.Status)
	assert.Equal(t, "29", ok.Header.Get("X-RateLimit-Remaining"))

	// The bucket refills with time: one create every two seconds.
	h.clock.Advance(2 * time.Second)
	assert.Equal(t, http.StatusCreated, h.do("POST", "/v1/sessions", h.secretKey, body).Status)
}

// TestIdempotency: a replay answers the first response with Idempotent-Replayed; another body
// with the same key is refused; concurrent duplicates create one VCC session.
func TestIdempotency(t *testing.T) {
	h := newHarness(t)
	body := map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"}
	first := h.do("POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", "order-1001")
	require.Equal(t, http.StatusCreated, first.Status)
	assert.Empty(t, first.Header.Get("Idempotent-Replayed"))
	again := h.do("POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", "order-1001")
	assert.Equal(t, http.StatusCreated, again.Status)
	assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	assert.JSONEq(t, string(first.Body), string(again.Body))
	assert.NotEqual(t, first.Header.Get("X-Request-Id"), again.Header.Get("X-Request-Id"))

	changed := map[string]any{"agentId": "agent-1", "amount": 999, "currency": "GBP"}
	m := assertErrorEnvelope(t, h.do("POST", "/v1/sessions", h.secretKey, changed, "Idempotency-Key", "order-1001"),
		http.StatusBadRequest, bridge.CodeValidationError)
	assert.Equal(t, "Idempotency-Key", m["param"])
	assertErrorEnvelope(t, h.do("POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", strings.Repeat("k", 256)),
		http.StatusBadRequest, bridge.CodeValidationError)

	// Concurrent duplicates: one VCC session, every answer the same.
	h.control("PUT", "/_control/faults", map[string]any{"latencyMs": 100})
	before := h.vcc.Stats().CreateSession
	answers := make([]*response, 8)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", h.srv.URL+"/v1/sessions", jsonBody(body))
			req.Header.Set("Authorization", "Bearer "+h.secretKey)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "order-2002")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				data := readAll(resp)
				answers[i] = &response{Status: resp.StatusCode, Header: resp.Header, Body: data}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, before+1, h.vcc.Stats().CreateSession, "one VCC session")
	replayed := 0
	for _, a := range answers {
		require.NotNil(t, a)
		require.Equal(t, http.StatusCreated, a.Status)
		assert.JSONEq(t, string(answers[0].Body), string(a.Body))
		if a.Header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	assert.Equal(t, len(answers)-1, replayed)

	// A server error is not stored: the retry runs again.
	h.control("PUT", "/_control/faults", map[string]any{"create": "http_503", "times": 4})
	failed := h.do("POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", "order-3003")
	require.Equal(t, http.StatusBadGateway, failed.Status)
	retried := h.do("POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", "order-3003")
	assert.Equal(t, http.StatusCreated, retried.Status, "%s", retried.Body)
	assert.Empty(t, retried.Header.Get("Idempotent-Replayed"))
}

// TestCORS: preflights are answered for allowed origins on the browser endpoints only.
func TestCORS(t *testing.T) {
	h := newHarness(t)
	preflight := func(path, origin string) *response {
		return h.do("OPTIONS", path, "", nil, "Origin", origin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization, content-type, x-agent-token")
	}
	ok := preflight("/v1/sessions", testOrigin)
	require.Equal(t, http.StatusNoContent, ok.Status)
	assert.Equal(t, testOrigin, ok.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, ok.Header.Get("Access-Control-Allow-Headers"), "X-Agent-Token")
	assert.Contains(t, ok.Header.Get("Vary"), "Origin")
	assert.Equal(t, http.StatusNoContent, preflight("/v1/sessions/vp_cs_test_AAAAAAAAAAAAAAAA/restart", testOrigin).Status)
	assertErrorEnvelope(t, preflight("/v1/sessions", "https://phish.example"), http.StatusForbidden, bridge.CodeOriginForbidden)
	assertErrorEnvelope(t, preflight("/v1/agent_tokens", testOrigin), http.StatusForbidden, bridge.CodeOriginForbidden)

	// A browser create: publishable key, agent token, allowed origin; the page may read it.
	created := h.do("POST", "/v1/sessions", h.publishableKey, map[string]any{"amount": 1240, "currency": "GBP"},
		"Origin", testOrigin, "X-Agent-Token", h.agentToken("agent-9"))
	require.Equal(t, http.StatusCreated, created.Status, "%s", created.Body)
	assert.Equal(t, "agent-9", created.Session(t).AgentID, "the agent comes from the token")
	assert.Equal(t, testOrigin, created.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, created.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id")
	// The same agent may restart its own session from the browser, not another agent's.
	other := h.createSession("agent-1", nil)
	assertErrorEnvelope(t, h.do("POST", "/v1/sessions/"+other.ID+"/restart", h.publishableKey, nil,
		"Origin", testOrigin, "X-Agent-Token", h.agentToken("agent-9")), http.StatusNotFound, bridge.CodeSessionNotFound)
	own := h.do("POST", "/v1/sessions/"+created.Session(t).ID+"/restart", h.publishableKey, nil,
		"Origin", testOrigin, "X-Agent-Token", h.agentToken("agent-9"))
	assert.Equal(t, http.StatusOK, own.Status, "%s", own.Body)
}

// TestCreateValidation follows the reference's validation table through the API.
func TestCreateValidation(t *testing.T) {
	h := newHarness(t)
	base := `"agentId":"agent-1","currency":"GBP"`
	tests := []struct {
		name  string
		body  string
		code  bridge.Code
		param string
		msg   string
	}{
		{"amount string", `{` + base + `,"amount":"1240"}`, bridge.CodeValidationError, "amount", `Expected number, received string at "amount"`},
		{"amount zero", `{` + base + `,"amount":0}`, bridge.CodeValidationInvalidAmount, "amount", ""},
		{"amount negative", `{` + base + `,"amount":-5}`, bridge.CodeValidationInvalidAmount, "amount", ""},
		{"amount fraction", `{` + base + `,"amount":12.5}`, bridge.CodeValidationInvalidAmount, "amount", ""},
		{"amount too large", `{` + base + `,"amount":100000000}`, bridge.CodeValidationInvalidAmount, "amount", ""},
		{"amount missing", `{` + base + `}`, bridge.CodeValidationMissingField, "amount", ""},
		{"currency missing", `{"agentId":"agent-1","amount":1240}`, bridge.CodeValidationMissingField, "currency", ""},
		{"agent missing", `{"amount":1240,"currency":"GBP"}`, bridge.CodeValidationMissingField, "agentId", ""},
		{"currency length", `{"agentId":"a","amount":1,"currency":"GBPX"}`, bridge.CodeValidationError, "currency", "exactly 3"},
		{"country length", `{` + base + `,"amount":1,"country":"GBR"}`, bridge.CodeValidationError, "country", "exactly 2"},
		{"success url http", `{` + base + `,"amount":1,"successUrl":"http://shop.example/ok"}`, bridge.CodeValidationError, "successUrl", "https"},
		{"cancel url http", `{` + base + `,"amount":1,"cancelUrl":"http://shop.example/no"}`, bridge.CodeValidationError, "cancelUrl", "https"},
		{"metadata value", `{` + base + `,"amount":1,"metadata":{"note":"` + strings.Repeat("x", 501) + `"}}`, bridge.CodeValidationError, "metadata.note", "500"},
		{"metadata not string", `{` + base + `,"amount":1,"metadata":{"n":5}}`, bridge.CodeValidationError, "metadata.n", "Expected string, received number"},
		{"line items", `{` + base + `,"amount":1,"lineItems":[` + strings.Repeat(`{"name":"x","quantity":1,"unitAmount":1},`, 100) + `{"name":"x","quantity":1,"unitAmount":1}]}`, bridge.CodeValidationError, "lineItems", "100"},
		{"expiresIn short", `{` + base + `,"amount":1,"expiresIn":299}`, bridge.CodeValidationError, "expiresIn", "300"},
		{"expiresIn long", `{` + base + `,"amount":1,"expiresIn":3601}`, bridge.CodeValidationError, "expiresIn", "3600"},
		{"expiresIn zero", `{` + base + `,"amount":1,"expiresIn":0}`, bridge.CodeValidationError, "expiresIn", "300"},
		{"unknown field", `{` + base + `,"amount":1,"colour":"red"}`, bridge.CodeValidationError, "colour", "Unrecognized key"},
		{"nested unknown field", `{` + base + `,"amount":1,"customer":{"shoeSize":9}}`, bridge.CodeValidationError, "shoeSize", "Unrecognized key"},
		{"malformed json", `{"agentId":`, bridge.CodeValidationError, "", "Malformed JSON"},
		{"not an object", `[1,2]`, bridge.CodeValidationError, "", "Expected object"},
		{"trailing data", `{` + base + `,"amount":1} {}`, bridge.CodeValidationError, "", "after the JSON object"},
		{"empty body", ``, bridge.CodeValidationError, "", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := assertErrorEnvelope(t, h.do("POST", "/v1/sessions", h.secretKey, tt.body), http.StatusBadRequest, tt.code)
			if tt.param != "" {
				assert.Equal(t, tt.param, m["param"])
			}
			if tt.msg != "" {
				assert.Contains(t, m["error"], tt.msg)
			}
		})
	}
	t.Run("body over 1 MiB", func(t *testing.T) {
		big := `{` + base + `,"amount":1,"reference":"` + strings.Repeat("x", 1<<20) + `"}`
		m := assertErrorEnvelope(t, h.do("POST", "/v1/sessions", h.secretKey, big), http.StatusBadRequest, bridge.CodeValidationError)
		assert.Contains(t, m["error"], "1 MiB")
	})
	t.Run("localhost allowed in test mode", func(t *testing.T) {
		r := h.do("POST", "/v1/sessions?dry_run=true", h.secretKey, `{`+base+`,"amount":1,"successUrl":"http://localhost:3000/ok"}`)
		assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	})
	t.Run("dry run validates and creates nothing", func(t *testing.T) {
		before := h.vcc.Stats().CreateSession
		r := h.do("POST", "/v1/sessions?dry_run=true", h.secretKey, `{`+base+`,"amount":1240}`)
		require.Equal(t, http.StatusOK, r.Status)
		assert.JSONEq(t, `{"valid":true,"warnings":[]}`, string(r.Body))
		assert.Equal(t, before, h.vcc.Stats().CreateSession)
		list := h.do("GET", "/v1/sessions", h.secretKey, nil).JSON(t)
		assert.Empty(t, list["data"])
	})
	t.Run("no content type", func(t *testing.T) {
		assertErrorEnvelope(t, h.do("POST", "/v1/sessions", h.secretKey, `{}`, "Content-Type", ""), http.StatusUnsupportedMediaType, bridge.CodeUnsupportedMediaType)
	})
}

// TestRequestIDs: every response carries X-Request-Id; a valid incoming one is kept, an unsafe
// one replaced.
func TestRequestIDs(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/healthz", "/readyz", "/docs/error-codes", "/v1/sessions", "/nowhere"} {
		r := h.do("GET", path, "", nil)
		assert.NotEmpty(t, r.Header.Get("X-Request-Id"), path)
	}
	kept := h.do("GET", "/v1/sessions", h.secretKey, nil, "X-Request-Id", "trace-1234abcd")
	assert.Equal(t, "trace-1234abcd", kept.Header.Get("X-Request-Id"))
	replaced := h.do("GET", "/v1/sessions", h.secretKey, nil, "X-Request-Id", "bad id\twith spaces")
	assert.NotEqual(t, "bad id\twith spaces", replaced.Header.Get("X-Request-Id"))
	assert.NotEmpty(t, replaced.Header.Get("X-Request-Id"))
}

// TestMetrics: /metrics reports the session lifecycle, sockets and HTTP traffic by route, and
// carries no id, key or token.
func TestMetrics(t *testing.T) {
	h := newHarness(t)
	agent, _ := h.connect("agent-1")
	s := h.createSession("agent-1", nil)
	agent.handoff()
	h.do("POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil)
	agent.next("session.cancelled")
	r := h.do("GET", "/metrics", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	body := string(r.Body)
	for _, want := range []string{
		"paybridge_sessions_created_total 1",
		`paybridge_sessions_ended_total{status="cancelled"} 1`,
		"paybridge_sessions_open 0",
		"paybridge_agent_sockets 1",
		`paybridge_http_requests_total{code="201",method="POST",route="POST /v1/sessions"} 1`,
		"go_goroutines",
	} {
		assert.Contains(t, body, want)
	}
	for _, secret := range []string{s.ID, h.secretKey, h.publishableKey, agent.token} {
		assert.NotContains(t, body, secret)
	}
}

// TestBodylessPostsNeedNoContentType (issue 13): cancel, restart and roll take no required field,
// so an empty body needs no Content-Type; a body still does.
func TestBodylessPostsNeedNoContentType(t *testing.T) {
	h := newHarness(t)
	s := h.createSession("agent-1", nil)
	assertErrorEnvelope(t, h.do("POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, `{}`, "Content-Type", ""),
		http.StatusUnsupportedMediaType, bridge.CodeUnsupportedMediaType)
	r := h.do("POST", "/v1/sessions/"+s.ID+"/restart", h.secretKey, nil, "Content-Type", "")
	require.Equal(t, http.StatusOK, r.Status, "restart: %s", r.Body)
	assert.Equal(t, 2, r.Session(t).Attempt)
	r = h.do("POST", "/v1/sessions/"+s.ID+"/cancel", h.secretKey, nil, "Content-Type", "")
	require.Equal(t, http.StatusOK, r.Status, "cancel: %s", r.Body)
	assert.Equal(t, bridge.StatusCancelled, r.Session(t).Status)

	made := h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "publishable", "mode": "test"})
	require.Equal(t, http.StatusCreated, made.Status, "%s", made.Body)
	id, _ := made.JSON(t)["id"].(string)
	require.NotEmpty(t, id)
	r = h.do("POST", "/api/merchants/api-keys/"+id+"/roll", h.secretKey, nil, "Content-Type", "")
	assert.Equal(t, http.StatusCreated, r.Status, "roll: %s", r.Body)
}
