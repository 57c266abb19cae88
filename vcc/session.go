package vcc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"

	"github.com/paybridge/paybridge/bridge"
)

// Payment API paths, relative to the merchant's APIBaseURL.
const (
	pathSession        = "/v1/session"
	pathDigitalSession = "/v1/digitalsession"
	pathSessionStatus  = "/v1/session/{guid}"
)

// createRequest is the body of POST /v1/session and /v1/digitalsession.
type createRequest struct {
	AgentID                string            `json:"agentId"`
	PaymentData            map[string]string `json:"paymentData"`
	AccountConfigurationID *int              `json:"accountConfigurationId,omitempty"` // 0 is a real id
	SkipCallTransfer       bool              `json:"skipCallTransfer,omitempty"`       // agent_assist only
}

// createResponse is VCC's answer to either create; digital sessions carry Link instead of the
// iframe and its tokens.
type createResponse struct {
	SessionGUID       string `json:"sessionGuid"`
	IframeURL         string `json:"iframeUrl"`
	AgentAccessToken  string `json:"agentAccessToken"`
	AgentRefreshToken string `json:"agentRefreshToken"`
	Link              string `json:"link"`
}

// CreateSession starts a provider session through VCC: POST /v1/session for agent_assist (the
// default), POST /v1/digitalsession for digital. The returned tokens are secrets.
func (c *Client) CreateSession(ctx context.Context, m *bridge.Merchant, req *bridge.ProviderRequest) (*bridge.ProviderSession, error) {
	channel := req.Channel
	if channel == "" {
		channel = bridge.ChannelAgentAssist
	}
	var path, endpoint string
	switch channel {
	case bridge.ChannelAgentAssist:
		path, endpoint = pathSession, EndpointCreate
	case bridge.ChannelDigital:
		path, endpoint = pathDigitalSession, EndpointCreateDigital
	default:
		return nil, bridge.Errorf(bridge.CodeValidationError, "Unknown channel %q", channel).
			WithParam("channel").
			WithFix(`Use "agent_assist" or "digital".`)
	}
	keys := m.VCC.Profile(req.AccountConfigurationID).PaymentData
	amount, err := FormatAmount(req.Amount, req.Currency)
	if err != nil {
		return nil, err
	}
	if keys.AmountFormat == bridge.AmountMinor {
		amount = strconv.FormatInt(req.Amount, 10)
	}
	body := createRequest{
		AgentID:                req.AgentID,
		PaymentData:            paymentData(req, keys, amount),
		AccountConfigurationID: req.AccountConfigurationID,
		// The request alone decides: the service sets it only for test-mode sessions of a merchant
		// whose flag is on. Reading m.VCC.SkipCallTransfer here would skip the call in live mode.
		SkipCallTransfer: channel == bridge.ChannelAgentAssist && req.SkipCallTransfer,
	}

	resp, err := c.do(ctx, m, endpoint, http.MethodPost, path, nil, body)
	if err != nil {
		c.logFailure(ctx, m, "vcc create session failed", err)
		return nil, err
	}
	if !success(resp) {
		err := c.failure(resp, m, true)
		c.logFailure(ctx, m, "vcc create session failed", err)
		return nil, err
	}
	var out createResponse
	perr := json.Unmarshal(resp.Body(), &out)
	switch {
	case perr != nil:
	case out.SessionGUID == "":
		perr = errors.New("create response without sessionGuid")
	case channel == bridge.ChannelAgentAssist && (out.IframeURL == "" || out.AgentAccessToken == "" || out.AgentRefreshToken == ""):
		perr = errors.New("create response without iframeUrl, agentAccessToken or agentRefreshToken")
	}
	if perr != nil {
		err := c.unreadable(resp, m, perr)
		c.logFailure(ctx, m, "vcc create session failed", err)
		return nil, err
	}
	if err := browserSafe("iframeUrl", out.IframeURL, resp.StatusCode()); err != nil {
		c.logFailure(ctx, m, "vcc create session failed", err)
		return nil, err
	}
	if err := browserSafe("link", out.Link, resp.StatusCode()); err != nil {
		c.logFailure(ctx, m, "vcc create session failed", err)
		return nil, err
	}
	// Debug: the service logs the session going active at info, after the handoff is pushed.
	c.logger.LogAttrs(ctx, slog.LevelDebug, "vcc session created",
		slog.String("merchant", m.ID), slog.String("channel", string(channel)),
		slog.String("sessionGuid", out.SessionGUID), slog.Any("accountConfigurationId", req.AccountConfigurationID))
	return &bridge.ProviderSession{
		SessionGUID:       out.SessionGUID,
		IframeURL:         out.IframeURL,
		AgentAccessToken:  out.AgentAccessToken,
		AgentRefreshToken: out.AgentRefreshToken,
		CustomerURL:       out.Link,
	}, nil
}

