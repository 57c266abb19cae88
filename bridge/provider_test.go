package bridge_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/paybridge/paybridge/bridge"
)

// TestProviderStatusReading: any decision is a result whatever the (partly inferred) state
// says; a state that is over without a decision needs a new attempt; anything else is running.
func TestProviderStatusReading(t *testing.T) {
	tests := []struct {
		state, decision          string
		completed, ended, keying bool
	}{
		{bridge.StateCreated, "", false, false, false},
		{bridge.StateInProgress, "", false, false, true},
		{bridge.StateFinished, bridge.DecisionAccept, true, false, false},
		{bridge.StateFinished, "", false, true, false},
		{bridge.StateExpired, "", false, true, false},
		{bridge.StateFailed, bridge.DecisionError, true, false, false},
		{bridge.StateCancelled, bridge.DecisionReject, true, false, false},
		{bridge.StateCancelled, "", false, true, false},
		{"SomethingNew", "", false, false, false},
	}
	for _, tt := range tests {
		st := &bridge.ProviderStatus{State: tt.state, Decision: tt.decision}
		assert.Equal(t, tt.completed, st.Completed(), "%s %q completed", tt.state, tt.decision)
		assert.Equal(t, tt.ended, st.EndedWithoutPayment(), "%s %q ended", tt.state, tt.decision)
		assert.Equal(t, tt.keying, st.CaptureInProgress(), "%s %q keying", tt.state, tt.decision)
	}
}
