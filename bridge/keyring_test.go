package bridge_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// testMaster is a fixed 32-byte master key; tests need reproducible keyrings, not secrecy.
var testMaster = []byte("0123456789abcdef0123456789ABCDEF")

func newKeyring(t *testing.T, master []byte) *bridge.Keyring {
	t.Helper()
	k, err := bridge.NewKeyring(master)
	require.NoError(t, err)
	require.NotNil(t, k)
	return k
}

func TestNewKeyringKeyLength(t *testing.T) {
	tests := []struct {
		n       int
		wantErr bool
	}{
		{0, true},
		{1, true},
		{bridge.MinMasterKeyLen - 1, true},
		{bridge.MinMasterKeyLen, false},
		{64, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			k, err := bridge.NewKeyring(bytes.Repeat([]byte{7}, tt.n))
			if tt.wantErr {
				assert.Error(t, err)
				assert.Nil(t, k)
				return
			}
			assert.NoError(t, err)
			assert.NotNil(t, k)
		})
	}
	assert.Equal(t, 32, bridge.MinMasterKeyLen)
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := newKeyring(t, testMaster)
	for _, plain := range [][]byte{
		[]byte("bearer=abc; refresh=def"),
		{},
		bytes.Repeat([]byte{0xff}, 4096),
	} {
		ad := []byte("vp_cs_test_0123456789abcdef/1")
		sealed := k.Seal(plain, ad)
		if len(plain) > 0 {
			assert.False(t, bytes.Contains(sealed, plain), "the plaintext must not appear in the sealed value")
		}
		got, err := k.Open(sealed, ad)
		require.NoError(t, err)
		assert.Equal(t, string(plain), string(got))
	}
}

func TestSealUsesFreshNonce(t *testing.T) {
	k := newKeyring(t, testMaster)
	a := k.Seal([]byte("same"), []byte("ad"))
	b := k.Seal([]byte("same"), []byte("ad"))
	assert.NotEqual(t, a, b, "sealing twice must not give the same ciphertext")
}

func TestSealedValueIsPortableAcrossKeyringsOfOneMaster(t *testing.T) {
	// Every node of a deployment derives the same keys from the shared master key.
	sealed := newKeyring(t, testMaster).Seal([]byte("tokens"), []byte("ad"))
	got, err := newKeyring(t, bytes.Clone(testMaster)).Open(sealed, []byte("ad"))
	require.NoError(t, err)
	assert.Equal(t, "tokens", string(got))
}

func TestOpenRejectsTampering(t *testing.T) {
	k := newKeyring(t, testMaster)
	ad := []byte("vp_cs_test_0123456789abcdef/1")
	sealed := k.Seal([]byte("bearer and refresh tokens"), ad)

	for i := range sealed {
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x01
		_, err := k.Open(tampered, ad)
		assert.Error(t, err, "flipping a bit of byte %d must fail", i)
	}

	other := newKeyring(t, []byte("another master key, 32 bytes....."))
	tests := []struct {
		name   string
		k      *bridge.Keyring
		sealed []byte
		ad     []byte
	}{
		{"wrong associated data", k, sealed, []byte("vp_cs_test_0123456789abcdef/2")},
		{"missing associated data", k, sealed, nil},
		{"another master key", other, sealed, ad},
		{"truncated", k, sealed[:len(sealed)-1], ad},
		{"nonce only", k, sealed[:12], ad},
		{"shorter than the nonce", k, sealed[:5], ad},
		{"empty", k, nil, ad},
		{"extended", k, append(bytes.Clone(sealed), 0), ad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.k.Open(tt.sealed, tt.ad)
			assert.Error(t, err)
			assert.Nil(t, got)
		})
	}
}

