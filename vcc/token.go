package vcc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/internal/backoff"
)

// DefaultTokenLifetime is assumed when VCC's token response carries no expires_in (VCC's
// Payment API documentation says tokens last one hour). A 401 drops the token anyway.
const DefaultTokenLifetime = time.Hour

// Token returns a valid access token for m, fetching one if none is cached or the cached one is
// within TokenEarlyExpiry of its expiry. paybridge check uses it to try merchant credentials.
// Errors are *bridge.Error: merchant_not_configured for refused credentials,
// provider_unavailable when the token endpoint cannot be reached.
func (c *Client) Token(ctx context.Context, m *bridge.Merchant) (string, error) {
	if !m.VCC.Configured() {
		return "", bridge.Errorf(bridge.CodeMerchantNotConfigured, "Merchant %q has no complete VCC configuration", m.ID).
			WithFix(fixNotConfigured)
	}
	return c.tokenSource(m).get(ctx)
}

// tokenSource returns m's token cache. The key includes the credentials (the secret hashed), so
// a merchant whose configuration changed gets a fresh source and the old token is forgotten.
func (c *Client) tokenSource(m *bridge.Merchant) *tokenSource {
	sum := sha256.Sum256([]byte(m.VCC.ClientSecret))
	key := m.ID + "\x00" + m.VCC.TokenURL + "\x00" + m.VCC.ClientID + "\x00" + hex.EncodeToString(sum[:])

	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.tokens[m.ID]; s != nil && s.key == key {
		return s
	}
	cfg := &clientcredentials.Config{
		ClientID:     m.VCC.ClientID,
		ClientSecret: m.VCC.ClientSecret,
		TokenURL:     m.VCC.TokenURL,
		Scopes:       []string{"globalpci"},
		// In the form body, as VCC documents; it also avoids oauth2's auto-detection, which
		// sends a second request after a failure.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	merchantID := m.ID
	s := &tokenSource{
		key:   key,
		clock: c.clock,
		fetch: func(ctx context.Context) (string, time.Time, error) {
			return c.fetchToken(ctx, merchantID, cfg)
		},
	}
	c.tokens[m.ID] = s
	return s
}

// tokenSource caches one merchant's access token. Expiry follows the injected clock, a refused
// token can be dropped, and concurrent callers share one fetch. (oauth2.ReuseTokenSource does
// none of the first two.)
type tokenSource struct {
	key   string
	clock bridge.Clock
	fetch func(ctx context.Context) (token string, refreshAt time.Time, err error)

	mu        sync.Mutex
	token     string
	refreshAt time.Time // on clock: the token is reused until then
	inflight  *tokenFetch
}

// tokenFetch is one fetch in progress; waiters block on done.
type tokenFetch struct {
	done      chan struct{}
	token     string
	err       error
	abandoned bool // the fetching caller's context ended: its error is not the waiters' answer
}

// get returns the cached token, or waits for the fetch in progress, or fetches.
func (s *tokenSource) get(ctx context.Context) (string, error) {
	for {
		s.mu.Lock()
		if s.token != "" && s.clock.Now().Before(s.refreshAt) {
			token := s.token
			s.mu.Unlock()
			return token, nil
		}
		if f := s.inflight; f != nil {
			s.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return "", unavailable(ctx, ctx.Err()).bridgeError()
			}
			if f.abandoned {
				continue
			}
			if f.err != nil {
				return "", copyError(f.err)
			}
			return f.token, nil
		}
		f := &tokenFetch{done: make(chan struct{})}
		s.inflight = f
		s.mu.Unlock()

		token, refreshAt, err := s.fetch(ctx)

		s.mu.Lock()
		s.inflight = nil
		if err == nil {
			s.token, s.refreshAt = token, refreshAt
		}
		f.token, f.err, f.abandoned = token, err, err != nil && ctx.Err() != nil
		s.mu.Unlock()
		close(f.done)
		return token, err
	}
}

// drop forgets token if it is still the cached one: VCC refused it. Comparing first means a burst
// of 401s for the same old token causes one refetch, not one each.
func (s *tokenSource) drop(token string) {
	s.mu.Lock()
	if s.token == token {
		s.token, s.refreshAt = "", time.Time{}
	}
	s.mu.Unlock()
}

// copyError gives each waiter its own *bridge.Error, since callers may set Fix or Param on it.
func copyError(err error) error {
	var be *bridge.Error
	if errors.As(err, &be) {
		cp := *be
		return &cp
	}
	return err
}

