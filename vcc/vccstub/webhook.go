package vccstub

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/paybridge/paybridge/webhook"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// SignatureHeader carries the HMAC signature of a webhook in signing mode.
const SignatureHeader = webhook.Header

// VCC's redelivery of a webhook the receiver did not take (UPSTREAM: "retries every few minutes
// for 12 hours"), the defaults of WebhookTarget.RetryEvery and RetryFor.
const (
	DefaultWebhookRetryEvery = 3 * time.Minute
	DefaultWebhookRetryFor   = 12 * time.Hour
	webhookPostTimeout       = 10 * time.Second
)

// DefaultWebhookTokenPath is where the stub asks for the webhook's bearer token when a
// WebhookTarget has client credentials and no TokenURL: paybridge's own token endpoint, on the
// webhook URL's host.
const DefaultWebhookTokenPath = "/oauth/token"

// WebhookTarget is where and how the stub posts session outcomes, the way VCC posts to the webhook
// URL of an account configuration. Authentication is what VCC documents, which Vonage sets up per
// account configuration: an authentication URI and OAuth2 client credentials. With ClientID, the
// stub first gets a bearer token by the client credentials grant (client id and secret in the
// form) from TokenURL (default: DefaultWebhookTokenPath on URL's host), caches it for its
// expires_in, and sends it as Authorization: Bearer. SigningSecret is paybridge's own option, not
// VCC behaviour: the stub then signs the body in the X-VonPay-Signature header. With neither, it
// sends no credentials (a webhook configured without authentication); with both, it does both.
type WebhookTarget struct {
	URL           string
	TokenURL      string // "" with ClientID set: URL's scheme and host + DefaultWebhookTokenPath
	ClientID      string
	ClientSecret  string       // secret
	SigningSecret string       // secret; paybridge's HMAC option
	HTTPClient    *http.Client // nil: a client with a 10 s timeout
	// A post the receiver does not answer with 2xx is tried again every RetryEvery until RetryFor
	// has passed (defaults: every 3 minutes for 12 hours, as VCC does); tests shorten both.
	RetryEvery time.Duration
	RetryFor   time.Duration
}

// SetWebhook replaces the webhook target; nil stops webhooks.
func (s *Server) SetWebhook(t *WebhookTarget) {
	var ws *webhookSender
	if t != nil {
		ws = s.newWebhookSender(*t)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhook = ws
}

// webhookSender delivers to one target, holding its cached bearer token.
type webhookSender struct {
	target WebhookTarget
	client *http.Client
	newTS  func() oauth2.TokenSource // nil when the target takes no bearer token

	mu sync.Mutex
	ts oauth2.TokenSource // caches the token until shortly before expires_in runs out
}

func (s *Server) newWebhookSender(t WebhookTarget) *webhookSender {
	ws := &webhookSender{target: t, client: t.HTTPClient}
	if ws.client == nil {
		ws.client = &http.Client{Timeout: webhookPostTimeout}
	}
	if t.TokenURL == "" && t.ClientID != "" {
		if u, err := url.Parse(t.URL); err == nil {
			t.TokenURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: DefaultWebhookTokenPath}).String()
		}
	}
	ws.target = t
	if t.TokenURL != "" {
		cfg := &clientcredentials.Config{
			ClientID:     t.ClientID,
			ClientSecret: t.ClientSecret,
			TokenURL:     t.TokenURL,
			AuthStyle:    oauth2.AuthStyleInParams,
		}
		// The token source lives as long as the stub, so it gets the stub's context.
		ctx := context.WithValue(s.ctx, oauth2.HTTPClient, ws.client)
		ws.newTS = func() oauth2.TokenSource { return cfg.TokenSource(ctx) }
		ws.ts = ws.newTS()
	}
	return ws
}

// token returns the cached bearer token, fetching a new one when needed.
func (ws *webhookSender) token() (string, error) {
	ws.mu.Lock()
	ts := ws.ts
	ws.mu.Unlock()
	tok, err := ts.Token()
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// dropToken forgets the cached token after the receiver refused it.
func (ws *webhookSender) dropToken() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.ts = ws.newTS()
}

// queueWebhookLocked starts delivering ss's status in the background, unless webhooks are off,
// dropped by a fault, or the stub is closed. s.mu must be held.
func (s *Server) queueWebhookLocked(ss *session) {
	ws := s.webhook
	if ws == nil || s.closed {
		return
	}
	if s.faults.DropWebhooks {
		s.log.Info("vccstub: webhook dropped by fault", "sessionGuid", ss.guid)
		return
	}
	body, err := marshal(ss.status())
	if err != nil {
		s.log.Error("vccstub: webhook body", "sessionGuid", ss.guid, "err", err)
		return
	}
	s.wg.Add(1) // under s.mu with closed false, so Close's Wait sees it
	go func() {
		defer s.wg.Done()
		s.deliver(ws, ss.guid, body)
	}()
}

// deliver posts body until the receiver answers 2xx, the retry window has passed, or the stub
// closes.
func (s *Server) deliver(ws *webhookSender, guid string, body []byte) {
	every, window := ws.target.RetryEvery, ws.target.RetryFor
	if every <= 0 {
		every = DefaultWebhookRetryEvery
	}
	if window <= 0 {
		window = DefaultWebhookRetryFor
	}
	tries := 1 + int(window/every)
	for try := 1; ; try++ {
		status, err := s.post(ws, body)
		s.mu.Lock()
		if err == nil {
			s.stats.WebhooksSent++
		} else {
			s.stats.WebhooksFailed++
		}
		s.mu.Unlock()
		if err == nil {
			s.log.Info("vccstub: webhook delivered", "sessionGuid", guid, "status", status, "try", try)
			return
		}
		s.log.Warn("vccstub: webhook failed", "sessionGuid", guid, "status", status, "try", try, "err", err)
		if try == tries {
			return
		}
		t := time.NewTimer(every)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
}

// post makes one delivery, returning the receiver's status code.
func (s *Server) post(ws *webhookSender, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(s.ctx, webhookPostTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ws.target.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if ws.newTS != nil {
		tok, err := ws.token()
		if err != nil {
			// The oauth2 error may quote the token endpoint's body, never our secret.
			return 0, fmt.Errorf("get webhook bearer token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ws.target.SigningSecret != "" {
		req.Header.Set(SignatureHeader, webhook.Sign(body, s.clock.Now(), ws.target.SigningSecret))
	}
	resp, err := ws.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized && ws.newTS != nil {
		ws.dropToken()
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
