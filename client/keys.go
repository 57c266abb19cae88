package client

import (
	"context"
	"net/http"
	"time"
)

// AgentToken is a short-lived credential for one agent's browser. Token is secret: hand it to
// that agent's browser only; it is shown only here.
type AgentToken struct {
	APIResource
	Object    string    `json:"object"` // "agent_token"
	Token     string    `json:"token"`  // vp_at_test_… or vp_at_live_…
	AgentID   string    `json:"agentId"`
	Livemode  bool      `json:"livemode"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// AgentTokenCreateParams name the agent and the token's lifetime.
type AgentTokenCreateParams struct {
	// AgentID is the agent the token is for (1 to 128 printable characters).
	AgentID string `json:"agentId"`
	// TTLSeconds is the token's lifetime, 60 to 86400; 0 takes the default (3600).
	TTLSeconds int `json:"ttlSeconds,omitempty"`
}

// AgentTokenService is the agent tokens resource.
type AgentTokenService struct{ c *Client }

// Create mints an agent token, in the secret key's mode. The widget presents it on the agent
// socket and with the publishable key; mint a new one before ExpiresAt.
func (s *AgentTokenService) Create(ctx context.Context, p *AgentTokenCreateParams, opts ...CallOption) (*AgentToken, error) {
	return do[AgentToken](ctx, s.c, request{method: http.MethodPost, path: "/v1/agent_tokens", body: p, opts: opts})
}

// KeyType is an API key's type.
type KeyType string

// The key types.
const (
	KeySecret      KeyType = "secret"      // vp_sk_…: every endpoint, servers only
	KeyPublishable KeyType = "publishable" // vp_pk_…: agents' browsers, with an agent token
)

// Mode separates test and live objects: a key sees only its own mode's.
type Mode string

// The modes.
const (
	ModeTest Mode = "test"
	ModeLive Mode = "live"
)

// APIKey is an API key. Key, the key itself, is set only in the answer to the create or roll
// that made it: store it then; paybridge keeps only its hash.
type APIKey struct {
	APIResource
	Object    string    `json:"object"` // "api_key"
	ID        string    `json:"id"`     // key_…, not the key
	Type      KeyType   `json:"type"`
	Mode      Mode      `json:"mode"`
	Key       string    `json:"key,omitempty"`
	Last4     string    `json:"last4"`
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt is set when the key was rolled: the end of its grace window.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// RevokedAt is set when the key was revoked.
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
	// RolledTo is the id of the key that replaced this one.
	RolledTo string `json:"rolledTo,omitempty"`
}

// RolledAPIKey is the answer to a roll: the new key (with Key) and the old one, with its new
// ExpiresAt and RolledTo.
type RolledAPIKey struct {
	APIKey
	Rolled *APIKey `json:"rolled"`
}

// APIKeyList is the merchant's keys of the calling key's mode, oldest first, rolled and revoked
// ones included, never the keys themselves.
type APIKeyList struct {
	APIResource
	Object string    `json:"object"` // "list"
	Data   []*APIKey `json:"data"`
}

// APIKeyCreateParams say which key to make.
type APIKeyCreateParams struct {
	Type KeyType `json:"type"`
	// Mode must be the calling key's.
	Mode Mode `json:"mode"`
}

// APIKeyRollParams say how long the old key keeps working.
type APIKeyRollParams struct {
	// GraceSeconds is the old key's grace window, 0 to 2592000; 0 ends it at once. Nil takes
	// the server's default (24 h). A pointer, because 0 means something.
	GraceSeconds *int `json:"graceSeconds,omitempty"`
}

// APIKeyService is the API keys resource.
type APIKeyService struct{ c *Client }

// Create makes a key of the calling key's mode. Live keys need an approved merchant
// (merchant_not_onboarded otherwise).
func (s *APIKeyService) Create(ctx context.Context, p *APIKeyCreateParams, opts ...CallOption) (*APIKey, error) {
	return do[APIKey](ctx, s.c, request{method: http.MethodPost, path: "/api/merchants/api-keys", body: p, opts: opts})
}

// List reads the merchant's keys of the calling key's mode.
func (s *APIKeyService) List(ctx context.Context) (*APIKeyList, error) {
	return do[APIKeyList](ctx, s.c, request{method: http.MethodGet, path: "/api/merchants/api-keys"})
}

// Roll replaces the key with id by a new one of the same type and mode; the old one keeps
// working for the grace window. p may be nil.
func (s *APIKeyService) Roll(ctx context.Context, id string, p *APIKeyRollParams, opts ...CallOption) (*RolledAPIKey, error) {
	path, err := pathID("API key", id)
	if err != nil {
		return nil, err
	}
	return do[RolledAPIKey](ctx, s.c, request{method: http.MethodPost, path: "/api/merchants/api-keys/" + path + "/roll", body: p, opts: opts})
}

// Revoke ends the key with id at once. Revoking a revoked key changes nothing. paybridge takes
// no Idempotency-Key here, so a failed revoke is not retried by the client; call it again.
func (s *APIKeyService) Revoke(ctx context.Context, id string) (*APIKey, error) {
	path, err := pathID("API key", id)
	if err != nil {
		return nil, err
	}
	return do[APIKey](ctx, s.c, request{method: http.MethodDelete, path: "/api/merchants/api-keys/" + path})
}
