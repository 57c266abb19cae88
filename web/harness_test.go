package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
	"github.com/paybridge/paybridge/vcc"
	"github.com/paybridge/paybridge/vcc/vccstub"
	"github.com/paybridge/paybridge/web"
)

// t0 is where every harness clock starts.
var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// testOrigin is the agent desktop origin the test merchant allows.
const testOrigin = "https://desk.acme.test"

// harness is a whole paybridge on loopback: the real server, services and bbolt store, against
// the VCC and PCI Pal stubs, with one clock moved by hand for all of them.
type harness struct {
	t        testing.TB
	clock    *bridgetest.ManualClock
	logs     *bridgetest.LogSink
	store    *boltstore.Store
	sessions *bridge.Service
	keys     *bridge.KeyService
	hub      *bridge.Hub
	vcc      *vccstub.Server
	pcipal   *pcipalstub.Server
	stubs    *httptest.Server
	srv      *httptest.Server
	merchant *bridge.Merchant

	secretKey      string
	publishableKey string

	vccAnswered atomic.Int64 // unix nanos when the stub last answered a create
	// activeDurable is unix nanos when a create's active write (its attempt) last became
	// durable, with harnessConfig.timeActiveCommit.
	activeDurable atomic.Int64
	activeStarted atomic.Int64 // when that write was asked for
}

// activeCommitTimer is the service's store, timing when each create's attempt becomes durable:
// the moment from which DESIGN section 9 counts the handoff budget.
type activeCommitTimer struct {
	bridge.Store
	at, started *atomic.Int64
}

// UpdateSession implements bridge.SessionStore: the first update of a session (Version 1) that
// leaves it active is its create's attempt.
func (s activeCommitTimer) UpdateSession(ctx context.Context, id string, fn func(*bridge.Session, *bridge.Outbox) error) (*bridge.Session, error) {
	start := time.Now().UnixNano()
	sess, err := s.Store.UpdateSession(ctx, id, fn)
	if err == nil && sess.Status == bridge.StatusActive && sess.Version == 1 {
		s.at.Store(time.Now().UnixNano())
		s.started.Store(start)
	}
	return sess, err
}

// harnessConfig is what a test may change before the harness starts.
type harnessConfig struct {
	server    web.Options
	service   bridge.ServiceOptions
	vcc       vcc.Options
	merchant  bridge.Merchant
	others    []*bridge.Merchant // more merchants, besides the one whose keys the harness holds
	hubBuffer int
	infoLogs  bool // log at info, as production does, instead of debug
	// timeActiveCommit records in harness.activeDurable when each create's attempt is durable.
	timeActiveCommit bool
}

// unrationed lifts the per-session ration of browser restarts (tested on its own in
// TestSocketRestartFlood), for tests that report refused frames at once with a manual clock:
// moving the clock instead would make polls due and race the reports.
func unrationed(c *harnessConfig) { c.service.BrowserRestartEvery = -1 }

