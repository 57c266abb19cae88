package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// TestRevokeRules (issue 13 item 2): a key cannot revoke itself, and the last active secret key
// of a merchant and mode cannot be revoked, by the API or by the operator; each says why and
// what to do instead.
func TestRevokeRules(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// setup makes the keys and returns the caller (nil: the operator) and the key to revoke.
		setup    func(t *testing.T, w *keyWorld) (*bridge.Principal, string)
		refused  string // a part of the error message; "" means the revocation succeeds
		fixNames string // a part of the fix
	}{
		{"a key revoking itself", func(t *testing.T, w *keyWorld) (*bridge.Principal, string) {
			w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest) // not the last one
			p := w.principal(t, "acme", bridge.KeySecret, bridge.ModeTest)
			return p, p.Key.ID
		}, "cannot revoke itself", "/roll"},
		{"the operator revoking the last active secret key", func(t *testing.T, w *keyWorld) (*bridge.Principal, string) {
			_, key := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
			w.createKey(t, "acme", bridge.KeySecret, bridge.ModeLive)      // another mode does not count
			w.createKey(t, "acme", bridge.KeyPublishable, bridge.ModeTest) // nor a publishable key
			w.createKey(t, "globex", bridge.KeySecret, bridge.ModeTest)    // nor another merchant's
			return nil, key.ID
		}, "last active test secret key", "paybridge keys create"},
		{"the last one's rolled predecessor does not count", func(t *testing.T, w *keyWorld) (*bridge.Principal, string) {
			_, old := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
			_, successor, err := w.keys.RollKey(ctx, "acme", old.ID, time.Hour)
			require.NoError(t, err)
			return nil, successor.ID
		}, "last active test secret key", "/roll"},
		{"nor a revoked one", func(t *testing.T, w *keyWorld) (*bridge.Principal, string) {
			_, gone := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
			_, key := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
			_, err := w.keys.RevokeKey(ctx, "acme", gone.ID)
			require.NoError(t, err, "it was not the last")
			return nil, key.ID
		}, "last active test secret key", "/roll"},
		{"another key of the caller", func(t *testing.T, w *keyWorld) (*bridge.Principal, string) {
			_, other := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
			return w.principal(t, "acme", bridge.KeySecret, bridge.ModeTest), other.ID
		}, "", ""},
		{"a rolled key, its successor active", func(t *testing.T, w *keyWorld) (*bridge.Principal, string) {
			_, old := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
			_, _, err := w.keys.RollKey(ctx, "acme", old.ID, time.Hour)
			require.NoError(t, err)
			return nil, old.ID
		}, "", ""},
		{"the last publishable key", func(t *testing.T, w *keyWorld) (*bridge.Principal, string) {
			_, pub := w.createKey(t, "acme", bridge.KeyPublishable, bridge.ModeTest)
			return nil, pub.ID
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newKeyWorld(t)
			by, id := tt.setup(t, w)
			var err error
			if by != nil {
				_, err = w.keys.RevokeKeyAs(ctx, by, id)
			} else {
				_, err = w.keys.RevokeKey(ctx, "acme", id)
			}
			key, gerr := w.store.APIKey(ctx, id)
			require.NoError(t, gerr)
			if tt.refused == "" {
				require.NoError(t, err)
				assert.Equal(t, bridge.KeyRevoked, key.State(w.clock.Now()))
				return
			}
			require.Error(t, err)
			e := bridge.AsError(err)
			assert.Equal(t, bridge.CodeValidationError, e.Code)
			assert.Equal(t, "id", e.Param)
			assert.Contains(t, e.Message, tt.refused)
			assert.Contains(t, e.Fix, tt.fixNames)
			assert.True(t, key.RevokedAt.IsZero(), "nothing was revoked")
		})
	}
}

// TestCreateKeyAsRules: a pending or denied merchant's test key asking for a live key hears that
// the merchant is not onboarded (the answer it can act on); an active merchant's test key hears
// that test keys cannot manage live ones; a rolled key hears it was rolled.
func TestCreateKeyAsRules(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		merchant string
		mode     bridge.Mode
		code     bridge.Code
	}{
		{"pending", bridge.ModeLive, bridge.CodeMerchantNotOnboarded},
		{"denied", bridge.ModeLive, bridge.CodeMerchantNotOnboarded},
		{"pending", bridge.ModeTest, ""},
		{"acme", bridge.ModeLive, bridge.CodeAuthKeyTypeForbidden},
		{"acme", bridge.ModeTest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.merchant+"/"+string(tt.mode), func(t *testing.T) {
			w := newKeyWorld(t)
			p := w.principal(t, tt.merchant, bridge.KeySecret, bridge.ModeTest)
			plain, key, err := w.keys.CreateKeyAs(ctx, p, bridge.KeySecret, tt.mode)
			assert.Equal(t, tt.code, bridge.ErrorCode(err))
			if tt.code == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.mode, key.Mode)
				assert.NotEmpty(t, plain)
			}
		})
	}
}

