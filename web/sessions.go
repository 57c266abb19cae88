package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

// createSessionRequest is the body of POST /v1/sessions. Amount stays raw so a string, a
// fraction and a missing value each get their own code.
type createSessionRequest struct {
	AgentID                string                     `json:"agentId"`
	Amount                 json.RawMessage            `json:"amount"`
	Currency               string                     `json:"currency"`
	Country                string                     `json:"country"`
	Channel                bridge.Channel             `json:"channel"`
	AccountConfigurationID *int                       `json:"accountConfigurationId"`
	Reference              string                     `json:"reference"`
	Customer               *bridge.Customer           `json:"customer"`
	LineItems              []bridge.LineItem          `json:"lineItems"`
	Metadata               map[string]json.RawMessage `json:"metadata" text:"free"` // raw: a type error names its key; free text
	SuccessURL             string                     `json:"successUrl"`
	CancelURL              string                     `json:"cancelUrl"`
	ExpiresIn              *int                       `json:"expiresIn"`
}

// input turns the request into the service's input for caller c.
func (req *createSessionRequest) input(c *caller) (*bridge.CreateSessionInput, error) {
	in := &bridge.CreateSessionInput{
		MerchantID: c.Merchant.ID, Mode: c.Key.Mode, AgentID: req.AgentID, Channel: req.Channel,
		Currency: req.Currency, Country: req.Country, Reference: req.Reference,
		LineItems: req.LineItems, SuccessURL: req.SuccessURL, CancelURL: req.CancelURL,
	}
	if req.Metadata != nil {
		in.Metadata = make(map[string]string, len(req.Metadata))
		for k, raw := range req.Metadata {
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				path := capText("metadata."+k, capInputText)
				return nil, bridge.Errorf(bridge.CodeValidationError, "Expected string, received %s at %q", rawKind(raw), path).
					WithParam(path).WithFix(fieldFixes["metadata"])
			}
			in.Metadata[k] = v
		}
	}
	if err := notACredential("agentId", req.AgentID); err != nil {
		return nil, err
	}
	if c.agent != nil {
		if req.AgentID != "" && req.AgentID != c.agent.AgentID {
			return nil, bridge.Errorf(bridge.CodeValidationError, "agentId %q does not match the agent token's agent.", capText(req.AgentID, capInputText)).
				WithParam("agentId").WithFix("Omit agentId when calling with an agent token: the token names the agent.")
		}
		in.AgentID = c.agent.AgentID
	}
	amount, err := parseAmount(req.Amount)
	if err != nil {
		return nil, err
	}
	in.Amount = amount
	if req.AccountConfigurationID != nil {
		if *req.AccountConfigurationID < 0 {
			return nil, bridge.Errorf(bridge.CodeValidationError, "accountConfigurationId must be 0 or a positive integer, got %d", *req.AccountConfigurationID).
				WithParam("accountConfigurationId").WithFix(fieldFixes["accountConfigurationId"])
		}
		in.AccountConfigurationID = req.AccountConfigurationID
	}
	if req.Customer != nil {
		in.Customer = *req.Customer
	}
	if req.ExpiresIn != nil {
		// Validate checks the range; a zero there would mean "the default", so an explicit 0
		// (or less) is refused here.
		if *req.ExpiresIn <= 0 {
			return nil, bridge.Errorf(bridge.CodeValidationError, "expiresIn must be from %d to %d seconds, got %d",
				int(bridge.MinExpiresIn.Seconds()), int(bridge.MaxExpiresIn.Seconds()), *req.ExpiresIn).
				WithParam("expiresIn").WithFix(fieldFixes["expiresIn"])
		}
		in.ExpiresIn = time.Duration(*req.ExpiresIn) * time.Second
	}
	return in, nil
}

// notACredential refuses an identifier that is shaped like a paybridge key or token: an agent
// token pasted as agentId would otherwise be stored, logged and shown in every session view.
func notACredential(field, value string) error {
	if Redact(value) == value {
		return nil
	}
	return bridge.Errorf(bridge.CodeValidationError, "%s looks like a paybridge key or token, not an identifier.", field).WithParam(field).
		WithFix("Send your own identifier for the agent (such as its login); if you sent a key or token, roll it: it left your backend.")
}

// dryRunResponse answers ?dry_run=true.
type dryRunResponse struct {
	Valid    bool     `json:"valid"`
	Warnings []string `json:"warnings"`
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r)
	if err != nil {
		return err
	}
	var req createSessionRequest
	if err := s.jsonBody(w, r, &req, false); err != nil {
		return err
	}
	in, err := req.input(c)
	if err != nil {
		return err
	}
	if dry, _ := strconv.ParseBool(r.URL.Query().Get("dry_run")); dry {
		if _, err := s.sessions.CheckCreate(r.Context(), in); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, dryRunResponse{Valid: true, Warnings: []string{}})
		return nil
	}
	if err := s.limitPerKey(r.Context(), w, c); err != nil {
		return err
	}
	in.SessionID = resourceIDOf(r.Context())
	sess, err := s.sessions.CreateSession(r.Context(), in)
	if errors.Is(err, bridge.ErrDuplicateCreate) {
		// The same idempotent request, run by a process this one took for dead, made it first.
		sess, err = s.sessions.SettledSession(r.Context(), c.scope(), in.SessionID)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, sess.View())
	return nil
}

