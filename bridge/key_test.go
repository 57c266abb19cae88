package bridge_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func TestNewAPIKeyFormat(t *testing.T) {
	tests := []struct {
		typ    bridge.KeyType
		mode   bridge.Mode
		prefix string
	}{
		{bridge.KeySecret, bridge.ModeTest, "vp_sk_test_"},
		{bridge.KeySecret, bridge.ModeLive, "vp_sk_live_"},
		{bridge.KeyPublishable, bridge.ModeTest, "vp_pk_test_"},
		{bridge.KeyPublishable, bridge.ModeLive, "vp_pk_live_"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			now := time.Date(2025, 3, 14, 10, 0, 0, 0, time.FixedZone("CET", 3600))
			plain, key := bridge.NewAPIKey("acme", tt.typ, tt.mode, now)

			require.True(t, strings.HasPrefix(plain, tt.prefix), "key %q lacks prefix %s", plain[:11], tt.prefix)
			assert.Regexp(t, `^[0-9A-Za-z]{24,}$`, strings.TrimPrefix(plain, tt.prefix))

			typ, mode, ok := bridge.ParseAPIKey(plain)
			assert.True(t, ok, "a fresh key must parse")
			assert.Equal(t, tt.typ, typ)
			assert.Equal(t, tt.mode, mode)

			require.NotNil(t, key)
			assert.Regexp(t, `^key_[0-9A-Za-z]+$`, key.ID)
			assert.Equal(t, "acme", key.MerchantID)
			assert.Equal(t, tt.typ, key.Type)
			assert.Equal(t, tt.mode, key.Mode)
			assert.Equal(t, bridge.HashSecret(plain), key.Hash)
			assert.NotContains(t, key.Hash, plain)
			assert.Equal(t, plain[len(plain)-4:], key.Last4)
			assert.True(t, key.CreatedAt.Equal(now))
			assert.Equal(t, time.UTC, key.CreatedAt.Location())
			assert.True(t, key.ExpiresAt.IsZero())
			assert.True(t, key.RevokedAt.IsZero())
			assert.NoError(t, key.Usable(now))
		})
	}
}

func TestNewAPIKeyIsRandom(t *testing.T) {
	seenPlain := map[string]bool{}
	seenID := map[string]bool{}
	for range 100 {
		plain, key := bridge.NewAPIKey("acme", bridge.KeySecret, bridge.ModeTest, t0)
		assert.False(t, seenPlain[plain], "duplicate key")
		assert.False(t, seenID[key.ID], "duplicate key id")
		seenPlain[plain], seenID[key.ID] = true, true
	}
}

func TestParseAPIKey(t *testing.T) {
	random24 := strings.Repeat("aZ09", 6)
	tests := []struct {
		name     string
		in       string
		wantOK   bool
		wantType bridge.KeyType
		wantMode bridge.Mode
	}{
		{"secret test", "vp_sk_test_" + random24, true, bridge.KeySecret, bridge.ModeTest},
		{"secret live", "vp_sk_live_" + random24, true, bridge.KeySecret, bridge.ModeLive},
		{"publishable test", "vp_pk_test_" + random24, true, bridge.KeyPublishable, bridge.ModeTest},
		{"publishable live", "vp_pk_live_" + random24, true, bridge.KeyPublishable, bridge.ModeLive},
		{"128 random chars", "vp_sk_test_" + strings.Repeat("a", 128), true, bridge.KeySecret, bridge.ModeTest},

		{"empty", "", false, "", ""},
		{"prefix only", "vp_sk_test_", false, "", ""},
		{"type prefix only", "vp_sk_", false, "", ""},
		{"23 random chars", "vp_sk_test_" + random24[:23], false, "", ""},
		{"129 random chars", "vp_sk_test_" + strings.Repeat("a", 129), false, "", ""},
		{"unknown type", "vp_xk_test_" + random24, false, "", ""},
		{"agent token prefix", "vp_at_test_" + random24, false, "", ""},
		{"unknown mode", "vp_sk_prod_" + random24, false, "", ""},
		{"upper-case prefix", "VP_SK_TEST_" + random24, false, "", ""},
		{"upper-case mode", "vp_sk_TEST_" + random24, false, "", ""},
		{"missing underscore", "vp_sktest_" + random24, false, "", ""},
		{"dash in random", "vp_sk_test_" + random24[:12] + "-" + random24[12:], false, "", ""},
		{"underscore in random", "vp_sk_test_" + random24 + "_x", false, "", ""},
		{"space in random", "vp_sk_test_" + random24 + " ", false, "", ""},
		{"leading space", " vp_sk_test_" + random24, false, "", ""},
		{"bearer scheme left in", "Bearer vp_sk_test_" + random24, false, "", ""},
		{"non-ascii in random", "vp_sk_test_" + random24 + "é", false, "", ""},
		{"NUL in random", "vp_sk_test_" + random24 + "\x00", false, "", ""},
		{"stripe-style key", "sk_test_" + random24, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, mode, ok := bridge.ParseAPIKey(tt.in)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.wantType, typ)
			assert.Equal(t, tt.wantMode, mode)
		})
	}
}

