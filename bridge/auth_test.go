package bridge_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
	"github.com/paybridge/paybridge/bridge/bridgetest"
)

// unavailableKeys is a store whose key lookups fail the way a broken database does.
type unavailableKeys struct {
	bridge.Store
	err error
}

func (u unavailableKeys) APIKeyByHash(context.Context, string) (*bridge.APIKey, error) {
	return nil, u.err
}

// brokenMerchants is a merchant directory that cannot answer.
type brokenMerchants struct{ err error }

func (b brokenMerchants) Merchant(context.Context, string) (*bridge.Merchant, error) {
	return nil, b.err
}

func (b brokenMerchants) Merchants(context.Context) ([]*bridge.Merchant, error) { return nil, b.err }

// keyWorld is a KeyService on a real bbolt store, with merchants in every status.
type keyWorld struct {
	store     bridge.Store
	clock     *bridgetest.ManualClock
	keyring   *bridge.Keyring
	merchants bridge.StaticMerchants
	keys      *bridge.KeyService
}

const rollGrace = 2 * time.Hour

func newKeyWorld(t *testing.T) *keyWorld {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, store.Close()) })

	w := &keyWorld{
		store:   store,
		clock:   bridgetest.NewManualClock(t0),
		keyring: newKeyring(t, testMaster),
		merchants: bridge.StaticMerchants{
			{ID: "acme", Name: "Acme", Status: bridge.MerchantActive},
			{ID: "globex", Name: "Globex", Status: bridge.MerchantActive},
			{ID: "pending", Name: "Pending", Status: bridge.MerchantPendingApproval},
			{ID: "denied", Name: "Denied", Status: bridge.MerchantDenied},
			{ID: "dormant", Name: "Dormant", Status: bridge.MerchantInactive},
		},
	}
	w.keys = w.service(store, w.merchants)
	return w
}

func (w *keyWorld) service(store bridge.KeyStore, merchants bridge.MerchantDirectory) *bridge.KeyService {
	return bridge.NewKeyService(bridge.KeyServiceOptions{
		Store: store, Merchants: merchants, Keyring: w.keyring, Clock: w.clock, RollGrace: rollGrace,
	})
}

func (w *keyWorld) merchant(id string) *bridge.Merchant {
	for _, m := range w.merchants {
		if m.ID == id {
			return m
		}
	}
	panic("no merchant " + id)
}

func (w *keyWorld) createKey(t *testing.T, merchantID string, typ bridge.KeyType, mode bridge.Mode) (string, *bridge.APIKey) {
	t.Helper()
	plain, key, err := w.keys.CreateKey(context.Background(), merchantID, typ, mode)
	require.NoError(t, err)
	return plain, key
}

func (w *keyWorld) principal(t *testing.T, merchantID string, typ bridge.KeyType, mode bridge.Mode) *bridge.Principal {
	t.Helper()
	plain, _ := w.createKey(t, merchantID, typ, mode)
	p, err := w.keys.Authenticate(context.Background(), plain)
	require.NoError(t, err)
	return p
}

func TestAuthenticateValidKey(t *testing.T) {
	w := newKeyWorld(t)
	for _, tc := range []struct {
		typ  bridge.KeyType
		mode bridge.Mode
	}{
		{bridge.KeySecret, bridge.ModeTest}, {bridge.KeySecret, bridge.ModeLive},
		{bridge.KeyPublishable, bridge.ModeTest}, {bridge.KeyPublishable, bridge.ModeLive},
	} {
		t.Run(string(tc.typ)+"/"+string(tc.mode), func(t *testing.T) {
			plain, key := w.createKey(t, "acme", tc.typ, tc.mode)
			p, err := w.keys.Authenticate(context.Background(), plain)
			require.NoError(t, err)
			require.NotNil(t, p)
			assert.Equal(t, key.ID, p.Key.ID)
			assert.Equal(t, tc.typ, p.Key.Type)
			assert.Equal(t, tc.mode, p.Key.Mode)
			assert.Equal(t, "acme", p.Merchant.ID)
			assert.Equal(t, bridge.AgentRef{MerchantID: "acme", Mode: tc.mode}, p.Scope())
		})
	}
}

