package webhook_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/webhook"
)

// TestAttemptsRecorded: every attempt lands on the event (time, status or 0, the redacted error,
// duration), the last 20 only, and the counters count them by result.
func TestAttemptsRecorded(t *testing.T) {
	rc := newReceiver(t)
	rc.answer(func(n int) int {
		if n <= 22 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	e := newEnv(t, rc.srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{Random: lowestJitter, InitialBackoff: time.Second, MaxBackoff: time.Second, RetryWindow: time.Hour})
	msg := e.writeMessage(t, "acme")

	var times []time.Time
	for range 22 {
		times = append(times, e.clock.Now())
		e.round(t, d, 0, 1)
		e.clock.Set(e.message(t, msg.ID).NextAttemptAt)
	}
	first := e.message(t, msg.ID)
	require.Len(t, first.Deliveries, bridge.MaxDeliveryLog, "the last 20")
	for i, a := range first.Deliveries {
		assert.True(t, a.At.Equal(times[i+2]), "attempt %d at %s, want %s", i, a.At, times[i+2])
		assert.Equal(t, http.StatusServiceUnavailable, a.Status)
		assert.Equal(t, "receiver answered 503", a.Error)
		assert.GreaterOrEqual(t, a.Duration, time.Duration(0))
	}
	times = append(times, e.clock.Now())
	e.round(t, d, 1, 0)
	done := e.message(t, msg.ID)
	require.Len(t, done.Deliveries, bridge.MaxDeliveryLog)
	last := done.Deliveries[bridge.MaxDeliveryLog-1]
	assert.Equal(t, http.StatusNoContent, last.Status)
	assert.Empty(t, last.Error)
	assert.True(t, last.At.Equal(times[22]))
	assert.Equal(t, 23, done.Attempts, "Attempts still counts them all")
	assert.Equal(t, webhook.DeliveryStats{Delivered: 1, Failed: 22}, d.Deliveries())
}

// TestAttemptWithoutResponse: a connection refused is recorded with status 0.
func TestAttemptWithoutResponse(t *testing.T) {
	down := blockingServer(t, func(http.ResponseWriter, *http.Request, <-chan struct{}) {})
	url := down.URL
	down.Close()
	e := newEnv(t, url)
	d := e.dispatcher(webhook.DispatcherOptions{})
	msg := e.writeMessage(t, "acme")
	e.round(t, d, 0, 1)
	got := e.message(t, msg.ID)
	require.Len(t, got.Deliveries, 1)
	assert.Zero(t, got.Deliveries[0].Status)
	assert.Contains(t, got.Deliveries[0].Error, "connection refused")
	assert.NotContains(t, got.Deliveries[0].Error, url, "no URL in the error")
}

// TestResendOpensAFreshWindow: an abandoned (or delivered) event resent is delivered again at
// once, with the backoff from its first step and a whole retry window from the resend.
func TestResendOpensAFreshWindow(t *testing.T) {
	rc := newReceiver(t)
	rc.answer(func(int) int { return http.StatusInternalServerError })
	e := newEnv(t, rc.srv.URL)
	const window = 2 * time.Hour
	d := e.dispatcher(webhook.DispatcherOptions{Random: lowestJitter, RetryWindow: window})
	msg := e.writeMessage(t, "acme")
	for i := 0; e.message(t, msg.ID).Pending(); i++ {
		require.Less(t, i, 100)
		e.round(t, d, 0, 1)
		e.clock.Set(e.message(t, msg.ID).NextAttemptAt)
	}
	abandoned := e.message(t, msg.ID)
	require.Equal(t, bridge.DeliveryAbandoned, abandoned.DeliveryStatus())
	assert.Equal(t, uint64(1), d.Deliveries().Abandoned)

	e.clock.Advance(10 * 24 * time.Hour)
	events := &bridge.EventService{Store: e.store, Merchants: bridge.StaticMerchants{e.merchant}, Clock: e.clock}
	scope := bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest}
	resent, err := events.Resend(t.Context(), scope, msg.ID)
	require.NoError(t, err)
	assert.Equal(t, bridge.DeliveryPending, resent.DeliveryStatus())
	assert.True(t, resent.NextAttemptAt.Equal(e.clock.Now()))

	resentAt := e.clock.Now()
	e.round(t, d, 0, 1)
	got := e.message(t, msg.ID)
	assert.True(t, got.Pending(), "failed once, inside the fresh window: still pending")
	assert.Equal(t, 15*time.Second, got.NextAttemptAt.Sub(e.clock.Now()), "the backoff starts again at its first step (30s, at its lowest jitter)")
	for i := 0; e.message(t, msg.ID).Pending(); i++ {
		require.Less(t, i, 100)
		e.clock.Set(e.message(t, msg.ID).NextAttemptAt)
		e.round(t, d, 0, 1)
	}
	got = e.message(t, msg.ID)
	assert.GreaterOrEqual(t, got.AbandonedAt.Sub(resentAt), window, "abandoned only after a whole window from the resend")

	// Delivered events can be resent too; they are delivered once more.
	rc.answer(func(int) int { return http.StatusOK })
	_, err = events.Resend(t.Context(), scope, msg.ID)
	require.NoError(t, err)
	e.round(t, d, 1, 0)
	before := len(rc.deliveries())
	_, err = events.Resend(t.Context(), scope, msg.ID)
	require.NoError(t, err)
	e.round(t, d, 1, 0)
	assert.Len(t, rc.deliveries(), before+1)
	assert.Equal(t, bridge.DeliveryDelivered, e.message(t, msg.ID).DeliveryStatus())
}

// TestResendRefusals: another mode's or merchant's event is unknown; a merchant without a
// webhook URL gets a validation error naming webhook.url.
func TestResendRefusals(t *testing.T) {
	e := newEnv(t, "")
	msg := e.writeMessage(t, "acme")
	events := &bridge.EventService{Store: e.store, Merchants: bridge.StaticMerchants{e.merchant}, Clock: e.clock}

	_, err := events.Resend(t.Context(), bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest}, msg.ID)
	be := bridge.AsError(err)
	assert.Equal(t, bridge.CodeValidationError, be.Code)
	assert.Contains(t, be.Message, "webhook.url")

	for _, scope := range []bridge.AgentRef{{MerchantID: "acme", Mode: bridge.ModeLive}, {MerchantID: "globex", Mode: bridge.ModeTest}} {
		_, err := events.Resend(t.Context(), scope, msg.ID)
		assert.Equal(t, bridge.CodeSessionNotFound, bridge.AsError(err).Code, "%+v", scope)
		_, err = events.Get(t.Context(), scope, msg.ID)
		assert.Equal(t, bridge.CodeSessionNotFound, bridge.AsError(err).Code, "%+v", scope)
	}
}

// TestPurgeEvents: Run's purge deletes ended events older than the retention, and keeps the rest.
func TestPurgeEvents(t *testing.T) {
	rc := newReceiver(t)
	e := newEnv(t, rc.srv.URL)
	d := e.dispatcher(webhook.DispatcherOptions{Retention: 30 * 24 * time.Hour})
	old := e.writeMessage(t, "acme")
	e.round(t, d, 1, 0)
	e.clock.Advance(20 * 24 * time.Hour)
	young := e.writeMessage(t, "acme")
	e.round(t, d, 1, 0)

	e.clock.Advance(10*24*time.Hour + time.Second)
	n, err := d.PurgeEvents(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = e.store.OutboxMessage(t.Context(), old.ID)
	assert.ErrorIs(t, err, bridge.ErrNotFound)
	_, err = e.store.OutboxMessage(t.Context(), young.ID)
	assert.NoError(t, err)

	keep := e.dispatcher(webhook.DispatcherOptions{Retention: -1})
	e.clock.Advance(365 * 24 * time.Hour)
	n, err = keep.PurgeEvents(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "a negative retention keeps everything")
}
