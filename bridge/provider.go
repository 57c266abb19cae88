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
	AccountConfigurationID int // 0: let VCC use the account's default
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

// Payment decisions in VCC's paymentResultData.
const (
	DecisionAccept = "ACCEPT"
	DecisionReject = "REJECT"
	DecisionError  = "ERROR"
)

// ProviderStatus is VCC's view of one provider session.
type ProviderStatus struct {
	SessionGUID         string
	ProviderSessionGUID string
	State               string
	LastUpdatedOn       time.Time
	Decision            string // empty until a payment result exists
	ReasonCode          string
	TransactionID       string // paymentResultData.requestID
	Amount              int64  // minor units, as VCC reports them; 0 when absent or unreadable
	Currency            string
}

// CaptureInProgress reports whether the customer is keying a card right now, when no restart
// may happen.
func (p *ProviderStatus) CaptureInProgress() bool { return p.State == StateInProgress }

// EndedWithoutPayment reports whether the provider session is over and no payment result came of
// it, so a new attempt is needed.
func (p *ProviderStatus) EndedWithoutPayment() bool {
	switch p.State {
	case StateExpired, StateFailed, StateCancelled, StateFinished:
		return p.Decision == ""
	}
	return false
}

// Ended reports whether the provider session is over, with a payment result or without one.
func (p *ProviderStatus) Ended() bool { return p.Completed() || p.EndedWithoutPayment() }

// Completed reports whether a payment result is in. Any decision counts, whatever the state
// says: only Finished is documented, and a result is what matters.
func (p *ProviderStatus) Completed() bool { return p.Decision != "" }
