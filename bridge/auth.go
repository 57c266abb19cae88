package bridge

import (
	"context"
	"crypto/subtle"
	"errors"
	"sync"
	"sync/atomic"
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

	watchMu  sync.Mutex
	watchers map[*watcherEntry]struct{}

	// revokeMu makes "is this the last active secret key?" and the revocation one step within
	// this process, so two revocations at once cannot each leave the other as the last; a store
	// that several nodes share supplies a lock across them instead (see lockKeys).
	revokeMu sync.Mutex
	// lastUse is when each key last authenticated on this process (key id → *atomic.Int64 of
	// unix nanoseconds): kept in memory, since a durable write per request would cost an fsync.
	lastUse sync.Map
}

// CredentialWatcher is told when credentials end, so that what they opened (agent sockets) ends
// at once rather than at its next use. Calls come synchronously from the request that ended the
// credential, after it is durable: a watcher must not block.
type CredentialWatcher interface {
	// KeyEnds says key stops working at at: now (or before) for a revocation, the end of its
	// grace window for a roll. key is the stored key after the change.
	KeyEnds(key *APIKey, at time.Time)
	// AgentTokensRevoked says every token of rec.Agent with an epoch below rec.Epoch is void.
	AgentTokensRevoked(rec *AgentTokenRevocation)
}

// watcherEntry makes each Watch call its own registration, whatever the watcher's type.
type watcherEntry struct{ w CredentialWatcher }

// Watch registers w for the credential events of this KeyService until stop is called.
func (k *KeyService) Watch(w CredentialWatcher) (stop func()) {
	e := &watcherEntry{w: w}
	k.watchMu.Lock()
	if k.watchers == nil {
		k.watchers = make(map[*watcherEntry]struct{})
	}
	k.watchers[e] = struct{}{}
	k.watchMu.Unlock()
	return func() {
		k.watchMu.Lock()
		delete(k.watchers, e)
		k.watchMu.Unlock()
	}
}

