package vcc

import (
	"net/http"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
)

func TestBackoffBounds(t *testing.T) {
	c := New(Options{RetryWaitMin: 100 * time.Millisecond, RetryWaitMax: 2 * time.Second})
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 100 * time.Millisecond, 100 * time.Millisecond}, // base 100ms: jitter in [50,100], floored at min
		{1, 100 * time.Millisecond, 200 * time.Millisecond},
		{2, 200 * time.Millisecond, 400 * time.Millisecond},
		{4, 800 * time.Millisecond, 1600 * time.Millisecond},
		{5, time.Second, 2 * time.Second}, // capped
		{62, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		for range 200 {
			d := c.backoff(tt.attempt)
			assert.GreaterOrEqual(t, d, tt.min, "attempt %d", tt.attempt)
			assert.LessOrEqual(t, d, tt.max, "attempt %d", tt.attempt)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 1 ", time.Second},
		{"-4", 0},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{now.Add(-5 * time.Second).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, parseRetryAfter(tt.in, now), "%q", tt.in)
	}
}

// TestRetryAfterHook: the hook resty calls between attempts reads the response's Retry-After
// (resty then caps it at RetryWaitMax), and falls back to the jittered backoff without one.
func TestRetryAfterHook(t *testing.T) {
	header := func(v string) *resty.Response {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		return &resty.Response{RawResponse: &http.Response{StatusCode: http.StatusTooManyRequests, Header: h}}
	}
	for _, tt := range []struct {
		header string
		want   time.Duration
	}{{"2", 2 * time.Second}, {"", 0}, {"later", 0}} {
		got, err := retryAfter(nil, header(tt.header))
		assert.NoError(t, err)
		assert.Equal(t, tt.want, got, "Retry-After %q", tt.header)
	}
	got, err := retryAfter(nil, nil)
	assert.NoError(t, err)
	assert.Zero(t, got, "a transport error has no response")
	// The hook is the one the client's resty uses.
	c := New(Options{})
	assert.NotNil(t, c.rest.RetryAfter)
}

func TestReuseFor(t *testing.T) {
	c := New(Options{TokenEarlyExpiry: time.Minute})
	assert.Equal(t, 59*time.Minute, c.reuseFor(time.Hour))
	assert.Equal(t, 15*time.Second, c.reuseFor(30*time.Second), "short tokens live half their life")
}
