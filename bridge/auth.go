package bridge

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"
)

// Defaults of KeyServiceOptions.
const (
	DefaultRollGrace     = 24 * time.Hour
	DefaultAgentTokenTTL = time.Hour
	MaxAgentTokenTTL     = 24 * time.Hour
)

// KeyServiceOptions are the dependencies and settings of a KeyService.
type KeyServiceOptions struct {
	Store            KeyStore
	Merchants        MerchantDirectory
	Keyring          *Keyring
	Clock            Clock
	RollGrace        time.Duration // how long a rolled key keeps working (24h)
	AgentTokenTTL    time.Duration // default agent token lifetime (1h)
	MaxAgentTokenTTL time.Duration // longest agent token a caller may ask for (24h)
}

// KeyService authenticates API keys and agent tokens and runs the key lifecycle.
type KeyService struct {
	store     KeyStore
	merchants MerchantDirectory
	keyring   *Keyring
	clock     Clock
	grace     time.Duration
	tokenTTL  time.Duration
	maxTTL    time.Duration
}

// NewKeyService returns a KeyService.
func NewKeyService(opts KeyServiceOptions) *KeyService {
	k := &KeyService{store: opts.Store, merchants: opts.Merchants, keyring: opts.Keyring, clock: opts.Clock,
		grace: opts.RollGrace, tokenTTL: orDefault(opts.AgentTokenTTL, DefaultAgentTokenTTL),
		maxTTL: orDefault(opts.MaxAgentTokenTTL, MaxAgentTokenTTL)}
	if k.clock == nil {
		k.clock = SystemClock{}
	}
	if k.grace <= 0 {
		k.grace = DefaultRollGrace
	}
	return k
}

// Principal is an authenticated caller: a live key of an active merchant.
type Principal struct {
	Key      *APIKey
	Merchant *Merchant
}

// Scope returns the sessions the principal's key may see (every agent).
func (p *Principal) Scope() Scope { return Scope{MerchantID: p.Merchant.ID, Mode: p.Key.Mode} }

// CanManageKeys returns nil if p's key may create, roll or revoke keys, or auth_key_expired if
// the key has been rolled. A rolled key keeps working through its grace window so callers can
// switch over, but only for ordinary calls: if it could still mint keys, whoever holds a leaked
// key that was rolled because of the leak could mint a fresh, unexpiring one within the window.
func (p *Principal) CanManageKeys() error {
	if p.Key.RolledTo == "" && p.Key.ExpiresAt.IsZero() {
		return nil
	}
	fix := "Manage keys with the key that replaced this one"
	if p.Key.RolledTo != "" {
		fix += " (" + p.Key.RolledTo + ")"
	}
	return Errorf(CodeAuthKeyExpired, "This API key was rolled; it works until its grace window ends but can no longer create, roll or revoke keys.").
		WithFix(fix + "; a rolled key only serves ordinary calls until its grace window ends.")
}

// Authenticate resolves a presented API key. Malformed or unknown → auth_invalid_key; rolled past
// its grace or revoked → auth_key_expired; an unreadable key store → auth_service_unavailable; an
// inactive merchant → auth_merchant_inactive.
func (k *KeyService) Authenticate(ctx context.Context, presented string) (*Principal, error) {
	typ, mode, ok := ParseAPIKey(presented)
	if !ok {
		return nil, Errorf(CodeAuthInvalidKey, "The API key is malformed.")
	}
	hash := HashSecret(presented)
	key, err := k.store.APIKeyByHash(ctx, hash)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, Errorf(CodeAuthInvalidKey, "The API key does not exist.")
	case err != nil:
		return nil, Errorf(CodeAuthServiceUnavailable, "Keys cannot be checked right now.").WithCause(err)
	}
	// The lookup was by hash; compare again in constant time so no code path depends on how
	// much of a guess matched.
	if subtle.ConstantTimeCompare([]byte(key.Hash), []byte(hash)) != 1 || key.Type != typ || key.Mode != mode {
		return nil, Errorf(CodeAuthInvalidKey, "The API key does not exist.")
	}
	if err := key.Usable(k.clock.Now()); err != nil {
		return nil, err
	}
	m, err := k.merchants.Merchant(ctx, key.MerchantID)
	if errors.Is(err, ErrNotFound) {
		return nil, Errorf(CodeAuthMerchantInactive, "The merchant of this key is no longer configured.")
	}
	if err != nil {
		return nil, Errorf(CodeAuthServiceUnavailable, "Merchants cannot be checked right now.").WithCause(err)
	}
	if m.Status == MerchantInactive {
		return nil, Errorf(CodeAuthMerchantInactive, "Merchant %q is inactive.", m.ID)
	}
	return &Principal{Key: key, Merchant: m}, nil
}