// notify calls fn for every registered watcher, outside the lock.
func (k *KeyService) notify(fn func(CredentialWatcher)) {
	k.watchMu.Lock()
	list := make([]CredentialWatcher, 0, len(k.watchers))
	for e := range k.watchers {
		list = append(list, e.w)
	}
	k.watchMu.Unlock()
	for _, w := range list {
		fn(w)
	}
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
func (p *Principal) Scope() AgentRef { return AgentRef{MerchantID: p.Merchant.ID, Mode: p.Key.Mode} }

// CanManageKeys returns nil if p's key may create, roll or revoke keys, or auth_key_expired if
// the key has been rolled, saying so and when. A rolled key keeps working through its grace
// window so callers can switch over, but only for ordinary calls: if it could still mint keys,
// whoever holds a leaked key that was rolled because of the leak could mint a fresh, unexpiring
// one within the window.
func (p *Principal) CanManageKeys() error {
	key := p.Key
	if key.RolledTo == "" && key.ExpiresAt.IsZero() {
		return nil
	}
	until := ""
	if !key.ExpiresAt.IsZero() {
		until = " until " + stamp(key.ExpiresAt)
	}
	return Errorf(CodeAuthKeyExpired, "This API key was %s; it serves ordinary calls%s but can no longer create, roll or revoke keys.", key.rolledWhen(), until).
		WithFix(key.successorFix("Manage keys with the key that replaced this one") + " A rolled key only serves ordinary calls until its grace window ends.")
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
	k.used(key.ID)
	return &Principal{Key: key, Merchant: m}, nil
}

// used records that key id authenticated now.
func (k *KeyService) used(id string) {
	v, ok := k.lastUse.Load(id)
	if !ok {
		v, _ = k.lastUse.LoadOrStore(id, new(atomic.Int64))
	}
	v.(*atomic.Int64).Store(k.clock.Now().UnixNano())
}

// LastUsed returns when key id last authenticated on this process since it started, if it has.
func (k *KeyService) LastUsed(id string) (time.Time, bool) {
	v, ok := k.lastUse.Load(id)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, v.(*atomic.Int64).Load()).UTC(), true
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
	now := k.clock.Now().UTC()
	end := now.Add(grace)
	rolled, err := k.store.UpdateAPIKey(ctx, id, func(x *APIKey) error {
		if x.ExpiresAt.IsZero() || end.Before(x.ExpiresAt) {
			x.ExpiresAt = end
		}
		if x.RolledAt.IsZero() {
			x.RolledAt = now
		}
		x.RolledTo = key.ID
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	k.notify(func(w CredentialWatcher) { w.KeyEnds(rolled, rolled.ExpiresAt) })
	return plain, key, nil
}

// RevokeKey ends key id of merchantID at once, as the operator asks it (paybridge keys revoke).
// The last active secret key of a merchant and mode cannot be revoked: nothing could manage that
// merchant's keys through the API afterwards; roll it, or create another first.
func (k *KeyService) RevokeKey(ctx context.Context, merchantID, id string) (*APIKey, error) {
	return k.revoke(ctx, nil, merchantID, id)
}

// RevokeKeyAs ends key id of p's merchant at once, as p asks it through the API: besides
// RevokeKey's rule, the key must be of p's mode and must not be p's own key.
func (k *KeyService) RevokeKeyAs(ctx context.Context, p *Principal, id string) (*APIKey, error) {
	return k.revoke(ctx, p, p.Merchant.ID, id)
}

// revoke is every revocation: by is the API caller, nil for the operator.
func (k *KeyService) revoke(ctx context.Context, by *Principal, merchantID, id string) (*APIKey, error) {
	key, err := k.ownKey(ctx, merchantID, id)
	if err != nil {
		return nil, err
	}
	if by != nil {
		if err := by.CanManageKeys(); err != nil {
			return nil, err
		}
		if err := sameMode(by, key.Mode); err != nil {
			return nil, err
		}
		if key.ID == by.Key.ID {
			return nil, invalid("id", "An API key cannot revoke itself: this request is signed with key %s.", key.ID).
				WithFix("Revoke it with another secret key of this merchant and mode, or roll it (POST /api/merchants/api-keys/" + key.ID + "/roll with {\"graceSeconds\": 0} ends it at once and answers its replacement).")
		}
	}
	unlock, err := k.lockKeys(ctx, key.MerchantID, key.Mode)
	if err != nil {
		return nil, err
	}
	defer unlock()
	now := k.clock.Now().UTC()
	if err := k.notLastManager(ctx, key, now); err != nil {
		return nil, err
	}
	revoked, err := k.store.UpdateAPIKey(ctx, id, func(x *APIKey) error {
		if x.RevokedAt.IsZero() {
			x.RevokedAt = now
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	k.notify(func(w CredentialWatcher) { w.KeyEnds(revoked, revoked.RevokedAt) })
	return revoked, nil
}

// lockKeys serialises revocations of merchantID's keys of mode, so that "is this the last
// active secret key?" and the revocation are one step: across nodes with the store's own lock
// when it has one (pgstore's advisory locks), else within this process.
func (k *KeyService) lockKeys(ctx context.Context, merchantID string, mode Mode) (func(), error) {
	if l, ok := k.store.(Locker); ok {
		// A name no session id can take (those start vp_cs_).
		return l.LockSession(ctx, "keys\x00"+merchantID+"\x00"+string(mode))
	}
	k.revokeMu.Lock()
	return k.revokeMu.Unlock, nil
}

// notLastManager refuses to revoke key if it is the last active secret key of its merchant and
// mode: the one that can still create, roll and revoke keys through the API.
func (k *KeyService) notLastManager(ctx context.Context, key *APIKey, now time.Time) error {
	if key.Type != KeySecret || key.State(now) != KeyActive {
		return nil
	}
	all, err := k.store.ListAPIKeys(ctx, key.MerchantID)
	if err != nil {
		return err
	}
	for _, other := range all {
		if other.ID != key.ID && other.Type == KeySecret && other.Mode == key.Mode && other.State(now) == KeyActive {
			return nil
		}
	}
	return invalid("id", "API key %s is the last active %s secret key of merchant %q: without it no key could manage this merchant's %s keys.", key.ID, key.Mode, key.MerchantID, key.Mode).
		WithFix("Roll it instead (POST /api/merchants/api-keys/" + key.ID + "/roll; {\"graceSeconds\": 0} ends it at once), or create another " + string(key.Mode) + " secret key first (paybridge keys create, or POST /api/merchants/api-keys) and then revoke this one.")
}

// CreateKeyAs makes a key for p's merchant as p asks it through the API. A key may manage only
// keys of its own mode, except that a merchant not yet onboarded is told so
// (merchant_not_onboarded) when any of its keys asks for a live one: that is the answer it can
// act on.
func (k *KeyService) CreateKeyAs(ctx context.Context, p *Principal, typ KeyType, mode Mode) (string, *APIKey, error) {
	if err := p.CanManageKeys(); err != nil {
		return "", nil, err
	}
	if mode == ModeLive && (p.Merchant.Status == MerchantPendingApproval || p.Merchant.Status == MerchantDenied) {
		return "", nil, Errorf(CodeMerchantNotOnboarded, "Live keys cannot be created while merchant %q is %s.", p.Merchant.ID, p.Merchant.Status)
	}
	if mode.Valid() {
		if err := sameMode(p, mode); err != nil {
			return "", nil, err
		}
	}
	return k.CreateKey(ctx, p.Merchant.ID, typ, mode)
}

// RollKeyAs rolls key id of p's merchant as p asks it through the API (see RollKey); the key must
// be of p's mode. It returns the new key's plaintext, the new key and the rolled one.
func (k *KeyService) RollKeyAs(ctx context.Context, p *Principal, id string, grace time.Duration) (string, *APIKey, *APIKey, error) {
	if err := p.CanManageKeys(); err != nil {
		return "", nil, nil, err
	}
	old, err := k.ownKey(ctx, p.Merchant.ID, id)
	if err != nil {
		return "", nil, nil, err
	}
	if err := sameMode(p, old.Mode); err != nil {
		return "", nil, nil, err
	}
	plain, key, err := k.RollKey(ctx, p.Merchant.ID, id, grace)
	if err != nil {
		return "", nil, nil, err
	}
	rolled, err := k.ownKey(ctx, p.Merchant.ID, id)
	if err != nil {
		return "", nil, nil, err
	}
	return plain, key, rolled, nil
}

// sameMode refuses a key managing keys of the other mode: test and live are separate worlds.
func sameMode(p *Principal, mode Mode) error {
	if mode != p.Key.Mode {
		return Errorf(CodeAuthKeyTypeForbidden, "A %s key cannot manage %s keys.", p.Key.Mode, mode).
			WithFix("Use a vp_sk_" + string(mode) + "_* key to manage " + string(mode) + " keys.")
	}
	return nil
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
// default; at most the maximum). The token names p's key and the agent's current token epoch, so
// revoking either ends it.
func (k *KeyService) IssueAgentToken(ctx context.Context, p *Principal, agentID string, ttl time.Duration) (string, time.Time, error) {
	if err := validAgentID(agentID); err != nil {
		return "", time.Time{}, err
	}
	if ttl == 0 {
		ttl = k.tokenTTL
	}
	if ttl < time.Minute || ttl > k.maxTTL {
		return "", time.Time{}, invalid("ttlSeconds", "ttlSeconds must be from 60 to %d", int(k.maxTTL.Seconds()))
	}
	agent := AgentRef{MerchantID: p.Merchant.ID, Mode: p.Key.Mode, AgentID: agentID}
	epoch, err := k.store.AgentTokenEpoch(ctx, agent)
	if err != nil {
		return "", time.Time{}, Errorf(CodeAuthServiceUnavailable, "Agent tokens cannot be issued right now.").WithCause(err)
	}
	exp := k.clock.Now().Add(ttl).Truncate(time.Second).UTC()
	token := k.keyring.IssueAgentToken(AgentToken{MerchantID: agent.MerchantID, Mode: agent.Mode, AgentID: agentID,
		ExpiresAt: exp, KeyID: p.Key.ID, Epoch: epoch})
	return token, exp, nil
}

// RevokeAgentTokens voids every token of agentID of p's merchant and mode minted until now,
// durably: the agent's token epoch moves on in the key store, which every node reads. Watchers
// (the open sockets) are told at once.
func (k *KeyService) RevokeAgentTokens(ctx context.Context, p *Principal, agentID string) (*AgentTokenRevocation, error) {
	if err := validAgentID(agentID); err != nil {
		return nil, err
	}
	agent := AgentRef{MerchantID: p.Merchant.ID, Mode: p.Key.Mode, AgentID: agentID}
	rec, err := k.store.RevokeAgentTokens(ctx, agent, k.clock.Now())
	if err != nil {
		return nil, err
	}
	k.notify(func(w CredentialWatcher) { w.AgentTokensRevoked(rec) })
	return rec, nil
}

func validAgentID(agentID string) error {
	if agentID == "" {
		return missing("agentId")
	}
	if len(agentID) > maxAgentID || !printable(agentID) {
		return invalid("agentId", "agentId must be 1 to %d printable characters", maxAgentID)
	}
	return nil
}

// VerifyAgentToken checks an agent token presented with p's publishable key: it must be valid,
// unexpired, of the same merchant, and of the same mode (auth_key_type_forbidden otherwise); the
// secret key that minted it must still work and the agent's tokens must not have been revoked
// since (auth_key_expired otherwise). The token returned carries its minting key (MintedBy).
func (k *KeyService) VerifyAgentToken(ctx context.Context, p *Principal, token string) (*AgentToken, error) {
	now := k.clock.Now()
	t, err := k.keyring.VerifyAgentToken(token, now)
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
	minter, err := k.store.APIKey(ctx, t.KeyID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, Errorf(CodeAuthInvalidKey, "The agent token names a key that does not exist.")
	case err != nil:
		return nil, Errorf(CodeAuthServiceUnavailable, "Agent tokens cannot be checked right now.").WithCause(err)
	}
	// The signature makes these hold for every token paybridge minted; checked anyway, since the
	// key is what the token's authority comes from.
	if minter.MerchantID != t.MerchantID || minter.Mode != t.Mode || minter.Type != KeySecret {
		return nil, Errorf(CodeAuthInvalidKey, "The agent token names a key that cannot mint it.")
	}
	if err := MintingKeyUsable(minter, now); err != nil {
		return nil, err
	}
	epoch, err := k.store.AgentTokenEpoch(ctx, AgentRef{MerchantID: t.MerchantID, Mode: t.Mode, AgentID: t.AgentID})
	if err != nil {
		return nil, Errorf(CodeAuthServiceUnavailable, "Agent tokens cannot be checked right now.").WithCause(err)
	}
	if t.Epoch < epoch {
		return nil, RevokedAgentTokenError()
	}
	t.MintedBy = minter
	return t, nil
}

// MintingKeyUsable returns nil if an agent token minted by key may be used at now, or the
// auth_key_expired error saying why not: the key was revoked, or rolled and its grace is over.
func MintingKeyUsable(key *APIKey, now time.Time) error {
	if key.Usable(now) == nil {
		return nil
	}
	what := "was rolled and its grace window has ended"
	if !key.RevokedAt.IsZero() && !now.Before(key.RevokedAt) {
		what = "was revoked"
	}
	return Errorf(CodeAuthKeyExpired, "The secret key that minted this agent token %s.", what).
		WithFix("Mint a fresh agent token with a working secret key (POST /v1/agent_tokens); the widget asks its host page for one when this happens.")
}

// RevokedAgentTokenError returns the auth_key_expired error of a token voided by
// DELETE /v1/agent_tokens/{agentId}.
func RevokedAgentTokenError() error {
	return Errorf(CodeAuthKeyExpired, "The agent's tokens were revoked.").
		WithFix("Mint a fresh agent token with POST /v1/agent_tokens; tokens minted after the revocation work.")
}
