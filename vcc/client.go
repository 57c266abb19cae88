// Package vcc is paybridge's client for Vonage Contact Center's Payment API: it obtains and
// caches one OAuth2 client-credentials token per merchant, starts PCI provider sessions, reads
// their status and maps every documented VCC failure to a paybridge error (DESIGN section 5).
//
// Client implements bridge.PaymentProvider for any number of merchants; each merchant's
// credentials come with the call, so changed configuration takes effect at once.
package vcc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-resty/resty/v2"

	"github.com/paybridge/paybridge/bridge"
)

// Defaults for Options.
const (
	DefaultRequestTimeout   = 10 * time.Second
	DefaultMaxRetries       = 3
	DefaultRetryWaitMin     = 100 * time.Millisecond
	DefaultRetryWaitMax     = 2 * time.Second
	DefaultTokenEarlyExpiry = 60 * time.Second
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// HTTPClient carries every request to VCC. Nil means a client with sane transport timeouts.
	// The Client works on a copy whose Timeout is RequestTimeout.
	HTTPClient *http.Client
	// Clock decides token expiry. Nil means bridge.SystemClock.
	Clock bridge.Clock
	// Logger receives one line per attempt (method, path, status, attempt, duration); never a
	// body, token or secret. Nil discards.
	Logger *slog.Logger
	// RequestTimeout bounds each attempt. Default 10s.
	RequestTimeout time.Duration
	// MaxRetries is how many times a transient failure is retried after the first attempt.
	// 0 means the default, 3; a negative value disables retries. A create is retried only when
	// VCC cannot have started a session: the connection was refused, or VCC answered
	// 429/502/503/504; never after a timeout or a connection lost once the request was sent.
	MaxRetries int
	// RetryWaitMin and RetryWaitMax bound the jittered exponential backoff between attempts, and
	// RetryWaitMax caps a Retry-After. Defaults 100ms and 2s.
	RetryWaitMin time.Duration
	RetryWaitMax time.Duration
	// TokenEarlyExpiry is how long before its expiry a token stops being reused. Default 60s.
	TokenEarlyExpiry time.Duration
	// Observe, if set, is called once per HTTP attempt to VCC, retries and token fetches each
	// counted, with the endpoint (one of Endpoints), how it ended (one of Outcomes) and how long
	// it took to the end of the answer. It runs on the caller's goroutine and must be fast. It is
	// the hook for metrics, so this package needs no metrics library.
	Observe func(endpoint, outcome string, d time.Duration)
}

// Client talks to VCC's auth and Payment API on behalf of many merchants. It is safe for
// concurrent use.
type Client struct {
	http        *http.Client // Options.HTTPClient copy with the per-attempt timeout
	rest        *resty.Client
	clock       bridge.Clock
	logger      *slog.Logger
	maxRetries  int
	waitMin     time.Duration
	waitMax     time.Duration
	earlyExpiry time.Duration

	mu     sync.Mutex
	tokens map[string]*tokenSource // by merchant ID
}

// Client implements bridge.PaymentProvider.
var _ bridge.PaymentProvider = (*Client)(nil)