func TestAuthenticateFailures(t *testing.T) {
	w := newKeyWorld(t)
	ctx := context.Background()

	unknown, _ := bridge.NewAPIKey("acme", bridge.KeySecret, bridge.ModeTest, t0) // never stored
	valid, _ := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)

	// A stored key whose record disagrees with its own prefix: the prefix must be believed only
	// as far as the record confirms it.
	lying, lyingKey := bridge.NewAPIKey("acme", bridge.KeySecret, bridge.ModeTest, t0)
	lyingKey.Type = bridge.KeyPublishable
	require.NoError(t, w.store.CreateAPIKey(ctx, lyingKey))

	storeDown := errors.New("bolt: database not open at /var/lib/paybridge/db")

	tests := []struct {
		name    string
		keys    *bridge.KeyService
		key     string
		want    bridge.Code
		noCause bool
	}{
		{"empty", w.keys, "", bridge.CodeAuthInvalidKey, true},
		{"malformed", w.keys, "vp_sk_test_short", bridge.CodeAuthInvalidKey, true},
		{"wrong prefix", w.keys, "sk_test_" + strings.Repeat("a", 30), bridge.CodeAuthInvalidKey, true},
		{"scheme left in", w.keys, "Bearer " + valid, bridge.CodeAuthInvalidKey, true},
		{"agent token as key", w.keys, issueToken(w.keyring, "acme", bridge.ModeTest, "a", t0.Add(time.Hour)), bridge.CodeAuthInvalidKey, true},
		{"unknown", w.keys, unknown, bridge.CodeAuthInvalidKey, true},
		{"valid key, one character changed", w.keys, valid[:len(valid)-1] + flip(valid[len(valid)-1]), bridge.CodeAuthInvalidKey, true},
		{"record disagrees with prefix", w.keys, lying, bridge.CodeAuthInvalidKey, true},
		{"key store unavailable", w.service(unavailableKeys{Store: w.store, err: storeDown}, w.merchants), valid, bridge.CodeAuthServiceUnavailable, false},
		{"merchant directory unavailable", w.service(w.store, brokenMerchants{err: storeDown}), valid, bridge.CodeAuthServiceUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.keys.Authenticate(ctx, tt.key)
			assert.Nil(t, p)
			require.Error(t, err)
			e := bridge.AsError(err)
			assert.Equal(t, tt.want, e.Code)
			assert.NotEmpty(t, e.Message)
			assert.NotContains(t, e.Message, "/var/lib", "the public message must not repeat the cause")
			if tt.key != "" {
				assert.NotContains(t, e.Message, tt.key, "the public message must not repeat the key")
				assert.NotContains(t, err.Error(), tt.key, "the error must not carry the key, even for logs")
			}
			if tt.noCause {
				assert.Nil(t, e.Cause)
			} else {
				assert.ErrorIs(t, err, storeDown, "the cause is kept for logs")
			}
		})
	}
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func TestAuthenticateRevokedKey(t *testing.T) {
	w := newKeyWorld(t)
	ctx := context.Background()
	plain, key := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
	w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest) // the last active secret key cannot be revoked
	w.clock.Advance(time.Minute)

	revoked, err := w.keys.RevokeKey(ctx, "acme", key.ID)
	require.NoError(t, err)
	assert.True(t, revoked.RevokedAt.Equal(t0.Add(time.Minute)))

	_, err = w.keys.Authenticate(ctx, plain)
	assert.Equal(t, bridge.CodeAuthKeyExpired, bridge.ErrorCode(err), "a revoked key ends at once")

	// Revoking again keeps the first revocation time.
	w.clock.Advance(time.Hour)
	again, err := w.keys.RevokeKey(ctx, "acme", key.ID)
	require.NoError(t, err)
	assert.True(t, again.RevokedAt.Equal(t0.Add(time.Minute)))

	// A revoked key cannot be rolled into a fresh one; the error names the key at fault, not the
	// caller's credentials.
	_, _, err = w.keys.RollKey(ctx, "acme", key.ID, 0)
	assert.Equal(t, bridge.CodeValidationError, bridge.ErrorCode(err))
	assert.Equal(t, "id", bridge.AsError(err).Param)
}

