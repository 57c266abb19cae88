package client_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/client"
)

// TestAgentTokens mints tokens through the real server and checks what it refuses.
func TestAgentTokens(t *testing.T) {
	w := newWorld(t)
	pb := newClient(w, w.secretKey, &recorder{}, &sleeper{})
	ctx := context.Background()

	tests := []struct {
		name    string
		params  client.AgentTokenCreateParams
		wantTTL time.Duration
		code    client.ErrorCode
		param   string
	}{
		{name: "default lifetime", params: client.AgentTokenCreateParams{AgentID: "agent-42"}, wantTTL: time.Hour},
		{name: "two minutes", params: client.AgentTokenCreateParams{AgentID: "agent-42", TTLSeconds: 120}, wantTTL: 2 * time.Minute},
		{name: "too short", params: client.AgentTokenCreateParams{AgentID: "agent-42", TTLSeconds: 10}, code: client.CodeValidationError, param: "ttlSeconds"},
		{name: "no agent", params: client.AgentTokenCreateParams{}, code: client.CodeValidationMissingField, param: "agentId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := pb.AgentTokens.Create(ctx, &tt.params)
			if tt.code != "" {
				apiErr := asAPIError(err)
				require.NotNil(t, apiErr, "err: %v", err)
				assert.Equal(t, tt.code, apiErr.Code)
				assert.Equal(t, tt.param, apiErr.Param)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "agent_token", tok.Object)
			assert.Regexp(t, `^vp_at_test_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`, tok.Token)
			assert.Equal(t, "agent-42", tok.AgentID)
			assert.False(t, tok.Livemode)
			assert.Equal(t, w.clock.Now().Add(tt.wantTTL), tok.ExpiresAt.UTC())
			assert.Equal(t, http.StatusCreated, tok.LastResponse.StatusCode)
		})
	}
}

// TestAPIKeys creates, lists, rolls and revokes keys through the real server, and uses the keys
// it made.
func TestAPIKeys(t *testing.T) {
	w := newWorld(t)
	pb := newClient(w, w.secretKey, &recorder{}, &sleeper{})
	ctx := context.Background()

	created, err := pb.APIKeys.Create(ctx, &client.APIKeyCreateParams{Type: client.KeySecret, Mode: client.ModeTest})
	require.NoError(t, err)
	assert.Equal(t, "api_key", created.Object)
	assert.Regexp(t, `^key_[0-9A-Za-z]{16}$`, created.ID)
	assert.Equal(t, client.KeySecret, created.Type)
	assert.Equal(t, client.ModeTest, created.Mode)
	require.True(t, strings.HasPrefix(created.Key, "vp_sk_test_"), "the key, shown once")
	assert.Equal(t, created.Key[len(created.Key)-4:], created.Last4)
	assert.Nil(t, created.ExpiresAt)
	assert.Nil(t, created.RevokedAt)

	// The new key works.
	second := newClient(w, created.Key, &recorder{}, &sleeper{})
	_, err = second.Sessions.ListPage(ctx, nil)
	require.NoError(t, err)

	pub, err := pb.APIKeys.Create(ctx, &client.APIKeyCreateParams{Type: client.KeyPublishable, Mode: client.ModeTest})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(pub.Key, "vp_pk_test_"))

	list, err := pb.APIKeys.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, "list", list.Object)
	var ids []string
	for _, k := range list.Data {
		ids = append(ids, k.ID)
		assert.Empty(t, k.Key, "a list never shows keys")
		assert.NotEmpty(t, k.Last4)
	}
	assert.Len(t, ids, 4, "the world's two keys and the two made here")
	assert.Subset(t, ids, []string{created.ID, pub.ID})

	t.Run("roll with a grace window", func(t *testing.T) {
		rolled, err := pb.APIKeys.Roll(ctx, pub.ID, &client.APIKeyRollParams{GraceSeconds: new(60)})
		require.NoError(t, err)
		assert.NotEqual(t, pub.ID, rolled.ID)
		assert.True(t, strings.HasPrefix(rolled.Key, "vp_pk_test_"), "the new key, shown once")
		assert.Equal(t, client.KeyPublishable, rolled.Type)
		require.NotNil(t, rolled.Rolled)
		assert.Equal(t, pub.ID, rolled.Rolled.ID)
		assert.Equal(t, rolled.ID, rolled.Rolled.RolledTo)
		assert.Empty(t, rolled.Rolled.Key)
		require.NotNil(t, rolled.Rolled.ExpiresAt)
		assert.Equal(t, w.clock.Now().Add(time.Minute), rolled.Rolled.ExpiresAt.UTC())
		assert.Equal(t, http.StatusCreated, rolled.LastResponse.StatusCode)
	})
	t.Run("roll with the default grace", func(t *testing.T) {
		rolled, err := pb.APIKeys.Roll(ctx, created.ID, nil)
		require.NoError(t, err)
		require.NotNil(t, rolled.Rolled.ExpiresAt)
		assert.Equal(t, w.clock.Now().Add(24*time.Hour), rolled.Rolled.ExpiresAt.UTC())

		revoked, err := pb.APIKeys.Revoke(ctx, rolled.ID)
		require.NoError(t, err)
		assert.Equal(t, rolled.ID, revoked.ID)
		require.NotNil(t, revoked.RevokedAt)
		assert.Equal(t, http.StatusOK, revoked.LastResponse.StatusCode)

		gone := newClient(w, rolled.Key, &recorder{}, &sleeper{})
		_, err = gone.Sessions.ListPage(ctx, nil)
		assert.Equal(t, client.CodeAuthKeyExpired, client.CodeOf(err), "a revoked key is refused: %v", err)
	})
	t.Run("refusals", func(t *testing.T) {
		tests := []struct {
			name   string
			call   func() error
			status int
			code   client.ErrorCode
			param  string
		}{
			{name: "a live key from a test key", call: func() error {
				_, err := pb.APIKeys.Create(ctx, &client.APIKeyCreateParams{Type: client.KeySecret, Mode: client.ModeLive})
				return err
			}, status: http.StatusForbidden, code: client.CodeAuthKeyTypeForbidden},
			{name: "no type", call: func() error {
				_, err := pb.APIKeys.Create(ctx, &client.APIKeyCreateParams{Mode: client.ModeTest})
				return err
			}, status: http.StatusBadRequest, code: client.CodeValidationMissingField, param: "type"},
			{name: "roll an unknown key", call: func() error {
				_, err := pb.APIKeys.Roll(ctx, "key_0000000000000000", nil)
				return err
			}, status: http.StatusBadRequest, code: client.CodeValidationError, param: "id"},
			{name: "revoke an unknown key", call: func() error {
				_, err := pb.APIKeys.Revoke(ctx, "key_0000000000000000")
				return err
			}, status: http.StatusBadRequest, code: client.CodeValidationError, param: "id"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				apiErr := asAPIError(tt.call())
				require.NotNil(t, apiErr)
				assert.Equal(t, tt.status, apiErr.HTTPStatus)
				assert.Equal(t, tt.code, apiErr.Code)
				assert.Equal(t, tt.param, apiErr.Param)
			})
		}
	})
}
