package vccstub

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
)

// Errors of the session Go API.
var (
	// ErrSessionNotFound means the stub never had the session, or purged it after Retention.
	ErrSessionNotFound = errors.New("vccstub: session not found")
	// ErrSessionClosed means the session already finished or expired.
	ErrSessionClosed = errors.New("vccstub: session already finished or expired")
	// ErrInvalidDecision means a decision other than ACCEPT, REJECT or ERROR.
	ErrInvalidDecision = errors.New("vccstub: decision must be ACCEPT, REJECT or ERROR")
	// ErrInvalidAmount means an amount override that is not a whole number of minor units.
	ErrInvalidAmount = errors.New("vccstub: amount must be a whole number of minor units")
	// ErrNoAmount means a decision without an amount for a session whose paymentData.Amount has
	// no digits to derive one from.
	ErrNoAmount = errors.New("vccstub: the session's paymentData has no Amount: give amount, or paymentResultData")
)

// Reason codes the stub reports for each decision.
var reasonCodes = map[string]string{
	bridge.DecisionAccept: "100",
	bridge.DecisionReject: "202",
	bridge.DecisionError:  "150",
}

// SessionStatus is the body of GET /v1/session/{sessionGuid} and of VCC's webhook, in VCC's
// documented shape and field order.
type SessionStatus struct {
	LastUpdatedOn       string     `json:"lastUpdatedOn"`
	CallGUID            string     `json:"callGuid"`
	CreatedOn           string     `json:"createdOn"`
	SessionGUID         string     `json:"sessionGuid"`
	SessionState        string     `json:"sessionState"`
	ProviderSessionGUID string     `json:"providerSessionGuid"`
	PaymentResultData   ResultData `json:"paymentResultData,omitzero"` // absent until a result is in; {} stays {}
}

// ResultData is VCC's paymentResultData: every value a string, the keys those of the PCI Pal
// flow's payment gateway. The CyberSource shape of VCC's documented example is decision,
// reasonCode, requestID, transactionType, Amount (minor units) and Currency; a Chase Orbital flow
// has ApprovalStatus, RespCode, TxRefNum and no decision.
type ResultData map[string]string

// CyberSource keys of ResultData, the shape Complete produces.
const (
	ResultDecision        = "decision"
	ResultReasonCode      = "reasonCode"
	ResultRequestID       = "requestID"
	ResultTransactionType = "transactionType"
	ResultAmount          = "Amount"
	ResultCurrency        = "Currency"
)

// SessionSummary is one line of the control API's session list.
type SessionSummary struct {
	SessionGUID            string         `json:"sessionGuid"`
	ProviderSessionGUID    string         `json:"providerSessionGuid"`
	AgentID                string         `json:"agentId"`
	Channel                bridge.Channel `json:"channel"`
	AccountConfigurationID int            `json:"accountConfigurationId"`
	State                  string         `json:"state"`
	Amount                 string         `json:"amount"` // minor units
	Currency               string         `json:"currency"`
	Decision               string         `json:"decision,omitempty"`
	CreatedOn              time.Time      `json:"createdOn"`
}

// session is one VCC session the stub started.
type session struct {
	seq           int64 // creation order
	guid          string
	providerGUID  string
	callGUID      string
	account       *Account
	configID      int
	agentID       string
	channel       bridge.Channel
	amount        string // paymentData.Amount as requested, in the flow's format
	amountMinor   string // its digits, as VCC reports a result's Amount; "" when it has none
	currency      string
	reference     string
	registered    bool // known to the PCI Pal stub
	createdOn     time.Time
	lastUpdatedOn time.Time
	state         string
	endedAt       time.Time  // when it finished or expired; zero while open
	result        ResultData // nil until the session finished with a result
}

// open reports whether the session can still take a payment.
func (ss *session) open() bool {
	return ss.state == bridge.StateCreated || ss.state == bridge.StateInProgress
}