// jsonBody enforces the JSON content type and the body limit and decodes strictly into v.
// With emptyOK (cancel, restart, roll: every field optional) an empty body needs no Content-Type:
// there is nothing to type.
func (s *Server) jsonBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if emptyOK && len(body) == 0 {
		return nil
	}
	if err := requireJSON(r); err != nil {
		return err
	}
	return decodeStrict(body, v, emptyOK)
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	sess, err := s.sessions.SettledSession(r.Context(), p.Scope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sess.View())
	return nil
}

// listPage is a page of any list endpoint (sessions, events), newest first.
type listPage[V any] struct {
	Object  string `json:"object"` // "list"
	Data    []V    `json:"data"`
	HasMore bool   `json:"hasMore"`
}

// pageLimit reads a list's limit parameter: bridge.DefaultListLimit when absent, else an integer
// from 1 to bridge.MaxListLimit.
func pageLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return bridge.DefaultListLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > bridge.MaxListLimit {
		return 0, bridge.Errorf(bridge.CodeValidationError, "limit must be an integer from 1 to %d, got %q", bridge.MaxListLimit, capText(v, capInputText)).WithParam("limit")
	}
	return n, nil
}

// writePage answers a list read with one item more than limit, which only tells whether another
// page follows, as a page of views.
func writePage[T, V any](w http.ResponseWriter, list []T, limit int, view func(T) V) {
	out := listPage[V]{Object: "list", Data: []V{}}
	for i, item := range list {
		if i == limit {
			out.HasMore = true
			break
		}
		out.Data = append(out.Data, view(item))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := bridge.SessionFilter{MerchantID: p.Merchant.ID, Mode: p.Key.Mode, AgentID: q.Get("agentId"),
		Status: bridge.Status(q.Get("status")), StartingAfter: q.Get("starting_after")}
	if f.Status != "" && !f.Status.Valid() {
		return bridge.Errorf(bridge.CodeValidationError, "status must be one of pending, active, succeeded, failed, expired, cancelled; got %q", capText(string(f.Status), capInputText)).WithParam("status")
	}
	limit, err := pageLimit(q)
	if err != nil {
		return err
	}
	f.Limit = limit + 1 // one more tells whether there is another page
	list, err := s.sessions.ListSessions(r.Context(), f)
	if err != nil {
		return err
	}
	writePage(w, list, limit, (*bridge.Session).View)
	return nil
}

func (s *Server) cancelSession(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	if err := s.jsonBody(w, r, &struct{}{}, true); err != nil {
		return err
	}
	sess, err := s.sessions.CancelSession(r.Context(), p.Scope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sess.View())
	return nil
}

func (s *Server) restartSession(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r)
	if err != nil {
		return err
	}
	if err := s.jsonBody(w, r, &struct{}{}, true); err != nil {
		return err
	}
	sess, err := s.sessions.RestartSession(r.Context(), c.scope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sess.View())
	return nil
}

// agentTokenRequest is the body of POST /v1/agent_tokens.
type agentTokenRequest struct {
	AgentID    string `json:"agentId"`
	TTLSeconds int    `json:"ttlSeconds"`
}

// agentTokenResponse carries a new agent token; it is the one response that holds a credential,
// shown to the merchant's backend that asked for it.
type agentTokenResponse struct {
	Object    string    `json:"object"`
	Token     string    `json:"token"`
	AgentID   string    `json:"agentId"`
	Livemode  bool      `json:"livemode"`
	ExpiresAt time.Time `json:"expiresAt"`
}

func (s *Server) createAgentToken(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	var req agentTokenRequest
	if err := s.jsonBody(w, r, &req, false); err != nil {
		return err
	}
	if err := notACredential("agentId", req.AgentID); err != nil {
		return err
	}
	token, exp, err := s.keys.IssueAgentToken(r.Context(), p, req.AgentID, time.Duration(req.TTLSeconds)*time.Second)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, agentTokenResponse{Object: "agent_token", Token: token, AgentID: req.AgentID,
		Livemode: p.Key.Mode == bridge.ModeLive, ExpiresAt: exp})
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.store.Ping(r.Context()); err != nil {
		return bridge.Errorf(bridge.CodeAuthServiceUnavailable, "The data store is not available.").WithCause(err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