// browserSafe returns nil if rawURL, a create response's field, is empty or an absolute https URL
// paybridge may hand to a browser, and provider_unavailable otherwise. The agent's browser POSTs
// the provider tokens to the iframe URL and the customer opens the link: plain http would expose
// them on the network, and a javascript: or data: URL would run in the page. http is allowed on
// a loopback host only, where the stubs run. The URL itself is in neither the public message nor
// the private cause, which is logged: the cause names only its scheme and host.
func browserSafe(field, rawURL string, status int) error {
	if rawURL == "" {
		return nil
	}
	u, err := url.Parse(rawURL)
	var why string
	switch {
	case err != nil:
		why = "not a URL" // url.Parse's error quotes the URL
	case u.Scheme == "https" && u.Hostname() != "":
		return nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return nil
	default:
		why = fmt.Sprintf("scheme %q, host %q: not an https URL", u.Scheme, u.Hostname())
	}
	what := "an iframe URL"
	if field == "link" {
		what = "a payment link"
	}
	cause := &Error{Kind: KindUnavailable, Status: status, Err: fmt.Errorf("create response %s: %s", field, why)}
	return bridge.Errorf(bridge.CodeProviderUnavailable, "VCC returned %s paybridge will not hand to a browser.", what).
		WithFix("VCC's payment page addresses must be https URLs. Try again; if it persists, contact VCC " +
			"support with the time of the request.").
		WithCause(cause)
}

// loopback reports whether host names this machine: localhost or a loopback address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// paymentData builds VCC's paymentData under the flow's keys: string values, empty values and
// keys left out.
func paymentData(req *bridge.ProviderRequest, keys bridge.PaymentDataKeys, amount string) map[string]string {
	pd := make(map[string]string, 11)
	for _, kv := range [...][2]string{
		{keys.Amount, amount},
		{keys.Currency, strings.ToUpper(strings.TrimSpace(req.Currency))},
		{keys.Country, req.Country},
		{keys.Reference, req.Reference},
		{keys.FirstName, req.Customer.FirstName},
		{keys.Surname, req.Customer.Surname},
		{keys.Email, req.Customer.Email},
		{keys.Phone, req.Customer.Phone},
		{keys.Street1, req.Customer.Street1},
		{keys.City, req.Customer.City},
		{keys.Postcode, req.Customer.Postcode},
	} {
		if kv[0] != "" && kv[1] != "" {
			pd[kv[0]] = kv[1]
		}
	}
	return pd
}

// SessionStatus reads VCC's view of a provider session (GET /v1/session/{guid}). When VCC no
// longer knows it (purged 15 minutes after it ended) the error wraps bridge.ErrNotFound.
func (c *Client) SessionStatus(ctx context.Context, m *bridge.Merchant, guid string) (*bridge.ProviderStatus, error) {
	if guid == "" {
		return nil, fmt.Errorf("vcc session %q: %w", guid, bridge.ErrNotFound)
	}
	resp, err := c.do(ctx, m, EndpointStatus, http.MethodGet, pathSessionStatus, map[string]string{"guid": guid}, nil)
	if err != nil {
		c.logFailure(ctx, m, "vcc session status failed", err)
		return nil, err
	}
	if resp.StatusCode() == http.StatusNotFound {
		return nil, fmt.Errorf("vcc session %s: %w", guid, bridge.ErrNotFound)
	}
	if !success(resp) {
		err := c.failure(resp, m, false)
		c.logFailure(ctx, m, "vcc session status failed", err)
		return nil, err
	}
	st, err := ParseStatus(resp.Body())
	if err != nil {
		err := c.unreadable(resp, m, err)
		c.logFailure(ctx, m, "vcc session status failed", err)
		return nil, err
	}
	return st, nil
}

