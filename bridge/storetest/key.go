package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

var keyTests = []storeTest{
	{"CreateAndGetRoundTrip", testKeyRoundTrip},
	{"DuplicateIDOrHashConflicts", testKeyDuplicate},
	{"MissingIsNotFound", testKeyMissing},
	{"Update", testKeyUpdate},
	{"UpdateErrorWritesNothing", testKeyUpdateError},
	{"ListOldestFirstPerMerchant", testKeyList},
	{"AgentTokenRevocationPerAgent", testAgentTokenRevocation},
	{"AgentTokenRevocationsAllCount", testAgentTokenRevocationConcurrent},
}

// newKey returns a stored-form key of merchantID created at created.
func newKey(merchantID string, created time.Time) *bridge.APIKey {
	_, k := bridge.NewAPIKey(merchantID, bridge.KeySecret, bridge.ModeTest, created)
	return k
}

// normalizeKey returns a copy of k whose times compare with assert.Equal like time.Time.Equal.
func normalizeKey(k *bridge.APIKey) *bridge.APIKey {
	c := *k
	c.CreatedAt, c.ExpiresAt, c.RevokedAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC(), c.RevokedAt.UTC()
	return &c
}

// keyIDs returns the ids of keys, in order.
func keyIDs(keys []*bridge.APIKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func testKeyRoundTrip(t *testing.T, s bridge.Store) {
	_, k := bridge.NewAPIKey("acme", bridge.KeyPublishable, bridge.ModeLive, epoch)
	k.CreatedAt = epoch.In(elsewhere)
	k.ExpiresAt = epoch.Add(24 * time.Hour)
	k.RevokedAt = epoch.Add(48 * time.Hour)
	k.RolledTo = "key_" + bridge.RandomBase62(16)
	want := *k
	require.NoError(t, s.CreateAPIKey(t.Context(), k))
	assert.Equal(t, want, *k, "CreateAPIKey changed the caller's key")

	got, err := s.APIKey(t.Context(), k.ID)
	require.NoError(t, err)
	assert.Equal(t, normalizeKey(k), normalizeKey(got))

	byHash, err := s.APIKeyByHash(t.Context(), k.Hash)
	require.NoError(t, err)
	assert.Equal(t, normalizeKey(k), normalizeKey(byHash))

	// The reader's copy is its own.
	got.MerchantID = "globex"
	again, err := s.APIKey(t.Context(), k.ID)
	require.NoError(t, err)
	assert.Equal(t, "acme", again.MerchantID)
}

func testKeyDuplicate(t *testing.T, s bridge.Store) {
	k := newKey("acme", epoch)
	require.NoError(t, s.CreateAPIKey(t.Context(), k))

	sameID := newKey("globex", epoch)
	sameID.ID = k.ID
	assert.ErrorIs(t, s.CreateAPIKey(t.Context(), sameID), bridge.ErrConflict, "same id")
	_, err := s.APIKeyByHash(t.Context(), sameID.Hash)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "the refused key's hash was indexed")

	sameHash := newKey("globex", epoch)
	sameHash.Hash = k.Hash
	assert.ErrorIs(t, s.CreateAPIKey(t.Context(), sameHash), bridge.ErrConflict, "same hash")
	_, err = s.APIKey(t.Context(), sameHash.ID)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "the refused key was stored")

	for _, get := range []func() (*bridge.APIKey, error){
		func() (*bridge.APIKey, error) { return s.APIKey(t.Context(), k.ID) },
		func() (*bridge.APIKey, error) { return s.APIKeyByHash(t.Context(), k.Hash) },
	} {
		got, err := get()
		require.NoError(t, err)
		assert.Equal(t, normalizeKey(k), normalizeKey(got), "the first key changed")
	}
}

func testKeyMissing(t *testing.T, s bridge.Store) {
	k := newKey("acme", epoch)
	require.NoError(t, s.CreateAPIKey(t.Context(), k))
	other := newKey("acme", epoch)

	_, err := s.APIKey(t.Context(), other.ID)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "APIKey")
	_, err = s.APIKeyByHash(t.Context(), other.Hash)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "APIKeyByHash")
	_, err = s.APIKeyByHash(t.Context(), k.ID)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "APIKeyByHash with an id")
	called := false
	_, err = s.UpdateAPIKey(t.Context(), other.ID, func(*bridge.APIKey) error { called = true; return nil })
	assert.ErrorIs(t, err, bridge.ErrNotFound, "UpdateAPIKey")
	assert.False(t, called, "UpdateAPIKey called fn for a missing key")
}

