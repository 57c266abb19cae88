// Package pcipalstub is an in-process stand-in for PCI Pal's agent view, faithful to what
// shared/UPSTREAM.md documents: a form POST of the two provider tokens to the framed iframe URL
// shows a masked card capture page, and an expired, unknown or wrongly authorised session answers
// with X-Frame-Options: deny, which the browser reports as "Refused to display ... in a frame".
//
// The VCC stub registers a provider session here for every session it starts; tests, the demo and
// `paybridge stubs` serve the Server over HTTP.
package pcipalstub

import (
	"crypto/subtle"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/pcipal"
)

// Defaults for Options.
const (
	DefaultLifetime = 15 * time.Minute
	DefaultTenantID = "paybridge-sandbox"
)

// forgetAfter is how long after its end a session is still remembered; Register forgets older
// ones so a long-running stub does not grow without bound.
const forgetAfter = 24 * time.Hour

// DenyText is the body of the response that refuses to be framed.
const DenyText = "This PCI Pal session has expired or is not valid."

// ErrUnknownSession is returned for a session id that was never registered.
var ErrUnknownSession = errors.New("pcipalstub: unknown session")

// Options configure a Server.
type Options struct {
	Clock    bridge.Clock  // nil: bridge.SystemClock
	Lifetime time.Duration // how long a provider session can be shown; 0: DefaultLifetime
	TenantID string        // the tenant in iframe URLs; "": DefaultTenantID
	Logger   *slog.Logger  // nil: discard
}

// Session is a provider session as the VCC stub registers it. The tokens are secrets: the stub
// only compares them and never shows or logs them.
type Session struct {
	ID           string // the provider session guid
	BearerToken  string
	RefreshToken string
	Amount       string // for display, e.g. "12.40"
	Currency     string
	Reference    string
}

// session is a registered Session with its life.
type session struct {
	Session
	expiresAt time.Time
	decision  string // set by Complete
}

// Server is the stub's HTTP handler and the Go API the VCC stub drives.
type Server struct {
	clock    bridge.Clock
	lifetime time.Duration
	tenantID string
	log      *slog.Logger
	mux      *http.ServeMux

	mu       sync.Mutex
	baseURL  string
	sessions map[string]*session
}

// New returns a Server with opts' defaults filled in.
func New(opts Options) *Server {
	s := &Server{
		clock:    opts.Clock,
		lifetime: opts.Lifetime,
		tenantID: opts.TenantID,
		log:      opts.Logger,
		sessions: map[string]*session{},
	}
	if s.clock == nil {
		s.clock = bridge.SystemClock{}
	}
	if s.lifetime <= 0 {
		s.lifetime = DefaultLifetime
	}
	if s.tenantID == "" {
		s.tenantID = DefaultTenantID
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /session/{tenantId}/view/{sessionId}/framed", s.handleFramed)
	// A GET cannot carry the tokens, so it never shows a session.
	s.mux.HandleFunc("GET /session/{tenantId}/view/{sessionId}/framed", s.handleDenyGet)
	return s
}

// TenantID returns the tenant the stub's iframe URLs carry.
func (s *Server) TenantID() string { return s.tenantID }

// Lifetime returns how long a registered session lasts.
func (s *Server) Lifetime() time.Duration { return s.lifetime }

// SetBaseURL sets the URL the stub is served at, from which iframe URLs are built. Call it before
// Register.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = u
}

// BaseURL returns the URL set by SetBaseURL.
func (s *Server) BaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// Register makes sess showable until the stub's lifetime has passed on its clock, and returns
// its iframe URL. Registering an id again replaces the earlier session.
func (s *Server) Register(sess Session) (iframeURL string) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, old := range s.sessions {
		if now.After(old.expiresAt.Add(forgetAfter)) {
			delete(s.sessions, id)
		}
	}
	s.sessions[sess.ID] = &session{Session: sess, expiresAt: now.Add(s.lifetime)}
	s.log.Info("pcipalstub: session registered", "providerSessionGuid", sess.ID)
	return pcipal.FramedURL(s.baseURL, s.tenantID, sess.ID)
}

// Expire ends session id now: its iframe URL answers with X-Frame-Options: deny from then on.
func (s *Server) Expire(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return ErrUnknownSession
	}
	if now := s.clock.Now(); now.Before(sess.expiresAt) {
		sess.expiresAt = now
	}
	s.log.Info("pcipalstub: session expired", "providerSessionGuid", id)
	return nil
}

// Complete records the payment decision of session id, which the capture page then shows.
func (s *Server) Complete(id, decision string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return ErrUnknownSession
	}
	sess.decision = decision
	s.log.Info("pcipalstub: session completed", "providerSessionGuid", id, "decision", decision)
	return nil
}

// Expired reports whether session id can no longer be shown: it was expired by Expire or by its
// lifetime on the stub's clock, or it was never registered.
func (s *Server) Expired(id string) bool {
	at, found := s.ExpiresAt(id)
	return !found || !s.clock.Now().Before(at)
}

