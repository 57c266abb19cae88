// Package pcipalstub is an in-process stand-in for PCI Pal's agent view, faithful to what
// shared/UPSTREAM.md documents:
//
//   - A form POST of the two provider tokens to the framed iframe URL logs the browser in: it
//     answers an interstitial that sets the login cookies (pcipal-auth, and pcipal-auth-expiry as
//     PCI Pal's own client names it), refreshes the login with POST /refreshlogon and navigates
//     on to the capture page. That is two navigations in the frame per attempt.
//   - The capture page keeps its login alive with a periodic POST /refreshlogon while it is open.
//     A visitor without a valid login is sent to / (the sign-in page).
//   - An expired, unknown or wrongly authorised session answers with X-Frame-Options: deny,
//     which the browser reports as "Refused to display ... in a frame".
//   - Like live PCI Pal, the page posts nothing to its parent window, unless the payment flow has
//     a PostMessage step (Options.PostMessage, SetPostMessage): then the capture page runs
//     window.parent.postMessage(data, targetOrigin) with exactly the configured data once it has
//     loaded.
//
// The VCC stub registers a provider session here for every session it starts; tests, the demo and
// `paybridge stubs` serve the Server over HTTP (Mount adds its routes to a shared mux).
package pcipalstub

import (
	"crypto/subtle"
	"errors"
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
	DefaultLifetime      = 15 * time.Minute
	DefaultTenantID      = "paybridge-sandbox"
	DefaultLoginLifetime = 20 * time.Minute
	DefaultLoginRefresh  = time.Minute
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
	// LoginLifetime is how long a login lasts without a refresh (PCI Pal logs out after a long
	// idle time); 0: DefaultLoginLifetime.
	LoginLifetime time.Duration
	// LoginRefresh is how often an open capture page refreshes its login; 0: DefaultLoginRefresh.
	LoginRefresh time.Duration
	// PostMessage is the payment flow's PostMessage step; nil (the default, as live PCI Pal
	// without that step) posts nothing to the parent window.
	PostMessage *PostMessage
}

// Session is a provider session as the VCC stub registers it. The tokens are secrets: the stub
// only compares them and never shows or logs them.
type Session struct {
	ID             string // the provider session guid
	VCCSessionGUID string // VCC's sessionGuid, shown on the capture page for the control API
	BearerToken    string
	RefreshToken   string
	Amount         string // for display, as the flow was given it, e.g. "12.40"
	Currency       string
	Reference      string
}

// session is a registered Session with its life.
type session struct {
	Session
	expiresAt time.Time
	decision  string // set by Complete
}

// Stats counts what the stub's pages saw since it started.
type Stats struct {
	FramePosts     int `json:"framePosts"`     // form POSTs into a framed URL, refused ones too
	Refused        int `json:"refused"`        // answers with X-Frame-Options: deny
	Logins         int `json:"logins"`         // interstitials served (accepted form POSTs)
	LoginRefreshes int `json:"loginRefreshes"` // successful POST /refreshlogon
	CapturePages   int `json:"capturePages"`   // capture pages served
	SignedOut      int `json:"signedOut"`      // visitors without a valid login sent to /
}

// Server is the stub's HTTP handler and the Go API the VCC stub drives.
type Server struct {
	clock         bridge.Clock
	lifetime      time.Duration
	tenantID      string
	log           *slog.Logger
	loginLifetime time.Duration
	loginRefresh  time.Duration
	mux           *http.ServeMux

	mu          sync.Mutex
	baseURL     string
	sessions    map[string]*session
	logins      map[string]*login
	postMessage *PostMessage
	stats       Stats
}

