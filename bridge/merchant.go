package bridge

import (
	"context"
	"slices"
	"strings"
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
}

// VCCAccount is how paybridge reaches VCC for one merchant.
type VCCAccount struct {
	TokenURL                      string
	APIBaseURL                    string
	ClientID                      string
	ClientSecret                  string // secret
	AccountConfigurationIDs       []int
	DefaultAccountConfigurationID int
	SkipCallTransfer              bool // testing only: VCC starts the session without a live call
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
