package bridge_test

import (
	"strings"
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
		// Any result data counts, whatever its keys (a Chase Orbital flow has no decision).
		{bridge.StateFinished, "ApprovalStatus=1", true, false, false},
		{bridge.StateInProgress, "ApprovalStatus=1", true, false, false},
	}
	for _, tt := range tests {
		st := &bridge.ProviderStatus{State: tt.state}
		if k, v, ok := strings.Cut(tt.decision, "="); ok {
			st.Result = map[string]string{k: v}
		} else if tt.decision != "" {
			st.Result = map[string]string{"decision": tt.decision}
		}
		assert.Equal(t, tt.completed, st.HasResult(), "%s %q completed", tt.state, tt.decision)
		assert.Equal(t, tt.ended, st.EndedWithoutPayment(), "%s %q ended", tt.state, tt.decision)
		assert.Equal(t, tt.keying, st.CaptureInProgress(), "%s %q keying", tt.state, tt.decision)
	}
}