// fetchToken asks the token endpoint for a token, retrying transient failures, and returns it
// with the time (on c.clock) until which it may be reused.
func (c *Client) fetchToken(ctx context.Context, merchantID string, cfg *clientcredentials.Config) (string, time.Time, error) {
	hctx := withEndpoint(context.WithValue(ctx, oauth2.HTTPClient, c.http), EndpointToken)
	path := cfg.TokenURL
	if u, err := url.Parse(cfg.TokenURL); err == nil {
		path = u.Path
	}
	for attempt := 1; ; attempt++ {
		fetchedAt := c.clock.Now()
		start := time.Now()
		tok, err := cfg.Token(hctx)
		attrs := []slog.Attr{
			slog.String("merchant", merchantID),
			slog.String("method", http.MethodPost),
			slog.String("path", path),
			slog.Int("attempt", attempt),
			slog.Float64("durationMs", float64(time.Since(start).Microseconds())/1000),
		}
		if err == nil {
			c.logger.LogAttrs(ctx, slog.LevelDebug, "vcc token request", append(attrs, slog.Int("status", http.StatusOK))...)
			return tok.AccessToken, fetchedAt.Add(c.reuseFor(tokenLifetime(tok))), nil
		}
		e, retry, wait := c.tokenFailure(err, cfg.ClientSecret)
		if e.Status != 0 {
			attrs = append(attrs, slog.Int("status", e.Status))
		}
		attrs = append(attrs, slog.String("error", string(e.Kind)))
		level := slog.LevelDebug // returned: the caller logs it
		if retry && attempt <= c.maxRetries && ctx.Err() == nil {
			level = slog.LevelWarn
		}
		c.logger.LogAttrs(ctx, level, "vcc token request", attrs...)

		if ctx.Err() != nil {
			return "", time.Time{}, unavailable(ctx, err).bridgeError()
		}
		if !retry || attempt > c.maxRetries {
			return "", time.Time{}, e.bridgeError()
		}
		if wait == 0 {
			wait = c.backoff(attempt - 1)
		}
		timer := time.NewTimer(min(max(wait, c.waitMin), c.waitMax))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return "", time.Time{}, unavailable(ctx, ctx.Err()).bridgeError()
		}
	}
}

// tokenFailure classifies a token endpoint failure: the error to report, whether to retry, and
// a Retry-After wait (0: use the backoff). The *oauth2.RetrieveError is not kept as a cause: its
// Response links to the request, whose body held the client secret.
func (c *Client) tokenFailure(err error, secret string) (e *Error, retry bool, wait time.Duration) {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		var ue *url.Error
		if transient(err) || errors.As(err, &ue) {
			// No answer (a TLS failure or a bad URL too): the cause is kept for the logs and
			// paybridge check, which names it.
			return &Error{Kind: KindUnavailable, Err: err}, transient(err), 0
		}
		// A 2xx body oauth2 could not read, or one without access_token.
		return &Error{Kind: KindUnavailable, Status: http.StatusOK, Err: errors.New("unreadable token response")}, false, 0
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	text := compactText(re.Body, secret)
	switch {
	case re.ErrorCode == "invalid_client":
		return &Error{Kind: KindInvalidClient, Status: status, Text: text}, false, 0
	case status == http.StatusTooManyRequests || status >= 500:
		if re.Response != nil {
			wait = parseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now())
		}
		return &Error{Kind: KindUnavailable, Status: status, Text: upstreamText(re.Body, secret)}, true, wait
	default:
		return &Error{Kind: KindAuthRejected, Status: status, Text: text}, false, 0
	}
}

// compactText is a token endpoint body as VCC sent it ({"error":"invalid_client"}): the
// documented text is the JSON itself. Compacted, bounded and scrubbed.
func compactText(body []byte, secrets ...string) string {
	var buf bytes.Buffer
	if json.Compact(&buf, bytes.TrimSpace(body)) != nil {
		return upstreamText(body, secrets...)
	}
	return bound(scrub(buf.String(), secrets...))
}

// reuseFor is how long after its fetch a token of the given lifetime is reused: until
// TokenEarlyExpiry before it expires, but at least half its lifetime, so a short-lived token is
// not refetched on every call.
func (c *Client) reuseFor(lifetime time.Duration) time.Duration {
	return lifetime - min(c.earlyExpiry, lifetime/2)
}

// tokenLifetime reads expires_in from the raw token response. oauth2 computes Token.Expiry with
// time.Now, which the injected clock does not follow, so the raw seconds are used; only when
// they are missing does Expiry minus time.Now serve, then DefaultTokenLifetime.
// (clientcredentials does not fill Token.ExpiresIn.)
func tokenLifetime(tok *oauth2.Token) time.Duration {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case int64:
		secs = float64(v)
	case json.Number:
		secs, _ = v.Float64()
	case string:
		secs, _ = strconv.ParseFloat(v, 64)
	}
	if secs > 0 {
		return time.Duration(secs * float64(time.Second))
	}
	if !tok.Expiry.IsZero() {
		if d := time.Until(tok.Expiry); d > 0 {
			return d
		}
	}
	return DefaultTokenLifetime
}

// backoff is the wait before retry number attempt+1 (attempt counts from 0): paybridge's one
// backoff rule (the same as resty's for Payment API calls), never below RetryWaitMin.
func (c *Client) backoff(attempt int) time.Duration {
	return max(backoff.Wait(attempt+1, c.waitMin, c.waitMax, rand.Float64()), c.waitMin)
}