func newHarness(t testing.TB, configure ...func(*harnessConfig)) *harness {
	t.Helper()
	h := &harness{t: t, clock: bridgetest.NewManualClock(t0), logs: &bridgetest.LogSink{}}
	// Debug level by default, so every line any level could emit is checked for secrets.
	level := new(slog.LevelVar)
	level.Set(slog.LevelDebug)
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: level}))

	h.pcipal = pcipalstub.New(pcipalstub.Options{Clock: h.clock, Logger: logger})
	h.vcc = vccstub.New(vccstub.Options{Clock: h.clock, Logger: logger, PCIPal: h.pcipal})
	mux := http.NewServeMux()
	h.pcipal.Mount(mux)
	mux.Handle("/", h.vcc)
	h.stubs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/v1/session") {
			h.vccAnswered.Store(time.Now().UnixNano()) // the create's answer is written
		}
	}))
	h.pcipal.SetBaseURL(h.stubs.URL)
	h.vcc.SetBaseURL(h.stubs.URL)
	t.Cleanup(h.stubs.Close)
	t.Cleanup(h.vcc.Close)

	acct := vccstub.DefaultAccount()
	cfg := harnessConfig{
		merchant: bridge.Merchant{
			ID: "acme", Name: "Acme Energy", Status: bridge.MerchantActive,
			VCC: bridge.VCCAccount{
				TokenURL: h.vcc.TokenURL(), APIBaseURL: h.vcc.PaymentAPIURL(),
				ClientID: acct.ClientID, ClientSecret: acct.ClientSecret,
				AccountConfigurationIDs: []int{1, 2}, DefaultAccountConfigurationID: new(1), SkipCallTransfer: true,
			},
			AllowedOrigins: []string{testOrigin},
		},
		service: bridge.ServiceOptions{Clock: h.clock, Logger: logger, SweepInterval: 5 * time.Millisecond},
		vcc: vcc.Options{Clock: h.clock, Logger: logger, RequestTimeout: 2 * time.Second,
			RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond},
	}
	for _, c := range configure {
		c(&cfg)
	}
	if cfg.infoLogs {
		level.Set(slog.LevelInfo)
	}
	h.merchant = &cfg.merchant

	var err error
	h.store, err = boltstore.Open(filepath.Join(t.TempDir(), "paybridge.db"), boltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.store.Close() })
	keyring, err := bridge.NewKeyring(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	merchants := append(bridge.StaticMerchants{h.merchant}, cfg.others...)
	h.hub = bridge.NewHub(logger, cfg.hubBuffer)
	opts := cfg.service
	opts.Store, opts.Merchants, opts.Publisher, opts.Keyring = h.store, merchants, h.hub, keyring
	if cfg.timeActiveCommit {
		opts.Store = activeCommitTimer{Store: h.store, at: &h.activeDurable, started: &h.activeStarted}
	}
	opts.Provider = vcc.New(cfg.vcc)
	h.sessions, err = bridge.NewService(opts)
	require.NoError(t, err)
	h.keys = bridge.NewKeyService(bridge.KeyServiceOptions{Store: h.store, Merchants: merchants, Keyring: keyring, Clock: h.clock})

	wopts := cfg.server
	wopts.Sessions, wopts.Keys, wopts.Hub, wopts.Store = h.sessions, h.keys, h.hub, h.store
	wopts.Merchants, wopts.Keyring = merchants, keyring
	// The server's public URL is its real one, so every docs link in an error resolves.
	h.srv = httptest.NewUnstartedServer(nil)
	wopts.Clock, wopts.Logger, wopts.PublicBaseURL = h.clock, logger, "http://"+h.srv.Listener.Addr().String()
	server, err := web.NewServer(wopts)
	require.NoError(t, err)
	h.srv.Config.Handler = server
	h.srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.sessions.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = server.Shutdown(context.Background())
		h.srv.Close()
	})

	if h.merchant.Status == bridge.MerchantActive {
		h.secretKey = h.newKey(bridge.KeySecret, bridge.ModeTest)
		h.publishableKey = h.newKey(bridge.KeyPublishable, bridge.ModeTest)
	}
	return h
}

// newKey stores a new key of the harness merchant and returns its plaintext.
func (h *harness) newKey(typ bridge.KeyType, mode bridge.Mode) string {
	h.t.Helper()
	plain, _, err := h.keys.CreateKey(context.Background(), h.merchant.ID, typ, mode)
	require.NoError(h.t, err)
	return plain
}

// response is a decoded API answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r *response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// Session decodes the body as a session object.
func (r *response) Session(t testing.TB) bridge.SessionView {
	t.Helper()
	var v bridge.SessionView
	require.NoError(t, json.Unmarshal(r.Body, &v), "body: %s", r.Body)
	return v
}

// do sends a request to paybridge with key as bearer (none if empty) and a JSON body (none if
// nil; a string is sent verbatim).
func (h *harness) do(method, path, key string, body any, headers ...string) *response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(h.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	require.NoError(h.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if method == http.MethodPost || method == http.MethodPut {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// createSession creates a session for agent with the secret key and requires success.
func (h *harness) createSession(agent string, extra map[string]any) bridge.SessionView {
	h.t.Helper()
	body := map[string]any{"agentId": agent, "amount": 1240, "currency": "GBP", "reference": "INV-1001"}
	for k, v := range extra {
		body[k] = v
	}
	r := h.do("POST", "/v1/sessions", h.secretKey, body)
	require.Equal(h.t, http.StatusCreated, r.Status, "create: %s", r.Body)
	return r.Session(h.t)
}

// getSession reads a session with the secret key and requires success.
func (h *harness) getSession(id string) bridge.SessionView {
	h.t.Helper()
	r := h.do("GET", "/v1/sessions/"+id, h.secretKey, nil)
	require.Equal(h.t, http.StatusOK, r.Status, "get: %s", r.Body)
	return r.Session(h.t)
}

// control calls the VCC stub's control API.
func (h *harness) control(method, path string, body any) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.stubs.URL+path, rd)
	require.NoError(h.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	require.Equal(h.t, http.StatusOK, resp.StatusCode, "control %s %s: %s", method, path, data)
}

// agentToken mints an agent token over the API.
func (h *harness) agentToken(agent string) string {
	h.t.Helper()
	r := h.do("POST", "/v1/agent_tokens", h.secretKey, map[string]any{"agentId": agent})
	require.Equal(h.t, http.StatusCreated, r.Status, "agent token: %s", r.Body)
	return r.JSON(h.t)["token"].(string)
}

// event is one message from paybridge on an agent socket.
type event struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	Seq       int64           `json:"seq"`
	SessionID string          `json:"sessionId"`
	Data      json.RawMessage `json:"data"`
}

// handoffData is the data of a session.handoff event.
type handoffData struct {
	SessionID  string            `json:"sessionId"`
	Attempt    int               `json:"attempt"`
	IframeURL  string            `json:"iframeUrl"`
	FormFields map[string]string `json:"formFields"`
	ExpiresAt  time.Time         `json:"expiresAt"`
	Session    bridge.SessionView
}

// agentSocket is a test agent's browser connection.
type agentSocket struct {
	t      testing.TB
	conn   *websocket.Conn
	events chan event
	closed chan struct{}
	token  string
	close  *websocket.CloseError
	wmu    sync.Mutex // a socket has one writer at a time
}

// connect opens an agent socket for agent and returns it once ready has arrived.
func (h *harness) connect(agent string) (*agentSocket, event) {
	h.t.Helper()
	s := h.dial(h.publishableKey, testOrigin)
	s.token = h.agentToken(agent)
	s.send(map[string]any{"type": "auth", "agentToken": s.token})
	ready := s.next("ready")
	return s, ready
}

// dial opens a socket without authenticating.
func (h *harness) dial(key, origin string) *agentSocket {
	h.t.Helper()
	u := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/v1/ws?key=" + url.QueryEscape(key)
	conn, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {origin}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	require.NoError(h.t, err)
	s := &agentSocket{t: h.t, conn: conn, events: make(chan event, 256), closed: make(chan struct{})}
	go func() {
		defer close(s.closed)
		for {
			var ev event
			if err := conn.ReadJSON(&ev); err != nil {
				if ce, ok := err.(*websocket.CloseError); ok {
					s.close = ce
				}
				return
			}
			s.events <- ev
		}
	}()
	h.t.Cleanup(func() { conn.Close() })
	return s
}

func (s *agentSocket) send(v any) {
	s.t.Helper()
	require.NoError(s.t, s.write(v))
}

// write sends v; safe from any goroutine.
func (s *agentSocket) write(v any) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.conn.WriteJSON(v)
}