func testKeyUpdate(t *testing.T, s bridge.Store) {
	old := newKey("acme", epoch)
	replacement := newKey("acme", epoch.Add(time.Hour))
	require.NoError(t, s.CreateAPIKey(t.Context(), old))
	require.NoError(t, s.CreateAPIKey(t.Context(), replacement))

	// Rolling: the old key gets a grace window and names its replacement.
	updated, err := s.UpdateAPIKey(t.Context(), old.ID, func(k *bridge.APIKey) error {
		k.ExpiresAt = epoch.Add(25 * time.Hour)
		k.RolledTo = replacement.ID
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, replacement.ID, updated.RolledTo)
	got, err := s.APIKeyByHash(t.Context(), old.Hash)
	require.NoError(t, err)
	assert.Equal(t, normalizeKey(updated), normalizeKey(got))
	assert.True(t, got.ExpiresAt.Equal(epoch.Add(25*time.Hour)))

	// Revoking.
	_, err = s.UpdateAPIKey(t.Context(), replacement.ID, func(k *bridge.APIKey) error {
		k.RevokedAt = epoch.Add(2 * time.Hour)
		return nil
	})
	require.NoError(t, err)
	got, err = s.APIKey(t.Context(), replacement.ID)
	require.NoError(t, err)
	assert.True(t, got.RevokedAt.Equal(epoch.Add(2*time.Hour)), "RevokedAt %v", got.RevokedAt)

	// A changed hash moves the index with it.
	newHash := bridge.HashSecret("vp_sk_test_" + bridge.RandomBase62(32))
	_, err = s.UpdateAPIKey(t.Context(), old.ID, func(k *bridge.APIKey) error { k.Hash = newHash; return nil })
	require.NoError(t, err)
	got, err = s.APIKeyByHash(t.Context(), newHash)
	require.NoError(t, err)
	assert.Equal(t, old.ID, got.ID)
	_, err = s.APIKeyByHash(t.Context(), old.Hash)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "the old hash still finds the key")

	// ... but never onto another key's hash.
	_, err = s.UpdateAPIKey(t.Context(), old.ID, func(k *bridge.APIKey) error { k.Hash = replacement.Hash; return nil })
	assert.ErrorIs(t, err, bridge.ErrConflict)
	got, err = s.APIKeyByHash(t.Context(), replacement.Hash)
	require.NoError(t, err)
	assert.Equal(t, replacement.ID, got.ID)
}

func testKeyUpdateError(t *testing.T, s bridge.Store) {
	k := newKey("acme", epoch)
	require.NoError(t, s.CreateAPIKey(t.Context(), k))
	errRefused := errors.New("refused by fn")

	updated, err := s.UpdateAPIKey(t.Context(), k.ID, func(c *bridge.APIKey) error {
		c.RevokedAt = epoch
		c.Hash = bridge.HashSecret("other")
		return errRefused
	})
	assert.ErrorIs(t, err, errRefused)
	assert.Nil(t, updated)
	got, err := s.APIKeyByHash(t.Context(), k.Hash)
	require.NoError(t, err)
	assert.Equal(t, normalizeKey(k), normalizeKey(got))
	_, err = s.APIKeyByHash(t.Context(), bridge.HashSecret("other"))
	assert.ErrorIs(t, err, bridge.ErrNotFound)
}

func testKeyList(t *testing.T, s bridge.Store) {
	// Created out of order, so insertion order cannot pass for age.
	newest := newKey("acme", epoch.Add(2*time.Hour))
	oldest := newKey("acme", epoch.In(elsewhere))
	middle := newKey("acme", epoch.Add(time.Hour))
	theirs := newKey("globex", epoch.Add(-time.Hour))
	for _, k := range []*bridge.APIKey{newest, oldest, theirs, middle} {
		require.NoError(t, s.CreateAPIKey(t.Context(), k))
	}

	tests := []struct {
		merchant string
		want     []*bridge.APIKey
	}{
		{"acme", []*bridge.APIKey{oldest, middle, newest}},
		{"globex", []*bridge.APIKey{theirs}},
		{"nobody", nil},
	}
	for _, tc := range tests {
		got, err := s.ListAPIKeys(t.Context(), tc.merchant)
		require.NoError(t, err)
		assert.Equal(t, keyIDs(tc.want), keyIDs(got), "merchant %s", tc.merchant)
	}
}

func testAgentTokenRevocation(t *testing.T, s bridge.Store) {
	agent := bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent 1 ü"}
	// Every other agent differs from it in one part only: none may share its record.
	others := []bridge.AgentRef{
		{MerchantID: "globex", Mode: bridge.ModeTest, AgentID: agent.AgentID},
		{MerchantID: "acme", Mode: bridge.ModeLive, AgentID: agent.AgentID},
		{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent 1"},
		{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: agent.AgentID + " "},
	}
	epochOf := func(a bridge.AgentRef) int64 {
		t.Helper()
		e, err := s.AgentTokenEpoch(t.Context(), a)
		require.NoError(t, err)
		return e
	}
	assert.Zero(t, epochOf(agent), "an agent never revoked is at epoch 0")

	rec, err := s.RevokeAgentTokens(t.Context(), agent, epoch.In(elsewhere))
	require.NoError(t, err)
	assert.Equal(t, agent, rec.Agent)
	assert.Equal(t, int64(1), rec.Epoch)
	assert.True(t, rec.RevokedAt.Equal(epoch), "RevokedAt %v", rec.RevokedAt)
	assert.Equal(t, int64(1), epochOf(agent))

	rec, err = s.RevokeAgentTokens(t.Context(), agent, epoch.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, int64(2), rec.Epoch, "each revocation moves the epoch on")
	assert.Equal(t, int64(2), epochOf(agent))
	for _, o := range others {
		assert.Zero(t, epochOf(o), "%+v shares the revoked agent's record", o)
	}
}

func testAgentTokenRevocationConcurrent(t *testing.T, s bridge.Store) {
	agent := bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeLive, AgentID: "agent-1"}
	const n = 16
	var wg sync.WaitGroup
	epochs := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			rec, err := s.RevokeAgentTokens(t.Context(), agent, epoch)
			errs[i] = err
			if err == nil {
				epochs[i] = rec.Epoch
			}
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i := range n {
		require.NoError(t, errs[i])
		assert.False(t, seen[epochs[i]], "two revocations returned epoch %d", epochs[i])
		seen[epochs[i]] = true
	}
	got, err := s.AgentTokenEpoch(t.Context(), agent)
	require.NoError(t, err)
	assert.Equal(t, int64(n), got, "every concurrent revocation counts")
}
