package web

import (
	"net/http"
	"strings"

	"github.com/paybridge/paybridge/bridge"
)

// routes registers every endpoint of DESIGN section 4, in one place. An idempotent endpoint
// names its authorization check twice, for the idempotency layer and in the handler; the
// second is memoised.
func (s *Server) routes(mux *http.ServeMux) {
	mux.Handle("POST /v1/sessions", s.handle(s.idempotent(s.secretOrAgent, s.createSession)))
	mux.Handle("GET /v1/sessions", s.handle(s.listSessions))
	mux.Handle("GET /v1/sessions/{id}", s.handle(s.getSession))
	mux.Handle("POST /v1/sessions/{id}/cancel", s.handle(s.idempotent(principal(s.secret), s.cancelSession)))
	mux.Handle("POST /v1/sessions/{id}/restart", s.handle(s.idempotent(s.secretOrAgent, s.restartSession)))
	mux.Handle("POST /v1/agent_tokens", s.handle(s.idempotent(principal(s.secret), s.createAgentToken)))
	mux.Handle("GET /v1/ws", s.handle(s.agentSocket))

	mux.Handle("POST /api/merchants/api-keys", s.handle(s.idempotent(principal(s.keyManager), s.createKey)))
	mux.Handle("GET /api/merchants/api-keys", s.handle(s.listKeys))
	mux.Handle("POST /api/merchants/api-keys/{id}/roll", s.handle(s.idempotent(principal(s.keyManager), s.rollKey)))
	mux.Handle("DELETE /api/merchants/api-keys/{id}", s.handle(s.revokeKey))

	mux.Handle("POST /oauth/token", s.handle(s.oauthToken))
	mux.Handle("POST /v1/webhooks/vcc", s.handle(s.vccWebhook))

	mux.Handle("GET /healthz", s.handle(s.healthz))
	mux.Handle("GET /readyz", s.handle(s.readyz))
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.Handle("GET /docs/error-codes", s.handle(s.errorCodeDocs))
	mux.Handle("GET /openapi.json", s.handle(s.openAPI))
	mux.Handle("GET /static/", s.staticFiles())
	if s.demo != nil {
		mux.Handle("/demo/", s.demo)
	}
}

// dispatch routes r through mux, answering unknown paths and methods with the error envelope
// rather than the mux's plain-text 404/405. API calls are metered per client IP first.
func (s *Server) dispatch(mux *http.ServeMux) http.Handler {
	metered := s.limitPerIP(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern == "" {
			s.writeError(w, r, bridge.Errorf(bridge.CodeValidationError, "No endpoint %s %s.", r.Method, r.URL.Path).
				WithFix("Check the method and path against "+s.publicBase+"/openapi.json."))
			return
		}
		if info := infoOf(r); info != nil {
			info.route = pattern
		}
		if apiPath(r.URL.Path) {
			metered.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// apiPath reports whether a path is part of the metered API (not docs, health, assets or demo).
func apiPath(p string) bool {
	return strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/oauth/")
}
