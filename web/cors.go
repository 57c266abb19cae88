package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/paybridge/paybridge/bridge"
)

// browserEndpoint reports whether a path may be called from an agent desktop with a publishable
// key (DESIGN section 4): creating a session, and restarting one.
func browserEndpoint(path string) bool {
	if path == "/v1/sessions" {
		return true
	}
	rest, ok := strings.CutPrefix(path, "/v1/sessions/")
	return ok && strings.HasSuffix(rest, "/restart") && strings.Count(rest, "/") == 1
}

// allowedOrigin reports whether any merchant allows origin. A preflight carries no key, so it
// cannot be matched to one merchant; the real request is then checked against its own merchant.
func (s *Server) allowedOrigin(ctx context.Context, origin string) bool {
	if origin == "" || s.merchants == nil {
		return false
	}
	all, err := s.merchants.Merchants(ctx)
	if err != nil {
		return false
	}
	for _, m := range all {
		if m.AllowsOrigin(origin) {
			return true
		}
	}
	return false
}

// cors answers preflights for the browser endpoints and marks their responses readable by the
// calling page, for allowed origins only.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !browserEndpoint(r.URL.Path) {
			if r.Method == http.MethodOptions && origin != "" {
				s.writeError(w, r, bridge.Errorf(bridge.CodeOriginForbidden, "%s is not callable from a browser.", r.URL.Path).
					WithFix("Only POST /v1/sessions and POST /v1/sessions/{id}/restart accept browser calls; call the rest from your backend with a secret key."))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		allowed := s.allowedOrigin(r.Context(), origin)
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Idempotent-Replayed")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !allowed {
				s.writeError(w, r, bridge.Errorf(bridge.CodeOriginForbidden, "Origin %s is not in any merchant's allowed origins.", truncate(origin, 200)))
				return
			}
			h.Set("Access-Control-Allow-Methods", "POST")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Agent-Token, Idempotency-Key, X-Request-Id")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
