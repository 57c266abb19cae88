package bridge

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// MerchantStatus is where a merchant stands with onboarding.
type MerchantStatus string

// Merchant statuses.
const (
	MerchantActive          MerchantStatus = "active"
	MerchantPendingApproval MerchantStatus = "pending_approval"
	MerchantDenied          MerchantStatus = "denied"
	MerchantInactive        MerchantStatus = "inactive"
)

// Merchant is one integrator's business, as configured. It holds the VCC credentials paybridge
// uses on the merchant's behalf, so a Merchant value must never be logged or serialised whole.
type Merchant struct {
	ID             string
	Name           string
	Status         MerchantStatus
	VCC            VCCAccount
	AllowedOrigins []string // agent desktop origins allowed to use publishable keys
	Webhook        MerchantWebhook
	VCCWebhook     VCCWebhookAuth
	// FrameAnnouncement is what the merchant's PCI Pal flow posts to the agent desktop when its
	// page has loaded (a PostMessage step Vonage / PCI Pal configure); nil: none (live PCI Pal
	// posts nothing unless its flow is set up to).
	FrameAnnouncement *FrameAnnouncement
}

// FrameAnnouncement is a message the provider page posts to its parent window: the widget waits
// for one from Origin whose data holds every key of Data with the same value, and counts a frame
// that sends none within its timeout as refused.
type FrameAnnouncement struct {
	Origin string         `json:"origin"`
	Data   map[string]any `json:"data"`
}

// For returns the announcement to expect from a page at iframeURL: Origin defaults to the
// iframe URL's own origin. Nil when none is configured.
func (a *FrameAnnouncement) For(iframeURL string) *FrameAnnouncement {
	if a == nil {
		return nil
	}
	out := &FrameAnnouncement{Origin: a.Origin, Data: a.Data}
	if out.Origin == "" {
		if u, err := url.Parse(iframeURL); err == nil && u.Scheme != "" && u.Host != "" {
			out.Origin = u.Scheme + "://" + u.Host
		}
	}
	return out
}

// VCCAccount is how paybridge reaches VCC for one merchant.
type VCCAccount struct {
	TokenURL                      string
	APIBaseURL                    string
	ClientID                      string
	ClientSecret                  string // secret
	AccountConfigurationIDs       []int
	DefaultAccountConfigurationID *int // nil: none (VCC's own default); 0 is a real id
	SkipCallTransfer              bool // testing only: VCC starts the session without a live call
	// Gateway reads result data and writes paymentData for the merchant's PCI Pal flows; zero:
	// DefaultProfile. GatewayByConfiguration overrides it per account configuration (each maps
	// to a flow, and flows may use different gateways).
	Gateway                GatewayProfile
	GatewayByConfiguration map[int]GatewayProfile
}

// Profile returns the gateway profile of account configuration id (nil: VCC's default).
func (a VCCAccount) Profile(id *int) *GatewayProfile {
	if id != nil {
		if p, ok := a.GatewayByConfiguration[*id]; ok {
			return &p
		}
	}
	if a.Gateway.Name == "" {
		p := DefaultProfile()
		return &p
	}
	p := a.Gateway
	return &p
}

// Configured reports whether the account has everything needed to call VCC.
func (a VCCAccount) Configured() bool {
	return a.TokenURL != "" && a.APIBaseURL != "" && a.ClientID != "" && a.ClientSecret != ""
}

// AllowsConfiguration reports whether id is one of the account configurations the merchant
// allows. A merchant that lists none allows whatever VCC accepts.
func (a VCCAccount) AllowsConfiguration(id int) bool {
	return len(a.AccountConfigurationIDs) == 0 || slices.Contains(a.AccountConfigurationIDs, id)
}

// MerchantWebhook is where paybridge reports terminal session outcomes to the merchant.
type MerchantWebhook struct {
	URL            string
	Secret         string // whsec_..., secret
	PreviousSecret string // the secret being rolled away from, also signed with while set; secret
}