// eventWait bounds how long a test waits for an event that should come at once.
const eventWait = 10 * time.Second

// next returns the next event, which must be of type typ.
func (s *agentSocket) next(typ string) event {
	s.t.Helper()
	select {
	case ev := <-s.events:
		require.Equal(s.t, typ, ev.Type, "unexpected event: %s", ev.Data)
		return ev
	case <-s.closed:
		s.t.Fatalf("socket closed while waiting for %s (close: %v)", typ, s.close)
	case <-time.After(eventWait):
		s.t.Fatalf("no %s event within %s", typ, eventWait)
	}
	return event{}
}

// waitClosed waits for the server to close the socket and returns the close frame.
func (s *agentSocket) waitClosed() *websocket.CloseError {
	s.t.Helper()
	select {
	case <-s.closed:
		require.NotNil(s.t, s.close, "socket ended without a close frame")
		return s.close
	case <-time.After(eventWait):
		s.t.Fatalf("socket not closed within %s", eventWait)
	}
	return nil
}

func (s *agentSocket) handoff() handoffData {
	s.t.Helper()
	ev := s.next("session.handoff")
	var h handoffData
	require.NoError(s.t, json.Unmarshal(ev.Data, &h))
	return h
}

// postForm does what the widget's hidden form does, POST the two tokens to the iframe URL, and
// what the browser then does in the frame; it returns what the frame ends up showing.
func postForm(t *testing.T, h handoffData) *http.Response {
	t.Helper()
	form := url.Values{}
	for k, v := range h.FormFields {
		form.Set(k, v)
	}
	req, err := http.NewRequest(http.MethodPost, h.IframeURL, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// As the browser does: the POST, then PCI Pal's login on to the capture page (or the refusal).
	resp, err := pcipalstub.OpenFrame(nil, req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(data)
}

// assertErrorEnvelope checks an error response against the contract: status, code, the four
// body fields, a docs link to the code's anchor and the X-Request-Id header.
func assertErrorEnvelope(t *testing.T, r *response, status int, code bridge.Code) map[string]any {
	t.Helper()
	require.Equal(t, status, r.Status, "body: %s", r.Body)
	m := r.JSON(t)
	assert.Equal(t, string(code), m["code"])
	assert.NotEmpty(t, m["error"])
	assert.NotEmpty(t, m["fix"])
	assert.True(t, strings.HasSuffix(m["docs"].(string), "/docs/error-codes#"+string(code)), "docs: %v", m["docs"])
	assert.NotEmpty(t, r.Header.Get("X-Request-Id"))
	assert.Equal(t, r.Header.Get("X-Request-Id"), m["requestId"])
	return m
}

// jsonBody encodes v as a request body.
func jsonBody(v any) io.Reader {
	data, _ := json.Marshal(v)
	return bytes.NewReader(data)
}

// readAll reads and closes a response body.
func readAll(resp *http.Response) []byte {
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return data
}
