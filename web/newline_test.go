package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCurlOutputEndsWithNewline: what the README and the demo banner have people curl from
// paybridge ends with one newline, so the answer does not run into the shell prompt. (The stub
// VCC's control API answers byte-exact JSON without one; see the report.)
func TestCurlOutputEndsWithNewline(t *testing.T) {
	h := newHarness(t)
	s := h.createSession("agent-1", nil)
	for _, tt := range []struct {
		name, method, url, key, body string
	}{
		{"create", "POST", h.srv.URL + "/v1/sessions", h.secretKey, `{"agentId":"agent-1","amount":1240,"currency":"GBP"}`},
		{"read", "GET", h.srv.URL + "/v1/sessions/" + s.ID, h.secretKey, ""},
		{"list", "GET", h.srv.URL + "/v1/sessions", h.secretKey, ""},
		{"an error", "GET", h.srv.URL + "/v1/sessions", "", ""},
		{"openapi", "GET", h.srv.URL + "/openapi.json", "", ""},
		{"healthz", "GET", h.srv.URL + "/healthz", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, strings.NewReader(tt.body))
			require.NoError(t, err)
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NotEmpty(t, body)
			assert.True(t, strings.HasSuffix(string(body), "\n"), "%d %q", resp.StatusCode, body)
			assert.False(t, strings.HasSuffix(string(body), "\n\n"), "one newline: %q", body)
		})
	}
}
