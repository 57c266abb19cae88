package web

import (
	"net/http"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

// apiKeyView is an API key as the API shows it: never the hash; the plaintext only once, in the
// answer to the create or roll that made it.
type apiKeyView struct {
	Object    string         `json:"object"`
	ID        string         `json:"id"`
	Type      bridge.KeyType `json:"type"`
	Mode      bridge.Mode    `json:"mode"`
	Key       string         `json:"key,omitempty"`
	Last4     string         `json:"last4"`
	CreatedAt time.Time      `json:"createdAt"`
	ExpiresAt *time.Time     `json:"expiresAt,omitempty"`
	RevokedAt *time.Time     `json:"revokedAt,omitempty"`
	RolledTo  string         `json:"rolledTo,omitempty"`
}

func viewKey(k *bridge.APIKey, plain string) apiKeyView {
	v := apiKeyView{Object: "api_key", ID: k.ID, Type: k.Type, Mode: k.Mode, Key: plain, Last4: k.Last4,
		CreatedAt: k.CreatedAt, RolledTo: k.RolledTo}
	if !k.ExpiresAt.IsZero() {
		v.ExpiresAt = &k.ExpiresAt
	}
	if !k.RevokedAt.IsZero() {
		v.RevokedAt = &k.RevokedAt
	}
	return v
}

// createKeyRequest is the body of POST /api/merchants/api-keys.
type createKeyRequest struct {
	Type bridge.KeyType `json:"type"`
	Mode bridge.Mode    `json:"mode"`
}

// rollKeyRequest is the optional body of POST /api/merchants/api-keys/{id}/roll.
type rollKeyRequest struct {
	GraceSeconds *int `json:"graceSeconds"`
}

// rollKeyResponse is the new key and what became of the old one.
type rollKeyResponse struct {
	apiKeyView
	Rolled apiKeyView `json:"rolled"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	var req createKeyRequest
	if err := s.jsonBody(w, r, &req, false); err != nil {
		return err
	}
	switch {
	case req.Type == "":
		return bridge.Errorf(bridge.CodeValidationMissingField, "Missing required field \"type\"").WithParam("type")
	case req.Mode == "":
		return bridge.Errorf(bridge.CodeValidationMissingField, "Missing required field \"mode\"").WithParam("mode")
	}
	// The rules (mode, onboarding, rolled keys) are the key service's, shared with the CLI.
	plain, key, err := s.keys.CreateKeyAs(r.Context(), p, req.Type, req.Mode)
	if err != nil {
		return err
	}
	s.logger.InfoContext(r.Context(), "api key created", "merchant", p.Merchant.ID, "key", key.ID, "type", key.Type, "mode", key.Mode)
	writeJSON(w, http.StatusCreated, viewKey(key, plain))
	return nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	keys, err := s.keys.ListKeys(r.Context(), p.Merchant.ID, p.Key.Mode)
	if err != nil {
		return err
	}
	out := struct {
		Object string       `json:"object"`
		Data   []apiKeyView `json:"data"`
	}{Object: "list", Data: []apiKeyView{}}
	for _, k := range keys {
		out.Data = append(out.Data, viewKey(k, ""))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) rollKey(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	var req rollKeyRequest
	if err := s.jsonBody(w, r, &req, true); err != nil {
		return err
	}
	var grace time.Duration
	if req.GraceSeconds != nil {
		if *req.GraceSeconds < 0 || *req.GraceSeconds > 30*24*3600 {
			return bridge.Errorf(bridge.CodeValidationError, "graceSeconds must be from 0 to %d, got %d", 30*24*3600, *req.GraceSeconds).WithParam("graceSeconds")
		}
		// 0 means "end the old key now": the smallest grace the key service accepts.
		grace = max(time.Duration(*req.GraceSeconds)*time.Second, time.Nanosecond)
	}
	plain, key, rolled, err := s.keys.RollKeyAs(r.Context(), p, r.PathValue("id"), grace)
	if err != nil {
		return err
	}
	s.logger.InfoContext(r.Context(), "api key rolled", "merchant", p.Merchant.ID, "old", rolled.ID, "new", key.ID)
	writeJSON(w, http.StatusCreated, rollKeyResponse{apiKeyView: viewKey(key, plain), Rolled: viewKey(rolled, "")})
	return nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	// A key cannot revoke itself, nor the last active secret key: the key service's rules.
	key, err := s.keys.RevokeKeyAs(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.logger.InfoContext(r.Context(), "api key revoked", "merchant", p.Merchant.ID, "key", key.ID)
	writeJSON(w, http.StatusOK, viewKey(key, ""))
	return nil
}

// agentTokenRevocationView is the answer to DELETE /v1/agent_tokens/{agentId}.
type agentTokenRevocationView struct {
	Object    string    `json:"object"`
	AgentID   string    `json:"agentId"`
	Livemode  bool      `json:"livemode"`
	RevokedAt time.Time `json:"revokedAt"`
}

// revokeAgentTokens is DELETE /v1/agent_tokens/{agentId}: every token of the agent (this
// merchant, this key's mode) minted until now stops working, on every node and after restarts,
// and the agent's open sockets close (4401). Tokens minted afterwards work. Any secret key may
// do it, a rolled one in its grace window too: it only takes access away.
func (s *Server) revokeAgentTokens(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	agentID := r.PathValue("agentId")
	if err := notACredential("agentId", agentID); err != nil {
		return err
	}
	rec, err := s.keys.RevokeAgentTokens(r.Context(), p, agentID)
	if err != nil {
		return err
	}
	s.logger.InfoContext(r.Context(), "agent tokens revoked", "merchant", p.Merchant.ID, "mode", p.Key.Mode, "agent", agentID, "epoch", rec.Epoch)
	writeJSON(w, http.StatusOK, agentTokenRevocationView{Object: "agent_token_revocation", AgentID: agentID,
		Livemode: p.Key.Mode == bridge.ModeLive, RevokedAt: rec.RevokedAt})
	return nil
}
