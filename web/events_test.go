package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/webhook"
)

// apiEvent is the event object as a client reads it.
type apiEvent struct {
	ID        string          `json:"id"`
	Object    string          `json:"object"`
	Type      string          `json:"type"`
	Livemode  bool            `json:"livemode"`
	SessionID string          `json:"sessionId"`
	Data      json.RawMessage `json:"data"`
	Delivery  string          `json:"delivery"`
	Attempts  []struct {
		Status     int    `json:"status"`
		Error      string `json:"error"`
		DurationMs int64  `json:"durationMs"`
	} `json:"attempts"`
	AttemptCount int `json:"attemptCount"`
}

type apiEventList struct {
	Object  string     `json:"object"`
	Data    []apiEvent `json:"data"`
	HasMore bool       `json:"hasMore"`
}

// eventsCall sends a request, checks it against the OpenAPI document, and decodes a 2xx into v.
func eventsCall(t *testing.T, h *harness, spec *openAPISpec, method, path, key string, v any, headers ...string) *response {
	t.Helper()
	r := h.do(method, path, key, nil, headers...)
	checkResponse(t, spec, method, path, r)
	if v != nil && r.Status < 300 {
		require.NoError(t, json.Unmarshal(r.Body, v), "%s", r.Body)
	}
	return r
}

// cancelled creates and cancels a session, which makes one session.cancelled event.
func cancelled(t *testing.T, h *harness) bridge.SessionView {
	t.Helper()
	sess := h.createSession("agent-1", nil)
	r := h.do("POST", "/v1/sessions/"+sess.ID+"/cancel", h.secretKey, nil)
	require.Equal(t, http.StatusOK, r.Status, "cancel: %s", r.Body)
	h.clock.Advance(time.Second) // the next event is newer
	return sess
}

// TestEventsWithoutEndpoint: a merchant with no webhook URL still has its events, listed newest
// first, filtered, paged and scoped to the key's mode; a resend names the missing webhook.url.
func TestEventsWithoutEndpoint(t *testing.T) {
	h := newHarness(t)
	spec, _ := fetchOpenAPI(t, h)
	first := cancelled(t, h)
	second := cancelled(t, h)
	third := cancelled(t, h)

	var list apiEventList
	r := eventsCall(t, h, spec, "GET", "/v1/events", h.secretKey, &list)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Len(t, list.Data, 3)
	assert.Equal(t, "list", list.Object)
	assert.False(t, list.HasMore)
	assert.Equal(t, []string{third.ID, second.ID, first.ID},
		[]string{list.Data[0].SessionID, list.Data[1].SessionID, list.Data[2].SessionID}, "newest first")
	ev := list.Data[0]
	assert.Equal(t, "event", ev.Object)
	assert.Equal(t, "session.cancelled", ev.Type)
	assert.Equal(t, "no_endpoint", ev.Delivery)
	assert.False(t, ev.Livemode)
	assert.Empty(t, ev.Attempts)
	var payload bridge.WebhookPayload
	require.NoError(t, json.Unmarshal(ev.Data, &payload))
	assert.Equal(t, ev.ID, payload.ID, "data is the webhook body")
	assert.Equal(t, third.ID, payload.Data.ID)
	assert.Equal(t, bridge.StatusCancelled, payload.Data.Status)
	assert.NoError(t, spec.validate(t, "/components/schemas/MerchantWebhook", ev.Data))

	tests := []struct {
		name  string
		query string
		want  []string // session ids
		more  bool
	}{
		{"limit", "?limit=2", []string{third.ID, second.ID}, true},
		{"after", "?limit=2&starting_after=" + list.Data[1].ID, []string{first.ID}, false},
		{"session", "?sessionId=" + second.ID, []string{second.ID}, false},
		{"type", "?type=session.cancelled&limit=1", []string{third.ID}, true},
		{"other type", "?type=session.succeeded", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var page apiEventList
			r := eventsCall(t, h, spec, "GET", "/v1/events"+tc.query, h.secretKey, &page)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			var got []string
			for _, e := range page.Data {
				got = append(got, e.SessionID)
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.more, page.HasMore)
		})
	}

	invalid := map[string]string{
		"?limit=0": "limit", "?limit=101": "limit", "?limit=x": "limit", "?type=session.handoff": "type",
		"?starting_after=" + bridge.NewEventID(): "starting_after",
	}
	for query, param := range invalid {
		r := eventsCall(t, h, spec, "GET", "/v1/events"+query, h.secretKey, nil)
		m := assertErrorEnvelope(t, r, http.StatusBadRequest, bridge.CodeValidationError)
		assert.Equal(t, param, m["param"], query)
	}

	var got apiEvent
	r = eventsCall(t, h, spec, "GET", "/v1/events/"+ev.ID, h.secretKey, &got)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, ev.ID, got.ID)
	assert.JSONEq(t, string(ev.Data), string(got.Data))

	r = eventsCall(t, h, spec, "POST", "/v1/events/"+ev.ID+"/resend", h.secretKey, nil, "Content-Type", "")
	m := assertErrorEnvelope(t, r, http.StatusBadRequest, bridge.CodeValidationError)
	assert.Contains(t, m["error"], "webhook.url")

	// A live key sees no test event; a publishable key none at all.
	live := h.newKey(bridge.KeySecret, bridge.ModeLive)
	var liveList apiEventList
	r = eventsCall(t, h, spec, "GET", "/v1/events", live, &liveList)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Empty(t, liveList.Data)
	assertErrorEnvelope(t, eventsCall(t, h, spec, "GET", "/v1/events/"+ev.ID, live, nil), http.StatusNotFound, bridge.CodeSessionNotFound)
	assertErrorEnvelope(t, eventsCall(t, h, spec, "POST", "/v1/events/"+ev.ID+"/resend", live, nil), http.StatusNotFound, bridge.CodeSessionNotFound)
	m = assertErrorEnvelope(t, eventsCall(t, h, spec, "GET", "/v1/events?starting_after="+url.QueryEscape(ev.ID), live, nil), http.StatusBadRequest, bridge.CodeValidationError)
	assert.Equal(t, "starting_after", m["param"])
	assertErrorEnvelope(t, eventsCall(t, h, spec, "GET", "/v1/events", h.publishableKey, nil), http.StatusForbidden, bridge.CodeAuthKeyTypeForbidden)
	assertErrorEnvelope(t, eventsCall(t, h, spec, "GET", "/v1/events/"+bridge.NewEventID(), h.secretKey, nil), http.StatusNotFound, bridge.CodeSessionNotFound)
}