// VCCWebhookAuth holds the credentials VCC uses when it calls paybridge's inbound webhook: OAuth
// client credentials for POST /oauth/token, or an HMAC signing secret.
type VCCWebhookAuth struct {
	ClientID      string
	ClientSecret  string // secret
	SigningSecret string // secret
}

// AllowsOrigin reports whether origin may use the merchant's publishable keys.
func (m *Merchant) AllowsOrigin(origin string) bool {
	origin = strings.TrimSuffix(origin, "/")
	for _, o := range m.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// MerchantDirectory finds merchants by id. Merchants come from configuration.
type MerchantDirectory interface {
	// Merchant returns the merchant with id, or ErrNotFound.
	Merchant(ctx context.Context, id string) (*Merchant, error)
	// Merchants returns every merchant.
	Merchants(ctx context.Context) ([]*Merchant, error)
}

// StaticMerchants is a MerchantDirectory over a fixed list.
type StaticMerchants []*Merchant

// Merchant implements MerchantDirectory.
func (s StaticMerchants) Merchant(_ context.Context, id string) (*Merchant, error) {
	for _, m := range s {
		if m.ID == id {
			return m, nil
		}
	}
	return nil, ErrNotFound
}

// Merchants implements MerchantDirectory.
func (s StaticMerchants) Merchants(context.Context) ([]*Merchant, error) { return s, nil }

// ReloadableMerchants is a MerchantDirectory whose merchants a configuration reload replaces
// while paybridge runs. As a MerchantDirectory it answers the merchants configured now: a
// removed merchant's keys stop working, its origins stop being allowed, it gets no new session.
//
// Sessions already open for a removed merchant must still settle: VCC cannot end a provider
// session, so the customer may be paying on its page right now. Settling is the directory for
// that work (polling, restarts, expiry, the outcome webhook): it also answers removed merchants,
// as last configured, until the process ends.
type ReloadableMerchants struct {
	mu      sync.RWMutex
	current StaticMerchants
	removed map[string]*Merchant // by id: as last configured, for sessions still settling
}

// NewReloadableMerchants returns a directory holding list.
func NewReloadableMerchants(list []*Merchant) *ReloadableMerchants {
	return &ReloadableMerchants{current: slices.Clone(list), removed: make(map[string]*Merchant)}
}

// Merchant implements MerchantDirectory: configured merchants only.
func (r *ReloadableMerchants) Merchant(ctx context.Context, id string) (*Merchant, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.current.Merchant(ctx, id)
}

// Merchants implements MerchantDirectory: configured merchants only.
func (r *ReloadableMerchants) Merchants(context.Context) ([]*Merchant, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.current), nil
}

// Replace makes list the configured merchants. One missing from list is kept for Settling; one
// that comes back is configured again, with its new configuration. The Merchant values handed
// out before stay as they were: callers holding one finish with it.
func (r *ReloadableMerchants) Replace(list []*Merchant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.current {
		if !slices.ContainsFunc(list, func(n *Merchant) bool { return n.ID == m.ID }) {
			r.removed[m.ID] = m
		}
	}
	for _, m := range list {
		delete(r.removed, m.ID)
	}
	r.current = slices.Clone(list)
}

// Settling returns the directory for work on sessions that already exist: it answers every
// configured merchant and, after them, every removed one as last configured. Its Merchants
// lists the configured ones only.
func (r *ReloadableMerchants) Settling() MerchantDirectory { return settlingMerchants{r} }

// settlingMerchants is ReloadableMerchants.Settling.
type settlingMerchants struct{ r *ReloadableMerchants }

// Merchant implements MerchantDirectory.
func (s settlingMerchants) Merchant(ctx context.Context, id string) (*Merchant, error) {
	s.r.mu.RLock()
	defer s.r.mu.RUnlock()
	if m, err := s.r.current.Merchant(ctx, id); err == nil {
		return m, nil
	}
	if m := s.r.removed[id]; m != nil {
		return m, nil
	}
	return nil, ErrNotFound
}

// Merchants implements MerchantDirectory.
func (s settlingMerchants) Merchants(ctx context.Context) ([]*Merchant, error) {
	return s.r.Merchants(ctx)
}
