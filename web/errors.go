package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/paybridge/paybridge/bridge"
)

// ErrorBody is the one error envelope of the API (DESIGN section 5).
type ErrorBody struct {
	Error     string      `json:"error"`
	Code      bridge.Code `json:"code"`
	Fix       string      `json:"fix"`
	Docs      string      `json:"docs"`
	Param     string      `json:"param,omitempty"`
	RequestID string      `json:"requestId"`
}

// handlerFunc is an HTTP handler that returns its error instead of writing it, so every error
// goes through writeError (tsweb style).
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts h to http.Handler.
func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// writeError answers with err's public parts and logs its private cause. Anything that is not a
// *bridge.Error becomes internal_error with a generic message.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := bridge.AsError(err)
	info := bridge.Info(e.Code)
	level := slog.LevelInfo
	if info.Status >= 500 {
		level = slog.LevelError
	}
	s.logger.Log(r.Context(), level, "request failed", "method", capText(r.Method, capMethod), "path", capText(r.URL.Path, capPath),
		"status", info.Status, "code", e.Code, "err", err)
	s.writeErrorBody(w, r.Context(), e)
}

func (s *Server) writeErrorBody(w http.ResponseWriter, ctx context.Context, e *bridge.Error) {
	info := bridge.Info(e.Code)
	msg := e.Message
	if msg == "" {
		msg = info.Description
	}
	// Messages and params may quote request input; a credential a caller pasted there is not
	// echoed back (it may be on its way into the caller's own logs).
	writeJSON(w, info.Status, ErrorBody{
		Error: Redact(msg), Code: info.Code, Fix: Redact(e.PublicFix()), Docs: s.docsURL(info.Code),
		Param: Redact(e.Param), RequestID: RequestID(ctx),
	})
}

func (s *Server) docsURL(code bridge.Code) string { return s.docsBase + "#" + string(code) }

// WriteError answers err with the error envelope, as every handler of the server does. It is for
// handlers mounted on the server from outside (the demo desktop), so their errors look the same.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeError(w, r, err)
}

// WriteJSON writes v as the JSON body with status, uncached, as the server's own handlers do.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// writeJSON writes v as the JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		body = []byte(`{"error":"An unexpected error occurred.","code":"internal_error"}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
