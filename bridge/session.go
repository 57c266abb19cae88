package bridge

import (
	"fmt"
	"strings"
	"time"
)

// Status is where a session is in its life. See DESIGN section 2 for the machine.
type Status string

// Session statuses.
const (
	StatusPending   Status = "pending"
	StatusActive    Status = "active"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusExpired   Status = "expired"
	StatusCancelled Status = "cancelled"
)

// Terminal reports whether s never changes again.
func (s Status) Terminal() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusExpired, StatusCancelled:
		return true
	}
	return false
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	return s == StatusPending || s == StatusActive || s.Terminal()
}

// transitions lists, for each open status, where it may go.
var transitions = map[Status][]Status{
	StatusPending: {StatusActive, StatusFailed, StatusExpired, StatusCancelled},
	StatusActive:  {StatusSucceeded, StatusFailed, StatusExpired, StatusCancelled},
}

// CanBecome reports whether a session in status s may move to next.
func (s Status) CanBecome(next Status) bool {
	for _, t := range transitions[s] {
		if t == next {
			return true
		}
	}
	return false
}

// Channel is how the customer pays: on the phone with an agent watching, or by a link.
type Channel string

// DigitalLinkLifetime is how long the link of a digital session stays payable after VCC texts
// it to the customer (UPSTREAM: up to 72 hours after the call), whatever becomes of the session
// here: a payment can arrive on it until then, so paybridge keeps asking.
const DigitalLinkLifetime = 72 * time.Hour

// Channels.
const (
	ChannelAgentAssist Channel = "agent_assist"
	ChannelDigital     Channel = "digital"
)

// Customer holds the optional customer fields passed on to the provider.
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
	Name       string `json:"name"`
	Quantity   int    `json:"quantity"`
	UnitAmount int64  `json:"unitAmount"`
}

// EndReason says why an attempt ended.
type EndReason string

// Attempt end reasons.
const (
	EndFrameRefused     EndReason = "frame_refused"     // the widget saw the provider refuse the frame
	EndProviderExpired  EndReason = "provider_expired"  // VCC reported the provider session ended
	EndLifetimeElapsed  EndReason = "lifetime_elapsed"  // an agent reconnected after the provider lifetime
	EndRestartRequested EndReason = "restart_requested" // POST .../restart or session.restart
	EndCompleted        EndReason = "completed"         // the payment finished (any decision)
	EndSessionClosed    EndReason = "session_closed"    // the session expired or was cancelled
)

// Attempt is one provider session started through VCC for a Session. The two tokens are secrets:
// they live in memory only and reach storage sealed (SealedTokens); they go nowhere but the
// agent's own sockets.
type Attempt struct {
	Number              int       `json:"number"`
	SessionGUID         string    `json:"sessionGuid"`
	ProviderSessionGUID string    `json:"providerSessionGuid,omitempty"`
	IframeURL           string    `json:"iframeUrl,omitempty"`
	CustomerURL         string    `json:"customerUrl,omitempty"` // digital channel
	BearerToken         string    `json:"-"`
	RefreshToken        string    `json:"-"`
	SealedTokens        []byte    `json:"sealedTokens,omitempty"`
	StartedAt           time.Time `json:"startedAt"`
	EndedAt             time.Time `json:"endedAt,omitzero"`
	EndReason           EndReason `json:"endReason,omitempty"`
	// ProviderEnded records that VCC reported this provider session over (or purged): no payment
	// can arrive on it any more, so it is not asked about again.
	ProviderEnded bool `json:"providerEnded,omitempty"`
}

// Result is the verified outcome of a finished payment.
type Result struct {
	Decision      string `json:"decision"`                // ACCEPT, REJECT, ERROR or UNKNOWN
	GatewayStatus string `json:"gatewayStatus,omitempty"` // the gateway's own verdict (its profile's status key)
	ReasonCode    string `json:"reasonCode,omitempty"`
	TransactionID string `json:"transactionId,omitempty"`
	// Late marks a payment VCC reported after the session was cancelled, expired or failed here:
	// the one change a final status allows, because the money moved.
	Late bool `json:"late,omitempty"`
	// Data is the result data VCC sent, kept when the merchant's profile could not read it, for
	// reconciliation; values shaped like a card number are removed before it is stored.
	Data map[string]string `json:"data,omitempty"`
}