// ExpiresAt returns when session id stops (or stopped) being showable; found is false for a
// session that was never registered.
func (s *Server) ExpiresAt(id string) (at time.Time, found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, found := s.sessions[id]
	if !found {
		return time.Time{}, false
	}
	return sess.expiresAt, true
}

// ServeHTTP implements http.Handler. Every response forbids caching: pages hold session details.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// handleFramed shows the capture page to a POST carrying the session's two tokens.
func (s *Server) handleFramed(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	tenantID, id := r.PathValue("tenantId"), r.PathValue("sessionId")
	bearer, refresh := pcipal.TokensFromRequest(r)

	s.mu.Lock()
	sess, found := s.sessions[id]
	var view session
	if found {
		view = *sess
	}
	now := s.clock.Now()
	s.mu.Unlock()

	var reason string
	switch {
	case tenantID != s.tenantID:
		reason = "unknown tenant"
	case !found:
		reason = "unknown session"
	case bearer == "" || refresh == "":
		reason = "missing tokens"
	case !equal(bearer, view.BearerToken) || !equal(refresh, view.RefreshToken):
		reason = "wrong tokens"
	case !now.Before(view.expiresAt):
		reason = "session expired"
	}
	if reason != "" {
		s.log.Info("pcipalstub: frame refused", "providerSessionGuid", id, "reason", reason)
		deny(w)
		return
	}

	page := capturePage{
		SessionID: view.ID,
		Amount:    view.Amount,
		Currency:  view.Currency,
		Reference: view.Reference,
		Decision:  view.decision,
		State:     pcipal.StateCapture,
		Source:    pcipal.ReadyMessageSource,
		Type:      pcipal.ReadyMessageType,
	}
	if view.decision != "" {
		page.State = pcipal.StateDone
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := captureTemplate.Execute(w, page); err != nil {
		s.log.Error("pcipalstub: render capture page", "err", err)
	}
}

// handleDenyGet refuses a GET of the framed URL the way PCI Pal refuses an expired session.
func (s *Server) handleDenyGet(w http.ResponseWriter, r *http.Request) {
	s.log.Info("pcipalstub: frame refused", "providerSessionGuid", r.PathValue("sessionId"), "reason", "GET without tokens")
	deny(w)
}

// deny answers so that a browser refuses to show the response in a frame. PCI Pal's status code
// for this is not documented; only the header is.
func deny(w http.ResponseWriter) {
	w.Header().Set("X-Frame-Options", "deny")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, denyPage)
}

// equal compares a presented token with the registered one in constant time.
func equal(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

const denyPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PCI Pal</title></head>
<body><p>` + DenyText + `</p></body></html>
`

// capturePage is what the capture page shows. It has no field for a token, so none can leak.
type capturePage struct {
	SessionID, Amount, Currency, Reference string
	Decision, State                        string
	Source, Type                           string
}

var captureTemplate = template.Must(template.New("capture").Parse(`<!doctype html>
<html lang="en" data-pcipal-session="{{.SessionID}}" data-pcipal-state="{{.State}}">
<head>
<meta charset="utf-8">
<title>PCI Pal secure capture (stub)</title>
<style>
 body { font: 15px/1.4 system-ui, sans-serif; margin: 0; padding: 16px; background: #f6f8fa; color: #1f2328; }
 h1 { font-size: 17px; margin: 0 0 12px; }
 .amount { font-size: 22px; font-weight: 600; }
 .field { margin: 10px 0; }
 .field label { display: block; font-size: 12px; color: #59636e; }
 .field output { display: block; padding: 6px 8px; border: 1px solid #d1d9e0; border-radius: 4px; background: #fff; font-family: ui-monospace, monospace; }
 .status { margin-top: 12px; color: #59636e; }
 .decision { margin-top: 12px; font-weight: 600; }
 .session { margin-top: 16px; font-size: 11px; color: #818b98; }
</style>
</head>
<body>
<h1>PCI Pal secure capture (stub)</h1>
<div class="amount"><span id="amount">{{.Amount}}</span> <span id="currency">{{.Currency}}</span></div>
{{if .Reference}}<div>Reference: <span id="reference">{{.Reference}}</span></div>{{end}}
<div class="field"><label>Card number</label><output id="card-number">•••• •••• •••• ••••</output></div>
<div class="field"><label>Expiry</label><output id="card-expiry">•• / ••</output></div>
<div class="field"><label>CVV</label><output id="card-cvv">•••</output></div>
{{if .Decision}}<div class="decision" id="decision">Payment decision: {{.Decision}}</div>
{{else}}<div class="status" id="status">waiting for the customer to key on the phone</div>
{{end}}<div class="session">Session <span id="session-id">{{.SessionID}}</span></div>
<script>
window.addEventListener("load", function () {
  parent.postMessage({source: {{.Source}}, type: {{.Type}}, sessionId: {{.SessionID}}}, "*");
});
</script>
</body>
</html>
`))
