package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/paybridge/paybridge/internal/backoff"
)

// Defaults of a Client's options.
const (
	DefaultMaxRetries   = 2
	DefaultRetryWaitMin = 500 * time.Millisecond
	DefaultRetryWaitMax = 5 * time.Second
	// DefaultTimeout bounds each attempt of the default HTTP client: long enough for a create
	// whose VCC calls paybridge itself retries.
	DefaultTimeout = 60 * time.Second
)

// userAgent names this client to paybridge's logs.
const userAgent = "paybridge-go"

// maxBody caps how much of a response is read: the largest answer, a page of 100 sessions, is
// far smaller.
const maxBody = 16 << 20

// Client calls paybridge's API with one secret key. It is safe for concurrent use.
type Client struct {
	// Sessions creates, reads, lists, cancels and restarts payment sessions.
	Sessions *SessionService
	// AgentTokens mints agent tokens for agents' browsers.
	AgentTokens *AgentTokenService
	// APIKeys creates, lists, rolls and revokes the merchant's API keys.
	APIKeys *APIKeyService
	// Events lists, reads and resends the merchant's events.
	Events *EventService

	baseURL    string
	key        string
	http       *http.Client
	maxRetries int
	waitMin    time.Duration
	waitMax    time.Duration
	sleep      func(context.Context, time.Duration) error
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc (its transport, timeout, proxy).
// The default has DefaultTimeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithMaxRetries sets how many times a call may be retried after its first attempt, where
// retrying is safe (see the package documentation); 0 disables retries. Default 2.
func WithMaxRetries(n int) Option {
	return func(c *Client) { c.maxRetries = max(n, 0) }
}

// WithRetryWait bounds the jittered exponential backoff between attempts: the first retry waits
// about min, each next one about twice as long, never more than max. A Retry-After longer than
// max is not waited for: the call returns its *Error, whose RetryAfter says how long to wait.
// Defaults 500ms and 5s.
func WithRetryWait(min, max time.Duration) Option {
	return func(c *Client) {
		if min > 0 {
			c.waitMin = min
		}
		if max > 0 {
			c.waitMax = max
		}
	}
}

// WithSleep replaces how the client waits between attempts; sleep must return early with the
// context's error when ctx ends. Tests use it to record waits or move a fake clock.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) {
		if sleep != nil {
			c.sleep = sleep
		}
	}
}

// New returns a client of the paybridge at baseURL (such as https://pay.acme.example) that
// authenticates with secretKey (vp_sk_test_… or vp_sk_live_…).
func New(baseURL, secretKey string, opts ...Option) *Client {
	c := &Client{
		baseURL:    strings.TrimRight(baseURL, "/"),
		key:        secretKey,
		http:       &http.Client{Timeout: DefaultTimeout},
		maxRetries: DefaultMaxRetries,
		waitMin:    DefaultRetryWaitMin,
		waitMax:    DefaultRetryWaitMax,
		sleep:      sleepContext,
	}
	for _, o := range opts {
		o(c)
	}
	c.waitMax = max(c.waitMax, c.waitMin)
	c.Sessions = &SessionService{c: c}
	c.AgentTokens = &AgentTokenService{c: c}
	c.APIKeys = &APIKeyService{c: c}
	c.Events = &EventService{c: c}
	return c
}

// String describes the client without its key, so that printing one shows no secret.
func (c *Client) String() string { return "paybridge client for " + c.baseURL }

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }

// CallOption changes one call.
type CallOption func(*callOptions)

type callOptions struct {
	idempotencyKey string
}

// IdempotencyKey sends key (1 to 255 printable ASCII characters) as the call's
// Idempotency-Key instead of a generated one: use your own operation's id (an order number) to
// make a retry of your own, even from another process, answer the first call's result.
func IdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.idempotencyKey = key }
}

// Response describes the HTTP answer an object came from.
type Response struct {
	// StatusCode is the answer's status.
	StatusCode int
	// Header holds the answer's headers (X-Request-Id, the X-RateLimit-* headers).
	Header http.Header
	// RequestID is paybridge's id of the request that answered.
	RequestID string
	// IdempotencyKey is the key the request carried; empty on GET and DELETE.
	IdempotencyKey string
	// Replayed reports that paybridge answered with the stored first response to the same
	// Idempotency-Key (Idempotent-Replayed: true).
	Replayed bool
	// Attempts counts how many times the request was sent.
	Attempts int
}

// APIResource is embedded in every object the API answers with: the answer it came from.
type APIResource struct {
	// LastResponse is the HTTP answer this object was read from; nil for an object inside a
	// list (the list has it).
	LastResponse *Response `json:"-"`
}

func (r *APIResource) setResponse(resp *Response) { r.LastResponse = resp }

// resource is what a successful call decodes into.
type resource interface{ setResponse(*Response) }