// New returns a Client configured by opts.
func New(opts Options) *Client {
	c := &Client{
		clock:       opts.Clock,
		logger:      opts.Logger,
		maxRetries:  opts.MaxRetries,
		waitMin:     opts.RetryWaitMin,
		waitMax:     opts.RetryWaitMax,
		earlyExpiry: opts.TokenEarlyExpiry,
		tokens:      make(map[string]*tokenSource),
	}
	if c.clock == nil {
		c.clock = bridge.SystemClock{}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.waitMin <= 0 {
		c.waitMin = DefaultRetryWaitMin
	}
	if c.waitMax <= 0 {
		c.waitMax = DefaultRetryWaitMax
	}
	c.waitMax = max(c.waitMax, c.waitMin)
	if c.earlyExpiry <= 0 {
		c.earlyExpiry = DefaultTokenEarlyExpiry
	}
	timeout := opts.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}

	var hc http.Client
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
	} else {
		hc.Transport = newTransport()
	}
	if hc.Transport == nil {
		hc.Transport = http.DefaultTransport
	}
	// Always wrapped, observed or not, so every client runs the same request path.
	observe := opts.Observe
	if observe == nil {
		observe = func(string, string, time.Duration) {}
	}
	hc.Transport = &observedTransport{next: hc.Transport, observe: observe}
	// http.Client.Timeout bounds one Do call, which is exactly one attempt: resty and the token
	// fetch call Do once per attempt.
	hc.Timeout = timeout
	c.http = &hc

	c.rest = resty.NewWithClient(c.http).
		SetLogger(discardRestyLogger{}).
		SetHeader("Accept", "application/json").
		SetResponseBodyLimit(1 << 20).
		SetRetryCount(c.maxRetries).
		SetRetryWaitTime(c.waitMin).
		SetRetryMaxWaitTime(c.waitMax).
		SetRetryAfter(retryAfter).
		AddRetryCondition(func(resp *resty.Response, err error) bool {
			retry := retryable(resp, err)
			c.logAttempt(resp, err, retry && resp != nil && resp.Request != nil && resp.Request.Attempt <= c.maxRetries)
			return retry
		})
	return c
}

// newTransport is the default transport: bounded dial and TLS handshakes, and enough idle
// connections per host for a burst of creates against one VCC region.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
	}
}

// do sends one Payment API call for m (endpoint labels its attempts), with retries for transient
// failures, and handles a 401 by dropping the merchant's token, fetching a new one and trying once
// more. It returns the final response whatever its status; the error is a *bridge.Error for token failures, transport
// failures after retries, a cancelled context, or a second 401.
func (c *Client) do(ctx context.Context, m *bridge.Merchant, endpoint, method, path string, pathParams map[string]string, body any) (*resty.Response, error) {
	if !m.VCC.Configured() {
		return nil, bridge.Errorf(bridge.CodeMerchantNotConfigured, "Merchant %q has no complete VCC configuration", m.ID).
			WithFix(fixNotConfigured)
	}
	src := c.tokenSource(m)
	url := strings.TrimRight(m.VCC.APIBaseURL, "/") + path
	// The endpoint labels this call's attempts for Options.Observe; a token fetch relabels its own.
	ctx = withEndpoint(context.WithValue(ctx, merchantKey{}, m.ID), endpoint)
	for try := 1; ; try++ {
		token, err := src.get(ctx)
		if err != nil {
			return nil, err
		}
		req := c.rest.R().SetContext(ctx).SetAuthToken(token).SetPathParams(pathParams)
		if body != nil {
			req.SetBody(body)
		}
		resp, err := req.Execute(method, url)
		if c.maxRetries == 0 {
			c.logAttempt(resp, err, false) // resty runs no retry condition, which logs, without retries
		}
		if err == nil && ctx.Err() != nil && c.maxRetries > 0 && retryable(resp, nil) {
			// resty stops without an error when the context ends as a transient answer arrives:
			// the context is why no retry followed, so it is what to report.
			err = ctx.Err()
		}
		if err != nil {
			return nil, unavailable(ctx, err).bridgeError()
		}
		if resp.StatusCode() != http.StatusUnauthorized {
			return resp, nil
		}
		src.drop(token)
		if try == 2 {
			e := recognise(resp.StatusCode(), resp.Body(), token, m.VCC.ClientSecret)
			if e == nil || e.Kind != KindInvalidClient {
				e = &Error{Kind: KindAuthRejected, Status: resp.StatusCode(), Text: upstreamText(resp.Body(), token, m.VCC.ClientSecret)}
			}
			return nil, e.bridgeError()
		}
		c.logger.LogAttrs(ctx, slog.LevelInfo, "vcc token refused, fetching a new one",
			slog.String("merchant", m.ID), slog.String("method", method), slog.String("path", resp.Request.RawRequest.URL.Path))
	}
}

// merchantKey carries the merchant ID into resty's per-attempt hook for logging.
type merchantKey struct{}

