package web

import (
	"net/http"
	"strings"

	"github.com/paybridge/paybridge/bridge"
)

// caller is who made a request: a key's principal and, for a browser caller with a publishable
// key, the agent its agent token names.
type caller struct {
	*bridge.Principal
	agent *bridge.AgentToken
}

// scope is what the caller may see: the whole merchant-mode for a secret key, one agent for a
// browser caller.
func (c *caller) scope() bridge.Scope {
	sc := c.Principal.Scope()
	if c.agent != nil {
		sc.AgentID = c.agent.AgentID
	}
	return sc
}

// bearer returns the key from "Authorization: Bearer <key>".
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, key, _ := strings.Cut(h, " ")
	key = strings.TrimSpace(key)
	if h == "" || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return "", bridge.Errorf(bridge.CodeAuthMissingBearer, "No Authorization: Bearer header was provided.")
	}
	return key, nil
}

// authMemo remembers a request's authentication, so the idempotency layer (which authorizes
// before it may replay anything) and the handler check the key and the agent token once.
type authMemo struct {
	done bool
	p    *bridge.Principal
	err  error

	callerDone bool // secretOrAgent has run
	caller     *caller
	callerErr  error
}

// authorizer is an endpoint's own authorization check. The idempotency layer runs it before
// replaying a stored response, so a replay is never an answer the caller could not get afresh.
type authorizer func(r *http.Request) (*caller, error)

// principal adapts a check that yields a key's principal to an authorizer.
func principal(check func(r *http.Request) (*bridge.Principal, error)) authorizer {
	return func(r *http.Request) (*caller, error) {
		p, err := check(r)
		if err != nil {
			return nil, err
		}
		return &caller{Principal: p}, nil
	}
}

// authenticate resolves the request's API key.
func (s *Server) authenticate(r *http.Request) (*bridge.Principal, error) {
	var memo *authMemo
	if info := infoOf(r); info != nil {
		memo = &info.auth
	}
	if memo != nil && memo.done {
		return memo.p, memo.err
	}
	key, err := bearer(r)
	var p *bridge.Principal
	if err == nil {
		p, err = s.keys.Authenticate(r.Context(), key)
	}
	if memo != nil {
		memo.done, memo.p, memo.err = true, p, err
	}
	return p, err
}

// secret authenticates a request to a secret-only endpoint.
func (s *Server) secret(r *http.Request) (*bridge.Principal, error) {
	p, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	if p.Key.Type != bridge.KeySecret {
		return nil, bridge.Errorf(bridge.CodeAuthKeyTypeForbidden, "%s %s needs a secret key; a publishable key was used.", r.Method, r.URL.Path).
			WithFix("Call this endpoint from your backend with your vp_sk_" + string(p.Key.Mode) + "_* key; publishable keys are for the agent's browser.")
	}
	return p, nil
}

// keyManager authenticates a key-management endpoint (create, roll, revoke): a secret key that
// has not been rolled.
func (s *Server) keyManager(r *http.Request) (*bridge.Principal, error) {
	p, err := s.secret(r)
	if err != nil {
		return nil, err
	}
	if err := p.CanManageKeys(); err != nil {
		return nil, err
	}
	return p, nil
}

// secretOrAgent authenticates an endpoint open to a secret key or to a browser holding a
// publishable key (from an allowed Origin) and an agent token in X-Agent-Token. The answer is
// memoised for the request like authenticate's.
func (s *Server) secretOrAgent(r *http.Request) (*caller, error) {
	var memo *authMemo
	if info := infoOf(r); info != nil {
		memo = &info.auth
	}
	if memo != nil && memo.callerDone {
		return memo.caller, memo.callerErr
	}
	c, err := s.checkSecretOrAgent(r)
	if memo != nil {
		memo.callerDone, memo.caller, memo.callerErr = true, c, err
	}
	return c, err
}

// checkSecretOrAgent is secretOrAgent without the memo.
func (s *Server) checkSecretOrAgent(r *http.Request) (*caller, error) {
	p, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	if p.Key.Type == bridge.KeySecret {
		return &caller{Principal: p}, nil
	}
	if err := checkOrigin(r, p.Merchant); err != nil {
		return nil, err
	}
	token := r.Header.Get("X-Agent-Token")
	if token == "" {
		return nil, bridge.Errorf(bridge.CodeAuthMissingBearer, "A publishable key needs an agent token in the X-Agent-Token header.").
			WithFix("Mint an agent token with POST /v1/agent_tokens from your backend and send it as X-Agent-Token, or call from your backend with a secret key.")
	}
	t, err := s.keys.VerifyAgentToken(p, token)
	if err != nil {
		return nil, err
	}
	return &caller{Principal: p, agent: t}, nil
}

// checkOrigin enforces the merchant's allowedOrigins for browser calls: publishable keys are only
// for the merchant's own agent desktops.
func checkOrigin(r *http.Request, m *bridge.Merchant) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return bridge.Errorf(bridge.CodeOriginForbidden, "A publishable key was used without an Origin header.").
			WithFix("Publishable keys work only from a browser page on one of the merchant's allowedOrigins; call from your backend with a secret key otherwise.")
	}
	if !m.AllowsOrigin(origin) {
		return bridge.Errorf(bridge.CodeOriginForbidden, "Origin %s is not in the merchant's allowed origins.", origin)
	}
	return nil
}