// CreateKey makes a key for merchantID and returns its plaintext (shown once) and stored form.
// Live keys need an approved (active) merchant: merchant_not_onboarded otherwise.
func (k *KeyService) CreateKey(ctx context.Context, merchantID string, typ KeyType, mode Mode) (string, *APIKey, error) {
	if !typ.Valid() {
		return "", nil, invalid("type", "type must be %q or %q", KeySecret, KeyPublishable)
	}
	if !mode.Valid() {
		return "", nil, invalid("mode", "mode must be %q or %q", ModeTest, ModeLive)
	}
	m, err := k.merchants.Merchant(ctx, merchantID)
	if errors.Is(err, ErrNotFound) {
		return "", nil, Errorf(CodeMerchantNotConfigured, "Merchant %q is not configured on this paybridge.", merchantID)
	}
	if err != nil {
		return "", nil, err
	}
	switch {
	case m.Status == MerchantInactive:
		return "", nil, Errorf(CodeAuthMerchantInactive, "Merchant %q is inactive.", m.ID)
	case mode == ModeLive && (m.Status == MerchantPendingApproval || m.Status == MerchantDenied):
		return "", nil, Errorf(CodeMerchantNotOnboarded, "Live keys cannot be created while merchant %q is %s.", m.ID, m.Status)
	}
	plain, key := NewAPIKey(m.ID, typ, mode, k.clock.Now())
	if err := k.store.CreateAPIKey(ctx, key); err != nil {
		return "", nil, err
	}
	return plain, key, nil
}

// RollKey replaces key id of merchantID with a new key of the same type and mode; the old one
// keeps working for grace (0: the configured default), then answers auth_key_expired.
func (k *KeyService) RollKey(ctx context.Context, merchantID, id string, grace time.Duration) (string, *APIKey, error) {
	old, err := k.ownKey(ctx, merchantID, id)
	if err != nil {
		return "", nil, err
	}
	if err := old.Usable(k.clock.Now()); err != nil {
		return "", nil, invalid("id", "API key %s can no longer be used, so it cannot be rolled; create a new key instead.", id)
	}
	if grace <= 0 {
		grace = k.grace
	}
	plain, key, err := k.CreateKey(ctx, merchantID, old.Type, old.Mode)
	if err != nil {
		return "", nil, err
	}
	end := k.clock.Now().Add(grace).UTC()
	if _, err := k.store.UpdateAPIKey(ctx, id, func(x *APIKey) error {
		if x.ExpiresAt.IsZero() || end.Before(x.ExpiresAt) {
			x.ExpiresAt = end
		}
		x.RolledTo = key.ID
		return nil
	}); err != nil {
		return "", nil, err
	}
	return plain, key, nil
}

// RevokeKey ends key id of merchantID at once.
func (k *KeyService) RevokeKey(ctx context.Context, merchantID, id string) (*APIKey, error) {
	if _, err := k.ownKey(ctx, merchantID, id); err != nil {
		return nil, err
	}
	now := k.clock.Now().UTC()
	return k.store.UpdateAPIKey(ctx, id, func(x *APIKey) error {
		if x.RevokedAt.IsZero() {
			x.RevokedAt = now
		}
		return nil
	})
}

// Key returns key id of merchantID, or validation_error if the merchant has no such key.
func (k *KeyService) Key(ctx context.Context, merchantID, id string) (*APIKey, error) {
	return k.ownKey(ctx, merchantID, id)
}

// ListKeys returns merchantID's keys of mode, oldest first.
func (k *KeyService) ListKeys(ctx context.Context, merchantID string, mode Mode) ([]*APIKey, error) {
	all, err := k.store.ListAPIKeys(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, key := range all {
		if key.Mode == mode {
			out = append(out, key)
		}
	}
	return out, nil
}

func (k *KeyService) ownKey(ctx context.Context, merchantID, id string) (*APIKey, error) {
	key, err := k.store.APIKey(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && key.MerchantID != merchantID) {
		return nil, Errorf(CodeValidationError, "No API key %q belongs to this merchant.", id).WithParam("id")
	}
	return key, err
}

// IssueAgentToken mints a token for agentID of p's merchant, in p's key's mode, for ttl (0: the
// default; at most the maximum).
func (k *KeyService) IssueAgentToken(p *Principal, agentID string, ttl time.Duration) (string, time.Time, error) {
	if agentID == "" {
		return "", time.Time{}, missing("agentId")
	}
	if len(agentID) > maxAgentID || !printable(agentID) {
		return "", time.Time{}, invalid("agentId", "agentId must be 1 to %d printable characters", maxAgentID)
	}
	if ttl == 0 {
		ttl = k.tokenTTL
	}
	if ttl < time.Minute || ttl > k.maxTTL {
		return "", time.Time{}, invalid("ttlSeconds", "ttlSeconds must be from 60 to %d", int(k.maxTTL.Seconds()))
	}
	exp := k.clock.Now().Add(ttl).Truncate(time.Second).UTC()
	return k.keyring.IssueAgentToken(p.Merchant.ID, p.Key.Mode, agentID, exp), exp, nil
}

// VerifyAgentToken checks an agent token presented with p's publishable key: it must be valid,
// unexpired, of the same merchant, and of the same mode (auth_key_type_forbidden otherwise).
func (k *KeyService) VerifyAgentToken(p *Principal, token string) (*AgentToken, error) {
	t, err := k.keyring.VerifyAgentToken(token, k.clock.Now())
	if err != nil {
		return nil, err
	}
	if t.MerchantID != p.Merchant.ID {
		return nil, Errorf(CodeAuthInvalidKey, "The agent token was not issued for this merchant.")
	}
	if t.Mode != p.Key.Mode {
		return nil, Errorf(CodeAuthKeyTypeForbidden, "A %s agent token cannot be used with a %s key.", t.Mode, p.Key.Mode).
			WithFix("Use an agent token minted with a secret key of the same mode (test or live) as the publishable key.")
	}
	return t, nil
}
