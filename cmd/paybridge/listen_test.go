package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/webhook"
)

// forwardReceiver is the developer's local endpoint `listen` forwards to: it verifies each
// delivery with the webhook helper against the secret listen printed.
type forwardReceiver struct {
	mu       sync.Mutex
	secret   string
	got      []string // "type sessionId" per verified delivery, in arrival order
	ids      []string
	bad      int
	headerOK bool
}

func (f *forwardReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secret == "" || webhook.Verify(body, r.Header.Get(webhook.Header), f.secret, time.Now(), webhook.DefaultTolerance) != nil {
		f.bad++
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct{ ID string }
	}
	if json.Unmarshal(body, &ev) != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	f.headerOK = r.Header.Get(webhook.EventIDHeader) == ev.ID && r.Header.Get("User-Agent") == webhook.UserAgent
	f.got = append(f.got, ev.Type+" "+ev.Data.ID)
	f.ids = append(f.ids, ev.ID)
}

func (f *forwardReceiver) snapshot() (got []string, ids []string, bad int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...), append([]string(nil), f.ids...), f.bad
}

var listenSecret = regexp.MustCompile(`Your webhook signing secret is (whsec_[0-9A-Za-z]+)`)

// startListen runs `paybridge listen` in-process against base and returns its output and a
// function that stops it (SIGINT's context) and waits for it.
func startListen(t *testing.T, base, key string, fwd *forwardReceiver, url string, extra ...string) (*bridgetest.LogSink, func()) {
	t.Helper()
	stdout, stderr := &bridgetest.LogSink{}, &bridgetest.LogSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := append([]string{"paybridge", "listen", "--api", base, "--forward-to", url, "--poll-interval", "50ms"}, extra...)
	getenv := func(k string) string {
		if k == "PAYBRIDGE_API_KEY" {
			return key
		}
		return ""
	}
	go func() { done <- run(ctx, args, getenv, stdout, stderr) }()
	var secret string
	require.Eventually(t, func() bool {
		m := listenSecret.FindStringSubmatch(stdout.String())
		if m != nil {
			secret = m[1]
		}
		return m != nil
	}, 20*time.Second, 10*time.Millisecond, "stdout: %s\nstderr: %s", stdout, stderr)
	fwd.mu.Lock()
	if fwd.secret == "" {
		fwd.secret = secret
	} else {
		assert.Equal(t, fwd.secret, secret, "--webhook-secret is the one printed")
	}
	fwd.mu.Unlock()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("listen did not stop")
		}
		assert.NotContains(t, stdout.String()+stderr.String(), key, "the API key is never printed")
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return stdout, stop
}

