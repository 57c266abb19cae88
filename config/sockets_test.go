package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/config"
)

// TestSocketPingInterval: sockets.pingInterval defaults to DESIGN's 25 s, may be set (benchmarks
// measure idle sockets after two intervals) and is kept within 1 s..5 m.
func TestSocketPingInterval(t *testing.T) {
	assert.Equal(t, 25*time.Second, config.Default().Sockets.PingInterval)
	tests := []struct {
		value string
		want  time.Duration
		fails string
	}{
		{"2s", 2 * time.Second, ""},
		{"5m", 5 * time.Minute, ""},
		{"500ms", 0, "sockets.pingInterval: must be between 1s and 5m, got 500ms"},
		{"6m", 0, "sockets.pingInterval: must be between 1s and 5m, got 6m"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c, err := config.Parse([]byte("sockets: {pingInterval: "+tt.value+"}\n"), env(nil))
			if tt.fails != "" {
				assert.Contains(t, problems(err), tt.fails)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.Sockets.PingInterval)
		})
	}
}
