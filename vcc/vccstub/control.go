package vccstub

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/paybridge/paybridge/pcipal/pcipalstub"
)

// Stats counts what the stub received and sent since it started or was last reset.
type Stats struct {
	TokenRequests        int `json:"tokenRequests"`        // token requests, failed ones too
	CreateSession        int `json:"createSession"`        // POST /v1/session requests
	CreateDigitalSession int `json:"createDigitalSession"` // POST /v1/digitalsession requests
	GetSession           int `json:"getSession"`           // GET /v1/session/{guid} requests
	WebhooksSent         int `json:"webhooksSent"`         // webhook posts answered with 2xx
	WebhooksFailed       int `json:"webhooksFailed"`       // webhook posts that failed (each try counts)
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ResetStats zeroes the counts.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{}
}

// completeRequest is the body of POST /_control/sessions/{guid}/complete: a CyberSource decision
// (and amount), or any gateway's result data verbatim.
type completeRequest struct {
	Decision          string            `json:"decision"`
	Amount            string            `json:"amount"`
	PaymentResultData map[string]string `json:"paymentResultData"` // every value a string
}

// handleComplete is POST /_control/sessions/{sessionGuid}/complete.
func (s *Server) handleComplete(w http.ResponseWriter, r *http.Request) {
	var req completeRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err == nil && len(bytes.TrimSpace(body)) > 0 {
		err = decodeStrict(bytes.NewReader(body), &req)
	}
	if err == nil && req.PaymentResultData != nil && (req.Decision != "" || req.Amount != "") {
		err = errors.New("give either paymentResultData or decision and amount, not both")
	}
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "Invalid body: "+err.Error())
		return
	}
	var st *SessionStatus
	if req.PaymentResultData != nil {
		st, err = s.CompleteWithResult(r.PathValue("sessionGuid"), req.PaymentResultData)
	} else {
		st, err = s.Complete(r.PathValue("sessionGuid"), req.Decision, req.Amount)
	}
	writeControl(w, st, err)
}

// pcipalControl is the body of GET and PUT /_control/pcipal: the PCI Pal flow's PostMessage
// step, null when it has none.
type pcipalControl struct {
	PostMessage *pcipalstub.PostMessage `json:"postMessage"`
}

// handleGetPCIPal is GET /_control/pcipal.
func (s *Server) handleGetPCIPal(w http.ResponseWriter, _ *http.Request) {
	if s.pcipal == nil {
		writeMessage(w, http.StatusNotFound, "The stub has no PCI Pal stub.")
		return
	}
	writeJSON(w, http.StatusOK, pcipalControl{PostMessage: s.pcipal.PostMessage()})
}

// handlePutPCIPal is PUT /_control/pcipal: switch the flow's PostMessage step on (with its data
// and target origin) or off (null).
func (s *Server) handlePutPCIPal(w http.ResponseWriter, r *http.Request) {
	if s.pcipal == nil {
		writeMessage(w, http.StatusNotFound, "The stub has no PCI Pal stub.")
		return
	}
	var raw map[string]json.RawMessage
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, 64<<10), &raw); err != nil {
		writeMessage(w, http.StatusBadRequest, "Invalid body: "+err.Error())
		return
	}
	pm, ok := raw["postMessage"]
	if !ok || len(raw) != 1 {
		writeMessage(w, http.StatusBadRequest, `Invalid body: it must be {"postMessage": null | {"data": ..., "targetOrigin": "..."}}`)
		return
	}
	var req pcipalControl
	if err := decodeStrict(bytes.NewReader(pm), &req.PostMessage); err != nil {
		writeMessage(w, http.StatusBadRequest, "Invalid postMessage: "+err.Error())
		return
	}
	if err := s.pcipal.SetPostMessage(req.PostMessage); err != nil {
		writeMessage(w, http.StatusBadRequest, "Invalid postMessage: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, pcipalControl{PostMessage: s.pcipal.PostMessage()})
}

// handleExpire is POST /_control/sessions/{sessionGuid}/expire.
func (s *Server) handleExpire(w http.ResponseWriter, r *http.Request) {
	st, err := s.Expire(r.PathValue("sessionGuid"))
	writeControl(w, st, err)
}

// handleKeying is POST /_control/sessions/{sessionGuid}/keying.
func (s *Server) handleKeying(w http.ResponseWriter, r *http.Request) {
	st, err := s.Keying(r.PathValue("sessionGuid"))
	writeControl(w, st, err)
}

// writeControl answers a session control call with the status or the error.
func writeControl(w http.ResponseWriter, st *SessionStatus, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, st)
	case errors.Is(err, ErrSessionNotFound):
		writeMessage(w, http.StatusNotFound, "Session not found")
	case errors.Is(err, ErrSessionClosed):
		writeMessage(w, http.StatusConflict, "The session has already finished or expired.")
	default:
		writeMessage(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "vccstub: "))
	}
}

// handleListSessions is GET /_control/sessions.
func (s *Server) handleListSessions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Sessions())
}

// handleRevokeTokens is POST /_control/tokens/revoke.
func (s *Server) handleRevokeTokens(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int{"revoked": s.RevokeTokens()})
}

// handleStats is GET /_control/stats.
func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// handleResetStats is POST /_control/stats/reset.
func (s *Server) handleResetStats(w http.ResponseWriter, _ *http.Request) {
	s.ResetStats()
	writeJSON(w, http.StatusOK, s.Stats())
}