// TestRolledKeySaysRolled: a rolled key managing keys, inside its grace window or after it, is
// told it was rolled and when (and until when it serves), never merely that it expired.
func TestRolledKeySaysRolled(t *testing.T) {
	ctx := context.Background()
	w := newKeyWorld(t)
	plain, key := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
	w.clock.Advance(time.Minute)
	rolledAt := w.clock.Now()
	_, successor, err := w.keys.RollKey(ctx, "acme", key.ID, time.Hour)
	require.NoError(t, err)

	p, err := w.keys.Authenticate(ctx, plain)
	require.NoError(t, err, "inside the grace window the key authenticates")
	for name, err := range map[string]error{
		"create": func() error { _, _, err := w.keys.CreateKeyAs(ctx, p, bridge.KeySecret, bridge.ModeTest); return err }(),
		"roll":   func() error { _, _, _, err := w.keys.RollKeyAs(ctx, p, successor.ID, 0); return err }(),
		"revoke": func() error { _, err := w.keys.RevokeKeyAs(ctx, p, successor.ID); return err }(),
	} {
		e := bridge.AsError(err)
		assert.Equal(t, bridge.CodeAuthKeyExpired, e.Code, name)
		assert.Contains(t, e.Message, "was rolled at "+rolledAt.Format(time.RFC3339), name)
		assert.Contains(t, e.Message, "until "+rolledAt.Add(time.Hour).Format(time.RFC3339), name)
		assert.NotContains(t, e.Message, "expired", name)
		assert.Contains(t, e.Fix, successor.ID, name)
	}

	w.clock.Advance(time.Hour)
	_, err = w.keys.Authenticate(ctx, plain)
	e := bridge.AsError(err)
	assert.Equal(t, bridge.CodeAuthKeyExpired, e.Code)
	assert.Contains(t, e.Message, "was rolled at "+rolledAt.Format(time.RFC3339))
	assert.Contains(t, e.Message, "grace window has ended")
	assert.NotContains(t, e.Message, "expired")
	assert.Contains(t, e.Fix, successor.ID)
}

// TestKeyStateAndRedaction: the lifecycle state keys list shows, and the redacted form that is
// all it shows of a key.
func TestKeyStateAndRedaction(t *testing.T) {
	ctx := context.Background()
	w := newKeyWorld(t)
	plain, key := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
	assert.Equal(t, bridge.KeyActive, key.State(w.clock.Now()))
	assert.Equal(t, "vp_sk_test_…"+plain[len(plain)-4:], key.Redacted())
	assert.NotContains(t, key.Redacted(), plain[len("vp_sk_test_"):len(plain)-4])
	_, pub := w.createKey(t, "acme", bridge.KeyPublishable, bridge.ModeLive)
	assert.Regexp(t, `^vp_pk_live_…[0-9A-Za-z]{4}$`, pub.Redacted())

	_, _, err := w.keys.RollKey(ctx, "acme", key.ID, time.Hour)
	require.NoError(t, err)
	rolled, err := w.store.APIKey(ctx, key.ID)
	require.NoError(t, err)
	assert.Equal(t, bridge.KeyRolled, rolled.State(w.clock.Now()))
	assert.Equal(t, bridge.KeyExpired, rolled.State(w.clock.Now().Add(time.Hour)))
	revoked, err := w.keys.RevokeKey(ctx, "acme", key.ID)
	require.NoError(t, err)
	assert.Equal(t, bridge.KeyRevoked, revoked.State(w.clock.Now()))
}

// TestLastUsed: the key service remembers when each key last authenticated on this process.
func TestLastUsed(t *testing.T) {
	ctx := context.Background()
	w := newKeyWorld(t)
	plain, key := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
	_, ok := w.keys.LastUsed(key.ID)
	assert.False(t, ok, "never used")
	w.clock.Advance(time.Minute)
	_, err := w.keys.Authenticate(ctx, plain)
	require.NoError(t, err)
	w.clock.Advance(time.Minute)
	_, err = w.keys.Authenticate(ctx, plain)
	require.NoError(t, err)
	at, ok := w.keys.LastUsed(key.ID)
	require.True(t, ok)
	assert.True(t, at.Equal(t0.Add(2*time.Minute)), "last use %s", at)
}
