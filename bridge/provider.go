package bridge

import (
	"context"
	"time"
)

// PaymentProvider starts and inspects provider sessions for a merchant. Package vcc implements
// it against VCC's Payment API. Errors are *Error values with the codes of DESIGN section 5;
// SessionStatus wraps ErrNotFound when VCC no longer knows the session (purged).
type PaymentProvider interface {
	CreateSession(ctx context.Context, m *Merchant, req *ProviderRequest) (*ProviderSession, error)
	SessionStatus(ctx context.Context, m *Merchant, sessionGUID string) (*ProviderStatus, error)
}

// ProviderRequest is what paybridge asks VCC to start.
type ProviderRequest struct {
	Channel                Channel
	AgentID                string
	AccountConfigurationID *int // nil: let VCC use the account's default; 0 is a real id
	Amount                 int64
	Currency               string
	Country                string
	Reference              string
	Customer               Customer
	SkipCallTransfer       bool
}

// ProviderSession is VCC's answer to a create: the iframe and its tokens (secrets).
type ProviderSession struct {
	SessionGUID       string
	IframeURL         string
	AgentAccessToken  string
	AgentRefreshToken string
	CustomerURL       string // digital sessions
}

// VCC session states. Only Finished is documented; the others are inferred, and any state not
// listed here is treated as still running.
const (
	StateCreated    = "Created"
	StateInProgress = "InProgress"
	StateFinished   = "Finished"
	StateFailed     = "Failed"
	StateExpired    = "Expired"
	StateCancelled  = "Cancelled"
)

// Payment decisions: paybridge's public vocabulary for a result (Result.Decision), whatever the
// gateway's own words (see GatewayProfile).
const (
	DecisionAccept  = "ACCEPT"
	DecisionReject  = "REJECT"
	DecisionError   = "ERROR"
	DecisionUnknown = "UNKNOWN" // result data the merchant's profile cannot read
)

// ProviderStatus is VCC's view of one provider session.
type ProviderStatus struct {
	SessionGUID         string
	ProviderSessionGUID string
	State               string
	LastUpdatedOn       time.Time
	// Result is paymentResultData as VCC sent it (every value as a string): its keys depend on
	// the gateway, so it is read through the merchant's GatewayProfile. Empty until a result exists.
	Result map[string]string
	// Purged records that VCC no longer knows the session (404): it purges a session 15 minutes
	// after it ends, result and all. State is then StateExpired, since the session is over, but
	// whether it was paid can no longer be read.
	Purged bool
}

// CaptureInProgress reports whether the customer is keying a card right now, when no restart
// may happen.
func (p *ProviderStatus) CaptureInProgress() bool {
	return p.State == StateInProgress && !p.HasResult()
}

// HasResult reports whether VCC holds result data for the session, whatever its keys and whatever
// the state says: only Finished is documented, and any result may be a payment. A provider
// session with a result is never restarted.
func (p *ProviderStatus) HasResult() bool { return len(p.Result) > 0 }

// EndedWithoutPayment reports whether the provider session is over and no result data came of
// it, so a new attempt is needed.
func (p *ProviderStatus) EndedWithoutPayment() bool {
	switch p.State {
	case StateExpired, StateFailed, StateCancelled, StateFinished:
		return !p.HasResult()
	}
	return false
}

// Ended reports whether the provider session is over, with a result or without one.
func (p *ProviderStatus) Ended() bool { return p.HasResult() || p.EndedWithoutPayment() }
