package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/webhook"
)

var start = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// orderRef is payload content that must never reach a log line.
const orderRef = "ORD-77-payload-only"

// receiver is a merchant endpoint that records what it gets and answers what status says.
type receiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	got    []delivery
	status func(n int) int // the answer to the n-th request, from 1; nil: 200
	body   func(r *http.Request, body []byte) string
}

type delivery struct {
	body   []byte
	header http.Header
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{body: body, header: r.Header.Clone()})
		n, status, answer := len(rc.got), rc.status, rc.body
		rc.mu.Unlock()
		code := http.StatusOK
		if status != nil {
			code = status(n)
		}
		w.WriteHeader(code)
		if answer != nil {
			io.WriteString(w, answer(r, body))
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// blockingServer serves handle, which may block until stop closes: when the test ends, before
// the server is closed (which waits for handlers). The body is read first, so r.Context() ends
// when the client disconnects.
func blockingServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, stop <-chan struct{})) *httptest.Server {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		handle(w, r, stop)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first
	return srv
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func (rc *receiver) answer(status func(n int) int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status = status
}

func (rc *receiver) answerBody(body func(r *http.Request, body []byte) string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.body = body
}

// failFirst answers status to the first request and 200 to the rest.
func failFirst(status int) func(n int) int {
	return func(n int) int {
		if n == 1 {
			return status
		}
		return http.StatusOK
	}
}

// lowestJitter makes every backoff exactly the lower end of its step: half of it (the backoff
// rule's equal jitter puts a wait in [step/2, step)).
func lowestJitter() float64 { return 0 }

// env is a store, a clock, a log sink and one merchant whose endpoint is url.
type env struct {
	store    *boltstore.Store
	path     string
	clock    *bridgetest.ManualClock
	logs     *bridgetest.LogSink
	merchant *bridge.Merchant
}

func newEnv(t *testing.T, url string) *env {
	t.Helper()
	e := &env{
		path:     filepath.Join(t.TempDir(), "db"),
		clock:    bridgetest.NewManualClock(start),
		logs:     &bridgetest.LogSink{},
		merchant: &bridge.Merchant{ID: "acme", Name: "Acme Energy", Status: bridge.MerchantActive, Webhook: bridge.MerchantWebhook{URL: url, Secret: testSecret}},
	}
	e.open(t)
	t.Cleanup(func() { e.store.Close() })
	return e
}

func (e *env) open(t *testing.T) {
	t.Helper()
	store, err := boltstore.Open(e.path, boltstore.Options{})
	require.NoError(t, err)
	e.store = store
}

// dispatcher returns a Dispatcher on e's store, clock and logs with the rest of opts.
func (e *env) dispatcher(opts webhook.DispatcherOptions) *webhook.Dispatcher {
	opts.Store = e.store
	if opts.Merchants == nil {
		opts.Merchants = bridge.StaticMerchants{e.merchant}
	}
	opts.Clock = e.clock
	opts.Logger = e.logs.Logger()
	return webhook.NewDispatcher(opts)
}

// writeMessage writes a session's terminal transition and its webhook the way the service does:
// in one UpdateSession.
func (e *env) writeMessage(t *testing.T, merchantID string) *bridge.OutboxMessage {
	t.Helper()
	now := e.clock.Now()
	sess := &bridge.Session{
		ID: bridge.NewSessionID(bridge.ModeTest), MerchantID: merchantID, Mode: bridge.ModeTest,
		AgentID: "agent-7", Channel: bridge.ChannelAgentAssist, Amount: 1240, Currency: "GBP",
		Reference: orderRef, Metadata: map[string]string{"order": orderRef},
		Status: bridge.StatusActive, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(30 * time.Minute),
		Attempts: []bridge.Attempt{{Number: 1, SessionGUID: "guid-" + bridge.RandomBase62(8), StartedAt: now}},
	}
	require.NoError(t, e.store.CreateSession(t.Context(), sess))
	var msg *bridge.OutboxMessage
	_, err := e.store.UpdateSession(t.Context(), sess.ID, func(s *bridge.Session, out *bridge.Outbox) error {
		if err := s.SetStatus(bridge.StatusSucceeded, now); err != nil {
			return err
		}
		s.Result = &bridge.Result{Decision: "ACCEPT", ReasonCode: "100", TransactionID: "tx-1"}
		id := bridge.NewEventID()
		payload, err := json.Marshal(bridge.WebhookPayload{ID: id, Type: bridge.EventSucceeded, Created: now.Unix(), Data: s.View()})
		if err != nil {
			return err
		}
		msg = &bridge.OutboxMessage{ID: id, MerchantID: merchantID, Type: bridge.EventSucceeded, Payload: payload, CreatedAt: now, NextAttemptAt: now}
		out.Add(msg)
		return nil
	})
	require.NoError(t, err)
	return msg
}

func (e *env) message(t *testing.T, id string) *bridge.OutboxMessage {
	t.Helper()
	m, err := e.store.OutboxMessage(t.Context(), id)
	require.NoError(t, err)
	return m
}

// round runs one DeliverDue and checks its counts.
func (e *env) round(t *testing.T, d *webhook.Dispatcher, wantDelivered, wantFailed int) {
	t.Helper()
	delivered, failed, err := d.DeliverDue(t.Context())
	require.NoError(t, err)
	assert.Equal(t, wantDelivered, delivered, "delivered")
	assert.Equal(t, wantFailed, failed, "failed")
}

func TestDeliver(t *testing.T) {
	rc := newReceiver(t)
	e := newEnv(t, rc.srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{})
	msg := e.writeMessage(t, "acme")

	e.round(t, d, 1, 0)

	got := rc.deliveries()
	require.Len(t, got, 1)
	assert.Equal(t, msg.Payload, got[0].body, "the payload bytes, unchanged")
	assert.Equal(t, "application/json", got[0].header.Get("Content-Type"))
	assert.Equal(t, "paybridge-webhooks/1", got[0].header.Get("User-Agent"))
	assert.Equal(t, msg.ID, got[0].header.Get(webhook.EventIDHeader))
	assert.NoError(t, webhook.Verify(got[0].body, got[0].header.Get(webhook.Header), testSecret, e.clock.Now(), 0))
	sig, err := webhook.ParseHeader(got[0].header.Get(webhook.Header))
	require.NoError(t, err)
	assert.Len(t, sig.V1, 1, "no previous secrets, one v1")

	stored := e.message(t, msg.ID)
	assert.False(t, stored.Pending())
	assert.True(t, stored.DeliveredAt.Equal(e.clock.Now()))
	assert.Equal(t, 1, stored.Attempts)
	assert.Empty(t, stored.LastError)

	e.clock.Advance(48 * time.Hour)
	e.round(t, d, 0, 0)
	assert.Len(t, rc.deliveries(), 1, "a delivered message is never sent again")
}

func TestDeliverSignsAtSendTime(t *testing.T) {
	rc := newReceiver(t)
	rc.answer(failFirst(http.StatusInternalServerError))
	e := newEnv(t, rc.srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{})
	e.writeMessage(t, "acme")

	e.round(t, d, 0, 1)
	e.clock.Advance(time.Hour)
	e.round(t, d, 1, 0)

	got := rc.deliveries()
	require.Len(t, got, 2)
	for i, g := range got {
		sig, err := webhook.ParseHeader(g.header.Get(webhook.Header))
		require.NoError(t, err)
		assert.True(t, sig.Timestamp.Equal(start.Add(time.Duration(i)*time.Hour)), "attempt %d signed at %v", i+1, sig.Timestamp)
	}
	assert.NoError(t, webhook.Verify(got[1].body, got[1].header.Get(webhook.Header), testSecret, e.clock.Now(), 0),
		"a retry an hour later is within the receiver's tolerance")
}

func TestDeliverRetriesWithBackoff(t *testing.T) {
	const failures = 3
	rc := newReceiver(t)
	rc.answer(func(n int) int {
		if n <= failures {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	e := newEnv(t, rc.srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{InitialBackoff: 30 * time.Second, MaxBackoff: time.Hour, Random: lowestJitter})
	msg := e.writeMessage(t, "acme")

	wait := 15 * time.Second // half the first step, 30s: lowestJitter
	for attempt := 1; attempt <= failures; attempt++ {
		e.round(t, d, 0, 1)
		stored := e.message(t, msg.ID)
		assert.Equal(t, attempt, stored.Attempts)
		assert.Equal(t, "receiver answered 503", stored.LastError)
		assert.True(t, stored.NextAttemptAt.Equal(e.clock.Now().Add(wait)), "attempt %d: next at %v, want now+%v", attempt, stored.NextAttemptAt, wait)

		e.clock.Advance(wait - time.Second)
		e.round(t, d, 0, 0) // not due yet
		e.clock.Advance(time.Second)
		wait *= 2
	}
	assert.Len(t, rc.deliveries(), failures)

	e.round(t, d, 1, 0)
	stored := e.message(t, msg.ID)
	assert.Equal(t, failures+1, stored.Attempts)
	assert.True(t, stored.DeliveredAt.Equal(e.clock.Now()))
	assert.Empty(t, stored.LastError)
	got := rc.deliveries()
	require.Len(t, got, failures+1)
	for _, g := range got {
		assert.Equal(t, msg.ID, g.header.Get(webhook.EventIDHeader), "every retry carries the same event id")
		assert.Equal(t, msg.Payload, g.body)
	}
}

func TestBackoffGrowsCapsAndJitters(t *testing.T) {
	const initial, maxWait = 30 * time.Second, time.Hour
	// The step after the n-th failure: 30s doubling, capped at 1h; the wait lies in [step/2, step).
	bases := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
		16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour, time.Hour, time.Hour, time.Hour}

	tests := []struct {
		name   string
		random func() float64
		factor func(base time.Duration) (lo, hi time.Duration)
	}{
		{"lowest jitter", func() float64 { return 0 }, func(b time.Duration) (time.Duration, time.Duration) { return b / 2, b / 2 }},
		{"highest jitter", func() float64 { return 0.999999 }, func(b time.Duration) (time.Duration, time.Duration) { return b * 99 / 100, b }},
		{"real random source", nil, func(b time.Duration) (time.Duration, time.Duration) { return b / 2, b }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t)
			rc.answer(func(int) int { return http.StatusInternalServerError })
			e := newEnv(t, rc.srv.URL)
			d := e.dispatcher(webhook.DispatcherOptions{InitialBackoff: initial, MaxBackoff: maxWait, RetryWindow: 1000 * time.Hour, Random: tc.random})
			msg := e.writeMessage(t, "acme")
			for n, base := range bases {
				e.round(t, d, 0, 1)
				stored := e.message(t, msg.ID)
				require.Equal(t, n+1, stored.Attempts)
				wait := stored.NextAttemptAt.Sub(e.clock.Now())
				lo, hi := tc.factor(base)
				assert.True(t, wait >= lo && wait <= hi, "after failure %d: waits %v, want %v..%v", n+1, wait, lo, hi)
				e.clock.Set(stored.NextAttemptAt)
			}
		})
	}
}

func TestAbandonAfterRetryWindow(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close() // nothing listens there now: connection refused

	e := newEnv(t, url)
	const window = 24 * time.Hour
	d := e.dispatcher(webhook.DispatcherOptions{RetryWindow: window})
	msg := e.writeMessage(t, "acme")

	var lastAttempt time.Time
	for i := 0; ; i++ {
		require.Less(t, i, 200, "never abandoned")
		e.round(t, d, 0, 1)
		stored := e.message(t, msg.ID)
		require.Equal(t, i+1, stored.Attempts)
		assert.Contains(t, stored.LastError, "connection refused")
		if !stored.AbandonedAt.IsZero() {
			assert.True(t, stored.AbandonedAt.Equal(e.clock.Now()))
			assert.GreaterOrEqual(t, e.clock.Now().Sub(msg.CreatedAt), window, "abandoned inside the window")
			assert.Less(t, lastAttempt.Sub(msg.CreatedAt), window, "an attempt after the window was not the last")
			assert.False(t, stored.Pending())
			break
		}
		assert.LessOrEqual(t, stored.NextAttemptAt.Sub(e.clock.Now()), time.Hour*12/10, "MaxBackoff (1h) caps the wait before ±20% jitter")
		lastAttempt = e.clock.Now()
		e.clock.Set(stored.NextAttemptAt)
	}
	abandoned := e.message(t, msg.ID)

	e.clock.Advance(7 * 24 * time.Hour)
	e.round(t, d, 0, 0)
	assert.Equal(t, abandoned, e.message(t, msg.ID), "an abandoned message is never tried again")
	assert.Contains(t, e.logs.String(), `"level":"ERROR","msg":"webhook abandoned"`)
}

func TestGoneAbandonsAtOnce(t *testing.T) {
	rc := newReceiver(t)
	rc.answer(func(int) int { return http.StatusGone })
	e := newEnv(t, rc.srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{})
	msg := e.writeMessage(t, "acme")

	e.round(t, d, 0, 1)
	stored := e.message(t, msg.ID)
	assert.Equal(t, 1, stored.Attempts)
	assert.True(t, stored.AbandonedAt.Equal(e.clock.Now()))
	assert.Equal(t, "receiver answered 410", stored.LastError)

	e.clock.Advance(time.Hour)
	e.round(t, d, 0, 0)
	assert.Len(t, rc.deliveries(), 1)
	assert.Contains(t, e.logs.String(), "410 Gone")
}

func TestFailuresBeforeSending(t *testing.T) {
	rc := newReceiver(t)
	tests := []struct {
		name     string
		merchant *bridge.Merchant
		want     string
	}{
		{"merchant gone", &bridge.Merchant{ID: "someone-else", Webhook: bridge.MerchantWebhook{URL: rc.srv.URL, Secret: testSecret}}, "merchant is no longer configured"},
		{"no webhook URL", &bridge.Merchant{ID: "acme", Webhook: bridge.MerchantWebhook{Secret: testSecret}}, "merchant has no webhook URL"},
		{"no webhook secret", &bridge.Merchant{ID: "acme", Webhook: bridge.MerchantWebhook{URL: rc.srv.URL}}, "merchant has no webhook secret"},
		{"invalid URL", &bridge.Merchant{ID: "acme", Webhook: bridge.MerchantWebhook{URL: "http://[::1]:namedport/?token=hush", Secret: testSecret}}, "merchant webhook URL is invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rc.srv.URL)
			d := e.dispatcher(webhook.DispatcherOptions{Merchants: bridge.StaticMerchants{tc.merchant}, Random: lowestJitter})
			msg := e.writeMessage(t, "acme")

			e.round(t, d, 0, 1)
			stored := e.message(t, msg.ID)
			assert.Equal(t, 1, stored.Attempts)
			assert.Equal(t, tc.want, stored.LastError)
			assert.True(t, stored.NextAttemptAt.Equal(e.clock.Now().Add(15*time.Second)), "half the first step, 30s")
			assert.NotContains(t, e.logs.String(), "hush")
		})
	}
	assert.Empty(t, rc.deliveries(), "nothing was sent")
}