func TestAuthenticateRolledKey(t *testing.T) {
	tests := []struct {
		name  string
		grace time.Duration // passed to RollKey
		want  time.Duration // the grace that applies
	}{
		{"configured grace", 0, rollGrace},
		{"explicit grace", 10 * time.Minute, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newKeyWorld(t)
			ctx := context.Background()
			oldPlain, oldKey := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeLive)

			newPlain, newKey, err := w.keys.RollKey(ctx, "acme", oldKey.ID, tt.grace)
			require.NoError(t, err)
			assert.NotEqual(t, oldPlain, newPlain)
			assert.Equal(t, oldKey.Type, newKey.Type)
			assert.Equal(t, oldKey.Mode, newKey.Mode)
			stored, err := w.store.APIKey(ctx, oldKey.ID)
			require.NoError(t, err)
			assert.Equal(t, newKey.ID, stored.RolledTo)
			assert.True(t, stored.ExpiresAt.Equal(t0.Add(tt.want)), "grace ends %v", stored.ExpiresAt)

			// Inside the grace window both keys work.
			w.clock.Set(t0.Add(tt.want - time.Nanosecond))
			p, err := w.keys.Authenticate(ctx, oldPlain)
			require.NoError(t, err, "the old key works until the grace window ends")
			assert.Equal(t, oldKey.ID, p.Key.ID)
			_, err = w.keys.Authenticate(ctx, newPlain)
			require.NoError(t, err)

			// At the end of the window the old key expires; the new one goes on.
			w.clock.Set(t0.Add(tt.want))
			_, err = w.keys.Authenticate(ctx, oldPlain)
			assert.Equal(t, bridge.CodeAuthKeyExpired, bridge.ErrorCode(err))
			w.clock.Advance(365 * 24 * time.Hour)
			_, err = w.keys.Authenticate(ctx, oldPlain)
			assert.Equal(t, bridge.CodeAuthKeyExpired, bridge.ErrorCode(err))
			_, err = w.keys.Authenticate(ctx, newPlain)
			assert.NoError(t, err)
		})
	}
}

func TestRollingTwiceNeverExtendsGrace(t *testing.T) {
	w := newKeyWorld(t)
	ctx := context.Background()
	_, key := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)

	_, _, err := w.keys.RollKey(ctx, "acme", key.ID, 10*time.Minute)
	require.NoError(t, err)
	w.clock.Advance(5 * time.Minute)
	_, second, err := w.keys.RollKey(ctx, "acme", key.ID, time.Hour)
	require.NoError(t, err)

	stored, err := w.store.APIKey(ctx, key.ID)
	require.NoError(t, err)
	assert.True(t, stored.ExpiresAt.Equal(t0.Add(10*time.Minute)), "a second roll must not extend the first grace (ends %v)", stored.ExpiresAt)
	assert.Equal(t, second.ID, stored.RolledTo)
}

func TestAuthenticateInactiveMerchant(t *testing.T) {
	w := newKeyWorld(t)
	ctx := context.Background()
	plain, _ := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
	_, err := w.keys.Authenticate(ctx, plain)
	require.NoError(t, err)

	w.merchant("acme").Status = bridge.MerchantInactive
	p, err := w.keys.Authenticate(ctx, plain)
	assert.Nil(t, p)
	assert.Equal(t, bridge.CodeAuthMerchantInactive, bridge.ErrorCode(err))

	// A merchant removed from the configuration reads the same way.
	gone := w.service(w.store, bridge.StaticMerchants{})
	_, err = gone.Authenticate(ctx, plain)
	assert.Equal(t, bridge.CodeAuthMerchantInactive, bridge.ErrorCode(err))

	// Pending and denied merchants keep using their (test) keys.
	for _, id := range []string{"pending", "denied"} {
		plain, _ := w.createKey(t, id, bridge.KeySecret, bridge.ModeTest)
		_, err := w.keys.Authenticate(ctx, plain)
		assert.NoError(t, err, id)
	}
}

