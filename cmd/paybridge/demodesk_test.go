package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// demoCall sends one request to the demo and returns the status, the headers and the body.
func demoCall(t *testing.T, method, u, origin, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(data)
}

// errorCode returns the code of an error envelope.
func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Code, Error, Fix, Docs, RequestID string }
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	assert.NotEmpty(t, e.Error)
	assert.NotEmpty(t, e.Fix)
	assert.Contains(t, e.Docs, "/docs/error-codes#"+e.Code)
	assert.NotEmpty(t, e.RequestID)
	return e.Code
}

// TestDemoDeskPage checks what the agent desktop page and its assets give a browser: the
// publishable key but never the secret one, a CSP that lets only the provider into the frame,
// and the widget.
func TestDemoDeskPage(t *testing.T) {
	info := startDemo(t)
	status, h, body := demoCall(t, http.MethodGet, info.BaseURL+"/demo/agent", "", "", "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, info.PublishableKey)
	assert.NotContains(t, body, info.SecretKey, "the secret key never reaches the browser")
	assert.Contains(t, body, `src="/static/paybridge.js"`)
	assert.Contains(t, body, `data-agent-id="demo-agent"`)
	csp := h.Get("Content-Security-Policy")
	provider := originOf(info.PCIPalStubURL)
	for _, want := range []string{"script-src 'self'", "frame-src " + provider, "form-action " + provider, "ws" + strings.TrimPrefix(info.BaseURL, "http")} {
		assert.Contains(t, csp, want)
	}
	assert.Equal(t, "no-store", h.Get("Cache-Control"))

	_, _, body = demoCall(t, http.MethodGet, info.BaseURL+"/demo/agent?agent="+url.QueryEscape(`<script>x</script>`), "", "", "")
	assert.NotContains(t, body, "<script>x</script>", "the agent id is escaped")

	for _, tc := range []struct {
		path, contentType string
	}{
		{"/static/paybridge.js", "text/javascript"},
		{"/static/paybridge.css", "text/css"},
		{"/demo/assets/agent.js", "text/javascript"},
		{"/demo/assets/agent.css", "text/css"},
	} {
		status, h, body := demoCall(t, http.MethodGet, info.BaseURL+tc.path, "", "", "")
		assert.Equal(t, http.StatusOK, status, tc.path)
		assert.Contains(t, h.Get("Content-Type"), tc.contentType, tc.path)
		assert.NotEmpty(t, body, tc.path)
	}

	status, h, _ = demoCall(t, http.MethodGet, info.BaseURL+"/demo/", "", "", "")
	assert.Equal(t, http.StatusFound, status)
	assert.Equal(t, "/demo/agent", h.Get("Location"))
	for _, path := range []string{"/demo/nope", "/demo/assets/", "/demo/assets/missing.js"} {
		status, _, body := demoCall(t, http.MethodGet, info.BaseURL+path, "", "", "")
		assert.Equal(t, http.StatusBadRequest, status, path)
		assert.Equal(t, "validation_error", errorCode(t, body), path)
	}
}

// TestDemoDeskBackend checks the demo's backend endpoints: they answer the desktop's own origin
// only, with JSON bodies only, and only for the demo merchant's active sessions.
func TestDemoDeskBackend(t *testing.T) {
	info := startDemo(t)
	tokenURL := info.BaseURL + "/demo/api/agent-token"
	cases := []struct {
		name, origin, contentType, body string
		status                          int
		code                            string
	}{
		{"no origin", "", "application/json", `{"agentId":"demo-agent"}`, http.StatusForbidden, "origin_forbidden"},
		{"another origin", "https://evil.example", "application/json", `{"agentId":"demo-agent"}`, http.StatusForbidden, "origin_forbidden"},
		{"a form post", info.BaseURL, "application/x-www-form-urlencoded", `agentId=demo-agent`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"unknown field", info.BaseURL, "application/json", `{"agent":"demo-agent"}`, http.StatusBadRequest, "validation_error"},
		{"no agent", info.BaseURL, "application/json", `{}`, http.StatusBadRequest, "validation_missing_field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := demoCall(t, http.MethodPost, tokenURL, tc.origin, tc.contentType, tc.body)
			assert.Equal(t, tc.status, status, body)
			assert.Equal(t, tc.code, errorCode(t, body))
		})
	}

	// The page sets the agent's desk cookie; with it (and the Origin) the token is minted.
	status, h, body := deskCall(t, tokenURL, info.BaseURL, deskCookies(t, info, "demo-agent"), `{"agentId":"demo-agent"}`)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, "no-store", h.Get("Cache-Control"))
	var minted agentTokenResponse
	require.NoError(t, json.Unmarshal([]byte(body), &minted))
	assert.True(t, strings.HasPrefix(minted.Token, "vp_at_test_"))
	assert.False(t, minted.ExpiresAt.IsZero())

	// The drivers: an unknown session, an unknown action, then a session that is no longer active.
	drive := func(id, action string) (int, string) {
		status, _, body := demoCall(t, http.MethodPost, info.BaseURL+"/demo/api/sessions/"+id+"/"+action, info.BaseURL, "application/json", `{}`)
		return status, body
	}
	status, body = drive("vp_cs_test_0000000000000000", "pay")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "session_not_found", errorCode(t, body))

	created := postJSON(t, info.BaseURL+"/v1/sessions", info.SecretKey, `{"agentId":"demo-agent","amount":500,"currency":"EUR"}`)
	id := created["id"].(string)
	status, body = drive(id, "refund")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "validation_error", errorCode(t, body))

	status, body = drive(id, "decline")
	require.Equal(t, http.StatusOK, status, body)
	var driven driveResponse
	require.NoError(t, json.Unmarshal([]byte(body), &driven))
	assert.Equal(t, driveResponse{SessionID: id, Action: "decline", Attempt: 1,
		SessionGUID: created["vcc"].(map[string]any)["sessionGuid"].(string)}, driven)
	// The stub VCC finished the provider session: playing the customer again is refused there.
	status, body = drive(id, "pay")
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "session_wrong_state", errorCode(t, body))
}

