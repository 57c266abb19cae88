package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/paybridge/paybridge/web"
)

// FuzzCreateSession throws arbitrary bodies at POST /v1/sessions on the real server: whatever
// arrives, the answer is never a 5xx and always JSON; an error is always the envelope. Half the
// inputs run as dry runs, half create sessions at the stub. CI runs it for a bounded time:
//
//	go test ./web -run '^$' -fuzz '^FuzzCreateSession$' -fuzztime 20s
func FuzzCreateSession(f *testing.F) {
	for _, seed := range []string{
		`{"agentId":"agent-1","amount":1240,"currency":"GBP"}`,
		`{"agentId":"agent-1","amount":1240,"currency":"GBP","country":"GB","reference":"INV-1","expiresIn":600,
		  "customer":{"firstName":"Ada","email":"ada@example.com"},"metadata":{"order":"42"},
		  "lineItems":[{"name":"Boiler service","quantity":1,"unitAmount":1240}],"successUrl":"https://shop.example/ok"}`,
		`{"agentId":"agent-1","amount":"1240","currency":"GBP"}`,
		`{"agentId":"agent-1","amount":12.5,"currency":"GBP"}`,
		`{"agentId":"agent-1","amount":1e400,"currency":"GBP"}`,
		`{"agentId":"agent-1","amount":-1,"currency":"gbp","channel":"digital"}`,
		`{"agentId":"","amount":1,"currency":"XTS","accountConfigurationId":99}`,
		`{"metadata":{"k":{"nested":true}},"lineItems":"none"}`,
		`[{"amount":1}]`, `null`, `{}`, `{"agentId":`, "\x00\xff", ``,
		// Strict JSON: field case, duplicates, control characters, invalid UTF-8, surrogates.
		`{"AgentId":"agent-1","amount":1240,"currency":"GBP"}`,
		`{"agentId":"agent-1","amount":1240,"amount":1,"currency":"GBP"}`,
		`{"agentId":"agent-1","amount":1240,"currency":"GBP","metadata":{"k":"a\n\tb","k":"c"}}`,
		`{"agentId":"agent-1","amount":1240,"currency":"GBP","reference":"a\u0001b"}`,
		"{\"agentId\":\"agent-1\",\"amount\":1240,\"currency\":\"GBP\",\"reference\":\"a\x01\xc3\x28\"}",
		`{"agentId":"agent-1","amount":1240,"currency":"GBP","customer":{"firstName":"\ud800\udc00\ud800"}}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	h := newHarness(f, func(c *harnessConfig) {
		c.server.PerKeyLimit = web.RateLimit{Limit: 1 << 30, Window: time.Minute}
		c.server.PerIPLimit = web.RateLimit{Limit: 1 << 30, Window: time.Minute}
		c.infoLogs = true
		c.service.SweepInterval = time.Hour // the clock never moves here: nothing to sweep
	})
	f.Fuzz(func(t *testing.T, body []byte, dryRun bool) {
		path := "/v1/sessions"
		if dryRun {
			path += "?dry_run=true"
		}
		req, err := http.NewRequest("POST", h.srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+h.secretKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d for body %q: %s", resp.StatusCode, body, data)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("status %d: not JSON: %q", resp.StatusCode, data)
		}
		if resp.StatusCode >= 400 {
			for _, field := range []string{"error", "code", "fix", "docs", "requestId"} {
				if s, _ := m[field].(string); s == "" {
					t.Fatalf("status %d: envelope without %s: %s", resp.StatusCode, field, data)
				}
			}
		}
	})
}
