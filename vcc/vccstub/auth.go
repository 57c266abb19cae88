package vccstub

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

// Scope is the OAuth2 scope the Payment API needs.
const Scope = "globalpci"

// deniedMessage is VCC's answer to a Payment API call without a valid bearer token.
const deniedMessage = "Authorization has been denied for this request."

// oauthError is the RFC 6749 error body of the token endpoint.
type oauthError struct {
	Error string `json:"error"`
}

// tokenResponse is the token endpoint's success body.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// handleToken is POST /Auth/connect/token: the client credentials grant.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.TokenRequests++
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	if !s.delay(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request"})
		return
	}
	if s.takeFault(faultToken) != "" {
		s.log.Info("vccstub: token request refused by fault")
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_client"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request"})
		return
	}
	acct := s.authenticateClient(r)
	if acct == nil {
		s.log.Info("vccstub: token request with unknown client")
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_client"})
		return
	}
	if !slices.Contains(strings.Fields(r.PostForm.Get("scope")), Scope) {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_scope"})
		return
	}

	token := bridge.RandomBase62(40)
	now := s.clock.Now()
	s.mu.Lock()
	for t, it := range s.tokens { // forget dead tokens so the map stays small
		if !now.Before(it.expiresAt) {
			delete(s.tokens, t)
		}
	}
	s.tokens[token] = issuedToken{account: acct, expiresAt: now.Add(s.tokenLife)}
	s.mu.Unlock()
	s.log.Info("vccstub: token issued", "account", acct.Name)
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: token, ExpiresIn: int(s.tokenLife / time.Second), TokenType: "Bearer"})
}

// authenticateClient returns the account whose credentials the request carries, in the form or
// as HTTP Basic auth, or nil.
func (s *Server) authenticateClient(r *http.Request) *Account {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	var basic bool
	if bid, bsecret, ok := r.BasicAuth(); ok {
		id, secret, basic = bid, bsecret, true
	}
	if id == "" {
		return nil
	}
	for _, a := range s.accounts {
		if credentialEqual(id, a.ClientID, basic) && credentialEqual(secret, a.ClientSecret, basic) {
			return a
		}
	}
	return nil
}

// credentialEqual compares a presented credential with the configured one in constant time. RFC
// 6749 section 2.3.1 has Basic credentials form-encoded first, which some clients do and some
// do not, so a Basic value matches either way.
func credentialEqual(got, want string, basic bool) bool {
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
		return true
	}
	if basic {
		if dec, err := url.QueryUnescape(got); err == nil {
			return subtle.ConstantTimeCompare([]byte(dec), []byte(want)) == 1
		}
	}
	return false
}

// authorize returns the account of the request's bearer token, or answers 401 and returns nil.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) *Account {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if strings.EqualFold(scheme, "Bearer") && token != "" {
		now := s.clock.Now()
		s.mu.Lock()
		it, ok := s.tokens[token]
		s.mu.Unlock()
		if ok && now.Before(it.expiresAt) {
			return it.account
		}
	}
	w.Header().Set("WWW-Authenticate", "Bearer")
	writeMessage(w, http.StatusUnauthorized, deniedMessage)
	return nil
}

// RevokeTokens makes every access token issued so far invalid, as if VCC had rotated its keys.
// It returns how many live tokens it revoked.
func (s *Server) RevokeTokens() int {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, it := range s.tokens {
		if now.Before(it.expiresAt) {
			n++
		}
	}
	s.tokens = map[string]issuedToken{}
	s.log.Info("vccstub: access tokens revoked", "count", n)
	return n
}
