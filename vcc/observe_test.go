package vcc_test

import (
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/vcc"
)

// observations records Options.Observe calls as "endpoint outcome".
type observations struct {
	mu  sync.Mutex
	got []string
}

func (o *observations) observe(endpoint, outcome string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d < 0 {
		outcome += " (negative duration)"
	}
	o.got = append(o.got, endpoint+" "+outcome)
}

func (o *observations) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.got...)
}

// TestObserveEachAttempt: every HTTP attempt is reported once, with its endpoint and outcome,
// retries and token fetches each counted.
func TestObserveEachAttempt(t *testing.T) {
	tests := []struct {
		name    string
		token   func(w http.ResponseWriter, r *http.Request, n int) // nil: a token
		api     func(w http.ResponseWriter, r *http.Request, n int)
		call    func(t *testing.T, c *vcc.Client, m *bridge.Merchant) error
		want    []string
		wantErr bool
	}{
		{
			name: "create ok",
			api:  func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, agentAssistOK) },
			call: create,
			want: []string{"token ok", "create ok"},
		},
		{
			name: "digital create ok",
			api: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 200, map[string]string{"sessionGuid": "g-1", "link": "https://pcipal.example/l/1"})
			},
			call: func(t *testing.T, c *vcc.Client, m *bridge.Merchant) error {
				req := gbpRequest()
				req.Channel = bridge.ChannelDigital
				_, err := c.CreateSession(t.Context(), m, req)
				return err
			},
			want: []string{"token ok", "create_digital ok"},
		},
		{
			name: "503 retried: each attempt counted",
			api: func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= 2 {
					writeText(w, 503, "text/plain", "Service Unavailable")
					return
				}
				writeJSON(w, 200, agentAssistOK)
			},
			call: create,
			want: []string{"token ok", "create 5xx", "create 5xx", "create ok"},
		},
		{
			name: "status 404",
			api:  func(w http.ResponseWriter, r *http.Request, n int) { writeText(w, 404, "text/plain", "") },
			call: func(t *testing.T, c *vcc.Client, m *bridge.Merchant) error {
				_, err := c.SessionStatus(t.Context(), m, "g-1")
				return err
			},
			want: []string{"token ok", "status 4xx"}, wantErr: true,
		},
		{
			name: "401 refreshes the token",
			api: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					writeText(w, 401, "text/plain", "")
					return
				}
				writeJSON(w, 200, agentAssistOK)
			},
			call: create,
			want: []string{"token ok", "create 4xx", "token ok", "create ok"},
		},
		{
			name: "token refused",
			token: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 400, map[string]string{"error": "invalid_client"})
			},
			call: create,
			want: []string{"token 4xx"}, wantErr: true,
		},
		{
			name: "create times out",
			api:  func(w http.ResponseWriter, r *http.Request, n int) { <-r.Context().Done() },
			call: create,
			want: []string{"token ok", "create timeout"}, wantErr: true,
		},
		{
			name: "body cut off after the status line",
			api: func(w http.ResponseWriter, r *http.Request, n int) {
				lostAfterSending[1].fail(w, r)
			},
			call: create,
			want: []string{"token ok", "create error"}, wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVCC(t)
			if tt.token != nil {
				f.tokenFn = tt.token
			}
			f.apiFn = tt.api
			var obs observations
			opts := fastOptions()
			opts.RequestTimeout = 300 * time.Millisecond
			opts.HTTPClient = noKeepAlive()
			opts.Observe = obs.observe
			err := tt.call(t, vcc.New(opts), f.merchant())
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, obs.list())
		})
	}
}

// A connection refused is an error, and a create is retried then (nothing was sent): each try counted.
func TestObserveConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	var obs observations
	opts := fastOptions()
	opts.MaxRetries = 2
	opts.Observe = obs.observe
	m := &bridge.Merchant{ID: "acme", VCC: bridge.VCCAccount{
		TokenURL: "http://" + addr + "/token", APIBaseURL: "http://" + addr + "/paymentapi", ClientID: "c", ClientSecret: testSecret,
	}}
	_, err = vcc.New(opts).CreateSession(t.Context(), m, gbpRequest())
	require.Error(t, err)
	assert.Equal(t, []string{"token error", "token error", "token error"}, obs.list())
}

func create(t *testing.T, c *vcc.Client, m *bridge.Merchant) error {
	_, err := c.CreateSession(t.Context(), m, gbpRequest())
	return err
}
