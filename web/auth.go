package web

import (
	"context"
	"errors"
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
func (c *caller) scope() bridge.AgentRef {
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

// authorizer is an endpoint's authorization check. The authenticated middleware runs it once per
// request, before the handler and before the idempotency layer may replay anything, so a replay
// is never an answer the caller could not get afresh.
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

type callerKey struct{}

// authenticated runs check once for the request and, when it passes, serves h with the caller in
// the request context (callerOf). A failure is answered at once: nothing of the body is read
// before the caller is known. Passing also frees the request's unauthenticated slot.
func (s *Server) authenticated(check authorizer, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := check(r)
		if err != nil {
			return err
		}
		authenticatedNow(r)
		return h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	}
}

// callerOf returns the caller the authenticated middleware put in r's context. Handlers are only
// reachable through it, so a missing caller is a wiring mistake, answered as internal_error.
func callerOf(r *http.Request) (*caller, error) {
	c, _ := r.Context().Value(callerKey{}).(*caller)
	if c == nil {
		return nil, errors.New("web: handler served without the authenticated middleware")
	}
	return c, nil
}

// principalOf is callerOf for endpoints that need only the key's principal.
func principalOf(r *http.Request) (*bridge.Principal, error) {
	c, err := callerOf(r)
	if err != nil {
		return nil, err
	}
	return c.Principal, nil
}

// authenticate resolves the request's API key.
func (s *Server) authenticate(r *http.Request) (*bridge.Principal, error) {
	key, err := bearer(r)
	if err != nil {
		return nil, err
	}
	return s.keys.Authenticate(r.Context(), key)
}

// secret authenticates a request to a secret-only endpoint.
func (s *Server) secret(r *http.Request) (*bridge.Principal, error) {
	p, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	if p.Key.Type != bridge.KeySecret {
		return nil, bridge.Errorf(bridge.CodeAuthKeyTypeForbidden, "%s %s needs a secret key; a publishable key was used.", r.Method, capText(r.URL.Path, capPath)).
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
// publishable key (from an allowed Origin) and an agent token in X-Agent-Token.
func (s *Server) secretOrAgent(r *http.Request) (*caller, error) {
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
	t, err := s.keys.VerifyAgentToken(r.Context(), p, token)
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
		return bridge.Errorf(bridge.CodeOriginForbidden, "Origin %s is not in the merchant's allowed origins.", capText(origin, capInputText))
	}
	return nil
}