func TestCreateKey(t *testing.T) {
	tests := []struct {
		merchant  string
		typ       bridge.KeyType
		mode      bridge.Mode
		want      bridge.Code
		wantParam string
	}{
		{"acme", bridge.KeySecret, bridge.ModeTest, "", ""},
		{"acme", bridge.KeySecret, bridge.ModeLive, "", ""},
		{"acme", bridge.KeyPublishable, bridge.ModeLive, "", ""},
		{"pending", bridge.KeySecret, bridge.ModeTest, "", ""},
		{"pending", bridge.KeyPublishable, bridge.ModeTest, "", ""},
		{"pending", bridge.KeySecret, bridge.ModeLive, bridge.CodeMerchantNotOnboarded, ""},
		{"pending", bridge.KeyPublishable, bridge.ModeLive, bridge.CodeMerchantNotOnboarded, ""},
		{"denied", bridge.KeySecret, bridge.ModeTest, "", ""},
		{"denied", bridge.KeySecret, bridge.ModeLive, bridge.CodeMerchantNotOnboarded, ""},
		{"dormant", bridge.KeySecret, bridge.ModeTest, bridge.CodeAuthMerchantInactive, ""},
		{"dormant", bridge.KeySecret, bridge.ModeLive, bridge.CodeAuthMerchantInactive, ""},
		{"nobody", bridge.KeySecret, bridge.ModeTest, bridge.CodeMerchantNotConfigured, ""},
		{"acme", "restricted", bridge.ModeTest, bridge.CodeValidationError, "type"},
		{"acme", bridge.KeySecret, "prod", bridge.CodeValidationError, "mode"},
	}
	for _, tt := range tests {
		t.Run(tt.merchant+"/"+string(tt.typ)+"/"+string(tt.mode), func(t *testing.T) {
			w := newKeyWorld(t)
			ctx := context.Background()
			plain, key, err := w.keys.CreateKey(ctx, tt.merchant, tt.typ, tt.mode)
			if tt.want != "" {
				require.Error(t, err)
				e := bridge.AsError(err)
				assert.Equal(t, tt.want, e.Code)
				assert.Equal(t, tt.wantParam, e.Param)
				assert.Empty(t, plain)
				assert.Nil(t, key)
				listed, err := w.store.ListAPIKeys(ctx, tt.merchant)
				require.NoError(t, err)
				assert.Empty(t, listed, "a refused key must not be stored")
				return
			}
			require.NoError(t, err)
			typ, mode, ok := bridge.ParseAPIKey(plain)
			require.True(t, ok)
			assert.Equal(t, tt.typ, typ)
			assert.Equal(t, tt.mode, mode)
			assert.True(t, key.CreatedAt.Equal(t0))

			stored, err := w.store.APIKey(ctx, key.ID)
			require.NoError(t, err)
			assert.Equal(t, tt.merchant, stored.MerchantID)
			assert.Equal(t, bridge.HashSecret(plain), stored.Hash)
			assert.NotEqual(t, plain, stored.Hash)
			assert.Equal(t, plain[len(plain)-4:], stored.Last4)
		})
	}
}

func TestKeyLifecycleIsScopedToMerchant(t *testing.T) {
	w := newKeyWorld(t)
	ctx := context.Background()
	plain, key := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)

	_, _, err := w.keys.RollKey(ctx, "globex", key.ID, 0)
	assert.Equal(t, bridge.CodeValidationError, bridge.ErrorCode(err))
	assert.Equal(t, "id", bridge.AsError(err).Param)
	_, err = w.keys.RevokeKey(ctx, "globex", key.ID)
	assert.Equal(t, bridge.CodeValidationError, bridge.ErrorCode(err))
	_, err = w.keys.RevokeKey(ctx, "acme", "key_doesnotexist")
	assert.Equal(t, bridge.CodeValidationError, bridge.ErrorCode(err))
	_, _, err = w.keys.RollKey(ctx, "acme", "key_doesnotexist", 0)
	assert.Equal(t, bridge.CodeValidationError, bridge.ErrorCode(err))

	_, err = w.keys.Authenticate(ctx, plain)
	assert.NoError(t, err, "another merchant's attempts must leave the key alone")
}

