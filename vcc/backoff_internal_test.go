package vcc

import (
	"net/http"
	"testing"
	"time"

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

func TestReuseFor(t *testing.T) {
	c := New(Options{TokenEarlyExpiry: time.Minute})
	assert.Equal(t, 59*time.Minute, c.reuseFor(time.Hour))
	assert.Equal(t, 15*time.Second, c.reuseFor(30*time.Second), "short tokens live half their life")
}
