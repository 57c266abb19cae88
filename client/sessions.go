package client

import (
	"context"
	"iter"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SessionStatus is where a session is: pending → active → succeeded | failed; pending or active
// → expired | cancelled. Succeeded, failed, expired and cancelled are final (a late payment can
// still turn a cancelled, expired or failed session succeeded, with Result.Late).
type SessionStatus string

// The session statuses.
const (
	StatusPending   SessionStatus = "pending"
	StatusActive    SessionStatus = "active"
	StatusSucceeded SessionStatus = "succeeded"
	StatusFailed    SessionStatus = "failed"
	StatusExpired   SessionStatus = "expired"
	StatusCancelled SessionStatus = "cancelled"
)

// Channel is how the customer pays.
type Channel string

// The channels.
const (
	// ChannelAgentAssist: the customer keys the card on the phone while the agent watches the
	// masked capture page. The default.
	ChannelAgentAssist Channel = "agent_assist"
	// ChannelDigital: the customer pays through a link.
	ChannelDigital Channel = "digital"
)

// Decision is the gateway's verdict in paybridge's words.
type Decision string

// The decisions.
const (
	DecisionAccept Decision = "ACCEPT" // approved
	DecisionReject Decision = "REJECT" // declined
	DecisionError  Decision = "ERROR"
	// DecisionUnknown: result data the merchant's gateway profile cannot read; it may be a
	// payment (see SessionResult.Data).
	DecisionUnknown Decision = "UNKNOWN"
)

// Session is a payment session. It never holds provider tokens or card data: those reach only
// the agent's socket.
type Session struct {
	APIResource
	ID       string        `json:"id"`
	Object   string        `json:"object"` // "session"
	Status   SessionStatus `json:"status"`
	Livemode bool          `json:"livemode"`
	AgentID  string        `json:"agentId"`
	// Amount is in minor units of Currency: 1240 GBP is £12.40.
	Amount   int64   `json:"amount"`
	Currency string  `json:"currency"`          // ISO 4217, upper case
	Country  string  `json:"country,omitempty"` // ISO 3166-1 alpha-2, upper case
	Channel  Channel `json:"channel"`
	// AccountConfigurationID is the VCC account configuration used; nil when none was named.
	AccountConfigurationID *int   `json:"accountConfigurationId,omitempty"`
	Reference              string `json:"reference,omitempty"`
	// Attempt counts the provider sessions started: 1 after create, one more per restart; 0 if
	// the first VCC call failed.
	Attempt   int               `json:"attempt"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
	ExpiresAt time.Time         `json:"expiresAt"`
	Metadata  map[string]string `json:"metadata"`
	// Result is the outcome VCC reported, once there is one.
	Result *SessionResult `json:"result,omitempty"`
	// Failure says why a failed session failed.
	Failure *SessionFailure `json:"failure,omitempty"`
	// VCC names the current attempt's VCC and provider sessions, for reconciliation.
	VCC *VCCReference `json:"vcc,omitempty"`
}

// SessionResult is the outcome VCC reported, read through the merchant's gateway profile.
type SessionResult struct {
	Decision Decision `json:"decision"`
	// GatewayStatus is the gateway's own verdict (CyberSource decision, Chase ApprovalStatus).
	GatewayStatus string `json:"gatewayStatus,omitempty"`
	ReasonCode    string `json:"reasonCode,omitempty"`
	// TransactionID is the gateway's transaction, for reconciliation.
	TransactionID string `json:"transactionId,omitempty"`
	// Late marks a payment made after paybridge cancelled or expired the session.
	Late bool `json:"late,omitempty"`
	// Data is, with DecisionUnknown only, the result data VCC sent (card-number-like values
	// removed).
	Data map[string]string `json:"data,omitempty"`
}

// SessionFailure says why a session failed, in the error vocabulary.
type SessionFailure struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"error"`
}

// VCCReference names an attempt's VCC session and PCI provider session.
type VCCReference struct {
	SessionGUID         string `json:"sessionGuid"`
	ProviderSessionGUID string `json:"providerSessionGuid,omitempty"`
}

// Customer is optional customer detail passed on to the PCI provider; each field at most 255
// characters.
type Customer struct {
	FirstName string `json:"firstName,omitempty"`
	Surname   string `json:"surname,omitempty"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
	Street1   string `json:"street1,omitempty"`
	City      string `json:"city,omitempty"`
	Postcode  string `json:"postcode,omitempty"`
}

// LineItem is one line of what the customer pays for.
type LineItem struct {
	Name     string `json:"name"`
	Quantity int    `json:"quantity"` // 1 to 9999
	// UnitAmount is in minor units.
	UnitAmount int64 `json:"unitAmount"`
}

// SessionCreateParams are the fields of a new session. Amount and Currency are required, and
// AgentID with a secret key.
type SessionCreateParams struct {
	// AgentID is the agent taking the call, whose browser gets the payment form.
	AgentID string `json:"agentId,omitempty"`
	// Amount is in minor units (1240 = £12.40), 1 to 99,999,999.
	Amount int64 `json:"amount"`
	// Currency is an ISO 4217 code.
	Currency string `json:"currency"`
	// Country is ISO 3166-1 alpha-2.
	Country string `json:"country,omitempty"`
	// Channel defaults to ChannelAgentAssist.
	Channel Channel `json:"channel,omitempty"`
	// AccountConfigurationID picks one of the VCC account configurations the merchant allows;
	// nil takes the merchant's default. A pointer, because 0 is an id.
	AccountConfigurationID *int `json:"accountConfigurationId,omitempty"`
	// Reference is yours (invoice, order), sent to VCC as MerchantReferenceCode.
	Reference string    `json:"reference,omitempty"`
	Customer  *Customer `json:"customer,omitempty"`
	// SuccessURL and CancelURL are absolute HTTPS URLs (http://localhost in test mode).
	SuccessURL string     `json:"successUrl,omitempty"`
	CancelURL  string     `json:"cancelUrl,omitempty"`
	LineItems  []LineItem `json:"lineItems,omitempty"`
	// Metadata is returned as sent: at most 50 keys, values of at most 500 characters.
	Metadata map[string]string `json:"metadata,omitempty"`
	// ExpiresIn is the session's TTL in seconds, 300 to 3600; 0 takes the default (1800).
	ExpiresIn int `json:"expiresIn,omitempty"`
}

// DryRunResult is the answer to a dry run: the request passed every check.
type DryRunResult struct {
	APIResource
	Valid    bool     `json:"valid"`
	Warnings []string `json:"warnings"`
}

// SessionListParams filter and page a session list.
type SessionListParams struct {
	// AgentID keeps only this agent's sessions.
	AgentID string
	// Status keeps only sessions in this status.
	Status SessionStatus
	// Limit is the page size, 1 to 100; 0 takes the server's default (10).
	Limit int
	// StartingAfter is the last id of the previous page.
	StartingAfter string
}

func (p *SessionListParams) query() url.Values {
	q := url.Values{}
	if p == nil {
		return q
	}
	if p.AgentID != "" {
		q.Set("agentId", p.AgentID)
	}
	if p.Status != "" {
		q.Set("status", string(p.Status))
	}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.StartingAfter != "" {
		q.Set("starting_after", p.StartingAfter)
	}
	return q
}

// SessionList is one page of sessions, newest first.
type SessionList struct {
	APIResource
	Object string     `json:"object"` // "list"
	Data   []*Session `json:"data"`
	// HasMore reports that another page follows.
	HasMore bool `json:"hasMore"`
}

// SessionService is the sessions resource.
type SessionService struct{ c *Client }

// Create starts a payment session: paybridge starts a provider session through VCC and hands
// the payment form to the agent's browser before it answers with the active session. Retried
// creates carry the same Idempotency-Key, so they never make a second session.
func (s *SessionService) Create(ctx context.Context, p *SessionCreateParams, opts ...CallOption) (*Session, error) {
	return do[Session](ctx, s.c, request{method: http.MethodPost, path: "/v1/sessions", body: p, opts: opts})
}

// DryRun runs every check Create would, the merchant's own included, and creates nothing.
func (s *SessionService) DryRun(ctx context.Context, p *SessionCreateParams, opts ...CallOption) (*DryRunResult, error) {
	q := url.Values{"dry_run": {"true"}}
	return do[DryRunResult](ctx, s.c, request{method: http.MethodPost, path: "/v1/sessions", query: q, body: p, opts: opts})
}

// Get reads a session. A session past its TTL reads as expired.
func (s *SessionService) Get(ctx context.Context, id string) (*Session, error) {
	path, err := pathID("session", id)
	if err != nil {
		return nil, err
	}
	return do[Session](ctx, s.c, request{method: http.MethodGet, path: "/v1/sessions/" + path})
}

// ListPage reads one page of sessions, newest first.
func (s *SessionService) ListPage(ctx context.Context, p *SessionListParams) (*SessionList, error) {
	return do[SessionList](ctx, s.c, request{method: http.MethodGet, path: "/v1/sessions", query: p.query()})
}

// List iterates over every session p selects, newest first, reading page after page (of
// p.Limit) as it goes. An error ends the iteration, yielded with a nil session.
func (s *SessionService) List(ctx context.Context, p *SessionListParams) iter.Seq2[*Session, error] {
	return pages(ctx, s.c, "/v1/sessions", p.query(), func(sess *Session) string { return sess.ID })
}

// listPage is one page of any list endpoint, as pages reads it.
type listPage[T any] struct {
	APIResource
	Data    []T  `json:"data"`
	HasMore bool `json:"hasMore"`
}

// pages iterates over the items of the list endpoint at path, newest first, for the filters in
// q: each page after the first starts after the last item of the one before (starting_after),
// until the server says there is no more. An error ends the iteration, yielded with a zero item.
func pages[T any](ctx context.Context, c *Client, path string, q url.Values, id func(T) string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		q := maps.Clone(q)
		for {
			list, err := do[listPage[T]](ctx, c, request{method: http.MethodGet, path: path, query: q})
			if err != nil {
				yield(zero, err)
				return
			}
			for _, item := range list.Data {
				if !yield(item, nil) {
					return
				}
			}
			if !list.HasMore || len(list.Data) == 0 {
				return
			}
			q.Set("starting_after", id(list.Data[len(list.Data)-1]))
		}
	}
}

// Cancel moves a pending or active session to cancelled. It is refused (session_wrong_state)
// while the customer is keying, or when VCC already has the result (then recorded).
func (s *SessionService) Cancel(ctx context.Context, id string, opts ...CallOption) (*Session, error) {
	return s.post(ctx, id, "cancel", opts)
}

// Restart starts a new provider session (attempt) for an active session, and hands it to the
// agent: for when the agent's frame shows the provider's expiry.
func (s *SessionService) Restart(ctx context.Context, id string, opts ...CallOption) (*Session, error) {
	return s.post(ctx, id, "restart", opts)
}

func (s *SessionService) post(ctx context.Context, id, action string, opts []CallOption) (*Session, error) {
	path, err := pathID("session", id)
	if err != nil {
		return nil, err
	}
	return do[Session](ctx, s.c, request{method: http.MethodPost, path: "/v1/sessions/" + path + "/" + action, opts: opts})
}