func TestIssueAgentToken(t *testing.T) {
	tests := []struct {
		name      string
		agentID   string
		ttl       time.Duration
		wantTTL   time.Duration
		want      bridge.Code
		wantParam string
	}{
		{"default ttl", "agent-1", 0, bridge.DefaultAgentTokenTTL, "", ""},
		{"minimum ttl", "agent-1", time.Minute, time.Minute, "", ""},
		{"maximum ttl", "agent-1", bridge.MaxAgentTokenTTL, bridge.MaxAgentTokenTTL, "", ""},
		{"ttl below minimum", "agent-1", 59 * time.Second, 0, bridge.CodeValidationError, "ttlSeconds"},
		{"ttl above maximum", "agent-1", bridge.MaxAgentTokenTTL + time.Second, 0, bridge.CodeValidationError, "ttlSeconds"},
		{"negative ttl", "agent-1", -time.Hour, 0, bridge.CodeValidationError, "ttlSeconds"},
		{"missing agentId", "", time.Hour, 0, bridge.CodeValidationMissingField, "agentId"},
		{"agentId too long", strings.Repeat("a", 129), time.Hour, 0, bridge.CodeValidationError, "agentId"},
		{"agentId with control character", "agent\r\n1", time.Hour, 0, bridge.CodeValidationError, "agentId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newKeyWorld(t)
			p := w.principal(t, "acme", bridge.KeySecret, bridge.ModeLive)
			token, exp, err := w.keys.IssueAgentToken(t.Context(), p, tt.agentID, tt.ttl)
			if tt.want != "" {
				require.Error(t, err)
				assert.Equal(t, tt.want, bridge.ErrorCode(err))
				assert.Equal(t, tt.wantParam, bridge.AsError(err).Param)
				assert.Empty(t, token)
				return
			}
			require.NoError(t, err)
			assert.True(t, exp.Equal(t0.Add(tt.wantTTL)), "expires %v, want %v", exp, t0.Add(tt.wantTTL))
			assert.True(t, strings.HasPrefix(token, "vp_at_live_"))

			got, err := w.keyring.VerifyAgentToken(token, t0)
			require.NoError(t, err)
			assert.Equal(t, "acme", got.MerchantID)
			assert.Equal(t, bridge.ModeLive, got.Mode)
			assert.Equal(t, tt.agentID, got.AgentID)
			assert.True(t, got.ExpiresAt.Equal(exp))
		})
	}
}

func TestIssueAgentTokenOptions(t *testing.T) {
	w := newKeyWorld(t)
	// A clock between seconds: the expiry is whole seconds, since the token carries unix seconds.
	w.clock.Set(t0.Add(700 * time.Millisecond))
	keys := bridge.NewKeyService(bridge.KeyServiceOptions{
		Store: w.store, Merchants: w.merchants, Keyring: w.keyring, Clock: w.clock,
		AgentTokenTTL: 10 * time.Minute, MaxAgentTokenTTL: 30 * time.Minute,
	})
	plain, _ := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
	p, err := keys.Authenticate(context.Background(), plain)
	require.NoError(t, err)

	_, exp, err := keys.IssueAgentToken(t.Context(), p, "agent-1", 0)
	require.NoError(t, err)
	assert.True(t, exp.Equal(t0.Add(10*time.Minute)), "default from options, whole seconds: %v", exp)

	_, _, err = keys.IssueAgentToken(t.Context(), p, "agent-1", 30*time.Minute)
	assert.NoError(t, err)
	_, _, err = keys.IssueAgentToken(t.Context(), p, "agent-1", 31*time.Minute)
	assert.Equal(t, bridge.CodeValidationError, bridge.ErrorCode(err), "maximum from options")
}