// deskCookies loads agent's desktop page and returns the cookies it sets.
func deskCookies(t *testing.T, info demoInfo, agent string) []*http.Cookie {
	t.Helper()
	resp, err := http.Get(info.BaseURL + "/demo/agent?agent=" + url.QueryEscape(agent))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return resp.Cookies()
}

// deskCall POSTs a JSON body to the demo backend as the desktop page does, with cookies.
func deskCall(t *testing.T, u, origin string, cookies []*http.Cookie, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Origin", origin)
	req.Header.Set("Content-Type", "application/json")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(data)
}

// TestDemoDeskAgentTokenNeedsTheDesk: the demo mints agent tokens only for its own agents, and
// only for a caller holding that agent's desk cookie: a right Origin header alone, which any
// client can write, is not enough, nor is another agent's cookie or a forged one.
func TestDemoDeskAgentTokenNeedsTheDesk(t *testing.T) {
	info := startDemo(t)
	tokenURL := info.BaseURL + "/demo/api/agent-token"
	own := deskCookies(t, info, "demo-agent")
	require.NotEmpty(t, own)
	for _, c := range own {
		assert.True(t, c.HttpOnly, "the page's script never sees the cookie")
		assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	}
	other := deskCookies(t, info, "agent-2")
	forged := []*http.Cookie{{Name: own[0].Name, Value: strings.Repeat("A", len(own[0].Value))}}
	cases := []struct {
		name    string
		cookies []*http.Cookie
		body    string
		status  int
		code    string
	}{
		{"origin alone", nil, `{"agentId":"demo-agent"}`, http.StatusForbidden, "origin_forbidden"},
		{"another agent's cookie", other, `{"agentId":"demo-agent"}`, http.StatusForbidden, "origin_forbidden"},
		{"a forged cookie", forged, `{"agentId":"demo-agent"}`, http.StatusForbidden, "origin_forbidden"},
		{"not a demo agent", own, `{"agentId":"agent-99"}`, http.StatusBadRequest, "validation_error"},
		{"own cookie", own, `{"agentId":"demo-agent"}`, http.StatusOK, ""},
		{"the other agent with its cookie", other, `{"agentId":"agent-2"}`, http.StatusOK, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := deskCall(t, tokenURL, info.BaseURL, tc.cookies, tc.body)
			assert.Equal(t, tc.status, status, body)
			if tc.code != "" {
				assert.Equal(t, tc.code, errorCode(t, body))
				assert.NotContains(t, body, "vp_at_")
			} else {
				assert.Contains(t, body, `"token":"vp_at_test_`)
			}
		})
	}
	status, _, body := demoCall(t, http.MethodGet, info.BaseURL+"/demo/agent?agent=agent-99", "", "", "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "validation_error", errorCode(t, body))
}