func TestRedirectIsAFailure(t *testing.T) {
	elsewhere := newReceiver(t)
	redirect := httptest.NewServer(http.RedirectHandler(elsewhere.srv.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	e := newEnv(t, redirect.URL)
	d := e.dispatcher(webhook.DispatcherOptions{})
	msg := e.writeMessage(t, "acme")

	e.round(t, d, 0, 1)
	assert.Equal(t, "receiver answered 307", e.message(t, msg.ID).LastError)
	assert.Empty(t, elsewhere.deliveries(), "the signed body does not follow a redirect")
}

func TestSecretRollSignsWithBoth(t *testing.T) {
	rc := newReceiver(t)
	e := newEnv(t, rc.srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{PreviousSecrets: func(merchantID string) []string {
		if merchantID != "acme" {
			return nil
		}
		return []string{"", testSecret, oldSecret} // empty and repeated ones are dropped
	}})
	e.writeMessage(t, "acme")

	e.round(t, d, 1, 0)
	got := rc.deliveries()
	require.Len(t, got, 1)
	header := got[0].header.Get(webhook.Header)
	sig, err := webhook.ParseHeader(header)
	require.NoError(t, err)
	assert.Len(t, sig.V1, 2)
	assert.NoError(t, webhook.Verify(got[0].body, header, testSecret, e.clock.Now(), 0), "the new secret verifies")
	assert.NoError(t, webhook.Verify(got[0].body, header, oldSecret, e.clock.Now(), 0), "the old secret verifies")
	assert.ErrorIs(t, webhook.Verify(got[0].body, header, otherSecret, e.clock.Now(), 0), webhook.ErrMismatch)
	i, err := webhook.VerifyAny(got[0].body, header, []string{otherSecret, oldSecret}, e.clock.Now(), 0)
	require.NoError(t, err)
	assert.Equal(t, 1, i)
}

func TestMerchantPreviousSecretSigns(t *testing.T) {
	rc := newReceiver(t)
	e := newEnv(t, rc.srv.URL)
	e.merchant.Webhook.PreviousSecret = oldSecret
	d := e.dispatcher(webhook.DispatcherOptions{PreviousSecrets: func(string) []string { return []string{oldSecret, otherSecret} }})
	e.writeMessage(t, "acme")

	e.round(t, d, 1, 0)
	got := rc.deliveries()
	require.Len(t, got, 1)
	header := got[0].header.Get(webhook.Header)
	assert.Equal(t, webhook.Sign(got[0].body, e.clock.Now(), testSecret, oldSecret, otherSecret), header,
		"current, then Webhook.PreviousSecret, then PreviousSecrets, each once")
}

func TestConcurrencyBound(t *testing.T) {
	const limit, messages = 2, 7
	var inflight, peak, arrived atomic.Int32
	release := make(chan struct{}, messages)
	srv := blockingServer(t, func(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) {
		n := inflight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		arrived.Add(1)
		select {
		case <-release:
		case <-stop:
		}
		inflight.Add(-1)
	})
	e := newEnv(t, srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{Concurrency: limit})
	for range messages {
		e.writeMessage(t, "acme")
	}

	done := make(chan [2]int, 1)
	go func() {
		delivered, failed, _ := d.DeliverDue(context.Background())
		done <- [2]int{delivered, failed}
	}()
	// Release one request at a time: the next arrives only once one in flight has finished.
	for released := 0; released < messages; released++ {
		want := int32(min(messages, limit+released))
		require.Eventually(t, func() bool { return arrived.Load() == want }, 5*time.Second, time.Millisecond,
			"after %d released, %d requests should have arrived (have %d)", released, want, arrived.Load())
		release <- struct{}{}
	}
	select {
	case got := <-done:
		assert.Equal(t, [2]int{messages, 0}, got)
	case <-time.After(10 * time.Second):
		t.Fatal("DeliverDue did not return")
	}
	assert.Equal(t, int32(limit), peak.Load(), "requests in flight at once")
}

func TestSameMessageNeverTwiceAtOnce(t *testing.T) {
	var arrived atomic.Int32
	release := make(chan struct{})
	srv := blockingServer(t, func(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) {
		arrived.Add(1)
		select {
		case <-release:
		case <-stop:
		}
	})
	e := newEnv(t, srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{})
	msg := e.writeMessage(t, "acme")

	first := make(chan int, 1)
	go func() {
		delivered, _, _ := d.DeliverDue(context.Background())
		first <- delivered
	}()
	require.Eventually(t, func() bool { return arrived.Load() == 1 }, 5*time.Second, time.Millisecond)

	// A second round while the first is in flight skips the claimed message.
	e.round(t, d, 0, 0)
	close(release)
	select {
	case delivered := <-first:
		assert.Equal(t, 1, delivered)
	case <-time.After(10 * time.Second):
		t.Fatal("DeliverDue did not return")
	}
	// And a round after it does not send it again either.
	e.round(t, d, 0, 0)
	assert.Equal(t, int32(1), arrived.Load())
	assert.Equal(t, 1, e.message(t, msg.ID).Attempts)
}

func TestCancelledRoundIsNotAnAttempt(t *testing.T) {
	var arrived atomic.Int32
	srv := blockingServer(t, func(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) {
		arrived.Add(1)
		select { // answers only when the client gives up
		case <-r.Context().Done():
		case <-stop:
		}
	})
	e := newEnv(t, srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{})
	msg := e.writeMessage(t, "acme")

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan [2]int, 1)
	go func() {
		delivered, failed, _ := d.DeliverDue(ctx)
		done <- [2]int{delivered, failed}
	}()
	require.Eventually(t, func() bool { return arrived.Load() == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	select {
	case got := <-done:
		assert.Equal(t, [2]int{0, 0}, got)
	case <-time.After(10 * time.Second):
		t.Fatal("DeliverDue did not return after cancel")
	}
	stored := e.message(t, msg.ID)
	assert.Equal(t, 0, stored.Attempts, "shutting down is not the receiver's failure")
	assert.True(t, stored.Pending())
	assert.True(t, stored.NextAttemptAt.Equal(msg.NextAttemptAt), "still due at once")
}

func TestNoSecretsInLogsOrLastError(t *testing.T) {
	rc := newReceiver(t)
	// A receiver that echoes everything it got, and its own copy of the secret, in its errors.
	rc.answerBody(func(r *http.Request, body []byte) string {
		return fmt.Sprintf("bad signature %s for secret %s\n\tbody=%s", r.Header.Get(webhook.Header), testSecret, body)
	})
	rc.answer(failFirst(http.StatusUnauthorized))
	e := newEnv(t, rc.srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{PreviousSecrets: func(string) []string { return []string{oldSecret} }})
	msg := e.writeMessage(t, "acme")

	e.round(t, d, 0, 1)
	lastError := e.message(t, msg.ID).LastError
	e.clock.Advance(time.Hour)
	e.round(t, d, 1, 0)

	sent := rc.deliveries()
	require.Len(t, sent, 2)
	secrets := []string{testSecret, oldSecret, orderRef}
	for _, s := range sent {
		header := s.header.Get(webhook.Header)
		secrets = append(secrets, header, header[strings.Index(header, "v1=")+3:][:64])
	}

	assert.True(t, strings.HasPrefix(lastError, "receiver answered 401: bad signature [redacted] for secret [redacted] body="), lastError)
	assert.LessOrEqual(t, len(lastError), len("receiver answered 401: ")+200)
	for _, s := range secrets {
		assert.NotContains(t, lastError, s)
	}
	logs := e.logs.String()
	assert.Contains(t, logs, msg.ID, "the event id is logged")
	assert.Contains(t, logs, "session.succeeded", "and its type")
	e.logs.AssertNoSecrets(t, secrets...)
}

func TestPendingMessageSurvivesReopen(t *testing.T) {
	rc := newReceiver(t)
	rc.answer(failFirst(http.StatusBadGateway))
	e := newEnv(t, rc.srv.URL)
	msg := e.writeMessage(t, "acme")
	e.round(t, e.dispatcher(webhook.DispatcherOptions{}), 0, 1)
	require.NoError(t, e.store.Close())

	e.open(t) // a new process on the same file
	e.clock.Advance(time.Minute)
	e.round(t, e.dispatcher(webhook.DispatcherOptions{}), 1, 0)

	stored := e.message(t, msg.ID)
	assert.Equal(t, 2, stored.Attempts)
	assert.False(t, stored.DeliveredAt.IsZero())
	got := rc.deliveries()
	require.Len(t, got, 2)
	assert.Equal(t, msg.Payload, got[1].body)
}

func TestRun(t *testing.T) {
	rc := newReceiver(t)
	e := newEnv(t, rc.srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{PollInterval: 5 * time.Millisecond})
	first := e.writeMessage(t, "acme")

	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- d.Run(ctx) }()

	require.Eventually(t, func() bool { return len(rc.deliveries()) == 1 }, 5*time.Second, time.Millisecond, "pending at start")
	second := e.writeMessage(t, "acme")
	require.Eventually(t, func() bool { return len(rc.deliveries()) == 2 }, 5*time.Second, time.Millisecond, "written while running")
	cancel()
	select {
	case err := <-stopped:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	got := rc.deliveries()
	assert.Equal(t, first.ID, got[0].header.Get(webhook.EventIDHeader))
	assert.Equal(t, second.ID, got[1].header.Get(webhook.EventIDHeader))
}