func TestVerifyAgentTokenThroughKeyService(t *testing.T) {
	w := newKeyWorld(t)
	acmeTestSecret := w.principal(t, "acme", bridge.KeySecret, bridge.ModeTest)
	acmeTestPub := w.principal(t, "acme", bridge.KeyPublishable, bridge.ModeTest)
	acmeLivePub := w.principal(t, "acme", bridge.KeyPublishable, bridge.ModeLive)
	globexTestPub := w.principal(t, "globex", bridge.KeyPublishable, bridge.ModeTest)

	token, exp, err := w.keys.IssueAgentToken(t.Context(), acmeTestSecret, "agent-1", time.Hour)
	require.NoError(t, err)

	got, err := w.keys.VerifyAgentToken(t.Context(), acmeTestPub, token)
	require.NoError(t, err)
	assert.Equal(t, "agent-1", got.AgentID)
	assert.Equal(t, "acme", got.MerchantID)
	assert.Equal(t, bridge.ModeTest, got.Mode)

	tests := []struct {
		name  string
		p     *bridge.Principal
		token string
		want  bridge.Code
	}{
		{"another merchant's key", globexTestPub, token, bridge.CodeAuthInvalidKey},
		{"live key, test token", acmeLivePub, token, bridge.CodeAuthKeyTypeForbidden},
		{"garbage", acmeTestPub, "vp_at_test_nonsense", bridge.CodeAuthInvalidKey},
		{"API key instead of token", acmeTestPub, "vp_pk_test_" + strings.Repeat("a", 30), bridge.CodeAuthInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.keys.VerifyAgentToken(t.Context(), tt.p, tt.token)
			assert.Nil(t, got)
			assert.Equal(t, tt.want, bridge.ErrorCode(err))
			assert.NotContains(t, err.Error(), tt.token)
		})
	}

	t.Run("expiry follows the service clock", func(t *testing.T) {
		w.clock.Set(exp.Add(-time.Second))
		_, err := w.keys.VerifyAgentToken(t.Context(), acmeTestPub, token)
		require.NoError(t, err)
		w.clock.Set(exp)
		_, err = w.keys.VerifyAgentToken(t.Context(), acmeTestPub, token)
		assert.Equal(t, bridge.CodeAuthKeyExpired, bridge.ErrorCode(err))
	})
}

// TestCanManageKeys: a key that has been rolled still authenticates during its grace window but
// may no longer manage keys; the error names the key that replaced it.
func TestCanManageKeys(t *testing.T) {
	w := newKeyWorld(t)
	ctx := context.Background()
	plain, key := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
	p, err := w.keys.Authenticate(ctx, plain)
	require.NoError(t, err)
	require.NoError(t, p.CanManageKeys(), "a fresh key manages keys")

	_, successor, err := w.keys.RollKey(ctx, "acme", key.ID, 0)
	require.NoError(t, err)
	p, err = w.keys.Authenticate(ctx, plain)
	require.NoError(t, err, "inside the grace window the rolled key authenticates")
	err = p.CanManageKeys()
	assert.Equal(t, bridge.CodeAuthKeyExpired, bridge.ErrorCode(err))
	assert.Contains(t, bridge.AsError(err).Fix, successor.ID)

	// ExpiresAt alone (a roll whose successor id is not known) is enough.
	p.Key.RolledTo = ""
	assert.Equal(t, bridge.CodeAuthKeyExpired, bridge.ErrorCode(p.CanManageKeys()))
}

// recordingWatcher remembers the credential events a KeyService reports.
type recordingWatcher struct {
	keys    []string // "id@at"
	revoked []*bridge.AgentTokenRevocation
}

func (r *recordingWatcher) KeyEnds(key *bridge.APIKey, at time.Time) {
	r.keys = append(r.keys, key.ID+"@"+at.UTC().Format(time.RFC3339))
}

func (r *recordingWatcher) AgentTokensRevoked(rec *bridge.AgentTokenRevocation) {
	r.revoked = append(r.revoked, rec)
}