// Failure says why a session failed, in the public error vocabulary.
type Failure struct {
	Code  Code   `json:"code"`
	Error string `json:"error"`
}

// Session is one payment an agent takes on a call. It is stored as JSON; the fields are the
// storage form, and View gives the public one.
type Session struct {
	ID                     string  `json:"id"`
	MerchantID             string  `json:"merchantId"`
	Mode                   Mode    `json:"mode"`
	AgentID                string  `json:"agentId"`
	Channel                Channel `json:"channel"`
	Amount                 int64   `json:"amount"`
	Currency               string  `json:"currency"`
	Country                string  `json:"country,omitempty"`
	AccountConfigurationID *int    `json:"accountConfigurationId,omitempty"` // nil: VCC's default
	Reference              string  `json:"reference,omitempty"`
	// Customer is personal data: in memory only, like the provider tokens; it reaches storage
	// sealed (SealedCustomer), so the data file never holds it in clear.
	Customer       Customer          `json:"-"`
	SealedCustomer []byte            `json:"sealedCustomer,omitempty"`
	LineItems      []LineItem        `json:"lineItems,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	SuccessURL     string            `json:"successUrl,omitempty"`
	CancelURL      string            `json:"cancelUrl,omitempty"`
	Status         Status            `json:"status"`
	CreatedAt      time.Time         `json:"createdAt"`
	UpdatedAt      time.Time         `json:"updatedAt"`
	ExpiresAt      time.Time         `json:"expiresAt"`
	Attempts       []Attempt         `json:"attempts,omitempty"`
	Result         *Result           `json:"result,omitempty"`
	Failure        *Failure          `json:"failure,omitempty"`
	// WatchUntil is until when VCC is still asked about a closed session's attempts: VCC cannot
	// end a provider session, so one may yet be paid after the session ended here. Zero once
	// nothing can arrive any more.
	WatchUntil time.Time `json:"watchUntil,omitzero"`
	// Version counts committed updates; stores bump it, so a stale copy is easy to spot.
	Version int64 `json:"version"`
}

// Open reports whether the lifecycle still tracks s: pending or active, or closed but still
// watched for a late payment. Stores index it for OpenSessions.
func (s *Session) Open() bool { return !s.Status.Terminal() || !s.WatchUntil.IsZero() }

// NewSessionID returns a fresh session id for mode.
func NewSessionID(mode Mode) string { return "vp_cs_" + string(mode) + "_" + RandomBase62(16) }

// ModeOfSessionID returns the mode a session id claims, or "" if it is not a session id.
func ModeOfSessionID(id string) Mode {
	rest, ok := strings.CutPrefix(id, "vp_cs_")
	if !ok || len(id) > 64 {
		return ""
	}
	for _, m := range []Mode{ModeTest, ModeLive} {
		if r, ok := strings.CutPrefix(rest, string(m)+"_"); ok && len(r) == 16 && isBase62(r) {
			return m
		}
	}
	return ""
}

// Current returns the latest attempt, or nil before the first one started.
func (s *Session) Current() *Attempt {
	if len(s.Attempts) == 0 {
		return nil
	}
	return &s.Attempts[len(s.Attempts)-1]
}

// AttemptByGUID returns the attempt whose VCC session GUID is guid, or nil.
func (s *Session) AttemptByGUID(guid string) *Attempt {
	for i := range s.Attempts {
		if s.Attempts[i].SessionGUID == guid {
			return &s.Attempts[i]
		}
	}
	return nil
}

// SetStatus moves s to next at now, or answers session_wrong_state naming what is allowed.
func (s *Session) SetStatus(next Status, now time.Time) error {
	if !s.Status.CanBecome(next) {
		return WrongState(s.Status, string(next))
	}
	s.Status = next
	s.UpdatedAt = now
	if next.Terminal() {
		if a := s.Current(); a != nil && a.EndedAt.IsZero() {
			a.EndedAt = now
			a.EndReason = EndSessionClosed
			if next == StatusSucceeded || next == StatusFailed {
				a.EndReason = EndCompleted
			}
		}
	}
	return nil
}

// WrongState returns the session_wrong_state error for an operation that status forbids, with a
// fix naming the transitions that status allows.
func WrongState(status Status, operation string) *Error {
	allowed := transitions[status]
	fix := fmt.Sprintf("The session is %s, a final status: nothing can change it. Create a new session if the customer still needs to pay.", status)
	if len(allowed) > 0 {
		names := make([]string, len(allowed))
		for i, a := range allowed {
			names[i] = string(a)
		}
		fix = fmt.Sprintf("A %s session can only become %s.", status, strings.Join(names, ", "))
	}
	return Errorf(CodeSessionWrongState, "The session is %s, which does not allow %s.", status, operation).WithFix(fix)
}

// Handoff is what an agent's browser needs to show one attempt: the form to POST into the
// iframe. It holds the provider tokens and travels only over the agent's own sockets.
type Handoff struct {
	SessionID   string            `json:"sessionId"`
	Attempt     int               `json:"attempt"`
	IframeURL   string            `json:"iframeUrl,omitempty"`
	FormFields  map[string]string `json:"formFields,omitempty"`
	CustomerURL string            `json:"customerUrl,omitempty"`
	ExpiresAt   time.Time         `json:"expiresAt"`
	// Announcement is what the provider page posts to the agent desktop once it has loaded, when
	// the merchant's PCI Pal flow is set up to (its PostMessage step); nil: the page announces
	// nothing, and the widget must never count a frame as refused for want of one.
	Announcement *FrameAnnouncement `json:"announcement,omitempty"`
}

// Form field names the provider expects in the iframe's form POST.
const (
	FieldBearerToken  = "X-BEARER-TOKEN"
	FieldRefreshToken = "X-REFRESH-TOKEN"
)

// Handoff returns the handoff of the current attempt, whose provider session is expected to
// last until lifetime after it started (never past the session's own expiry), or nil.
func (s *Session) Handoff(lifetime time.Duration) *Handoff {
	a := s.Current()
	if a == nil || !a.EndedAt.IsZero() {
		return nil
	}
	exp := a.StartedAt.Add(lifetime)
	if s.ExpiresAt.Before(exp) {
		exp = s.ExpiresAt
	}
	h := &Handoff{SessionID: s.ID, Attempt: a.Number, IframeURL: a.IframeURL, CustomerURL: a.CustomerURL, ExpiresAt: exp}
	if a.BearerToken != "" || a.RefreshToken != "" {
		h.FormFields = map[string]string{FieldBearerToken: a.BearerToken, FieldRefreshToken: a.RefreshToken}
	}
	return h
}

// cloneInt returns a copy of p, so a copy of a session shares no memory with it.
func cloneInt(p *int) *int {
	if p == nil {
		return nil
	}
	return new(*p)
}

// Clone returns a deep copy, so callers can change it without touching a shared value.
func (s *Session) Clone() *Session {
	c := *s
	c.Attempts = append([]Attempt(nil), s.Attempts...)
	for i := range c.Attempts {
		c.Attempts[i].SealedTokens = append([]byte(nil), s.Attempts[i].SealedTokens...)
	}
	c.LineItems = append([]LineItem(nil), s.LineItems...)
	c.SealedCustomer = append([]byte(nil), s.SealedCustomer...)
	c.AccountConfigurationID = cloneInt(s.AccountConfigurationID)
	if s.Metadata != nil {
		c.Metadata = make(map[string]string, len(s.Metadata))
		for k, v := range s.Metadata {
			c.Metadata[k] = v
		}
	}
	if s.Result != nil {
		r := *s.Result
		c.Result = &r
	}
	if s.Failure != nil {
		f := *s.Failure
		c.Failure = &f
	}
	return &c
}
