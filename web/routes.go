package web

import (
	"net/http"

	"github.com/paybridge/paybridge/bridge"
)

// routes registers every endpoint of DESIGN section 4, in one place, each with its
// authorization: the authenticated middleware checks it once and hands the caller on in the
// request context, to the idempotency layer and the handler alike. The agent socket, the OAuth
// token endpoint and VCC's webhook authenticate themselves (a key in the query, client
// credentials, VCC's bearer or signature).
func (s *Server) routes(mux *http.ServeMux) {
	secret, secretOrAgent, keyManager := principal(s.secret), authorizer(s.secretOrAgent), principal(s.keyManager)
	mux.Handle("POST /v1/sessions", s.handle(s.authenticated(secretOrAgent, s.idempotent(s.createSession))))
	mux.Handle("GET /v1/sessions", s.handle(s.authenticated(secret, s.listSessions)))
	mux.Handle("GET /v1/sessions/{id}", s.handle(s.authenticated(secret, s.getSession)))
	mux.Handle("POST /v1/sessions/{id}/cancel", s.handle(s.authenticated(secret, s.idempotent(s.cancelSession))))
	mux.Handle("POST /v1/sessions/{id}/restart", s.handle(s.authenticated(secretOrAgent, s.idempotent(s.restartSession))))
	mux.Handle("POST /v1/agent_tokens", s.handle(s.authenticated(secret, s.idempotent(s.createAgentToken))))
	mux.Handle("DELETE /v1/agent_tokens/{agentId}", s.handle(s.authenticated(secret, s.revokeAgentTokens)))
	mux.Handle("GET /v1/ws", s.handle(s.agentSocket))
	mux.Handle("GET /v1/events", s.handle(s.authenticated(secret, s.listEvents)))
	mux.Handle("GET /v1/events/{id}", s.handle(s.authenticated(secret, s.getEvent)))
	mux.Handle("POST /v1/events/{id}/resend", s.handle(s.authenticated(secret, s.idempotent(s.resendEvent))))

	mux.Handle("POST /api/merchants/api-keys", s.handle(s.authenticated(keyManager, s.idempotent(s.createKey))))
	mux.Handle("GET /api/merchants/api-keys", s.handle(s.authenticated(secret, s.listKeys)))
	mux.Handle("POST /api/merchants/api-keys/{id}/roll", s.handle(s.authenticated(keyManager, s.idempotent(s.rollKey))))
	mux.Handle("DELETE /api/merchants/api-keys/{id}", s.handle(s.authenticated(keyManager, s.revokeKey)))

	mux.Handle("POST /oauth/token", s.handle(s.oauthToken))
	mux.Handle("POST /v1/webhooks/vcc", s.handle(s.vccWebhook))

	mux.Handle("GET /healthz", s.handle(s.healthz))
	mux.Handle("GET /readyz", s.handle(s.readyz))
	if !s.metricsElsewhere {
		mux.Handle("GET /metrics", s.metrics.handler())
	}
	mux.Handle("GET /docs/error-codes", s.handle(s.errorCodeDocs))
	mux.Handle("GET /openapi.json", s.handle(s.openAPI))
	mux.Handle("GET /static/", s.staticFiles())
	if s.demo != nil {
		mux.Handle("/demo/", s.demo)
	}
}

// dispatch routes r through mux, answering unknown paths and methods with the error envelope
// rather than the mux's plain-text 404/405, and records the matched pattern for logs and
// metrics. The per-IP limit has already run, for every request, matched or not.
func (s *Server) dispatch(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern == "" {
			s.writeError(w, r, bridge.Errorf(bridge.CodeValidationError, "No endpoint %s %s.", capText(r.Method, capMethod), capText(r.URL.Path, capPath)).
				WithFix("Check the method and path against "+s.publicBase+"/openapi.json."))
			return
		}
		if info := infoOf(r); info != nil {
			info.route = pattern
		}
		mux.ServeHTTP(w, r)
	})
}