// status returns the session in VCC's status shape.
func (ss *session) status() *SessionStatus {
	st := &SessionStatus{
		LastUpdatedOn:       formatTime(ss.lastUpdatedOn),
		CallGUID:            ss.callGUID,
		CreatedOn:           formatTime(ss.createdOn),
		SessionGUID:         ss.guid,
		SessionState:        ss.state,
		ProviderSessionGUID: ss.providerGUID,
	}
	if ss.result != nil {
		st.PaymentResultData = maps.Clone(ss.result)
	}
	return st
}

// formatTime writes t the way VCC's example does: RFC 3339 in UTC with fractional seconds.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// createRequest is the body of both create endpoints.
type createRequest struct {
	AgentID                string            `json:"agentId"`
	PaymentData            map[string]string `json:"paymentData"`
	AccountConfigurationID *int              `json:"accountConfigurationId"`
	SkipCallTransfer       bool              `json:"skipCallTransfer"`
}

// createResponse is the agent-assist create answer.
type createResponse struct {
	SessionGUID       string `json:"sessionGuid"`
	IframeURL         string `json:"iframeUrl"`
	AgentAccessToken  string `json:"agentAccessToken"`
	AgentRefreshToken string `json:"agentRefreshToken"`
}

// digitalResponse is the digital create answer.
type digitalResponse struct {
	SessionGUID string `json:"sessionGuid"`
	Link        string `json:"link"`
}

var minorUnits = regexp.MustCompile(`^[0-9]+$`)

// The documented VCC error texts (seed 000), verbatim.
func msgAccountConfiguration(account string, id int) string {
	return fmt.Sprintf("Account configuration does not exists for account: %s, configuration Id: %d.", account, id)
}

func msgInvalidClientKey() string {
	return "Provider's authorization endpoint returned error message 'invalid_client_key'"
}

func msgProviderPermissions(account string, id int) string {
	return fmt.Sprintf("Provider's authorization endpoint returned error message 'invalid_client'/'invalid_client' for account name: %s, configuration id: %d", account, id)
}

// handleCreate is POST /paymentapi/v1/session (agent assist) and /v1/digitalsession (digital).
func (s *Server) handleCreate(channel bridge.Channel) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if channel == bridge.ChannelDigital {
			s.stats.CreateDigitalSession++
		} else {
			s.stats.CreateSession++
		}
		s.mu.Unlock()
		if !s.delay(w, r) {
			return
		}
		// Infrastructure faults strike before VCC looks at the request.
		switch s.takeFault(faultCreate, FaultHTTP503, FaultTimeout) {
		case FaultHTTP503:
			writeText(w, http.StatusServiceUnavailable, "Service Unavailable")
			return
		case FaultTimeout:
			s.hold(w, r)
			return
		}
		acct := s.authorize(w, r)
		if acct == nil {
			return
		}
		var req createRequest
		if err := decodeJSON(w, r, &req); err != nil {
			writeMessage(w, http.StatusBadRequest, "The request is invalid: "+err.Error())
			return
		}
		if strings.TrimSpace(req.AgentID) == "" {
			writeMessage(w, http.StatusBadRequest, "agentId is required")
			return
		}
		// paymentData's keys and formats belong to the PCI Pal flow, and VCC checks them no more
		// strictly than the flow does ("Amount": "$12.40" is a real flow's), so neither does the
		// stub: it only needs the object of strings.
		if req.PaymentData == nil {
			writeMessage(w, http.StatusBadRequest, "paymentData is required")
			return
		}
		amount, currency := req.PaymentData["Amount"], req.PaymentData["Currency"]
		configID := 0
		if len(acct.ConfigurationIDs) > 0 {
			configID = acct.ConfigurationIDs[0]
		}
		if req.AccountConfigurationID != nil {
			configID = *req.AccountConfigurationID
		}
		// Provider faults strike once VCC has the request and asks the PCI provider.
		switch s.takeFault(faultCreate) {
		case FaultInvalidClientKey:
			writeMessage(w, http.StatusInternalServerError, msgInvalidClientKey())
			return
		case FaultProviderPermissions:
			writeMessage(w, http.StatusInternalServerError, msgProviderPermissions(acct.Name, configID))
			return
		case FaultUnknownAccountConfiguration:
			writeMessage(w, http.StatusBadRequest, msgAccountConfiguration(acct.Name, configID))
			return
		}
		if !slices.Contains(acct.ConfigurationIDs, configID) {
			writeMessage(w, http.StatusBadRequest, msgAccountConfiguration(acct.Name, configID))
			return
		}
		if channel == bridge.ChannelAgentAssist && s.pcipal == nil {
			writeMessage(w, http.StatusInternalServerError, "The stub has no PCI Pal stub to start agent-assist sessions with.")
			return
		}

		now := s.clock.Now()
		ss := &session{
			guid:          newUUID(),
			providerGUID:  newUUID(),
			callGUID:      newUUID(),
			account:       acct,
			configID:      configID,
			agentID:       req.AgentID,
			channel:       channel,
			amount:        amount,
			amountMinor:   toMinorUnits(amount),
			currency:      strings.ToUpper(strings.TrimSpace(currency)),
			reference:     req.PaymentData["MerchantReferenceCode"],
			createdOn:     now,
			lastUpdatedOn: now,
			state:         bridge.StateCreated,
		}
		bearer, refresh := bridge.RandomBase62(32), bridge.RandomBase62(32)
		var iframeURL string
		// A digital session is paid on the link's own page, not in an agent's frame: its life is
		// the link's (72 hours), not a PCI Pal agent session's.
		if s.pcipal != nil && channel != bridge.ChannelDigital {
			iframeURL = s.pcipal.Register(pcipalstub.Session{
				ID: ss.providerGUID, VCCSessionGUID: ss.guid, BearerToken: bearer, RefreshToken: refresh,
				Amount: amount, Currency: ss.currency, Reference: ss.reference,
			})
			ss.registered = true
		}
		s.mu.Lock()
		s.seq++
		ss.seq = s.seq
		s.sessions[ss.guid] = ss
		base := s.baseURL
		s.mu.Unlock()
		s.log.Info("vccstub: session created", "sessionGuid", ss.guid, "providerSessionGuid", ss.providerGUID,
			"channel", channel, "account", acct.Name, "accountConfigurationId", configID, "agentId", ss.agentID)

		if channel == bridge.ChannelDigital {
			writeJSON(w, http.StatusOK, digitalResponse{SessionGUID: ss.guid, Link: base + "/pay/" + ss.guid})
			return
		}
		writeJSON(w, http.StatusOK, createResponse{SessionGUID: ss.guid, IframeURL: iframeURL, AgentAccessToken: bearer, AgentRefreshToken: refresh})
	}
}

