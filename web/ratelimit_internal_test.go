package web

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge/bridgetest"
)

// TestLimiterSet: a new limit (a configuration reload) applies to existing buckets from the
// moment it is set: a bucket keeps the tokens it had (capped at the new burst) and refills at the
// new rate; takes report the new limit and window.
func TestLimiterSet(t *testing.T) {
	tests := []struct {
		name      string
		before    RateLimit
		spend     int // takes before the change, all allowed
		after     RateLimit
		advance   time.Duration // clock moved after the change
		wantTakes []bool        // takes after the change
		wantLimit int
	}{
		{"lowered below what is left: capped", RateLimit{10, time.Minute}, 5, RateLimit{3, time.Minute}, 0,
			[]bool{true, true, true, false}, 3},
		{"lowered above what is left", RateLimit{10, time.Minute}, 9, RateLimit{3, time.Minute}, 0,
			[]bool{true, false}, 3},
		{"raised: the spent tokens stay spent", RateLimit{2, time.Minute}, 2, RateLimit{100, time.Minute}, 0,
			[]bool{false}, 100},
		{"raised: refills at the new rate", RateLimit{2, time.Minute}, 2, RateLimit{60, time.Minute}, 2 * time.Second,
			[]bool{true, true, false}, 60},
		{"unchanged", RateLimit{2, time.Minute}, 2, RateLimit{2, time.Minute}, 0,
			[]bool{false}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := bridgetest.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			l := newLimiter(tt.before, clock)
			for range tt.spend {
				require.True(t, l.take("k").allowed)
			}
			l.set(tt.after)
			clock.Advance(tt.advance)
			var got []bool
			var last quota
			for range tt.wantTakes {
				last = l.take("k")
				got = append(got, last.allowed)
			}
			assert.Equal(t, tt.wantTakes, got)
			assert.Equal(t, tt.wantLimit, last.limit)
			assert.Equal(t, tt.after.Window, last.window)
			// A key never seen gets the new limit in full.
			fresh := l.take("fresh")
			assert.True(t, fresh.allowed)
			assert.Equal(t, tt.after.Limit-1, fresh.remaining)
		})
	}
}
