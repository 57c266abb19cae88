package vcc

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Endpoints, the first argument of Options.Observe: which VCC call an HTTP attempt belongs to.
const (
	EndpointToken         = "token"          // POST to the merchant's OAuth2 token URL
	EndpointCreate        = "create"         // POST /v1/session (agent assist)
	EndpointCreateDigital = "create_digital" // POST /v1/digitalsession
	EndpointStatus        = "status"         // GET /v1/session/{guid}
	EndpointOther         = "other"          // a request made outside those (never, today)
)

// Outcomes, the second argument of Options.Observe: how one HTTP attempt ended.
const (
	OutcomeOK      = "ok"      // an answer below 400
	Outcome4xx     = "4xx"     // an answer 400..499 (a 401 refreshed and retried counts once here)
	Outcome5xx     = "5xx"     // an answer 500 and above
	OutcomeTimeout = "timeout" // no (whole) answer within the request timeout or the caller's deadline
	OutcomeError   = "error"   // no answer: refused, reset, DNS, TLS, or the caller gave up
)

// Endpoints and Outcomes list every value Options.Observe is called with, so a metrics exporter
// can create its series up front and never take a label value from anywhere else.
var (
	Endpoints = []string{EndpointToken, EndpointCreate, EndpointCreateDigital, EndpointStatus, EndpointOther}
	Outcomes  = []string{OutcomeOK, Outcome4xx, Outcome5xx, OutcomeTimeout, OutcomeError}
)

// endpointKey carries the endpoint label of a call in its requests' context.
type endpointKey struct{}

func withEndpoint(ctx context.Context, endpoint string) context.Context {
	return context.WithValue(ctx, endpointKey{}, endpoint)
}

// observedTransport reports every HTTP attempt the Client makes, retries and token fetches
// included, to an Options.Observe function. It sits under http.Client, so it sees each attempt
// exactly once, whichever layer (resty, oauth2, the 401 refresh) decided to make it.
type observedTransport struct {
	next    http.RoundTripper
	observe func(endpoint, outcome string, d time.Duration)
}

// RoundTrip implements http.RoundTripper. An answer is observed when its body has been read to
// the end, failed, or been closed, so the duration covers the whole answer and a body that
// times out counts as a timeout, not as its status.
func (t *observedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	endpoint, _ := req.Context().Value(endpointKey{}).(string)
	if endpoint == "" {
		endpoint = EndpointOther
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.observe(endpoint, failureOutcome(req, err), time.Since(start))
		return resp, err
	}
	outcome := OutcomeOK
	switch {
	case resp.StatusCode >= 500:
		outcome = Outcome5xx
	case resp.StatusCode >= 400:
		outcome = Outcome4xx
	}
	resp.Body = &observedBody{ReadCloser: resp.Body, done: func(readErr error) {
		o := outcome
		if readErr != nil {
			o = failureOutcome(req, readErr)
		}
		t.observe(endpoint, o, time.Since(start))
	}}
	return resp, nil
}

// failureOutcome classifies an attempt that got no (whole) answer. http.Client puts its
// per-attempt deadline on the request's context, but cancels a wrapped transport's request
// through Request.Cancel, which may win the race with the context (the error is then "request
// canceled"): so a failure at or past the request's deadline is a timeout, whatever its text.
func failureOutcome(req *http.Request, err error) string {
	var nerr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout() {
		return OutcomeTimeout
	}
	if deadline, ok := req.Context().Deadline(); ok && !time.Now().Before(deadline) {
		return OutcomeTimeout
	}
	return OutcomeError
}

// observedBody calls done once: at the end of the body (nil), on a read error, or on Close.
type observedBody struct {
	io.ReadCloser
	once sync.Once
	done func(readErr error)
}

func (b *observedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.once.Do(func() { b.done(nil) })
	case err != nil:
		b.once.Do(func() { b.done(err) })
	}
	return n, err
}

func (b *observedBody) Close() error {
	b.once.Do(func() { b.done(nil) })
	return b.ReadCloser.Close()
}
