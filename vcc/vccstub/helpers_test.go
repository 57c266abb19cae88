package vccstub_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/pcipal"
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
	"github.com/paybridge/paybridge/vcc/vccstub"
)

// newManualClock returns the tests' clock, moved only by hand.
func newManualClock() *bridgetest.ManualClock {
	return bridgetest.NewManualClock(time.Date(2026, 3, 2, 9, 27, 37, 561413000, time.UTC))
}

// world is both stubs served on loopback, on one manual clock, with their logs captured.
type world struct {
	clock     *bridgetest.ManualClock
	logs      *bridgetest.LogSink
	pcipal    *pcipalstub.Server
	pcipalSrv *httptest.Server
	stub      *vccstub.Server
	srv       *httptest.Server
}

// Test credentials of the default account.
const (
	clientID     = "paybridge-sandbox"
	clientSecret = "sandbox-secret"
)

const providerLifetime = 15 * time.Minute

func newWorld(t *testing.T, opts vccstub.Options) *world {
	t.Helper()
	w := &world{clock: newManualClock(), logs: &bridgetest.LogSink{}}
	logger := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w.pcipal = pcipalstub.New(pcipalstub.Options{Clock: w.clock, Lifetime: providerLifetime, Logger: logger})
	w.pcipalSrv = httptest.NewServer(w.pcipal)
	t.Cleanup(w.pcipalSrv.Close)
	w.pcipal.SetBaseURL(w.pcipalSrv.URL)

	opts.Clock = w.clock
	opts.Logger = logger
	opts.PCIPal = w.pcipal
	w.stub = vccstub.New(opts)
	w.srv = httptest.NewServer(w.stub)
	t.Cleanup(w.srv.Close)
	t.Cleanup(w.stub.Close) // runs first: releases held requests so the server can close
	w.stub.SetBaseURL(w.srv.URL)
	return w
}

// response is what a test needs of an HTTP answer.
type response struct {
	status int
	header http.Header
	body   string
}

// decode unmarshals the body into v.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal([]byte(r.body), v), r.body)
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// requestToken asks the token endpoint with form values.
func (w *world) requestToken(t *testing.T, form url.Values) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.stub.TokenURL(), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func credentialsForm(id, secret string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "scope": {"globalpci"}}
}

// token returns a fresh access token of the default account.
func (w *world) token(t *testing.T) string {
	t.Helper()
	r := w.requestToken(t, credentialsForm(clientID, clientSecret))
	require.Equal(t, http.StatusOK, r.status, r.body)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.decode(t, &tok)
	require.NotEmpty(t, tok.AccessToken)
	return tok.AccessToken
}

// call makes an API request with a bearer token ("" for none) and a JSON body (nil for none;
// a string is sent as is).
func (w *world) call(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, w.srv.URL+path, rd)
	require.NoError(t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

// createBody is a valid agent-assist create request.
func createBody(amount, currency string) map[string]any {
	return map[string]any{
		"agentId": "agent-7",
		"paymentData": map[string]string{
			"Amount": amount, "Currency": currency, "Country": "GB",
			"FirstName": "Ada", "Surname": "Lovelace", "MerchantReferenceCode": "INV-0042",
		},
		"skipCallTransfer": true,
	}
}

// created is the agent-assist create answer.
type created struct {
	SessionGUID       string `json:"sessionGuid"`
	IframeURL         string `json:"iframeUrl"`
	AgentAccessToken  string `json:"agentAccessToken"`
	AgentRefreshToken string `json:"agentRefreshToken"`
}

// create starts an agent-assist session and returns VCC's answer.
func (w *world) create(t *testing.T, token string, body map[string]any) created {
	t.Helper()
	r := w.call(t, http.MethodPost, "/globalpci/v1/session", token, body)
	require.Equal(t, http.StatusOK, r.status, r.body)
	var c created
	r.decode(t, &c)
	return c
}

// status reads a session through the Payment API.
func (w *world) status(t *testing.T, token, guid string) (vccstub.SessionStatus, response) {
	t.Helper()
	r := w.call(t, http.MethodGet, "/globalpci/v1/session/"+guid, token, nil)
	var st vccstub.SessionStatus
	if r.status == http.StatusOK {
		r.decode(t, &st)
	}
	return st, r
}

// frame POSTs the iframe form the way the agent widget does and follows PCI Pal's login to the
// capture page, as the browser does; a refused POST is the answer.
func (w *world) frame(t *testing.T, c created) response {
	t.Helper()
	form := url.Values{pcipal.FieldBearerToken: {c.AgentAccessToken}, pcipal.FieldRefreshToken: {c.AgentRefreshToken}}
	req, err := http.NewRequest(http.MethodPost, c.IframeURL, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := pcipalstub.OpenFrame(nil, req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// jsonEq checks that body is exactly want, byte for byte.
func exactBody(t *testing.T, want string, r response) {
	t.Helper()
	require.Equal(t, want, r.body)
	require.Contains(t, r.header.Get("Content-Type"), "application/json")
}
