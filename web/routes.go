package web

import (
	"net/http"

	"github.com/paybridge/paybridge/bridge"
)

// routes registers every endpoint of DESIGN section 4, in one place.
func (s *Server) routes(mux *http.ServeMux) {
	mux.Handle("POST /v1/sessions", s.handle(s.createSession))
	mux.Handle("GET /v1/sessions", s.handle(s.listSessions))
	mux.Handle("GET /v1/sessions/{id}", s.handle(s.getSession))
	mux.Handle("POST /v1/sessions/{id}/cancel", s.handle(s.cancelSession))
	mux.Handle("POST /v1/sessions/{id}/restart", s.handle(s.restartSession))
	mux.Handle("POST /v1/agent_tokens", s.handle(s.createAgentToken))
	mux.Handle("GET /v1/ws", s.handle(s.agentSocket))

	mux.Handle("GET /healthz", s.handle(s.healthz))
	mux.Handle("GET /readyz", s.handle(s.readyz))
	mux.Handle("GET /docs/error-codes", s.handle(s.errorCodeDocs))
	mux.Handle("GET /static/", staticFiles())
	if s.demo != nil {
		mux.Handle("/demo/", s.demo)
	}
}

// dispatch routes r through mux, answering unknown paths and methods with the error envelope
// rather than the mux's plain-text 404/405.
func (s *Server) dispatch(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			s.writeError(w, r, bridge.Errorf(bridge.CodeValidationError, "No endpoint %s %s.", r.Method, r.URL.Path).
				WithFix("Check the method and path against "+s.publicBase+"/openapi.json."))
			return
		}
		mux.ServeHTTP(w, r)
	})
}