// TestDemoDeskReference: the take-payment form starts at INV-1001, and past every INV-<n> among
// the merchant's recent sessions (other references ignored), so a reload or a restart with
// --data does not hand out a reference again.
func TestDemoDeskReference(t *testing.T) {
	info := startDemo(t)
	reference := func() string {
		t.Helper()
		status, _, body := demoCall(t, http.MethodGet, info.BaseURL+"/demo/agent", "", "", "")
		require.Equal(t, http.StatusOK, status)
		m := regexp.MustCompile(`id="reference" [^>]*value="([^"]*)"`).FindStringSubmatch(body)
		require.NotNil(t, m, "the reference field")
		return m[1]
	}
	assert.Equal(t, "INV-1001", reference())
	for _, ref := range []string{"INV-1041", "ACME-7", "INV-999", "INV-10x"} {
		postJSON(t, info.BaseURL+"/v1/sessions", info.SecretKey, `{"agentId":"agent-2","amount":100,"currency":"GBP","reference":"`+ref+`"}`)
	}
	assert.Equal(t, "INV-1042", reference())
}

// TestDemoDeskCancel: the desk's backend cancels a session with paybridge's API for the page of
// the session's agent only.
func TestDemoDeskCancel(t *testing.T) {
	info := startDemo(t)
	own, other := deskCookies(t, info, "demo-agent"), deskCookies(t, info, "agent-2")
	created := postJSON(t, info.BaseURL+"/v1/sessions", info.SecretKey, `{"agentId":"demo-agent","amount":500,"currency":"EUR"}`)
	id := created["id"].(string)
	cancelURL := info.BaseURL + "/demo/api/sessions/" + id + "/cancel"
	tests := []struct {
		name    string
		cookies []*http.Cookie
		status  int
		code    string
	}{
		{"no desk cookie", nil, http.StatusForbidden, "origin_forbidden"},
		{"another agent's desk", other, http.StatusForbidden, "origin_forbidden"},
		{"the agent's desk", own, http.StatusOK, ""},
		{"again", own, http.StatusConflict, "session_wrong_state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := deskCall(t, cancelURL, info.BaseURL, tt.cookies, `{}`)
			require.Equal(t, tt.status, status, body)
			if tt.code != "" {
				assert.Equal(t, tt.code, errorCode(t, body))
				return
			}
			var got driveResponse
			require.NoError(t, json.Unmarshal([]byte(body), &got))
			assert.Equal(t, driveResponse{SessionID: id, Action: "cancel", Attempt: 1,
				SessionGUID: created["vcc"].(map[string]any)["sessionGuid"].(string)}, got)
			assert.Equal(t, "cancelled", getJSON(t, info.BaseURL+"/v1/sessions/"+id, info.SecretKey)["status"])
		})
	}
}
