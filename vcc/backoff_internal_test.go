package vcc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
)

func TestBackoffBounds(t *testing.T) {
	c := New(Options{RetryWaitMin: 100 * time.Millisecond, RetryWaitMax: 2 * time.Second})
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 100 * time.Millisecond, 100 * time.Millisecond}, // base 100ms: jitter in [50,100], floored at min
		{1, 100 * time.Millisecond, 200 * time.Millisecond},
		{2, 200 * time.Millisecond, 400 * time.Millisecond},
		{4, 800 * time.Millisecond, 1600 * time.Millisecond},
		{5, time.Second, 2 * time.Second}, // capped
		{62, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		for range 200 {
			d := c.backoff(tt.attempt)
			assert.GreaterOrEqual(t, d, tt.min, "attempt %d", tt.attempt)
			assert.LessOrEqual(t, d, tt.max, "attempt %d", tt.attempt)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 1 ", time.Second},
		{"-4", 0},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{now.Add(-5 * time.Second).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, parseRetryAfter(tt.in, now), "%q", tt.in)
	}
}

// TestRetryAfterHook: the hook resty calls between attempts reads the response's Retry-After
// (resty then caps it at RetryWaitMax), and falls back to the jittered backoff without one.
func TestRetryAfterHook(t *testing.T) {
	header := func(v string) *resty.Response {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		return &resty.Response{RawResponse: &http.Response{StatusCode: http.StatusTooManyRequests, Header: h}}
	}
	for _, tt := range []struct {
		header string
		want   time.Duration
	}{{"2", 2 * time.Second}, {"", 0}, {"later", 0}} {
		got, err := retryAfter(nil, header(tt.header))
		assert.NoError(t, err)
		assert.Equal(t, tt.want, got, "Retry-After %q", tt.header)
	}
	got, err := retryAfter(nil, nil)
	assert.NoError(t, err)
	assert.Zero(t, got, "a transport error has no response")
	// The hook is the one the client's resty uses.
	c := New(Options{})
	assert.NotNil(t, c.rest.RetryAfter)
}

func TestReuseFor(t *testing.T) {
	c := New(Options{TokenEarlyExpiry: time.Minute})
	assert.Equal(t, 59*time.Minute, c.reuseFor(time.Hour))
	assert.Equal(t, 15*time.Second, c.reuseFor(30*time.Second), "short tokens live half their life")
}

// TestRetryable: a status read retries every transient transport failure; a create only those
// that prove it never reached VCC. Answers are judged by status alike for both.
func TestRetryable(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "http://vcc.example", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	noHost := &url.Error{Op: "Post", URL: "http://vcc.example", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "no such host", Name: "vcc.example", IsNotFound: true}}}
	reset := &url.Error{Op: "Post", URL: "http://vcc.example", Err: &net.OpError{Op: "read", Net: "tcp",
		Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
	timeout := &url.Error{Op: "Post", URL: "http://vcc.example", Err: timeoutError{}}
	eof := &url.Error{Op: "Post", URL: "http://vcc.example", Err: io.EOF}
	cutShort := fmt.Errorf("reading body: %w", io.ErrUnexpectedEOF)
	cancelled := &url.Error{Op: "Post", URL: "http://vcc.example", Err: context.Canceled}

	tests := []struct {
		name      string
		err       error
		wantGet   bool
		wantPost  bool
		wantNoReq bool // without a request (resty failed before sending): as a POST
	}{
		{"connection refused", refused, true, true, true},
		{"no such host", noHost, true, true, true},
		{"connection reset", reset, true, false, false},
		{"timeout", timeout, true, false, false},
		{"closed before an answer", eof, true, false, false},
		{"closed mid-answer", cutShort, true, false, false},
		{"cancelled", cancelled, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.wantGet, retryable(failedAttempt(http.MethodGet), tt.err), "GET")
			assert.Equal(t, tt.wantPost, retryable(failedAttempt(http.MethodPost), tt.err), "POST")
			assert.Equal(t, tt.wantNoReq, retryable(nil, tt.err), "no response")
		})
	}

	answer := func(method string, status int, body string) *resty.Response {
		resp := &resty.Response{
			Request:     &resty.Request{Method: method},
			RawResponse: &http.Response{StatusCode: status, Header: http.Header{}},
		}
		return resp.SetBody([]byte(body))
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		for _, tt := range []struct {
			status int
			body   string
			want   bool
		}{
			{429, "Too Many Requests", true},
			{502, "Bad Gateway", true},
			{503, "Service Unavailable", true},
			{504, "Gateway Timeout", true},
			{503, "Provider's authorization endpoint returned error message 'invalid_client_key'", false},
			{500, "Internal Server Error", false},
			{400, "Bad Request", false},
			{200, "{}", false},
		} {
			assert.Equal(t, tt.want, retryable(answer(method, tt.status, tt.body), nil), "%s %d %s", method, tt.status, tt.body)
		}
	}
}

// failedAttempt is what resty hands the retry condition when an attempt got no answer.
func failedAttempt(method string) *resty.Response {
	return &resty.Response{Request: &resty.Request{Method: method}}
}

// timeoutError is a net.Error that timed out, as http.Client reports an attempt past its Timeout.
type timeoutError struct{}

func (timeoutError) Error() string   { return "Client.Timeout exceeded while awaiting headers" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
