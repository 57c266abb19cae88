package bridge_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  *bridge.Error
		want string
	}{
		{"without cause", bridge.Errorf(bridge.CodeSessionNotFound, "No session %q.", "vp_cs_x"), `session_not_found: No session "vp_cs_x".`},
		{"with cause", bridge.Errorf(bridge.CodeProviderUnavailable, "VCC is down.").WithCause(io.ErrUnexpectedEOF), "provider_unavailable: VCC is down.: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestErrorBuilders(t *testing.T) {
	cause := errors.New("disk on fire")
	e := bridge.Errorf(bridge.CodeValidationError, "bad %s", "thing").WithParam("amount").WithFix("Fix it.").WithCause(cause)
	assert.Equal(t, bridge.CodeValidationError, e.Code)
	assert.Equal(t, "bad thing", e.Message)
	assert.Equal(t, "amount", e.Param)
	assert.Equal(t, "Fix it.", e.Fix)
	assert.Same(t, cause, e.Cause)
}

func TestErrorUnwrap(t *testing.T) {
	cause := fmt.Errorf("reading: %w", bridge.ErrNotFound)
	e := bridge.Errorf(bridge.CodeSessionNotFound, "gone").WithCause(cause)
	assert.Same(t, cause, e.Unwrap())
	assert.ErrorIs(t, e, bridge.ErrNotFound, "errors.Is must see through Error to its cause")
	assert.NotErrorIs(t, e, bridge.ErrConflict)
	assert.Nil(t, bridge.Errorf(bridge.CodeSessionNotFound, "gone").Unwrap())
}

func TestErrorCode(t *testing.T) {
	pub := bridge.Errorf(bridge.CodeSessionExpired, "expired")
	tests := []struct {
		name string
		err  error
		want bridge.Code
	}{
		{"nil", nil, ""},
		{"bridge error", pub, bridge.CodeSessionExpired},
		{"wrapped once", fmt.Errorf("update: %w", pub), bridge.CodeSessionExpired},
		{"wrapped twice", fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", pub)), bridge.CodeSessionExpired},
		{"joined", errors.Join(io.EOF, pub), bridge.CodeSessionExpired},
		{"plain error", io.EOF, bridge.CodeInternalError},
		{"store sentinel", bridge.ErrNotFound, bridge.CodeInternalError},
		{"first bridge error in chain wins", bridge.Errorf(bridge.CodeProviderUnavailable, "x").WithCause(pub), bridge.CodeProviderUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, bridge.ErrorCode(tt.err))
		})
	}
}

func TestAsErrorFindsWrappedError(t *testing.T) {
	pub := bridge.Errorf(bridge.CodeSessionWrongState, "no").WithParam("id")
	got := bridge.AsError(fmt.Errorf("service: %w", fmt.Errorf("store: %w", pub)))
	assert.Same(t, pub, got, "AsError must return the *Error in the chain itself")

	var target *bridge.Error
	require.ErrorAs(t, fmt.Errorf("wrapped: %w", pub), &target)
	assert.Same(t, pub, target)
}

func TestAsErrorHidesForeignCause(t *testing.T) {
	const secretText = "dial tcp 10.0.0.7:5432: password=hunter2 rejected"
	cause := fmt.Errorf("store: %w", errors.New(secretText))

	got := bridge.AsError(cause)
	require.NotNil(t, got)
	assert.Equal(t, bridge.CodeInternalError, got.Code)
	assert.NotEmpty(t, got.Message)
	assert.NotContains(t, got.Message, "hunter2")
	assert.NotContains(t, got.Message, "10.0.0.7")
	assert.NotContains(t, got.Message, "store")
	assert.Empty(t, got.Fix, "the public fix must come from the catalog")
	assert.Equal(t, bridge.Info(bridge.CodeInternalError).Fix, got.PublicFix())
	assert.Empty(t, got.Param)
	// The cause is kept for logs.
	assert.Same(t, cause, got.Cause)
	assert.ErrorIs(t, got, cause)
}