func TestAgentTokenRoundTrip(t *testing.T) {
	k := newKeyring(t, testMaster)
	exp := t0.Add(time.Hour)
	for _, mode := range []bridge.Mode{bridge.ModeTest, bridge.ModeLive} {
		t.Run(string(mode), func(t *testing.T) {
			token := issueToken(k, "acme", mode, "agent-7 ü", exp)
			assert.True(t, strings.HasPrefix(token, "vp_at_"+string(mode)+"_"), "token prefix")

			got, err := k.VerifyAgentToken(token, t0)
			require.NoError(t, err)
			assert.Equal(t, "acme", got.MerchantID)
			assert.Equal(t, mode, got.Mode)
			assert.Equal(t, "agent-7 ü", got.AgentID)
			assert.True(t, got.ExpiresAt.Equal(exp), "ExpiresAt %v, want %v", got.ExpiresAt, exp)
			assert.Equal(t, exp.Unix(), got.Expiry)
		})
	}
}

func TestAgentTokenExpiry(t *testing.T) {
	k := newKeyring(t, testMaster)
	exp := t0.Add(time.Hour)
	token := issueToken(k, "acme", bridge.ModeTest, "agent-1", exp)

	tests := []struct {
		name string
		now  time.Time
		want bridge.Code // "" for valid
	}{
		{"long before", t0, ""},
		{"one nanosecond before", exp.Add(-time.Nanosecond), ""},
		{"exactly at ExpiresAt", exp, bridge.CodeAuthKeyExpired},
		{"after", exp.Add(time.Second), bridge.CodeAuthKeyExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.VerifyAgentToken(token, tt.now)
			if tt.want == "" {
				require.NoError(t, err)
				assert.Equal(t, "agent-1", got.AgentID)
				return
			}
			assert.Nil(t, got)
			assert.Equal(t, tt.want, bridge.ErrorCode(err))
		})
	}
}

// TestAgentTokenEverySingleByteChangeFails edits each byte of a valid token to every other byte
// value; not one of the edited tokens may verify.
func TestAgentTokenEverySingleByteChangeFails(t *testing.T) {
	k := newKeyring(t, testMaster)
	token := issueToken(k, "acme", bridge.ModeTest, "agent-1", t0.Add(time.Hour))
	_, err := k.VerifyAgentToken(token, t0)
	require.NoError(t, err, "the unmodified token must verify")

	var accepted, wrongCode []string
	for i := 0; i < len(token); i++ {
		for b := 0; b < 256; b++ {
			if byte(b) == token[i] {
				continue
			}
			edited := []byte(token)
			edited[i] = byte(b)
			got, err := k.VerifyAgentToken(string(edited), t0)
			switch {
			case err == nil:
				accepted = append(accepted, fmt.Sprintf("byte %d of %d %q->%q (agent %q)", i, len(token), token[i], byte(b), got.AgentID))
			case bridge.ErrorCode(err) != bridge.CodeAuthInvalidKey:
				wrongCode = append(wrongCode, fmt.Sprintf("byte %d -> %q: %s", i, byte(b), bridge.ErrorCode(err)))
			}
		}
	}
	assert.Zero(t, len(accepted), "single-byte edits of a valid token were accepted, e.g. %v", first(accepted, 3))
	assert.Zero(t, len(wrongCode), "edited tokens must answer auth_invalid_key, e.g. %v", first(wrongCode, 3))
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

func TestAgentTokenRejected(t *testing.T) {
	k := newKeyring(t, testMaster)
	token := issueToken(k, "acme", bridge.ModeTest, "agent-1", t0.Add(time.Hour))
	head, sig, ok := strings.Cut(token, ".")
	require.True(t, ok, "token has a signature part")
	payload := strings.TrimPrefix(head, "vp_at_test_")

	other := newKeyring(t, []byte("another master key, 32 bytes....."))
	fromOther := issueToken(other, "acme", bridge.ModeTest, "agent-1", t0.Add(time.Hour))

	_, otherSig, ok := strings.Cut(fromOther, ".")
	require.True(t, ok)
	// A payload edited by hand (a later expiry), re-encoded, with the original signature.
	forged := "vp_at_test_" + base64.RawURLEncoding.EncodeToString([]byte(`{"m":"acme","a":"agent-1","e":9999999999}`)) + "." + sig

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"prefix only", "vp_at_test_"},
		{"from another keyring", fromOther},
		{"mode changed to live", strings.Replace(token, "vp_at_test_", "vp_at_live_", 1)},
		{"unknown mode", strings.Replace(token, "vp_at_test_", "vp_at_prod_", 1)},
		{"API key prefix", strings.Replace(token, "vp_at_", "vp_sk_", 1)},
		{"no prefix", strings.TrimPrefix(token, "vp_at_")},
		{"no signature", head},
		{"empty signature", head + "."},
		{"signature not base64", head + ".!!!!"},
		{"signature of another keyring", "vp_at_test_" + payload + "." + otherSig},
		{"signature truncated", head + "." + sig[:len(sig)-2]},
		{"signature doubled", head + "." + sig + sig},
		{"extra dot part", token + ".x"},
		{"padded signature", token + "="},
		{"whitespace", " " + token},
		{"over 2048 bytes", token + strings.Repeat("A", 2048)},
		{"payload edited, signature kept", forged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.VerifyAgentToken(tt.token, t0)
			assert.Nil(t, got)
			assert.Equal(t, bridge.CodeAuthInvalidKey, bridge.ErrorCode(err))
		})
	}
}

