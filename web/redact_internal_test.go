package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"vp_sk_test_" + strings.Repeat("a", 24), "vp_sk_[redacted]"},
		{"key=vp_pk_live_abcdefABCDEF012345678901&x=1", "key=vp_pk_[redacted]&x=1"},
		{"token vp_at_test_eyJhIjoxfQ.c2ln-_x, then", "token vp_at_[redacted], then"},
		{"whsec_0123456789abcdef and whsec_ZZZZZZ", "whsec_[redacted] and whsec_[redacted]"},
		{"/v1/sessions/vp_sk_live_secret1", "/v1/sessions/vp_sk_[redacted]"},
		// Documentation of the formats stays readable: too short to be a credential.
		{"use a vp_sk_test_* key", "use a vp_sk_test_* key"},
		{`{"agentToken":"vp_at_..."}`, `{"agentToken":"vp_at_..."}`},
		{"no secrets here", "no secrets here"},
		{"VP_SK_TEST_" + strings.Repeat("a", 24), "VP_SK_TEST_" + strings.Repeat("a", 24)}, // keys are case-sensitive
	} {
		assert.Equal(t, tt.want, Redact(tt.in), tt.in)
	}
}

// stringer formats as a secret, to check values formatted by the handler are redacted too.
type stringer struct{}

func (stringer) String() string { return "vp_sk_test_fromAStringer0000" }

// TestSafeLogHandler: no credential-shaped string reaches the wrapped handler, wherever it sits
// in the record, and no string is longer than the cap.
func TestSafeLogHandler(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(SafeLogHandler(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	secret := "vp_sk_test_" + strings.Repeat("s", 28)
	logger = logger.With("preset", "with "+secret).WithGroup("g")
	logger.Log(context.Background(), slog.LevelInfo, "message "+secret,
		"string", secret,
		"err", fmt.Errorf("wrapped: %w", errors.New(secret)),
		"stringer", stringer{},
		slog.Group("nested", slog.String("deeper", "whsec_"+strings.Repeat("w", 30)), slog.Group("deepest", slog.Any("any", []string{secret}))),
		secret, "as a key",
		"long", strings.Repeat("x", 3*logFieldCap),
		"number", 42,
	)
	got := out.String()
	for _, leak := range []string{"ssssssss", "wwwwwwww", "fromAStringer"} {
		assert.NotContains(t, got, leak)
	}
	assert.Contains(t, got, "vp_sk_[redacted]")
	assert.Contains(t, got, "whsec_[redacted]")
	assert.Contains(t, got, `"number":42`)
	assert.Less(t, len(got), 2*logFieldCap, "the long field is capped")
	assert.Contains(t, got, strings.Repeat("x", logFieldCap-1))
	// Wrapping twice adds nothing.
	h := SafeLogHandler(slog.DiscardHandler)
	assert.Equal(t, h, SafeLogHandler(h))
}

func TestCapText(t *testing.T) {
	assert.Equal(t, "short", capText("short", 10))
	assert.Equal(t, "abc…", capText("abcdef", 3))
	assert.Equal(t, "a…", capText("aé", 2), "a UTF-8 sequence is not split")
}