func TestHashSecret(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 test vector.
	assert.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", bridge.HashSecret("abc"))
	a := bridge.HashSecret("vp_sk_test_aaaaaaaaaaaaaaaaaaaaaaaa")
	assert.Equal(t, a, bridge.HashSecret("vp_sk_test_aaaaaaaaaaaaaaaaaaaaaaaa"), "hashing must be stable")
	assert.NotEqual(t, a, bridge.HashSecret("vp_sk_test_aaaaaaaaaaaaaaaaaaaaaaab"))
	assert.Regexp(t, `^[0-9a-f]{64}$`, a)
}

func TestAPIKeyUsable(t *testing.T) {
	tests := []struct {
		name    string
		key     bridge.APIKey
		now     time.Time
		wantErr bool
	}{
		{"fresh", bridge.APIKey{}, t0, false},
		{"rolled, inside grace", bridge.APIKey{ExpiresAt: t0.Add(time.Hour)}, t0, false},
		{"rolled, one nanosecond before end", bridge.APIKey{ExpiresAt: t0}, t0.Add(-time.Nanosecond), false},
		{"rolled, at end of grace", bridge.APIKey{ExpiresAt: t0}, t0, true},
		{"rolled, after grace", bridge.APIKey{ExpiresAt: t0}, t0.Add(time.Second), true},
		{"revoked before now", bridge.APIKey{RevokedAt: t0.Add(-time.Hour)}, t0, true},
		{"revoked at now", bridge.APIKey{RevokedAt: t0}, t0, true},
		{"revocation scheduled later", bridge.APIKey{RevokedAt: t0.Add(time.Hour)}, t0, false},
		{"revoked while inside grace", bridge.APIKey{RevokedAt: t0.Add(-time.Minute), ExpiresAt: t0.Add(time.Hour)}, t0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.key.Usable(tt.now)
			if !tt.wantErr {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, bridge.CodeAuthKeyExpired, bridge.ErrorCode(err))
		})
	}
}

func TestRandomBase62(t *testing.T) {
	alphabet := regexp.MustCompile(`^[0-9A-Za-z]*$`)
	for _, n := range []int{0, 1, 2, 16, 24, 32, 100, 1000} {
		s := bridge.RandomBase62(n)
		assert.Len(t, s, n)
		assert.Regexp(t, alphabet, s)
	}
	// Over many draws every one of the 62 characters turns up: the alphabet is used whole.
	seen := map[rune]bool{}
	for _, r := range bridge.RandomBase62(10000) {
		seen[r] = true
	}
	assert.Len(t, seen, 62)
	assert.NotEqual(t, bridge.RandomBase62(32), bridge.RandomBase62(32))
}

func TestModeAndKeyTypeValid(t *testing.T) {
	assert.True(t, bridge.ModeTest.Valid())
	assert.True(t, bridge.ModeLive.Valid())
	assert.False(t, bridge.Mode("").Valid())
	assert.False(t, bridge.Mode("TEST").Valid())
	assert.True(t, bridge.KeySecret.Valid())
	assert.True(t, bridge.KeyPublishable.Valid())
	assert.False(t, bridge.KeyType("").Valid())
	assert.False(t, bridge.KeyType("restricted").Valid())
}
