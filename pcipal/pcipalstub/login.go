package pcipalstub

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

// Cookies of a browser's login. PCI Pal's own client names pcipal-auth-expiry (the login's end,
// readable by the page's script); the login itself is the stub's choice of name, HttpOnly.
const (
	LoginCookie  = "pcipal-auth"
	ExpiryCookie = "pcipal-auth-expiry"
)

// login is one browser's login: the provider sessions it may see, until it expires. One login
// covers every session a browser opened, so two agent desktops in one browser (which share the
// cookie) do not log each other out.
type login struct {
	sessions  map[string]bool
	expiresAt time.Time
}

// logIn adds session id to the request's login, or starts a login, extends it and sets its
// cookies on w.
func (s *Server) logIn(w http.ResponseWriter, r *http.Request, id string, now time.Time) login {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, l := range s.logins { // forget dead logins so the map stays small
		if !now.Before(l.expiresAt) {
			delete(s.logins, key)
		}
	}
	key, l := s.loginLocked(r, now)
	if l == nil {
		key, l = bridge.RandomBase62(32), &login{sessions: map[string]bool{}}
		s.logins[key] = l
	}
	l.sessions[id] = true
	l.expiresAt = now.Add(s.loginLifetime)
	s.stats.Logins++
	setLoginCookies(w, r, key, l.expiresAt)
	return *l
}

// loginLocked returns the request's live login and its key, or nil. s.mu must be held.
func (s *Server) loginLocked(r *http.Request, now time.Time) (string, *login) {
	c, err := r.Cookie(LoginCookie)
	if err != nil || c.Value == "" {
		return "", nil
	}
	l, ok := s.logins[c.Value]
	if !ok || !now.Before(l.expiresAt) {
		return "", nil
	}
	return c.Value, l
}

// loggedIn reports whether the request's login covers session id.
func (s *Server) loggedIn(r *http.Request, id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, l := s.loginLocked(r, now)
	return l != nil && l.sessions[id]
}

// signOut sends a visitor without a valid login to the sign-in page, as PCI Pal does.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	s.stats.SignedOut++
	s.mu.Unlock()
	s.log.Info("pcipalstub: not logged in: sent to /", "providerSessionGuid", id)
	clearLoginCookies(w, r)
	http.Redirect(w, r, "/", http.StatusFound)
}

// handleRefreshLogon is POST /refreshlogon: it extends the browser's login, or answers 401 when
// there is none (the page then goes to the sign-in page).
func (s *Server) handleRefreshLogon(w http.ResponseWriter, r *http.Request) {
	now := s.clock.Now()
	s.mu.Lock()
	key, l := s.loginLocked(r, now)
	var expiresAt time.Time
	if l != nil {
		l.expiresAt = now.Add(s.loginLifetime)
		expiresAt = l.expiresAt
		s.stats.LoginRefreshes++
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if l == nil {
		clearLoginCookies(w, r)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"not logged in"}`))
		return
	}
	setLoginCookies(w, r, key, expiresAt)
	_, _ = w.Write([]byte(`{"expiresAt":"` + expiresAt.UTC().Format(time.RFC3339) + `"}`))
}

// setLoginCookies sets the login cookie and its expiry (Unix milliseconds) on w.
func setLoginCookies(w http.ResponseWriter, r *http.Request, key string, expiresAt time.Time) {
	http.SetCookie(w, loginCookie(r, LoginCookie, key, true))
	http.SetCookie(w, loginCookie(r, ExpiryCookie, strconv.FormatInt(expiresAt.UnixMilli(), 10), false))
}

// clearLoginCookies deletes both login cookies.
func clearLoginCookies(w http.ResponseWriter, r *http.Request) {
	for _, name := range []string{LoginCookie, ExpiryCookie} {
		c := loginCookie(r, name, "", name == LoginCookie)
		c.MaxAge = -1
		http.SetCookie(w, c)
	}
}

// loginCookie is a session cookie (it ends with the browser; the server ends the login sooner)
// for the whole stub. The page is framed by the agent desktop, another origin: on https a
// cross-site frame needs SameSite=None; Secure. On plain http (loopback tests and the demo)
// Secure is impossible, and the desktop and the stub are on one host, so same-site, where Lax
// cookies work in a frame.
func loginCookie(r *http.Request, name, value string, httpOnly bool) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: httpOnly, SameSite: http.SameSiteLaxMode}
	if r.TLS != nil {
		c.Secure, c.SameSite = true, http.SameSiteNoneMode
	}
	return c
}

// captureURL returns the capture page's path for the framed path p: .../framed → .../capture.
func captureURL(p string) string {
	return strings.TrimSuffix(p, "/framed") + "/capture"
}
