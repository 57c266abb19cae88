package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/webhook"
)

// merchantEndpoint is a merchant's webhook receiver, as an integrator would write it with the
// exported helper: verify the raw body, then deduplicate on the event id.
type merchantEndpoint struct {
	secret  string
	healthy atomic.Bool

	mu       sync.Mutex
	events   map[string]string // event id → type, first verified delivery
	accepted map[string]int    // event id → 2xx answers given
	refused  int
	forged   int
}

func (e *merchantEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := webhook.Verify(body, r.Header.Get(webhook.Header), e.secret, time.Now(), 0); err != nil {
		e.forged++
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	if !e.healthy.Load() {
		e.refused++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct{ ID string }
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	if _, seen := e.events[ev.ID]; !seen {
		e.events[ev.ID] = ev.Type + " " + ev.Data.ID
	}
	e.accepted[ev.ID]++
	w.WriteHeader(http.StatusOK)
}

func (e *merchantEndpoint) snapshot() (events map[string]string, accepted map[string]int, refused, forged int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	events, accepted = map[string]string{}, map[string]int{}
	for k, v := range e.events {
		events[k] = v
	}
	for k, v := range e.accepted {
		accepted[k] = v
	}
	return events, accepted, e.refused, e.forged
}

// TestMerchantWebhooksSurviveKill9: a merchant endpoint that fails for a while, and a kill -9 of
// paybridge in between, still receives every event exactly once per event id after recovery,
// each verifying with the exported helper.
func TestMerchantWebhooksSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const secret = "whsec_merchant_endpoint_secret"
	endpoint := &merchantEndpoint{secret: secret, events: map[string]string{}, accepted: map[string]int{}}
	receiver := httptest.NewServer(endpoint)
	defer receiver.Close()
	w := newWorld(t, "", "    webhook: {url: \""+receiver.URL+"\", secret: "+secret+"}\n")

	first, base := w.serve(t)
	paid := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":1240,"currency":"GBP"}`)
	declined := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":990,"currency":"GBP"}`)
	cancelled := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":500,"currency":"GBP"}`)
	w.complete(t, paid["vcc"].(map[string]any)["sessionGuid"].(string), "ACCEPT")
	w.complete(t, declined["vcc"].(map[string]any)["sessionGuid"].(string), "REJECT")
	postJSON(t, base+"/v1/sessions/"+cancelled["id"].(string)+"/cancel", w.secretKey, `{}`)

	// Deliveries are tried and refused while the endpoint is down; then paybridge dies.
	require.Eventually(t, func() bool { _, _, refused, _ := endpoint.snapshot(); return refused >= 6 }, 20*time.Second, 10*time.Millisecond)
	first.kill9(t)
	endpoint.healthy.Store(true)
	second, _ := w.serve(t)

	want := map[string]string{
		"session.succeeded": paid["id"].(string),
		"session.failed":    declined["id"].(string),
		"session.cancelled": cancelled["id"].(string),
	}
	require.Eventually(t, func() bool { events, _, _, _ := endpoint.snapshot(); return len(events) == len(want) }, 20*time.Second, 10*time.Millisecond)
	events, accepted, _, forged := endpoint.snapshot()
	assert.Zero(t, forged, "every delivery verified with the helper")
	got := map[string]string{}
	for id, v := range events {
		typ, session, _ := strings.Cut(v, " ")
		got[typ] = session
		assert.Regexp(t, `^vp_evt_[0-9A-Za-z]{24}$`, id)
		assert.Equal(t, 1, accepted[id], "event %s delivered once after recovery", id)
	}
	assert.Equal(t, want, got)
	assert.NotContains(t, first.stderr.String()+second.stderr.String(), secret)
}