// statusResponse is the documented body of GET /v1/session/{guid}, which VCC also posts to
// webhooks.
type statusResponse struct {
	LastUpdatedOn       string `json:"lastUpdatedOn"`
	SessionGUID         string `json:"sessionGuid"`
	SessionState        string `json:"sessionState"`
	ProviderSessionGUID string `json:"providerSessionGuid"`
	// PaymentResultData's keys depend on the gateway (UPSTREAM): kept whole, read later through
	// the merchant's gateway profile.
	PaymentResultData map[string]flexString `json:"paymentResultData"`
}

// ParseStatus reads a VCC session status body, as GET /v1/session/{guid} answers it and as VCC
// posts it to webhooks. A body that is not JSON or has no sessionGuid is an error; an
// unreadable lastUpdatedOn is left zero.
func ParseStatus(body []byte) (*bridge.ProviderStatus, error) {
	var sr statusResponse
	if err := json.Unmarshal(body, &sr); err != nil {
		return nil, fmt.Errorf("vcc: status body: %w", err)
	}
	if sr.SessionGUID == "" {
		return nil, errors.New("vcc: status body without sessionGuid")
	}
	st := &bridge.ProviderStatus{
		SessionGUID:         sr.SessionGUID,
		ProviderSessionGUID: sr.ProviderSessionGUID,
		State:               sr.SessionState,
		LastUpdatedOn:       parseTime(sr.LastUpdatedOn),
	}
	if len(sr.PaymentResultData) > 0 {
		st.Result = make(map[string]string, len(sr.PaymentResultData))
		for k, v := range sr.PaymentResultData {
			st.Result[k] = string(v)
		}
	}
	return st, nil
}

// parseTime reads VCC's timestamps: RFC 3339 with fractional seconds, or the same without a zone
// (taken as UTC, as .NET writes them).
func parseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// flexString accepts a JSON string, number or boolean as a string, and null as empty: the
// documentation says "all string values", but a number must not make a result unreadable.
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9' || b[0] == 't' || b[0] == 'f'):
		*f = flexString(b)
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		// A gateway may nest values: kept as their JSON text, so the rest of the result still
		// reads and nothing that may be a payment is lost to a parse error.
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			return err
		}
		*f = flexString(c.String())
	default:
		return fmt.Errorf("vcc: expected a string, got %s", b)
	}
	return nil
}

func success(resp *resty.Response) bool {
	return resp.StatusCode() >= 200 && resp.StatusCode() < 300
}

// failure maps a non-2xx answer. Recognised texts win whatever the status; otherwise a create
// VCC refused with 400/403/404/409/422 is the caller's request at fault (validation_error) and
// anything else is provider_unavailable.
func (c *Client) failure(resp *resty.Response, m *bridge.Merchant, create bool) error {
	status := resp.StatusCode()
	secrets := []string{resp.Request.Token, m.VCC.ClientSecret}
	if e := recognise(status, resp.Body(), secrets...); e != nil {
		return e.bridgeError()
	}
	e := &Error{Kind: KindUnavailable, Status: status, Text: upstreamText(resp.Body(), secrets...)}
	if create {
		switch status {
		case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity:
			e.Kind = KindRejected
		}
	}
	return e.bridgeError()
}

// unreadable maps a 2xx answer that could not be used. A documented error text in it still
// counts (VCC is parsed by text, not status); otherwise it is provider_unavailable.
func (c *Client) unreadable(resp *resty.Response, m *bridge.Merchant, cause error) error {
	if e := recognise(resp.StatusCode(), resp.Body(), resp.Request.Token, m.VCC.ClientSecret); e != nil {
		return e.bridgeError()
	}
	return (&Error{Kind: KindUnavailable, Status: resp.StatusCode(), Err: cause}).bridgeError()
}

// logFailure logs a failed call's public code and VCC's error kind; never a body or token. Debug:
// the error is returned, and the caller logs it with what it was doing.
func (c *Client) logFailure(ctx context.Context, m *bridge.Merchant, msg string, err error) {
	attrs := []slog.Attr{slog.String("merchant", m.ID), slog.String("code", string(bridge.ErrorCode(err)))}
	var e *Error
	if errors.As(err, &e) {
		attrs = append(attrs, slog.String("kind", string(e.Kind)))
		if e.Status != 0 {
			attrs = append(attrs, slog.Int("status", e.Status))
		}
	}
	c.logger.LogAttrs(ctx, slog.LevelDebug, msg, attrs...)
}