// request is one logical API call, sent once or more.
type request struct {
	method string
	path   string // escaped
	query  url.Values
	body   any // POST: marshalled as JSON; nil sends {}
	opts   []CallOption
}

// call sends req, retrying where it is safe, and decodes a 2xx answer into out.
func (c *Client) call(ctx context.Context, req request, out resource) error {
	var body []byte
	var key string
	if req.method == http.MethodPost {
		var err error
		if body, err = json.Marshal(req.body); err != nil {
			return fmt.Errorf("paybridge: encode %s %s: %w", req.method, req.path, err)
		}
		if req.body == nil || bytes.Equal(body, []byte("null")) {
			body = []byte("{}")
		}
		var o callOptions
		for _, opt := range req.opts {
			opt(&o)
		}
		// One key per logical call, the same on each retry: paybridge replays the first
		// answer instead of running the call again.
		key = o.idempotencyKey
		if key == "" {
			key = rand.Text()
		}
	}
	target := c.baseURL + req.path
	if len(req.query) > 0 {
		target += "?" + req.query.Encode()
	}
	// Mistakes no retry can mend fail at once, before anything is sent.
	if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("paybridge: base URL %q is not an absolute http(s) URL", c.baseURL)
	}
	if strings.ContainsFunc(c.key, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errors.New("paybridge: the secret key holds control characters (a line break?); check how it is loaded")
	}
	// Only a call that paybridge would not run twice may be sent twice: a read, or a request
	// whose Idempotency-Key makes paybridge replay the first answer.
	retryable := req.method == http.MethodGet || key != ""

	for attempt := 1; ; attempt++ {
		status, header, data, wrote, err := c.send(ctx, req.method, target, body, key)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			err = fmt.Errorf("paybridge: %s %s: %w", req.method, req.path, err)
			// After a network error the request may have reached paybridge only if some of
			// it was written.
			if !retryable || wrote || attempt > c.maxRetries {
				return err
			}
			if serr := c.sleep(ctx, c.backoff(attempt)); serr != nil {
				return serr
			}
			continue
		}
		if status < 200 || status > 299 {
			apiErr := errorFrom(status, header, data, time.Now())
			if !retryable || !retryStatus(status) || attempt > c.maxRetries || apiErr.RetryAfter > c.waitMax {
				return apiErr
			}
			if serr := c.sleep(ctx, max(c.backoff(attempt), apiErr.RetryAfter)); serr != nil {
				return serr
			}
			continue
		}
		if err := jsonUnmarshal(data, out); err != nil {
			return fmt.Errorf("paybridge: decode the answer to %s %s (request %s): %w", req.method, req.path, header.Get("X-Request-Id"), err)
		}
		out.setResponse(&Response{
			StatusCode: status, Header: header, RequestID: header.Get("X-Request-Id"),
			IdempotencyKey: key, Replayed: header.Get("Idempotent-Replayed") == "true", Attempts: attempt,
		})
		return nil
	}
}

// send makes one attempt. wrote reports whether any of the request was written to a
// connection: only if none was can a failed attempt not have reached paybridge.
func (c *Client) send(ctx context.Context, method, target string, body []byte, key string) (status int, header http.Header, data []byte, wrote bool, err error) {
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaderField: func(string, []string) { written.Store(true) },
		WroteHeaders:     func() { written.Store(true) },
		WroteRequest:     func(httptrace.WroteRequestInfo) { written.Store(true) },
	})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, nil, false, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, written.Load(), err
	}
	defer resp.Body.Close()
	data, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		// The answer began: paybridge had the whole request.
		return 0, nil, nil, true, err
	}
	return resp.StatusCode, resp.Header, data, true, nil
}

// retryStatus reports the answers that mean "not done, try again": rate limited, or a gateway
// or paybridge's provider unavailable.
func retryStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is the wait before retry n (1-based): waitMin doubling per retry, capped at waitMax,
// with "equal jitter" (half fixed, half random) so that many clients refused at once do not come
// back at once; paybridge's one backoff rule.
func (c *Client) backoff(n int) time.Duration {
	return backoff.Wait(n, c.waitMin, c.waitMax, mrand.Float64())
}

// retryAfter reads a Retry-After value, delay-seconds or an HTTP date; 0 when absent or
// unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jsonUnmarshal decodes data into v, tolerating fields this client does not know: a newer
// paybridge may add some.
func jsonUnmarshal(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty body")
	}
	return json.Unmarshal(data, v)
}

// pathID escapes one path segment, refusing an empty one (which would name another endpoint).
func pathID(kind, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("paybridge: empty %s id", kind)
	}
	return url.PathEscape(id), nil
}

// do makes req and returns the T it answered, or nil and the error.
func do[T any, PT interface {
	*T
	resource
}](ctx context.Context, c *Client, req request) (*T, error) {
	out := PT(new(T))
	if err := c.call(ctx, req, out); err != nil {
		return nil, err
	}
	return out, nil
}