// TestAgentTokenEndsWithItsMintingKey (issue 10 item 3): a token works while the secret key that
// minted it does; revoking that key ends it at once, rolling it ends it with the grace window.
func TestAgentTokenEndsWithItsMintingKey(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		end    func(w *keyWorld, keyID string)
		before time.Duration // still works this long after end; 0: not at all
		reason string
	}{
		{"revoked", func(w *keyWorld, id string) {
			_, err := w.keys.RevokeKey(ctx, "acme", id)
			require.NoError(t, err)
		}, 0, "was revoked"},
		{"rolled", func(w *keyWorld, id string) {
			_, _, err := w.keys.RollKey(ctx, "acme", id, time.Hour)
			require.NoError(t, err)
		}, time.Hour, "grace window has ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newKeyWorld(t)
			watcher := &recordingWatcher{}
			stop := w.keys.Watch(watcher)
			secretPlain, secret := w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest)
			w.createKey(t, "acme", bridge.KeySecret, bridge.ModeTest) // the last active secret key cannot be revoked
			p, err := w.keys.Authenticate(ctx, secretPlain)
			require.NoError(t, err)
			pub := w.principal(t, "acme", bridge.KeyPublishable, bridge.ModeTest)
			token, _, err := w.keys.IssueAgentToken(ctx, p, "agent-1", 2*time.Hour)
			require.NoError(t, err)
			got, err := w.keys.VerifyAgentToken(ctx, pub, token)
			require.NoError(t, err)
			require.NotNil(t, got.MintedBy)
			assert.Equal(t, secret.ID, got.MintedBy.ID)

			tt.end(w, secret.ID)
			require.Len(t, watcher.keys, 1, "the watcher hears of the key's end")
			assert.Equal(t, secret.ID+"@"+t0.Add(tt.before).UTC().Format(time.RFC3339), watcher.keys[0])
			if tt.before > 0 {
				w.clock.Set(t0.Add(tt.before - time.Second))
				_, err := w.keys.VerifyAgentToken(ctx, pub, token)
				require.NoError(t, err, "inside the grace window the token works")
				w.clock.Set(t0.Add(tt.before))
			}
			_, err = w.keys.VerifyAgentToken(ctx, pub, token)
			assert.Equal(t, bridge.CodeAuthKeyExpired, bridge.ErrorCode(err))
			assert.Contains(t, bridge.AsError(err).Message, tt.reason)

			stop()
			_, err = w.keys.RevokeKey(ctx, "acme", secret.ID)
			require.NoError(t, err)
			assert.Len(t, watcher.keys, 1, "a stopped watcher hears nothing")
		})
	}
}

// TestRevokeAgentTokens (issue 10 item 3): revoking an agent's tokens voids every token it holds,
// durably (a new KeyService on the same store agrees), and no other agent's; tokens minted
// afterwards work.
func TestRevokeAgentTokens(t *testing.T) {
	ctx := context.Background()
	w := newKeyWorld(t)
	watcher := &recordingWatcher{}
	w.keys.Watch(watcher)
	secret := w.principal(t, "acme", bridge.KeySecret, bridge.ModeTest)
	liveSecret := w.principal(t, "acme", bridge.KeySecret, bridge.ModeLive)
	pub := w.principal(t, "acme", bridge.KeyPublishable, bridge.ModeTest)
	livePub := w.principal(t, "acme", bridge.KeyPublishable, bridge.ModeLive)
	mint := func(p *bridge.Principal, agent string) string {
		t.Helper()
		token, _, err := w.keys.IssueAgentToken(ctx, p, agent, time.Hour)
		require.NoError(t, err)
		return token
	}
	first, second := mint(secret, "agent-1"), mint(secret, "agent-1")
	assert.NotEqual(t, first, second, "tokens are not deterministic")
	otherAgent, otherMode := mint(secret, "agent-2"), mint(liveSecret, "agent-1")

	rec, err := w.keys.RevokeAgentTokens(ctx, secret, "agent-1")
	require.NoError(t, err)
	assert.Equal(t, bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1"}, rec.Agent)
	require.Len(t, watcher.revoked, 1)
	assert.Equal(t, rec, watcher.revoked[0])
	after := mint(secret, "agent-1")

	restarted := w.service(w.store, w.merchants)
	for _, keys := range []*bridge.KeyService{w.keys, restarted} {
		for _, token := range []string{first, second} {
			_, err := keys.VerifyAgentToken(ctx, pub, token)
			assert.Equal(t, bridge.CodeAuthKeyExpired, bridge.ErrorCode(err))
			assert.Contains(t, bridge.AsError(err).Message, "revoked")
		}
		_, err := keys.VerifyAgentToken(ctx, pub, after)
		assert.NoError(t, err, "a token minted after the revocation works")
		_, err = keys.VerifyAgentToken(ctx, pub, otherAgent)
		assert.NoError(t, err, "another agent's token works")
		_, err = keys.VerifyAgentToken(ctx, livePub, otherMode)
		assert.NoError(t, err, "the same agent's token of the other mode works")
	}

	_, err = w.keys.RevokeAgentTokens(ctx, secret, "")
	assert.Equal(t, bridge.CodeValidationMissingField, bridge.ErrorCode(err))
	_, err = w.keys.RevokeAgentTokens(ctx, secret, "agent\n1")
	assert.Equal(t, bridge.CodeValidationError, bridge.ErrorCode(err))
}