// logAttempt logs one attempt: method, path, status, attempt, duration. Never headers or bodies.
// A failed attempt is a warning only when it is retried, since nobody else hears of it; a failure
// returned is the caller's to log, once (a VCC timeout is one line, the request's), so its
// attempt is a debug line.
func (c *Client) logAttempt(resp *resty.Response, err error, retried bool) {
	if resp == nil || resp.Request == nil || resp.Request.RawRequest == nil {
		return
	}
	r := resp.Request
	ctx := r.Context()
	attrs := []slog.Attr{
		slog.String("merchant", stringValue(ctx, merchantKey{})),
		slog.String("method", r.Method),
		slog.String("path", r.RawRequest.URL.Path),
		slog.Int("attempt", r.Attempt),
		slog.Float64("durationMs", float64(resp.Time().Microseconds())/1000),
	}
	level := slog.LevelDebug
	if err != nil {
		attrs = append(attrs, slog.String("error", transportErrorText(err)))
	} else {
		attrs = append(attrs, slog.Int("status", resp.StatusCode()))
	}
	if retried {
		level = slog.LevelWarn
	}
	c.logger.LogAttrs(ctx, level, "vcc request", attrs...)
}

func stringValue(ctx context.Context, key any) string {
	s, _ := ctx.Value(key).(string)
	return s
}

// transportErrorText describes a transport error for logs without its URL.
func transportErrorText(err error) string {
	var uerr interface{ Unwrap() error }
	if errors.As(err, &uerr) {
		if inner := uerr.Unwrap(); inner != nil {
			err = inner
		}
	}
	return err.Error()
}

// retryable reports whether a failed attempt may be repeated.
//
// An answer of 429/502/503/504 without one of VCC's documented error texts is retried whatever
// the method. Other statuses, 500 included, are answers: VCC reports its documented failures
// with 500 (or any status), and repeating a refused create would only repeat the refusal.
//
// A transport error is retried for a status read (GET) when it is transient. A create (POST) is
// not idempotent: after a timeout, a reset or a connection closed mid-answer, VCC may have
// started a session, and sending the create again would leave that one orphaned. So a POST is
// retried only when the request never left: the connection could not be made.
func retryable(resp *resty.Response, err error) bool {
	if err != nil {
		if resp != nil && resp.Request != nil && repeatable(resp.Request.Method) {
			return transient(err)
		}
		return notSent(err)
	}
	if resp == nil {
		return false
	}
	switch resp.StatusCode() {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return recognise(resp.StatusCode(), resp.Body()) == nil
	}
	return false
}

// repeatable reports whether sending a request with method twice does no more than sending it
// once, so an attempt that may have reached VCC can be sent again.
func repeatable(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}

// transient reports whether a transport error is worth retrying for a request that is safe to
// repeat (a status read, a token request): timeouts, refused or reset connections, connections
// closed mid-answer. TLS and URL errors are not. A cancelled context is not either; resty and
// fetchToken check it before asking.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return true
	}
	var operr *net.OpError
	return errors.As(err, &operr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// notSent reports whether a transport error means the request certainly never reached VCC: the
// connection was refused or could not be made at all (a dial error: refused, unreachable, no
// such host, dial timeout). Go's transport itself resends a request it wrote nothing of on a
// stale pooled connection, so what remains after the request was written is never this.
func notSent(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var operr *net.OpError
	return errors.As(err, &operr) && operr.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED)
}

// retryAfter honours a Retry-After header (seconds or an HTTP date). resty caps the result at
// RetryWaitMax and raises it to RetryWaitMin; 0 means "use the jittered backoff".
func retryAfter(_ *resty.Client, resp *resty.Response) (time.Duration, error) {
	if resp == nil {
		return 0, nil
	}
	return parseRetryAfter(resp.Header().Get("Retry-After"), time.Now()), nil
}

// parseRetryAfter reads a Retry-After value relative to now; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// unavailable describes a failure to get any answer. If the caller's context ended, that is the
// error to report: it says why retrying stopped.
func unavailable(ctx context.Context, err error) *Error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return &Error{Kind: KindUnavailable, Err: err}
}

// discardRestyLogger silences resty's own logger; the Client logs each attempt itself.
type discardRestyLogger struct{}

func (discardRestyLogger) Errorf(string, ...any) {}
func (discardRestyLogger) Warnf(string, ...any)  {}
func (discardRestyLogger) Debugf(string, ...any) {}