// TestEventsDeliveryAndResend: a delivered event shows its attempt; a resend (idempotent, body-less
// allowed) queues one more delivery at once, which the dispatcher makes.
func TestEventsDeliveryAndResend(t *testing.T) {
	var (
		mu   sync.Mutex
		got  [][]byte
		sigs []string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, sigs = append(got, body), append(sigs, r.Header.Get(webhook.Header))
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	const secret = "whsec_eventsTestSecret0123456789"
	h := newHarness(t, func(c *harnessConfig) {
		c.merchant.Webhook = bridge.MerchantWebhook{URL: receiver.URL, Secret: secret}
	})
	spec, _ := fetchOpenAPI(t, h)
	d := webhook.NewDispatcher(webhook.DispatcherOptions{Store: h.store, Merchants: bridge.StaticMerchants{h.merchant}, Clock: h.clock})
	sess := cancelled(t, h)

	var list apiEventList
	eventsCall(t, h, spec, "GET", "/v1/events?sessionId="+sess.ID, h.secretKey, &list)
	require.Len(t, list.Data, 1)
	id := list.Data[0].ID
	assert.Equal(t, "pending", list.Data[0].Delivery)

	delivered, _, err := d.DeliverDue(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, delivered)
	var ev apiEvent
	eventsCall(t, h, spec, "GET", "/v1/events/"+id, h.secretKey, &ev)
	assert.Equal(t, "delivered", ev.Delivery)
	require.Len(t, ev.Attempts, 1)
	assert.Equal(t, http.StatusOK, ev.Attempts[0].Status)
	mu.Lock()
	require.Len(t, got, 1)
	assert.JSONEq(t, string(ev.Data), string(got[0]))
	assert.NoError(t, webhook.Verify(ev.Data, sigs[0], secret, h.clock.Now(), webhook.DefaultTolerance), "data is what was signed")
	mu.Unlock()

	// Body-less, no Content-Type, with an Idempotency-Key: 202, and the same answer replayed.
	var resent apiEvent
	r := eventsCall(t, h, spec, "POST", "/v1/events/"+id+"/resend", h.secretKey, &resent, "Content-Type", "", "Idempotency-Key", "resend-1")
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	assert.Equal(t, "pending", resent.Delivery)
	again := eventsCall(t, h, spec, "POST", "/v1/events/"+id+"/resend", h.secretKey, nil, "Content-Type", "", "Idempotency-Key", "resend-1")
	assert.Equal(t, http.StatusAccepted, again.Status)
	assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	assert.JSONEq(t, string(r.Body), string(again.Body))

	delivered, _, err = d.DeliverDue(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, delivered, "the resend is delivered at once")
	delivered, _, err = d.DeliverDue(t.Context())
	require.NoError(t, err)
	assert.Zero(t, delivered, "once: the replayed resend queued nothing more")
	eventsCall(t, h, spec, "GET", "/v1/events/"+id, h.secretKey, &ev)
	assert.Equal(t, "delivered", ev.Delivery)
	assert.Len(t, ev.Attempts, 2)
	assert.Equal(t, 2, ev.AttemptCount)
	mu.Lock()
	assert.Len(t, got, 2)
	mu.Unlock()
}

// TestOutboxMetrics: /metrics reports the pending deliveries and the oldest one's age from the
// store, read at most every 5 s of the service clock, and the delivery counters at 0 until a
// dispatcher is attached.
func TestOutboxMetrics(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(receiver.Close)
	h := newHarness(t, func(c *harnessConfig) {
		c.merchant.Webhook = bridge.MerchantWebhook{URL: receiver.URL, Secret: "whsec_metricsTestSecret0123456"}
	})
	scrape := func() string {
		t.Helper()
		r := h.do("GET", "/metrics", "", nil)
		require.Equal(t, http.StatusOK, r.Status)
		return string(r.Body)
	}
	first := scrape()
	assert.Contains(t, first, "paybridge_webhook_outbox_pending 0\n")
	assert.Contains(t, first, "paybridge_webhook_outbox_oldest_pending_seconds 0\n")
	for _, result := range []string{"delivered", "failed", "abandoned"} {
		assert.Contains(t, first, `paybridge_webhook_deliveries_total{result="`+result+`"} 0`+"\n")
	}

	cancelled(t, h) // one pending delivery, created now; the clock moves 1 s
	cancelled(t, h)
	assert.Contains(t, scrape(), "paybridge_webhook_outbox_pending 0\n", "read again only after 5 s")
	h.clock.Advance(5 * time.Second)
	m := scrape()
	assert.Contains(t, m, "paybridge_webhook_outbox_pending 2\n")
	assert.Contains(t, m, "paybridge_webhook_outbox_oldest_pending_seconds 7\n", "the first was created 7 s ago")
}
