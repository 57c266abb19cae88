package web_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/vcc/vccstub"
)

// timeoutWords are the ways a log line can say that VCC did not answer in time.
var timeoutWords = regexp.MustCompile(`(?i)in time|deadline|timeout|timed out`)

// TestVCCTimeoutLoggedOnce: a create whose VCC call times out is logged once, worded once, at
// info level as production runs: the request's own error line (with its request id). The VCC
// client, the service and the server each used to log it, in three wordings.
func TestVCCTimeoutLoggedOnce(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults vccstub.Faults
	}{
		{"create times out", vccstub.Faults{Create: "timeout"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *harnessConfig) {
				c.vcc.RequestTimeout = 300 * time.Millisecond
				c.vcc.MaxRetries = 1 // a timed-out create is not retried whatever this says
				c.infoLogs = true
			})
			h.control("PUT", "/_control/faults", tt.faults)
			r := h.do("POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"})
			require.Equal(t, http.StatusBadGateway, r.Status)

			var said []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
				var rec map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
				if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "vccstub:") || strings.HasPrefix(msg, "pcipalstub:") {
					continue // the stubs share the harness's log; they are not paybridge
				}
				if timeoutWords.MatchString(line) {
					said = append(said, rec)
				}
			}
			require.Len(t, said, 1, "one line says VCC timed out:\n%s", h.logs.String())
			assert.Equal(t, "request failed", said[0]["msg"])
			assert.Equal(t, "provider_unavailable", said[0]["code"])
			assert.Len(t, timeoutWords.FindAllString(said[0]["err"].(string), -1), 1, "worded once: %s", said[0]["err"])
			assert.Contains(t, said[0]["err"], "/globalpci/v1/session", "the line names the call")

			// The session's failure is still on record, in its own line, by code.
			assert.Contains(t, h.logs.String(), `"msg":"session failed"`)
		})
	}
}