func TestAgentTokenCarriesNoSecret(t *testing.T) {
	k := newKeyring(t, testMaster)
	token := issueToken(k, "acme", bridge.ModeLive, "agent-1", t0.Add(time.Hour))

	for _, form := range []string{
		string(testMaster),
		hex.EncodeToString(testMaster),
		base64.StdEncoding.EncodeToString(testMaster),
		base64.RawURLEncoding.EncodeToString(testMaster),
	} {
		assert.NotContains(t, token, form, "the token must not carry the master key")
	}

	// The payload says who, until when, minted by which key (a public id) and a random id, and
	// nothing else (issue 10 added "k" and "i").
	head, _, ok := strings.Cut(token, ".")
	require.True(t, ok)
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(head, "vp_at_live_"))
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(raw, &fields))
	keys := make([]string, 0, len(fields))
	for f := range fields {
		keys = append(keys, f)
	}
	assert.ElementsMatch(t, []string{"m", "a", "e", "k", "i"}, keys)
	assert.Equal(t, "acme", fields["m"])
	assert.Equal(t, "agent-1", fields["a"])
	assert.Equal(t, "key_0123456789abcdef", fields["k"])
}

// TestAgentTokensAreNeverTheSame: two tokens for the same agent, key and second differ (issue 10:
// they were deterministic), and each verifies with its own random id.
func TestAgentTokensAreNeverTheSame(t *testing.T) {
	k := newKeyring(t, testMaster)
	claims := bridge.AgentToken{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1", ExpiresAt: t0.Add(time.Hour), KeyID: "key_a", Epoch: 3}
	a, b := k.IssueAgentToken(claims), k.IssueAgentToken(claims)
	assert.NotEqual(t, a, b)
	ta, err := k.VerifyAgentToken(a, t0)
	require.NoError(t, err)
	tb, err := k.VerifyAgentToken(b, t0)
	require.NoError(t, err)
	assert.NotEqual(t, ta.ID, tb.ID)
	assert.Len(t, ta.ID, 16)
	assert.Equal(t, "key_a", ta.KeyID)
	assert.Equal(t, int64(3), ta.Epoch)
}

// TestAgentTokenWithoutKeyRejected: a token that names no minting key (as tokens minted before
// issue 10 did) cannot be revoked, so it is not accepted.
func TestAgentTokenWithoutKeyRejected(t *testing.T) {
	k := newKeyring(t, testMaster)
	token := k.IssueAgentToken(bridge.AgentToken{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1", ExpiresAt: t0.Add(time.Hour)})
	_, err := k.VerifyAgentToken(token, t0)
	assert.Equal(t, bridge.CodeAuthInvalidKey, bridge.ErrorCode(err))
}

// issueToken mints a token the way KeyService does, naming a minting key, for tests of the
// keyring alone (which checks signatures and expiry, not keys).
func issueToken(k *bridge.Keyring, merchantID string, mode bridge.Mode, agentID string, exp time.Time) string {
	return k.IssueAgentToken(bridge.AgentToken{MerchantID: merchantID, Mode: mode, AgentID: agentID, ExpiresAt: exp, KeyID: "key_0123456789abcdef"})
}