// TestListen: `paybridge listen` against a running paybridge forwards each new event once,
// oldest first, signed with the secret it printed and with a real delivery's headers; events from
// before it started only with --since-event (those after that event). The merchant's own webhook
// is delivered meanwhile, and /metrics counts it.
func TestListen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	merchantHook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer merchantHook.Close()
	w := newWorld(t, "", "    webhook: {url: \""+merchantHook.URL+"\", secret: whsec_listen_test_merchant_secret}\n")
	_, base := w.serve(t)
	cancelNew := func() string {
		sess := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":500,"currency":"GBP"}`)
		postJSON(t, base+"/v1/sessions/"+sess["id"].(string)+"/cancel", w.secretKey, `{}`)
		return sess["id"].(string)
	}
	eventOf := func(sessionID string) string {
		list := getJSON(t, base+"/v1/events?sessionId="+sessionID, w.secretKey)
		data := list["data"].([]any)
		require.Len(t, data, 1)
		return data[0].(map[string]any)["id"].(string)
	}
	before1, before2 := cancelNew(), cancelNew()

	fwd := &forwardReceiver{}
	receiver := httptest.NewServer(fwd)
	defer receiver.Close()
	out, stop := startListen(t, base, w.secretKey, fwd, receiver.URL)

	paid := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":1240,"currency":"GBP"}`)
	w.complete(t, paid["vcc"].(map[string]any)["sessionGuid"].(string), "ACCEPT")
	require.Eventually(t, func() bool { got, _, _ := fwd.snapshot(); return len(got) >= 1 }, 20*time.Second, 10*time.Millisecond, "%s", out)
	after := cancelNew()
	require.Eventually(t, func() bool { got, _, _ := fwd.snapshot(); return len(got) >= 2 }, 20*time.Second, 10*time.Millisecond, "%s", out)
	stop()

	got, ids, bad := fwd.snapshot()
	assert.Zero(t, bad, "every forward verifies with the printed secret")
	assert.Equal(t, []string{"session.succeeded " + paid["id"].(string), "session.cancelled " + after}, got,
		"the payment's terminal event once, then the next; nothing from before the start")
	fwd.mu.Lock()
	assert.True(t, fwd.headerOK, "X-VonPay-Event-Id and User-Agent as a real delivery")
	fwd.mu.Unlock()
	assert.Regexp(t, `(?m)^\S+ session\.succeeded `+ids[0]+` -> 200$`, out.String())

	// --since-event: the events after that one, oldest first, then the new ones. They are
	// forwarded at once, so the receiver knows the secret beforehand (--webhook-secret).
	const secret2 = "whsec_listenTestFixedSecret012345"
	fwd2 := &forwardReceiver{secret: secret2}
	receiver2 := httptest.NewServer(fwd2)
	defer receiver2.Close()
	_, stop2 := startListen(t, base, w.secretKey, fwd2, receiver2.URL, "--since-event", eventOf(before1), "--webhook-secret", secret2)
	require.Eventually(t, func() bool { got, _, _ := fwd2.snapshot(); return len(got) >= 3 }, 20*time.Second, 10*time.Millisecond)
	stop2()
	got2, _, bad2 := fwd2.snapshot()
	assert.Zero(t, bad2)
	assert.Equal(t, []string{"session.cancelled " + before2, "session.succeeded " + paid["id"].(string), "session.cancelled " + after}, got2)

	// The merchant's own endpoint got the four events too, counted on /metrics.
	require.Eventually(t, func() bool {
		return strings.Contains(metricsOf(t, base), `paybridge_webhook_deliveries_total{result="delivered"} 4`)
	}, 20*time.Second, 50*time.Millisecond)
	m := metricsOf(t, base)
	assert.Contains(t, m, `paybridge_webhook_deliveries_total{result="abandoned"} 0`)
	assert.Contains(t, m, "paybridge_webhook_outbox_pending ")
	assert.Contains(t, m, "paybridge_webhook_outbox_oldest_pending_seconds ")
}

// TestListenUsage: --help lists every flag and exits 0; a missing key or target is an error
// that says what to do.
func TestListenUsage(t *testing.T) {
	var out, errOut strings.Builder
	require.NoError(t, run(context.Background(), []string{"paybridge", "listen", "--help"}, func(string) string { return "" }, &out, &errOut))
	for _, flag := range []string{"--forward-to", "--api", "--api-key", "--config", "--since-event", "--webhook-secret", "--poll-interval", "--retries"} {
		assert.Contains(t, errOut.String(), strings.TrimPrefix(flag, "-"), flag)
	}
	err := run(context.Background(), []string{"paybridge", "listen", "--forward-to", "http://127.0.0.1:1/"}, func(string) string { return "" }, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "PAYBRIDGE_API_KEY")
	err = run(context.Background(), []string{"paybridge", "listen"}, func(string) string { return "vp_sk_test_x" }, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--forward-to")
	err = run(context.Background(), []string{"paybridge", "listen", "--forward-to", "http://127.0.0.1:1/", "--api-key", "vp_pk_test_abcdefgh"}, func(string) string { return "" }, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "secret key")
	assert.NotContains(t, err.Error(), "vp_pk_test_abcdefgh")
}

// metricsOf scrapes base's /metrics.
func metricsOf(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(data)
}
