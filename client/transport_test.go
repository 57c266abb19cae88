package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/client"
)

// fault is what the recorder makes of one attempt.
type fault int

const (
	// pass sends the attempt to paybridge and hands its answer back.
	pass fault = iota
	// refuse fails the attempt before any of it is written, as a refused connection does.
	refuse
	// loseAnswer sends the attempt to paybridge, then fails as a connection lost mid-answer.
	loseAnswer
	// gateway503 sends the attempt to paybridge, then answers 503 in its place, as a load
	// balancer that gave up waiting does: paybridge did the work, the caller never hears.
	gateway503
	// only503 answers 503 without reaching paybridge, as a load balancer with no backend does.
	only503
	// only500 answers 500 without reaching paybridge.
	only500
)

// gatewayRequestID is the X-Request-Id the fake gateway answers with.
const gatewayRequestID = "lb-4f2a9c1e7d"

// attempt is one request the recorder saw.
type attempt struct {
	Method, Path, Query, IdempotencyKey string
	Status                              int    // 0 when no answer came back
	RequestID                           string // the answer's X-Request-Id
}

// recorder is an http.RoundTripper in front of the real transport: it records every attempt
// and applies the fault the test chose for it. Paybridge's own behaviour is never stubbed: an
// attempt either reaches the real server or does not.
type recorder struct {
	mu       sync.Mutex
	attempts []attempt
	faults   func(n int, r *http.Request) fault // n counts attempts from 1; nil: pass all
}

func (rec *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	rec.mu.Lock()
	n := len(rec.attempts) + 1
	rec.attempts = append(rec.attempts, attempt{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		IdempotencyKey: r.Header.Get("Idempotency-Key")})
	f := pass
	if rec.faults != nil {
		f = rec.faults(n, r)
	}
	rec.mu.Unlock()

	switch f {
	case refuse:
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case only503, only500:
		status := map[fault]int{only503: http.StatusServiceUnavailable, only500: http.StatusInternalServerError}[f]
		return rec.answer(n, r, status)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	switch f {
	case loseAnswer:
		resp.Body.Close()
		return nil, fmt.Errorf("read response: %w", io.ErrUnexpectedEOF)
	case gateway503:
		resp.Body.Close()
		return rec.answer(n, r, http.StatusServiceUnavailable)
	}
	rec.mu.Lock()
	rec.attempts[n-1].Status, rec.attempts[n-1].RequestID = resp.StatusCode, resp.Header.Get("X-Request-Id")
	rec.mu.Unlock()
	return resp, nil
}

// answer is a gateway's own answer: plain text, its own request id.
func (rec *recorder) answer(n int, r *http.Request, status int) (*http.Response, error) {
	rec.mu.Lock()
	rec.attempts[n-1].Status, rec.attempts[n-1].RequestID = status, gatewayRequestID
	rec.mu.Unlock()
	body := "<html>" + http.StatusText(status) + "</html>"
	return &http.Response{
		StatusCode: status, Status: fmt.Sprint(status, " ", http.StatusText(status)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"text/html"}, "X-Request-Id": {gatewayRequestID}},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: r, ContentLength: int64(len(body)),
	}, nil
}

// seen returns the attempts so far.
func (rec *recorder) seen() []attempt {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]attempt(nil), rec.attempts...)
}

// reset forgets the attempts so far (the fault counter too).
func (rec *recorder) reset() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.attempts = nil
}

// sleeper records the client's waits instead of sleeping, and moves the world's clock by each,
// so that what paybridge meters (its rate limits) sees the time pass.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
	clock *bridgetest.ManualClock // nil: time does not move
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	if s.clock != nil {
		s.clock.Advance(d)
	}
	return nil
}

func (s *sleeper) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// newClient is a client of w with key, every attempt through rec and every wait into sl.
func newClient(w *world, key string, rec *recorder, sl *sleeper, opts ...client.Option) *client.Client {
	all := []client.Option{client.WithHTTPClient(&http.Client{Transport: rec, Timeout: 30 * time.Second}), client.WithSleep(sl.sleep)}
	return client.New(w.srv.URL, key, append(all, opts...)...)
}

// asAPIError returns err's *client.Error, or nil.
func asAPIError(err error) *client.Error {
	var e *client.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