// hold keeps a request open until the client gives up, the stub closes, or a minute passes.
func (s *Server) hold(w http.ResponseWriter, r *http.Request) {
	if s.wait(r, time.Minute) {
		writeText(w, http.StatusGatewayTimeout, "Gateway Timeout")
		return
	}
	writeText(w, http.StatusServiceUnavailable, "Service Unavailable") // nobody may be listening
}

// writeText answers status with a plain-text body, as a load balancer would.
func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}

// decodeJSON reads a JSON request body of at most 1 MiB into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v)
}

// toMinorUnits turns the flow's amount into the minor units VCC's results report by keeping its
// digits: "12.40" → "1240", "1.240" → "1240", "$12.40" → "1240". An amount without digits has
// none: "".
func toMinorUnits(amount string) string {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, amount)
	if digits == "" {
		return ""
	}
	if digits = strings.TrimLeft(digits, "0"); digits == "" {
		return "0"
	}
	return digits
}

// handleStatus is GET /paymentapi/v1/session/{sessionGuid}.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.GetSession++
	s.mu.Unlock()
	if !s.delay(w, r) {
		return
	}
	acct := s.authorize(w, r)
	if acct == nil {
		return
	}
	s.mu.Lock()
	var st *SessionStatus
	// Sessions belong to the account that started them: another account's look the same as none.
	if ss := s.lookupLocked(r.PathValue("sessionGuid"), s.clock.Now()); ss != nil && ss.account == acct {
		st = ss.status()
	}
	s.mu.Unlock()
	if st == nil {
		writeMessage(w, http.StatusNotFound, "Session not found")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// Status returns session guid as GET /v1/session/{guid} would, or ErrSessionNotFound.
func (s *Server) Status(guid string) (*SessionStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.lookupLocked(guid, s.clock.Now())
	if ss == nil {
		return nil, ErrSessionNotFound
	}
	return ss.status(), nil
}

// lookupLocked returns session guid brought up to date at now, or nil if it is unknown or
// purged. A session whose PCI Pal lifetime has passed becomes Expired here, since the stub has
// no timers of its own; its webhook goes out then.
func (s *Server) lookupLocked(guid string, now time.Time) *session {
	ss, ok := s.sessions[guid]
	if !ok {
		return nil
	}
	if ss.open() && ss.channel == bridge.ChannelDigital && !now.Before(ss.createdOn.Add(bridge.DigitalLinkLifetime)) {
		// The link VCC texted is payable for 72 hours (UPSTREAM), then the session ends.
		end := ss.createdOn.Add(bridge.DigitalLinkLifetime)
		s.endLocked(ss, bridge.StateExpired, end)
		if now.Before(end.Add(s.retention)) {
			s.queueWebhookLocked(ss)
		}
	}
	if ss.open() && ss.registered {
		if at, found := s.pcipal.ExpiresAt(ss.providerGUID); !found || !now.Before(at) {
			end := now
			if found {
				end = at
			}
			s.endLocked(ss, bridge.StateExpired, end)
			if now.Before(end.Add(s.retention)) {
				s.queueWebhookLocked(ss)
			}
		}
	}
	if !ss.open() && !now.Before(ss.endedAt.Add(s.retention)) {
		delete(s.sessions, guid)
		s.log.Info("vccstub: session purged", "sessionGuid", guid)
		return nil
	}
	return ss
}

// endLocked moves ss to the final state at t.
func (s *Server) endLocked(ss *session, state string, t time.Time) {
	ss.state = state
	ss.endedAt = t
	ss.lastUpdatedOn = t
	s.log.Info("vccstub: session ended", "sessionGuid", ss.guid, "state", state)
}

// openLocked returns session guid if it is still open, which every control action needs.
func (s *Server) openLocked(guid string, now time.Time) (*session, error) {
	ss := s.lookupLocked(guid, now)
	if ss == nil {
		return nil, ErrSessionNotFound
	}
	if !ss.open() {
		return nil, fmt.Errorf("%w: it is %s", ErrSessionClosed, ss.state)
	}
	return ss, nil
}

// Complete plays the customer finishing the payment through a CyberSource flow: session guid
// becomes Finished with decision (ACCEPT, REJECT or ERROR; "" means ACCEPT) for amountOverride
// minor units ("" means the session's amount), in the shape of VCC's documented example. The
// PCI Pal page shows the decision and the webhook goes out.
func (s *Server) Complete(guid, decision, amountOverride string) (*SessionStatus, error) {
	if decision == "" {
		decision = bridge.DecisionAccept
	}
	reason, ok := reasonCodes[decision]
	if !ok {
		return nil, ErrInvalidDecision
	}
	if amountOverride != "" && !minorUnits.MatchString(amountOverride) {
		return nil, ErrInvalidAmount
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	ss, err := s.openLocked(guid, now)
	if err != nil {
		return nil, err
	}
	amount := ss.amountMinor
	if amountOverride != "" {
		amount = amountOverride
	}
	if amount == "" {
		return nil, ErrNoAmount
	}
	ss.result = ResultData{
		ResultDecision:        decision,
		ResultReasonCode:      reason,
		ResultRequestID:       randomDigits(22),
		ResultTransactionType: "Capture",
		ResultAmount:          amount,
		ResultCurrency:        ss.currency,
	}
	return s.concludeLocked(ss, bridge.StateFinished, now, func(id string) error { return s.pcipal.Complete(id, decision) }), nil
}

// CompleteWithResult plays the customer finishing the payment through any gateway: session guid
// becomes Finished with exactly data as its paymentResultData (an empty map makes a Finished
// session whose result data is {}). The PCI Pal page shows the result's decision, if it has one,
// and the webhook goes out.
func (s *Server) CompleteWithResult(guid string, data map[string]string) (*SessionStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	ss, err := s.openLocked(guid, now)
	if err != nil {
		return nil, err
	}
	ss.result = maps.Clone(data)
	if ss.result == nil {
		ss.result = ResultData{}
	}
	label := cmp.Or(data[ResultDecision], "result received")
	return s.concludeLocked(ss, bridge.StateFinished, now, func(id string) error { return s.pcipal.Complete(id, label) }), nil
}

// Expire plays the provider session ending without a payment: session guid becomes Expired, its
// PCI Pal page answers X-Frame-Options: deny, and the webhook goes out.
func (s *Server) Expire(guid string) (*SessionStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	ss, err := s.openLocked(guid, now)
	if err != nil {
		return nil, err
	}
	return s.concludeLocked(ss, bridge.StateExpired, now, s.pcipal.Expire), nil
}

// concludeLocked ends ss in state, tells the PCI Pal stub (so its page shows the end), and sends
// the webhook VCC sends when a session ends.
func (s *Server) concludeLocked(ss *session, state string, now time.Time, tellPCIPal func(providerGUID string) error) *SessionStatus {
	s.endLocked(ss, state, now)
	if ss.registered {
		if err := tellPCIPal(ss.providerGUID); err != nil {
			s.log.Warn("vccstub: PCI Pal stub did not take the session's end", "sessionGuid", ss.guid, "state", state, "err", err)
		}
	}
	s.queueWebhookLocked(ss)
	return ss.status()
}

// Keying plays the customer starting to key the card: session guid becomes InProgress, when
// paybridge must not restart it.
func (s *Server) Keying(guid string) (*SessionStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	ss, err := s.openLocked(guid, now)
	if err != nil {
		return nil, err
	}
	if ss.state != bridge.StateInProgress {
		ss.state = bridge.StateInProgress
		ss.lastUpdatedOn = now
		s.log.Info("vccstub: customer keying", "sessionGuid", guid)
	}
	return ss.status(), nil
}

// Sessions lists the sessions the stub still holds, newest first.
func (s *Server) Sessions() []SessionSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var live []*session
	for guid := range s.sessions {
		if ss := s.lookupLocked(guid, now); ss != nil {
			live = append(live, ss)
		}
	}
	slices.SortFunc(live, func(a, b *session) int { return cmp.Compare(b.seq, a.seq) })
	out := make([]SessionSummary, 0, len(live))
	for _, ss := range live {
		sum := SessionSummary{
			SessionGUID: ss.guid, ProviderSessionGUID: ss.providerGUID, AgentID: ss.agentID,
			Channel: ss.channel, AccountConfigurationID: ss.configID, State: ss.state, Amount: ss.amountMinor, Currency: ss.currency,
			CreatedOn: ss.createdOn.UTC(),
		}
		sum.Decision = ss.result[ResultDecision]
		out = append(out, sum)
	}
	return out
}

// handleCustomerPage is GET /pay/{sessionGuid}: the page a digital session's link opens. Card
// entry is not stubbed; the control API completes the session.
func (s *Server) handleCustomerPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s.mu.Lock()
	var page customerPage
	ss := s.lookupLocked(r.PathValue("sessionGuid"), s.clock.Now())
	if ss != nil {
		page = customerPage{SessionGUID: ss.guid, Amount: ss.amount, Currency: ss.currency, State: ss.state}
	}
	s.mu.Unlock()
	if ss == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := customerTemplate.Execute(w, page); err != nil {
		s.log.Error("vccstub: render customer page", "err", err)
	}
}

// customerPage is what the digital payment page shows.
type customerPage struct {
	SessionGUID, Amount, Currency, State string
}

var customerTemplate = template.Must(template.New("pay").Parse(`<!doctype html>
<html lang="en" data-vcc-session="{{.SessionGUID}}" data-vcc-state="{{.State}}">
<head><meta charset="utf-8"><title>Secure payment (VCC stub)</title></head>
<body style="font: 15px/1.4 system-ui, sans-serif; padding: 16px">
<h1 style="font-size: 17px">Secure payment (VCC stub)</h1>
<p>Amount due: <strong>{{.Amount}} {{.Currency}}</strong></p>
<p>Session state: {{.State}}</p>
<p>This stub takes no card details: complete the session through the control API.</p>
</body>
</html>
`))