// New returns a Server with opts' defaults filled in. An invalid opts.PostMessage panics, since
// it is a programming error of the caller.
func New(opts Options) *Server {
	s := &Server{
		clock:         opts.Clock,
		lifetime:      opts.Lifetime,
		tenantID:      opts.TenantID,
		log:           opts.Logger,
		loginLifetime: opts.LoginLifetime,
		loginRefresh:  opts.LoginRefresh,
		sessions:      map[string]*session{},
		logins:        map[string]*login{},
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
	if s.loginLifetime <= 0 {
		s.loginLifetime = DefaultLoginLifetime
	}
	if s.loginRefresh <= 0 {
		s.loginRefresh = DefaultLoginRefresh
	}
	if err := s.SetPostMessage(opts.PostMessage); err != nil {
		panic(err)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST "+framedPattern, s.handleFramed)
	// A GET cannot carry the tokens, so it never shows a session.
	s.mux.HandleFunc("GET "+framedPattern, s.handleDenyGet)
	s.mux.HandleFunc("GET "+capturePattern, s.handleCapture)
	s.mux.HandleFunc("POST "+RefreshLogonPath, s.handleRefreshLogon)
	s.mux.HandleFunc("GET /{$}", s.handleSignIn)
	return s
}

// Paths the stub serves besides the framed URLs.
const (
	RefreshLogonPath = "/refreshlogon" // POST: extends the browser's login
	framedPattern    = "/session/{tenantId}/view/{sessionId}/framed"
	capturePattern   = "/session/{tenantId}/view/{sessionId}/capture"
)

// Mount routes everything the stub serves (its framed and capture pages under /session/, POST
// /refreshlogon and the sign-in page at /) on mux to s, for serving it next to other handlers on
// one address. A catch-all "/" of mux keeps every other path.
func (s *Server) Mount(mux *http.ServeMux) {
	mux.Handle("/session/", s)
	mux.Handle("POST "+RefreshLogonPath, s)
	mux.Handle("GET /{$}", s)
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
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
	s.log.Info("pcipalstub: session registered", "providerSessionGuid", sess.ID, "sessionGuid", sess.VCCSessionGUID)
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

// Complete records the payment decision of session id (or any short label of the result), which
// the capture page then shows.
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

// handleFramed logs a POST carrying the session's two tokens in and answers the interstitial
// that goes on to the capture page; anything else is refused.
func (s *Server) handleFramed(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	tenantID, id := r.PathValue("tenantId"), r.PathValue("sessionId")
	bearer, refresh := pcipal.TokensFromRequest(r)

	s.mu.Lock()
	s.stats.FramePosts++
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
		s.refuse(w, id, reason)
		return
	}

	l := s.logIn(w, r, id, now)
	s.log.Info("pcipalstub: logged in", "providerSessionGuid", id, "loginExpiresAt", l.expiresAt)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	page := interstitialPage{SessionID: id, Next: captureURL(r.URL.EscapedPath())}
	if err := interstitialTemplate.Execute(w, page); err != nil {
		s.log.Error("pcipalstub: render interstitial", "err", err)
	}
}

// handleCapture shows the capture page to a browser whose login covers the session.
func (s *Server) handleCapture(w http.ResponseWriter, r *http.Request) {
	tenantID, id := r.PathValue("tenantId"), r.PathValue("sessionId")
	now := s.clock.Now()
	if !s.loggedIn(r, id, now) {
		s.signOut(w, r, id)
		return
	}
	s.mu.Lock()
	sess, found := s.sessions[id]
	var view session
	if found {
		view = *sess
	}
	pm := s.postMessage
	s.mu.Unlock()
	switch {
	case tenantID != s.tenantID:
		s.refuse(w, id, "unknown tenant")
		return
	case !found:
		s.refuse(w, id, "unknown session")
		return
	case !now.Before(view.expiresAt):
		s.refuse(w, id, "session expired")
		return
	}

	page := capturePage{
		SessionID:      view.ID,
		VCCSessionGUID: view.VCCSessionGUID,
		Amount:         view.Amount,
		Currency:       view.Currency,
		Reference:      view.Reference,
		Decision:       view.decision,
		State:          pcipal.StateCapture,
		RefreshMs:      s.loginRefresh.Milliseconds(),
	}
	if view.decision != "" {
		page.State = pcipal.StateDone
	}
	if pm != nil {
		data, err := pm.dataFor(view.ID)
		if err != nil {
			s.log.Error("pcipalstub: PostMessage data", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		page.PostMessage = &postMessageView{Data: data, TargetOrigin: pm.TargetOrigin}
	}
	s.mu.Lock()
	s.stats.CapturePages++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := captureTemplate.Execute(w, page); err != nil {
		s.log.Error("pcipalstub: render capture page", "err", err)
	}
}

// handleDenyGet refuses a GET of the framed URL the way PCI Pal refuses an expired session.
func (s *Server) handleDenyGet(w http.ResponseWriter, r *http.Request) {
	s.refuse(w, r.PathValue("sessionId"), "GET without tokens")
}

// handleSignIn is GET /: where PCI Pal sends a visitor who is not logged in.
func (s *Server) handleSignIn(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, signInPage)
}

// refuse answers so that a browser refuses to show the response in a frame. PCI Pal's status
// code for this is not documented; only the header is.
func (s *Server) refuse(w http.ResponseWriter, id, reason string) {
	s.mu.Lock()
	s.stats.Refused++
	s.mu.Unlock()
	s.log.Info("pcipalstub: frame refused", "providerSessionGuid", id, "reason", reason)
	w.Header().Set("X-Frame-Options", "deny")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, denyPage)
}

// equal compares a presented token with the registered one in constant time.
func equal(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
