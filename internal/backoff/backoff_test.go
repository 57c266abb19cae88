package backoff_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/paybridge/paybridge/internal/backoff"
)

func TestWait(t *testing.T) {
	const first, ceiling = 100 * time.Millisecond, 2 * time.Second
	tests := []struct {
		name   string
		n      int
		random float64
		want   time.Duration
	}{
		{"first retry, lowest", 1, 0, 50 * time.Millisecond},
		{"first retry, middle", 1, 0.5, 75 * time.Millisecond},
		{"second retry doubles", 2, 0, 100 * time.Millisecond},
		{"fifth retry", 5, 0, 800 * time.Millisecond},
		{"capped", 6, 0, time.Second},
		{"capped, highest", 6, 0.999999, 2*time.Second - 1000},
		{"far past the cap does not overflow", 500, 0, time.Second},
		{"random out of range is clamped", 1, 7, 100 * time.Millisecond},
		{"retry 0 is the first", 0, 0, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, float64(tt.want), float64(backoff.Wait(tt.n, first, ceiling, tt.random)), float64(time.Microsecond))
		})
	}
	t.Run("a ceiling below first is first", func(t *testing.T) {
		assert.Equal(t, 50*time.Millisecond, backoff.Wait(3, 100*time.Millisecond, time.Millisecond, 0))
	})
}
