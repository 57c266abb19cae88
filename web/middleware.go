package web

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	requestInfoKey
)

// requestInfo is what layers of one request learn for each other: the route pattern dispatch
// matched (for logs and metrics), the client's address, and how to free the request's
// unauthenticated slot once it has authenticated.
type requestInfo struct {
	route    string
	clientIP string
	release  func()
}

func infoOf(r *http.Request) *requestInfo {
	info, _ := r.Context().Value(requestInfoKey).(*requestInfo)
	return info
}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// validRequestID is what an incoming X-Request-Id must look like to be kept: short and inert, so
// it is safe in logs and headers.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,128}$`)

// withRequestID keeps a valid incoming X-Request-Id or makes one, puts it in the context and on
// the response before anything else can write.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		// A credential pasted as a request id would be echoed in the header, the body and every
		// log line of the request.
		if !validRequestID.MatchString(id) || Redact(id) != id {
			id = "req_" + bridge.RandomBase62(20)
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// statusRecorder remembers the status written, for the access log and panic recovery.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// Hijack lets the WebSocket upgrade through the recorder.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	r.status = http.StatusSwitchingProtocols
	return h.Hijack()
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logAndRecover writes one access-log line per request (never the query string: keys must not
// reach logs even when a client misuses a URL; method and path cut short) and turns a panic into internal_error with no
// internals in the body.
func (s *Server) logAndRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		info := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey, info))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.logger.ErrorContext(r.Context(), "panic serving request", "method", capText(r.Method, capMethod), "path", capText(r.URL.Path, capPath),
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					s.writeErrorBody(rec, r.Context(), bridge.Errorf(bridge.CodeInternalError, "An unexpected error occurred."))
				}
			}
			took := time.Since(start)
			s.metrics.observe(r.Method, info.route, rec.status, took)
			s.logger.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("method", capText(r.Method, capMethod)), slog.String("path", capText(r.URL.Path, capPath)),
				slog.String("route", info.route), slog.String("client", info.clientIP),
				slog.Int("status", rec.status), slog.Int("bytes", rec.bytes), slog.Float64("durationMs", float64(took.Microseconds())/1000))
		}()
		next.ServeHTTP(rec, r)
	})
}

// ContextLogHandler wraps h so every record logged with a request's context carries its
// request_id.
func ContextLogHandler(h slog.Handler) slog.Handler { return ctxHandler{h} }

type ctxHandler struct{ slog.Handler }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h ctxHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return ctxHandler{h.Handler.WithAttrs(as)}
}
func (h ctxHandler) WithGroup(n string) slog.Handler { return ctxHandler{h.Handler.WithGroup(n)} }
