package vcc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/vcc"
)

// testSecret is the fake merchant's client secret; tests assert it never leaks.
const testSecret = "s3cr3t-client-secret-value"

// newManualClock returns the tests' clock, moved only by hand.
func newManualClock() *bridgetest.ManualClock {
	return bridgetest.NewManualClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

// fakeVCC is a programmable VCC for protocol tests: a token endpoint at /token and the Payment
// API under /paymentapi. Handlers get the 1-based number of the request to their endpoint.
type fakeVCC struct {
	srv      *httptest.Server
	tokens   atomic.Int32
	api      atomic.Int32
	tokenFn  func(w http.ResponseWriter, r *http.Request, n int)
	apiFn    func(w http.ResponseWriter, r *http.Request, n int)
	mu       sync.Mutex
	lastBody []byte
	lastReq  *http.Request
}

func newFakeVCC(t *testing.T) *fakeVCC {
	t.Helper()
	f := &fakeVCC{}
	f.tokenFn = issueToken(3600)
	f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, agentAssistOK) }
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm() // reading the body lets the server notice a client that gives up
		f.tokenFn(w, r, int(f.tokens.Add(1)))
	})
	mux.HandleFunc("/paymentapi/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.lastBody, f.lastReq = body, r.Clone(r.Context())
		f.mu.Unlock()
		f.apiFn(w, r, int(f.api.Add(1)))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeVCC) merchant() *bridge.Merchant {
	return &bridge.Merchant{
		ID:     "acme",
		Status: bridge.MerchantActive,
		VCC: bridge.VCCAccount{
			TokenURL:     f.srv.URL + "/token",
			APIBaseURL:   f.srv.URL + "/paymentapi",
			ClientID:     "acme-bridge",
			ClientSecret: testSecret,
		},
	}
}

func (f *fakeVCC) last() (*http.Request, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastReq, f.lastBody
}

// issueToken answers every token request with access token "tok-<n>".
func issueToken(expiresIn int) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "expires_in": expiresIn, "token_type": "Bearer"})
	}
}

var agentAssistOK = map[string]string{
	"sessionGuid":       "0b6c8f2e-1111-4a4a-9b9b-000000000001",
	"iframeUrl":         "https://pcipal.example/session/t/view/p1/framed",
	"agentAccessToken":  "agent-access-token-value",
	"agentRefreshToken": "agent-refresh-token-value",
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeText(w http.ResponseWriter, status int, contentType, body string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// fastOptions retry quickly so tests finish fast; tests that time waits set their own.
func fastOptions() vcc.Options {
	return vcc.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond, RequestTimeout: 5 * time.Second}
}

func gbpRequest() *bridge.ProviderRequest {
	return &bridge.ProviderRequest{Channel: bridge.ChannelAgentAssist, AgentID: "agent-7", Amount: 1240, Currency: "GBP"}
}

// requireCode asserts err is a *bridge.Error with code and a fix, and returns it.
func requireCode(t *testing.T, err error, code bridge.Code) *bridge.Error {
	t.Helper()
	var be *bridge.Error
	require.ErrorAs(t, err, &be)
	assert.Equal(t, code, be.Code, "error: %v", err)
	assert.NotEmpty(t, be.Fix, "every mapped error tells someone what to do")
	return be
}

// logBuffer is a goroutine-safe buffer for a slog handler.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}
