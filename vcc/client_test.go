package vcc_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/vcc"
)

func TestCreateSessionRequest(t *testing.T) {
	full := bridge.Customer{FirstName: "Ada", Surname: "Lovelace", Email: "ada@example.com", Phone: "+441234567890",
		Street1: "1 Analytical Way", City: "London", Postcode: "N1 1AA"}
	tests := []struct {
		name     string
		req      bridge.ProviderRequest
		merchant func(*bridge.Merchant)
		wantPath string
		wantBody string
	}{
		{
			name: "agent assist, every field",
			req: bridge.ProviderRequest{Channel: bridge.ChannelAgentAssist, AgentID: "agent-7", AccountConfigurationID: new(2),
				Amount: 1240, Currency: "gbp", Country: "GB", Reference: "INV-42", Customer: full, SkipCallTransfer: true},
			wantPath: "/paymentapi/v1/session",
			wantBody: `{"agentId":"agent-7","accountConfigurationId":2,"skipCallTransfer":true,"paymentData":{
				"Amount":"12.40","Currency":"GBP","Country":"GB","MerchantReferenceCode":"INV-42","FirstName":"Ada",
				"Surname":"Lovelace","Email":"ada@example.com","CustomerPhoneNumber":"+441234567890",
				"Street1":"1 Analytical Way","City":"London","Postcode":"N1 1AA"}}`,
		},
		{
			name:     "channel defaults to agent assist; zero id and false skip omitted; empty fields omitted",
			req:      bridge.ProviderRequest{AgentID: "agent-7", Amount: 1240, Currency: "JPY"},
			wantPath: "/paymentapi/v1/session",
			wantBody: `{"agentId":"agent-7","paymentData":{"Amount":"1240","Currency":"JPY"}}`,
		},
		{
			// The service asks for it only in test mode; a live session of a merchant whose flag is
			// on must still need the call transfer.
			name:     "merchant flag on, request says no: no skipCallTransfer",
			req:      bridge.ProviderRequest{AgentID: "agent-7", Amount: 1240, Currency: "BHD"},
			merchant: func(m *bridge.Merchant) { m.VCC.SkipCallTransfer = true },
			wantPath: "/paymentapi/v1/session",
			wantBody: `{"agentId":"agent-7","paymentData":{"Amount":"1.240","Currency":"BHD"}}`,
		},
		{
			name:     "merchant flag on, request says yes",
			req:      bridge.ProviderRequest{AgentID: "agent-7", Amount: 1240, Currency: "BHD", SkipCallTransfer: true},
			merchant: func(m *bridge.Merchant) { m.VCC.SkipCallTransfer = true },
			wantPath: "/paymentapi/v1/session",
			wantBody: `{"agentId":"agent-7","skipCallTransfer":true,"paymentData":{"Amount":"1.240","Currency":"BHD"}}`,
		},
		{
			name: "digital never sends skipCallTransfer",
			req: bridge.ProviderRequest{Channel: bridge.ChannelDigital, AgentID: "agent-7", AccountConfigurationID: new(1),
				Amount: 5, Currency: "GBP", SkipCallTransfer: true},
			wantPath: "/paymentapi/v1/digitalsession",
			wantBody: `{"agentId":"agent-7","accountConfigurationId":1,"paymentData":{"Amount":"0.05","Currency":"GBP"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVCC(t)
			f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
				if strings.HasSuffix(r.URL.Path, "digitalsession") {
					writeJSON(w, 200, map[string]string{"sessionGuid": "g-1", "link": "https://vcc.example/pay/g-1"})
					return
				}
				writeJSON(w, 200, agentAssistOK)
			}
			m := f.merchant()
			if tt.merchant != nil {
				tt.merchant(m)
			}
			c := vcc.New(fastOptions())
			_, err := c.CreateSession(t.Context(), m, &tt.req)
			require.NoError(t, err)

			r, body := f.last()
			assert.Equal(t, http.MethodPost, r.Method)
			assert.Equal(t, tt.wantPath, r.URL.Path)
			assert.Equal(t, "Bearer tok-1", r.Header.Get("Authorization"))
			assert.Contains(t, r.Header.Get("Content-Type"), "application/json")
			assert.JSONEq(t, tt.wantBody, string(body))
		})
	}
}

func TestCreateSessionResponse(t *testing.T) {
	tests := []struct {
		name     string
		channel  bridge.Channel
		status   int
		body     string
		want     *bridge.ProviderSession
		wantCode bridge.Code
	}{
		{
			name: "agent assist", channel: bridge.ChannelAgentAssist, status: 200,
			body: `{"sessionGuid":"g-1","iframeUrl":"https://p.example/framed","agentAccessToken":"at","agentRefreshToken":"rt"}`,
			want: &bridge.ProviderSession{SessionGUID: "g-1", IframeURL: "https://p.example/framed", AgentAccessToken: "at", AgentRefreshToken: "rt"},
		},
		{
			name: "digital", channel: bridge.ChannelDigital, status: 200,
			body: `{"sessionGuid":"g-2","link":"https://vcc.example/pay/g-2"}`,
			want: &bridge.ProviderSession{SessionGUID: "g-2", CustomerURL: "https://vcc.example/pay/g-2"},
		},
		{name: "no sessionGuid", channel: bridge.ChannelAgentAssist, status: 200,
			body: `{"iframeUrl":"https://p.example/framed","agentAccessToken":"at","agentRefreshToken":"rt"}`, wantCode: bridge.CodeProviderUnavailable},
		{name: "no iframe", channel: bridge.ChannelAgentAssist, status: 200,
			body: `{"sessionGuid":"g-1","agentAccessToken":"at","agentRefreshToken":"rt"}`, wantCode: bridge.CodeProviderUnavailable},
		{name: "no refresh token", channel: bridge.ChannelAgentAssist, status: 200,
			body: `{"sessionGuid":"g-1","iframeUrl":"https://p.example/framed","agentAccessToken":"at"}`, wantCode: bridge.CodeProviderUnavailable},
		{name: "digital without guid", channel: bridge.ChannelDigital, status: 200, body: `{"link":"x"}`, wantCode: bridge.CodeProviderUnavailable},
		{name: "not json", channel: bridge.ChannelAgentAssist, status: 200, body: `<html>oops</html>`, wantCode: bridge.CodeProviderUnavailable},
		{name: "empty", channel: bridge.ChannelAgentAssist, status: 200, body: ``, wantCode: bridge.CodeProviderUnavailable},
		{name: "documented text in a 200 still counts", channel: bridge.ChannelAgentAssist, status: 200,
			body: `{"message":"Provider's authorization endpoint returned error message 'invalid_client_key'"}`, wantCode: bridge.CodeMerchantNotConfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVCC(t)
			f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
				writeText(w, tt.status, "application/json", tt.body)
			}
			req := gbpRequest()
			req.Channel = tt.channel
			got, err := vcc.New(fastOptions()).CreateSession(t.Context(), f.merchant(), req)
			if tt.wantCode != "" {
				requireCode(t, err, tt.wantCode)
				assert.EqualValues(t, 1, f.api.Load(), "a 200 is an answer: never retried")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// An iframe URL or payment link goes to a browser only if it is https, or http on a loopback host
// (the stubs). Anything else is refused without the URL, which could carry a token, being quoted.
func TestCreateSessionRefusesUnsafeURLs(t *testing.T) {
	const token = "tok3n-in-the-url"
	tests := []struct {
		name    string
		channel bridge.Channel
		url     string
		wantOK  bool
	}{
		{"https", bridge.ChannelAgentAssist, "https://pcipal.example/session/t/view/p1/framed", true},
		{"https, scheme in capitals", bridge.ChannelAgentAssist, "HTTPS://pcipal.example/framed", true},
		{"http on 127.0.0.1", bridge.ChannelAgentAssist, "http://127.0.0.1:8081/session/t/view/p1/framed", true},
		{"http on localhost", bridge.ChannelAgentAssist, "http://localhost:8081/framed", true},
		{"http on ::1", bridge.ChannelAgentAssist, "http://[::1]:8081/framed", true},
		{"http elsewhere", bridge.ChannelAgentAssist, "http://pcipal.example/framed?t=" + token, false},
		{"http on a name that starts like loopback", bridge.ChannelAgentAssist, "http://127.0.0.1.evil.example/" + token, false},
		{"http on a name that starts like localhost", bridge.ChannelAgentAssist, "http://localhost.evil.example/" + token, false},
		{"javascript", bridge.ChannelAgentAssist, "javascript:alert('" + token + "')", false},
		{"data", bridge.ChannelAgentAssist, "data:text/html,<script>" + token + "</script>", false},
		{"relative", bridge.ChannelAgentAssist, "/session/t/view/" + token + "/framed", false},
		{"scheme-relative", bridge.ChannelAgentAssist, "//pcipal.example/" + token, false},
		{"https without a host", bridge.ChannelAgentAssist, "https:///" + token, false},
		{"not a URL", bridge.ChannelAgentAssist, "https://pcipal.example/" + token + "\x7f", false},
		{"digital link https", bridge.ChannelDigital, "https://vcc.example/pay/g-1", true},
		{"digital link http on 127.0.0.1", bridge.ChannelDigital, "http://127.0.0.1:8080/pay/g-1", true},
		{"digital link http elsewhere", bridge.ChannelDigital, "http://vcc.example/pay/" + token, false},
		{"digital link javascript", bridge.ChannelDigital, "javascript:void('" + token + "')", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVCC(t)
			f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
				if tt.channel == bridge.ChannelDigital {
					writeJSON(w, 200, map[string]string{"sessionGuid": "g-1", "link": tt.url})
					return
				}
				writeJSON(w, 200, map[string]string{"sessionGuid": "g-1", "iframeUrl": tt.url,
					"agentAccessToken": "at", "agentRefreshToken": "rt"})
			}
			logger, logs := newLogger()
			opts := fastOptions()
			opts.Logger = logger
			req := gbpRequest()
			req.Channel = tt.channel
			got, err := vcc.New(opts).CreateSession(t.Context(), f.merchant(), req)
			if tt.wantOK {
				require.NoError(t, err)
				assert.Equal(t, tt.url, got.IframeURL+got.CustomerURL)
				return
			}
			be := requireCode(t, err, bridge.CodeProviderUnavailable)
			want := "VCC returned an iframe URL paybridge will not hand to a browser."
			if tt.channel == bridge.ChannelDigital {
				want = "VCC returned a payment link paybridge will not hand to a browser."
			}
			assert.Equal(t, want, be.Message)
			var ve *vcc.Error
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, vcc.KindUnavailable, ve.Kind)
			for _, s := range []string{be.Message, be.Fix, be.Error(), logs.String()} {
				assert.NotContains(t, s, token)
			}
			assert.EqualValues(t, 1, f.api.Load(), "a 200 is an answer: never retried")
		})
	}
}

// The documented failures are recognised by their text whatever the status and whatever the body
// form: a JSON object's message, a JSON string, plain text, or JSON with escaped apostrophes.
func TestCreateSessionDocumentedFailures(t *testing.T) {
	const (
		keyText   = "Provider's authorization endpoint returned error message 'invalid_client_key'"
		permText  = "Provider's authorization endpoint returned error message 'invalid_client'/'invalid_client' for account name: Acme Energy Ltd, configuration id: 7"
		unkText   = "Account configuration does not exists for account: acme-sandbox, configuration Id: 9."
		permAcct  = "Acme Energy Ltd"
		unkAcct   = "acme-sandbox"
		jsonMsg   = `{"message":%q}`
		escapedQ  = `{"message":"Provider\u0027s authorization endpoint returned error message \u0027invalid_client_key\u0027"}`
		plainType = "text/plain"
		jsonType  = "application/json"
	)
	tests := []struct {
		name      string
		status    int
		ctype     string
		body      string
		wantKind  vcc.ErrorKind
		wantCode  bridge.Code
		wantParam string
		wantAcct  string
		wantID    int
		fixHas    []string
	}{
		{"invalid_client_key json 500", 500, jsonType, jsonf(jsonMsg, keyText), vcc.KindInvalidClientKey, bridge.CodeMerchantNotConfigured, "", "", 0, []string{"VCC support"}},
		{"invalid_client_key json string 502", 502, jsonType, jsonf("%q", keyText), vcc.KindInvalidClientKey, bridge.CodeMerchantNotConfigured, "", "", 0, []string{"PCI provider credentials"}},
		{"invalid_client_key plain 400", 400, plainType, keyText, vcc.KindInvalidClientKey, bridge.CodeMerchantNotConfigured, "", "", 0, []string{"professional services"}},
		{"invalid_client_key escaped apostrophes", 500, jsonType, escapedQ, vcc.KindInvalidClientKey, bridge.CodeMerchantNotConfigured, "", "", 0, nil},
		{"provider permissions json 500", 500, jsonType, jsonf(jsonMsg, permText), vcc.KindProviderPermissions, bridge.CodeMerchantNotConfigured, "", permAcct, 7, []string{permAcct, "7", "permission"}},
		{"provider permissions plain 403", 403, plainType, permText, vcc.KindProviderPermissions, bridge.CodeMerchantNotConfigured, "", permAcct, 7, []string{permAcct}},
		{"unknown configuration json 400", 400, jsonType, jsonf(jsonMsg, unkText), vcc.KindUnknownAccountConfiguration, bridge.CodeValidationError, "accountConfigurationId", unkAcct, 9, []string{unkAcct, "9", "Vonage supplied"}},
		{"unknown configuration plain 500", 500, plainType, unkText, vcc.KindUnknownAccountConfiguration, bridge.CodeValidationError, "accountConfigurationId", unkAcct, 9, nil},
		{"invalid_client from the payment api", 400, jsonType, `{"error":"invalid_client"}`, vcc.KindInvalidClient, bridge.CodeMerchantNotConfigured, "", "", 0, []string{"API Admin"}},
		{"unrecognised 400", 400, jsonType, `{"message":"agentId is required"}`, vcc.KindRejected, bridge.CodeValidationError, "", "", 0, nil},
		{"unrecognised 404", 404, plainType, "Not Found", vcc.KindRejected, bridge.CodeValidationError, "", "", 0, nil},
		{"unrecognised 409", 409, jsonType, `{"message":"duplicate"}`, vcc.KindRejected, bridge.CodeValidationError, "", "", 0, nil},
		{"unrecognised 422", 422, jsonType, `{"message":"bad paymentData"}`, vcc.KindRejected, bridge.CodeValidationError, "", "", 0, nil},
		{"unrecognised 403", 403, jsonType, `{"message":"forbidden"}`, vcc.KindRejected, bridge.CodeValidationError, "", "", 0, nil},
		{"unrecognised 500", 500, jsonType, `{"message":"An error has occurred."}`, vcc.KindUnavailable, bridge.CodeProviderUnavailable, "", "", 0, []string{"retriable"}},
		{"unrecognised 405", 405, plainType, "Method Not Allowed", vcc.KindUnavailable, bridge.CodeProviderUnavailable, "", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVCC(t)
			f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) { writeText(w, tt.status, tt.ctype, tt.body) }
			_, err := vcc.New(fastOptions()).CreateSession(t.Context(), f.merchant(), gbpRequest())

			be := requireCode(t, err, tt.wantCode)
			assert.Equal(t, tt.wantParam, be.Param)
			for _, s := range tt.fixHas {
				assert.Contains(t, be.Fix, s)
			}
			var ve *vcc.Error
			require.ErrorAs(t, err, &ve, "the *vcc.Error is the cause")
			assert.Equal(t, tt.wantKind, ve.Kind)
			assert.Equal(t, tt.status, ve.Status)
			assert.Equal(t, tt.wantAcct, ve.Account)
			assert.Equal(t, tt.wantID, ve.ConfigurationID)
			if tt.wantKind != vcc.KindUnavailable {
				assert.NotEmpty(t, ve.Text)
				assert.Contains(t, be.Message, ve.Text, "the message quotes VCC's text")
			}
			assert.EqualValues(t, 1, f.api.Load(), "a refusal is never retried")
		})
	}
}

func jsonf(format, s string) string {
	b, _ := json.Marshal(s)
	if format == "%q" {
		return string(b)
	}
	return strings.Replace(format, "%q", string(b), 1)
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		failures   int // answers with status before a success
		maxRetries int
		wantCalls  int32
		wantCode   bridge.Code // "" = success
	}{
		{"502 then success", 502, 2, 3, 3, ""},
		{"503 then success", 503, 3, 3, 4, ""},
		{"504 then success", 504, 1, 3, 2, ""},
		{"429 then success", 429, 1, 3, 2, ""},
		{"503 forever", 503, 100, 3, 4, bridge.CodeProviderUnavailable},
		{"429 forever", 429, 100, 2, 3, bridge.CodeProviderUnavailable},
		{"retries disabled", 503, 100, -1, 1, bridge.CodeProviderUnavailable},
		{"400 never", 400, 100, 3, 1, bridge.CodeValidationError},
		{"500 never", 500, 100, 3, 1, bridge.CodeProviderUnavailable},
		{"401 is not a retry case", 422, 100, 3, 1, bridge.CodeValidationError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVCC(t)
			f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= tt.failures {
					writeText(w, tt.status, "text/plain", http.StatusText(tt.status))
					return
				}
				writeJSON(w, 200, agentAssistOK)
			}
			opts := fastOptions()
			opts.MaxRetries = tt.maxRetries
			_, err := vcc.New(opts).CreateSession(t.Context(), f.merchant(), gbpRequest())
			if tt.wantCode == "" {
				require.NoError(t, err)
			} else {
				requireCode(t, err, tt.wantCode)
			}
			assert.Equal(t, tt.wantCalls, f.api.Load())
			assert.EqualValues(t, 1, f.tokens.Load(), "retries reuse the token")
		})
	}
}

// lostAfterSending are ways an attempt fails after VCC has read the whole request: VCC may have
// acted on it.
var lostAfterSending = []struct {
	name string
	fail func(w http.ResponseWriter, r *http.Request)
}{
	{"connection closed before an answer", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}},
	{"connection closed mid-answer", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"sessionGuid\":")
		_ = conn.Close()
	}},
	{"connection reset", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // close with RST
		}
		_ = conn.Close()
	}},
	{"attempt timeout", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // hold until the client gives the attempt up
	}},
}

// noKeepAlive is an HTTP client whose connections are never reused, so Go's transport never
// resends a request by itself and every request the fake counts was sent by the Client.
func noKeepAlive() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// A create that may have reached VCC is never sent again: a second create would start a second
// VCC session and orphan the first.
func TestCreateNotRetriedAfterSending(t *testing.T) {
	for _, tt := range lostAfterSending {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVCC(t)
			f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					tt.fail(w, r)
					return
				}
				writeJSON(w, 200, agentAssistOK)
			}
			opts := fastOptions()
			opts.RequestTimeout = 200 * time.Millisecond
			opts.HTTPClient = noKeepAlive()
			_, err := vcc.New(opts).CreateSession(t.Context(), f.merchant(), gbpRequest())
			requireCode(t, err, bridge.CodeProviderUnavailable)
			var ve *vcc.Error
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, vcc.KindUnavailable, ve.Kind)
			assert.EqualValues(t, 1, f.api.Load(), "one create sent, never repeated")
		})
	}
}

// A status read is safe to repeat: every transport failure is retried.
func TestStatusRetriedAfterTransportFailures(t *testing.T) {
	const status = `{"sessionGuid":"g-1","sessionState":"InProgress"}`
	for _, tt := range lostAfterSending {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVCC(t)
			f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					tt.fail(w, r)
					return
				}
				writeText(w, 200, "application/json", status)
			}
			opts := fastOptions()
			opts.RequestTimeout = 200 * time.Millisecond
			opts.HTTPClient = noKeepAlive()
			st, err := vcc.New(opts).SessionStatus(t.Context(), f.merchant(), "g-1")
			require.NoError(t, err)
			assert.Equal(t, bridge.StateInProgress, st.State)
			assert.EqualValues(t, 2, f.api.Load())
		})
	}
}

// dialCounter is an HTTP client that counts the connections it tries to open, by address.
type dialCounter struct {
	mu    sync.Mutex
	dials map[string]int
}

func (d *dialCounter) client() *http.Client {
	var dialer net.Dialer
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d.mu.Lock()
			d.dials[addr]++
			d.mu.Unlock()
			return dialer.DialContext(ctx, network, addr)
		},
	}}
}

func (d *dialCounter) count(addr string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials[addr]
}

// refusedAddr is where connections are refused: port 1 is privileged and never handed out as an
// ephemeral port, so unlike a closed test server's port no concurrently running test can take it
// over between the close and the dial.
const refusedAddr = "127.0.0.1:1"

// A refused connection means the create never left: it is retried up to MaxRetries.
func TestCreateRetriedWhenConnectionRefused(t *testing.T) {
	f := newFakeVCC(t)
	m := f.merchant()
	m.VCC.APIBaseURL = "http://" + refusedAddr + "/paymentapi"
	dials := &dialCounter{dials: map[string]int{}}
	opts := fastOptions()
	opts.MaxRetries = 3
	opts.HTTPClient = dials.client()
	_, err := vcc.New(opts).CreateSession(t.Context(), m, gbpRequest())

	requireCode(t, err, bridge.CodeProviderUnavailable)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.Equal(t, 1+opts.MaxRetries, dials.count(refusedAddr), "the first attempt and every retry dialled")
	assert.EqualValues(t, 1, f.tokens.Load())
}

func TestConnectionRefused(t *testing.T) {
	f := newFakeVCC(t)
	m := f.merchant()
	m.VCC.APIBaseURL = "http://" + refusedAddr + "/paymentapi"

	_, err := vcc.New(fastOptions()).CreateSession(t.Context(), m, gbpRequest())
	be := requireCode(t, err, bridge.CodeProviderUnavailable)
	assert.NotContains(t, be.Message, "127.0.0.1", "addresses stay in the private cause")
	var ve *vcc.Error
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, vcc.KindUnavailable, ve.Kind)
	assert.Error(t, ve.Err)
}

// A cancelled context stops retrying at once, even mid-backoff.
func TestContextStopsRetries(t *testing.T) {
	t.Run("cancelled during backoff", func(t *testing.T) {
		f := newFakeVCC(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
			writeText(w, 503, "text/plain", "Service Unavailable")
			cancel() // the caller gives up while the client waits to retry
		}
		// An hour's backoff: returning at all shows the cancel cut the wait short.
		opts := vcc.Options{RetryWaitMin: time.Hour, RetryWaitMax: time.Hour}
		done := make(chan error, 1)
		go func() {
			_, err := vcc.New(opts).CreateSession(ctx, f.merchant(), gbpRequest())
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the client waited out its backoff after the caller cancelled")
		}
		requireCode(t, err, bridge.CodeProviderUnavailable)
		assert.ErrorIs(t, err, context.Canceled)
		assert.EqualValues(t, 1, f.api.Load())
	})
	t.Run("deadline", func(t *testing.T) {
		f := newFakeVCC(t)
		f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
			writeText(w, 503, "text/plain", "Service Unavailable")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		opts := vcc.Options{RetryWaitMin: 200 * time.Millisecond, RetryWaitMax: 200 * time.Millisecond, MaxRetries: 10}
		_, err := vcc.New(opts).CreateSession(ctx, f.merchant(), gbpRequest())
		be := requireCode(t, err, bridge.CodeProviderUnavailable)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, be.Message, "in time")
		assert.LessOrEqual(t, f.api.Load(), int32(2), "10 retries were allowed but the deadline stopped them")
	})
	t.Run("already cancelled: no request", func(t *testing.T) {
		f := newFakeVCC(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := vcc.New(fastOptions()).CreateSession(ctx, f.merchant(), gbpRequest())
		requireCode(t, err, bridge.CodeProviderUnavailable)
		assert.EqualValues(t, 0, f.api.Load())
	})
}

// A 401 drops the cached token, fetches a new one and retries once; a second 401 means the
// credentials do not work for the Payment API.
func TestUnauthorizedRefreshesOnce(t *testing.T) {
	tests := []struct {
		name        string
		refuse      func(auth string) bool
		wantCode    bridge.Code
		wantTokens  int32
		wantAPICall int32
	}{
		{"stale token replaced", func(auth string) bool { return auth == "Bearer tok-1" }, "", 2, 2},
		{"every token refused", func(string) bool { return true }, bridge.CodeMerchantNotConfigured, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVCC(t)
			f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
				if tt.refuse(r.Header.Get("Authorization")) {
					writeJSON(w, 401, map[string]string{"message": "Authorization has been denied for this request."})
					return
				}
				writeJSON(w, 200, agentAssistOK)
			}
			_, err := vcc.New(fastOptions()).CreateSession(t.Context(), f.merchant(), gbpRequest())
			if tt.wantCode == "" {
				require.NoError(t, err)
			} else {
				be := requireCode(t, err, tt.wantCode)
				assert.Contains(t, be.Message, "Authorization has been denied")
				var ve *vcc.Error
				require.ErrorAs(t, err, &ve)
				assert.Equal(t, vcc.KindAuthRejected, ve.Kind)
			}
			assert.Equal(t, tt.wantTokens, f.tokens.Load())
			assert.Equal(t, tt.wantAPICall, f.api.Load())
		})
	}
}

// A burst of calls that all get 401 for the same old token causes one refetch, not one each.
func TestUnauthorizedBurstRefetchesOnce(t *testing.T) {
	f := newFakeVCC(t)
	f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Authorization") == "Bearer tok-1" {
			writeJSON(w, 401, map[string]string{"message": "Authorization has been denied for this request."})
			return
		}
		writeJSON(w, 200, agentAssistOK)
	}
	c := vcc.New(fastOptions())
	m := f.merchant()
	_, err := c.Token(t.Context(), m) // everyone starts with tok-1
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := c.CreateSession(t.Context(), m, gbpRequest())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.EqualValues(t, 2, f.tokens.Load())
}

func TestTokenRequest(t *testing.T) {
	f := newFakeVCC(t)
	var form map[string][]string
	var basic bool
	f.tokenFn = func(w http.ResponseWriter, r *http.Request, n int) {
		_ = r.ParseForm()
		form = r.PostForm
		_, _, basic = r.BasicAuth()
		issueToken(3600)(w, r, n)
	}
	tok, err := vcc.New(fastOptions()).Token(t.Context(), f.merchant())
	require.NoError(t, err)
	assert.Equal(t, "tok-1", tok)
	assert.Equal(t, []string{"client_credentials"}, form["grant_type"])
	assert.Equal(t, []string{"acme-bridge"}, form["client_id"])
	assert.Equal(t, []string{testSecret}, form["client_secret"])
	assert.Equal(t, []string{"globalpci"}, form["scope"])
	assert.False(t, basic, "credentials travel in the form body")
}

func TestTokenFailures(t *testing.T) {
	tests := []struct {
		name       string
		answer     func(w http.ResponseWriter, n int)
		wantCode   bridge.Code
		wantKind   vcc.ErrorKind
		wantTokens int32
		msgHas     string
		fixHas     string
	}{
		{
			name: "invalid_client",
			answer: func(w http.ResponseWriter, n int) {
				writeText(w, 400, "application/json", `{"error":"invalid_client"}`)
			},
			wantCode: bridge.CodeMerchantNotConfigured, wantKind: vcc.KindInvalidClient, wantTokens: 1,
			msgHas: `{"error":"invalid_client"}`, fixHas: "API Admin",
		},
		{
			name: "invalid_client as 401",
			answer: func(w http.ResponseWriter, n int) {
				writeText(w, 401, "application/json", `{"error":"invalid_client"}`)
			},
			wantCode: bridge.CodeMerchantNotConfigured, wantKind: vcc.KindInvalidClient, wantTokens: 1,
			msgHas: "invalid_client", fixHas: "client ID and client secret",
		},
		{
			name:     "invalid_scope",
			answer:   func(w http.ResponseWriter, n int) { writeText(w, 400, "application/json", `{"error":"invalid_scope"}`) },
			wantCode: bridge.CodeMerchantNotConfigured, wantKind: vcc.KindAuthRejected, wantTokens: 1,
			msgHas: "invalid_scope", fixHas: "globalpci",
		},
		{
			name:     "503 forever",
			answer:   func(w http.ResponseWriter, n int) { writeText(w, 503, "text/plain", "Service Unavailable") },
			wantCode: bridge.CodeProviderUnavailable, wantKind: vcc.KindUnavailable, wantTokens: 4,
			msgHas: "503", fixHas: "retriable",
		},
		{
			name: "500 twice then a token",
			answer: func(w http.ResponseWriter, n int) {
				if n <= 2 {
					writeText(w, 500, "text/plain", "boom")
					return
				}
				writeJSON(w, 200, map[string]any{"access_token": "tok-ok", "expires_in": 3600})
			},
			wantTokens: 3,
		},
		{
			name:     "200 without access_token",
			answer:   func(w http.ResponseWriter, n int) { writeJSON(w, 200, map[string]any{"expires_in": 3600}) },
			wantCode: bridge.CodeProviderUnavailable, wantKind: vcc.KindUnavailable, wantTokens: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVCC(t)
			f.tokenFn = func(w http.ResponseWriter, r *http.Request, n int) { tt.answer(w, n) }
			_, err := vcc.New(fastOptions()).CreateSession(t.Context(), f.merchant(), gbpRequest())
			assert.Equal(t, tt.wantTokens, f.tokens.Load())
			if tt.wantCode == "" {
				require.NoError(t, err)
				assert.EqualValues(t, 1, f.api.Load())
				return
			}
			be := requireCode(t, err, tt.wantCode)
			assert.Contains(t, be.Message, tt.msgHas)
			assert.Contains(t, be.Fix, tt.fixHas)
			assert.NotContains(t, be.Error(), testSecret)
			var ve *vcc.Error
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.wantKind, ve.Kind)
			assert.EqualValues(t, 0, f.api.Load(), "no token, no Payment API call")
		})
	}
}

// An upstream that echoes a credential back has it scrubbed from the quoted text.
func TestUpstreamEchoIsScrubbed(t *testing.T) {
	f := newFakeVCC(t)
	f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 400, map[string]string{"message": "bad request from " + r.Header.Get("Authorization") + " with " + testSecret})
	}
	_, err := vcc.New(fastOptions()).CreateSession(t.Context(), f.merchant(), gbpRequest())
	be := requireCode(t, err, bridge.CodeValidationError)
	assert.Contains(t, be.Message, "[redacted]")
	assert.NotContains(t, be.Error(), "tok-1")
	assert.NotContains(t, be.Error(), testSecret)
}

func TestTokenCache(t *testing.T) {
	t.Run("reused until early expiry, then refetched", func(t *testing.T) {
		f := newFakeVCC(t)
		clock := newManualClock()
		opts := fastOptions()
		opts.Clock = clock
		c := vcc.New(opts)
		m := f.merchant()
		steps := []struct {
			advance time.Duration
			want    string
		}{
			{0, "tok-1"},
			{58 * time.Minute, "tok-1"},
			{59*time.Second + 999*time.Millisecond, "tok-1"}, // 1ms short of expiry minus 60s
			{time.Millisecond, "tok-2"},
			{58 * time.Minute, "tok-2"},
			{2 * time.Minute, "tok-3"},
		}
		for i, s := range steps {
			clock.Advance(s.advance)
			got, err := c.Token(t.Context(), m)
			require.NoError(t, err)
			assert.Equal(t, s.want, got, "step %d", i)
		}
	})
	t.Run("expires_in as a string, in a form-encoded answer", func(t *testing.T) {
		f := newFakeVCC(t)
		f.tokenFn = func(w http.ResponseWriter, r *http.Request, n int) {
			writeText(w, 200, "application/x-www-form-urlencoded", "access_token=tok-"+string(rune('0'+n))+"&expires_in=600&token_type=Bearer")
		}
		clock := newManualClock()
		opts := fastOptions()
		opts.Clock = clock
		c := vcc.New(opts)
		tok, err := c.Token(t.Context(), f.merchant())
		require.NoError(t, err)
		assert.Equal(t, "tok-1", tok)
		clock.Advance(539 * time.Second)
		tok, _ = c.Token(t.Context(), f.merchant())
		assert.Equal(t, "tok-1", tok)
		clock.Advance(time.Second)
		tok, _ = c.Token(t.Context(), f.merchant())
		assert.Equal(t, "tok-2", tok)
	})
	t.Run("a short-lived token is reused for half its life", func(t *testing.T) {
		f := newFakeVCC(t)
		f.tokenFn = issueToken(30) // shorter than the 60s early expiry
		clock := newManualClock()
		opts := fastOptions()
		opts.Clock = clock
		c := vcc.New(opts)
		for range 3 {
			_, err := c.Token(t.Context(), f.merchant())
			require.NoError(t, err)
		}
		assert.EqualValues(t, 1, f.tokens.Load())
		clock.Advance(15 * time.Second)
		_, err := c.Token(t.Context(), f.merchant())
		require.NoError(t, err)
		assert.EqualValues(t, 2, f.tokens.Load())
	})
	t.Run("changed credentials make a new source", func(t *testing.T) {
		f := newFakeVCC(t)
		c := vcc.New(fastOptions())
		m := f.merchant()
		tok1, err := c.Token(t.Context(), m)
		require.NoError(t, err)
		m2 := f.merchant()
		m2.VCC.ClientSecret = "rotated-secret"
		tok2, err := c.Token(t.Context(), m2)
		require.NoError(t, err)
		assert.NotEqual(t, tok1, tok2)
		other := f.merchant()
		other.ID = "globex"
		tok3, err := c.Token(t.Context(), other)
		require.NoError(t, err)
		assert.NotEqual(t, tok2, tok3, "merchants never share tokens")
		assert.EqualValues(t, 3, f.tokens.Load())
	})
}

// Concurrent callers share one fetch: the token endpoint sees one request for 200 calls.
func TestTokenSingleFetch(t *testing.T) {
	f := newFakeVCC(t)
	release := make(chan struct{})
	f.tokenFn = func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-release:
		case <-r.Context().Done(): // the test failed and gave up
			return
		}
		issueToken(3600)(w, r, n)
	}
	c := vcc.New(fastOptions())
	m := f.merchant()
	var wg, started sync.WaitGroup
	errs := make(chan error, 200)
	started.Add(200)
	for range 200 {
		wg.Go(func() {
			started.Done()
			_, err := c.CreateSession(t.Context(), m, gbpRequest())
			errs <- err
		})
	}
	started.Wait() // every caller is on its way while the one fetch is held
	require.Eventually(t, func() bool { return f.tokens.Load() >= 1 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.EqualValues(t, 1, f.tokens.Load())
	assert.EqualValues(t, 200, f.api.Load())
}

// The caller that fetches gives up; the others do not inherit its cancellation.
func TestTokenFetcherCancelled(t *testing.T) {
	f := newFakeVCC(t)
	first := make(chan struct{})
	f.tokenFn = func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			close(first)
			<-r.Context().Done()
			return
		}
		issueToken(3600)(w, r, n)
	}
	c := vcc.New(fastOptions())
	m := f.merchant()
	ctx, cancel := context.WithCancel(t.Context())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx, m)
		leaderErr <- err
	}()
	<-first
	waiterTok := make(chan string, 1)
	go func() {
		tok, _ := c.Token(t.Context(), m)
		waiterTok <- tok
	}()
	cancel()
	err := <-leaderErr
	requireCode(t, err, bridge.CodeProviderUnavailable)
	assert.True(t, errors.Is(err, context.Canceled))
	select {
	case tok := <-waiterTok:
		assert.Equal(t, "tok-2", tok)
	case <-time.After(5 * time.Second):
		t.Fatal("waiter never got a token")
	}
}

func TestSessionStatus(t *testing.T) {
	const documented = `{"lastUpdatedOn": "2018-02-23T09:27:37.561413Z", "callGuid": "c-1", "createdOn": "2018-02-23T09:20:00Z",
		"sessionGuid": "g-1", "sessionState": "Finished", "providerSessionGuid": "p-1",
		"paymentResultData": {"decision": "ACCEPT", "reasonCode": "100", "requestID": "6193551963456543", "transactionType": "Capture",
		"Amount": "1240", "Currency": "GBP"}}`
	tests := []struct {
		name     string
		status   int
		body     string
		want     *bridge.ProviderStatus
		wantCode bridge.Code
		notFound bool
	}{
		{
			name: "documented shape", status: 200, body: documented,
			want: &bridge.ProviderStatus{SessionGUID: "g-1", ProviderSessionGUID: "p-1", State: bridge.StateFinished,
				LastUpdatedOn: time.Date(2018, 2, 23, 9, 27, 37, 561413000, time.UTC),
				Result: map[string]string{"decision": "ACCEPT", "reasonCode": "100", "requestID": "6193551963456543",
					"transactionType": "Capture", "Amount": "1240", "Currency": "GBP"}},
		},
		{
			name: "running, no result yet, time without zone", status: 200,
			body: `{"lastUpdatedOn":"2026-03-01T10:00:00.5","sessionGuid":"g-1","sessionState":"InProgress","providerSessionGuid":"p-1"}`,
			want: &bridge.ProviderStatus{SessionGUID: "g-1", ProviderSessionGUID: "p-1", State: bridge.StateInProgress,
				LastUpdatedOn: time.Date(2026, 3, 1, 10, 0, 0, 500000000, time.UTC)},
		},
		{
			name: "numbers where strings are documented", status: 200,
			body: `{"sessionGuid":"g-1","sessionState":"Finished","paymentResultData":{"decision":"reject","reasonCode":202,"requestID":null,"Amount":1240,"Currency":"gbp"}}`,
			want: &bridge.ProviderStatus{SessionGUID: "g-1", State: bridge.StateFinished,
				Result: map[string]string{"decision": "reject", "reasonCode": "202", "requestID": "", "Amount": "1240", "Currency": "gbp"}},
		},
		{
			name: "another gateway's keys, kept whole (nested values as JSON text)", status: 200,
			body: `{"sessionGuid":"g-1","sessionState":"Finished","paymentResultData":{"ApprovalStatus":"1","RespCode":"00","TxRefNum":"5F0A","AVS":{"code":"Y"}}}`,
			want: &bridge.ProviderStatus{SessionGUID: "g-1", State: bridge.StateFinished,
				Result: map[string]string{"ApprovalStatus": "1", "RespCode": "00", "TxRefNum": "5F0A", "AVS": `{"code":"Y"}`}},
		},
		{
			name: "empty result data is no result", status: 200,
			body: `{"sessionGuid":"g-1","sessionState":"Finished","paymentResultData":{}}`,
			want: &bridge.ProviderStatus{SessionGUID: "g-1", State: bridge.StateFinished},
		},
		{name: "purged", status: 404, body: `{"message":"Session not found"}`, notFound: true},
		{name: "no guid", status: 200, body: `{"sessionState":"Finished"}`, wantCode: bridge.CodeProviderUnavailable},
		{name: "not json", status: 200, body: `Finished`, wantCode: bridge.CodeProviderUnavailable},
		{name: "unrecognised 400 is not the caller's fault here", status: 400, body: `{"message":"bad"}`, wantCode: bridge.CodeProviderUnavailable},
		{name: "500", status: 500, body: `oops`, wantCode: bridge.CodeProviderUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVCC(t)
			f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) {
				writeText(w, tt.status, "application/json", tt.body)
			}
			got, err := vcc.New(fastOptions()).SessionStatus(t.Context(), f.merchant(), "g-1")
			r, _ := f.last()
			assert.Equal(t, http.MethodGet, r.Method)
			assert.Equal(t, "/paymentapi/v1/session/g-1", r.URL.Path)
			switch {
			case tt.notFound:
				assert.ErrorIs(t, err, bridge.ErrNotFound)
				assert.Equal(t, "vcc session g-1: not found", err.Error())
			case tt.wantCode != "":
				requireCode(t, err, tt.wantCode)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func TestSessionStatusEscapesGUID(t *testing.T) {
	f := newFakeVCC(t)
	f.apiFn = func(w http.ResponseWriter, r *http.Request, n int) { writeText(w, 404, "application/json", `{}`) }
	_, err := vcc.New(fastOptions()).SessionStatus(t.Context(), f.merchant(), "../a b?c=d")
	assert.ErrorIs(t, err, bridge.ErrNotFound)
	r, _ := f.last()
	assert.Equal(t, "/paymentapi/v1/session/..%2Fa%20b%3Fc=d", r.URL.EscapedPath())
	assert.Empty(t, r.URL.RawQuery)
}

func TestMerchantNotConfigured(t *testing.T) {
	f := newFakeVCC(t)
	m := f.merchant()
	m.VCC.ClientSecret = ""
	c := vcc.New(fastOptions())
	_, err := c.CreateSession(t.Context(), m, gbpRequest())
	requireCode(t, err, bridge.CodeMerchantNotConfigured)
	_, err = c.SessionStatus(t.Context(), m, "g-1")
	requireCode(t, err, bridge.CodeMerchantNotConfigured)
	_, err = c.Token(t.Context(), m)
	requireCode(t, err, bridge.CodeMerchantNotConfigured)
	assert.EqualValues(t, 0, f.tokens.Load()+f.api.Load())
}

func TestCreateSessionValidation(t *testing.T) {
	f := newFakeVCC(t)
	c := vcc.New(fastOptions())
	req := gbpRequest()
	req.Channel = "carrier_pigeon"
	_, err := c.CreateSession(t.Context(), f.merchant(), req)
	be := requireCode(t, err, bridge.CodeValidationError)
	assert.Equal(t, "channel", be.Param)

	req = gbpRequest()
	req.Currency = "XXY"
	_, err = c.CreateSession(t.Context(), f.merchant(), req)
	be = requireCode(t, err, bridge.CodeValidationError)
	assert.Equal(t, "currency", be.Param)
	assert.EqualValues(t, 0, f.api.Load())
}
