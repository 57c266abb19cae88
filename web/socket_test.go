package web_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/web"
)

// TestSocketHandshakeErrors: the key and the Origin are checked before any upgrade, with the
// error envelope.
func TestSocketHandshakeErrors(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		key    string
		origin string
		status int
		code   bridge.Code
	}{
		{"no key", "", testOrigin, 401, bridge.CodeAuthMissingBearer},
		{"unknown key", "vp_pk_test_" + strings.Repeat("x", 30), testOrigin, 401, bridge.CodeAuthInvalidKey},
		{"secret key in the url", h.secretKey, testOrigin, 403, bridge.CodeAuthKeyTypeForbidden},
		{"origin not allowed", h.publishableKey, "https://evil.example", 403, bridge.CodeOriginForbidden},
		{"no origin", h.publishableKey, "", 403, bridge.CodeOriginForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/v1/ws?key=" + url.QueryEscape(tt.key)
			header := http.Header{}
			if tt.origin != "" {
				header.Set("Origin", tt.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(u, header)
			if conn != nil {
				conn.Close()
			}
			require.ErrorIs(t, err, websocket.ErrBadHandshake)
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assertErrorEnvelope(t, &response{Status: resp.StatusCode, Header: resp.Header, Body: data}, tt.status, tt.code)
		})
	}
	// A key must never reach the logs, even from a URL.
	h.logs.AssertNoSecrets(t, h.secretKey, h.publishableKey)
}

// TestSocketAuthentication: the first message must carry a valid agent token of the key's
// merchant and mode, in time; the close frame says why not.
func TestSocketAuthentication(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.server.AuthTimeout = 200 * time.Millisecond })
	liveKeyring, _ := bridge.NewKeyring([]byte(strings.Repeat("k", 32)))
	tests := []struct {
		name   string
		first  func() any // nil: say nothing
		code   int
		reason string
	}{
		{"silence", nil, web.CloseAuthTimeout, "no auth message"},
		{"not an auth message", func() any { return map[string]any{"type": "frame.loaded"} }, web.CloseProtocolError, "first message"},
		{"forged token", func() any {
			return map[string]any{"type": "auth", "agentToken": liveKeyring.IssueAgentToken(bridge.AgentToken{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1", ExpiresAt: t0.Add(time.Hour), KeyID: "key_0123456789abcdef"})}
		}, web.CloseAgentTokenRejected, "auth_invalid_key"},
		{"expired token", func() any {
			token := h.agentToken("agent-1")
			h.clock.Advance(2 * time.Hour)
			return map[string]any{"type": "auth", "agentToken": token}
		}, web.CloseAgentTokenRejected, "auth_key_expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.dial(h.publishableKey, testOrigin)
			if tt.first != nil {
				s.send(tt.first())
			}
			ce := s.waitClosed()
			assert.Equal(t, tt.code, ce.Code)
			assert.Contains(t, ce.Text, tt.reason)
		})
	}
}

// TestSocketModeMismatch: a test agent token with a live publishable key is forbidden.
func TestSocketModeMismatch(t *testing.T) {
	h := newHarness(t)
	livePK := h.newKey(bridge.KeyPublishable, bridge.ModeLive)
	s := h.dial(livePK, testOrigin)
	s.send(map[string]any{"type": "auth", "agentToken": h.agentToken("agent-1")})
	ce := s.waitClosed()
	assert.Equal(t, web.CloseForbidden, ce.Code)
	assert.Contains(t, ce.Text, "auth_key_type_forbidden")
}

// TestSocketTokenExpiresWhileConnected: the socket closes with a reason once the agent token's
// expiry passes on the service clock.
func TestSocketTokenExpiresWhileConnected(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.server.PingInterval = 20 * time.Millisecond })
	s, _ := h.connect("agent-1")
	h.clock.Advance(61 * time.Minute)
	ce := s.waitClosed()
	assert.Equal(t, web.CloseAgentTokenRejected, ce.Code)
	assert.Contains(t, ce.Text, "auth_key_expired")
}

// TestSocketKeepalive: the server pings; a live client answers and stays, a dead one is dropped.
func TestSocketKeepalive(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) {
		c.server.PingInterval = 20 * time.Millisecond
		c.server.PongTimeout = 50 * time.Millisecond
	})
	live := h.rawAgent("agent-1")
	var pings atomic.Int32
	live.SetPingHandler(func(data string) error {
		pings.Add(1)
		return live.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := live.NextReader(); err != nil {
				return
			}
		}
	}()
	require.Eventually(t, func() bool { return pings.Load() >= 5 }, eventWait, 5*time.Millisecond, "pings arrive and are answered")

	// A peer that reads nothing answers no pings, and is dropped.
	h.rawAgent("agent-2")
	require.Equal(t, int64(2), h.hub.Subscribers())
	require.Eventually(t, func() bool { return h.hub.Subscribers() == 1 }, eventWait, 5*time.Millisecond, "the dead peer is dropped")
	seen := pings.Load()
	require.Eventually(t, func() bool { return pings.Load() >= seen+3 }, eventWait, 5*time.Millisecond, "the live socket is still pinged")
}

// TestSlowSocketDoesNotBlockOthers: a socket that stops reading is closed once its writes stall
// (or its buffer fills), while another socket of the same agent gets every event; publishing
// never waits. Fewer events are sent than a socket buffers, and the healthy socket discards
// payloads unread, so its pace under -race cannot matter; the stuck one overflows its TCP buffers.
func TestSlowSocketDoesNotBlockOthers(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.server.WriteTimeout = time.Second })
	healthy := h.rawAgent("agent-1")
	h.rawAgent("agent-1") // a second socket of the agent that never reads again
	require.Equal(t, int64(2), h.hub.Subscribers())

	const n = 40 // 40 MiB in all: far more than loopback TCP buffers hold for the stuck socket
	require.Less(t, n, bridge.DefaultSubscriptionBuffer)
	counted := make(chan int, 1)
	go func() {
		count := 0
		for count < n {
			_, r, err := healthy.NextReader()
			if err != nil {
				break
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				break
			}
			count++
		}
		counted <- count
	}()

	agent := bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1"}
	pad := strings.Repeat("x", 1<<20)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; i < n; i++ {
			h.hub.Publish(&bridge.Event{Agent: agent, Type: bridge.EventRestarting, ID: bridge.NewEventID(), Data: map[string]string{"pad": pad}})
		}
	}()
	select {
	case <-published:
	case <-time.After(eventWait):
		t.Fatal("publishing blocked on the stuck socket")
	}
	select {
	case got := <-counted:
		assert.Equal(t, n, got, "the healthy socket got every event")
	case <-time.After(eventWait):
		t.Fatal("the healthy socket stalled")
	}
	require.Eventually(t, func() bool { return h.hub.Subscribers() == 1 }, eventWait, 5*time.Millisecond, "the stuck socket is closed")
}

// rawAgent opens an authenticated agent socket whose reads are left to the test.
func (h *harness) rawAgent(agentID string) *websocket.Conn {
	h.t.Helper()
	u := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/v1/ws?key=" + url.QueryEscape(h.publishableKey)
	conn, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {testOrigin}})
	require.NoError(h.t, err)
	resp.Body.Close()
	h.t.Cleanup(func() { conn.Close() })
	require.NoError(h.t, conn.WriteJSON(map[string]any{"type": "auth", "agentToken": h.agentToken(agentID)}))
	var ready event
	require.NoError(h.t, conn.ReadJSON(&ready))
	require.Equal(h.t, "ready", ready.Type)
	return conn
}

// TestSocketPongsBetweenMessages (issue 12 item 3): the socket answers pongs itself between
// messages (with or without payload), and a message after them is handled as ever.
func TestSocketPongsBetweenMessages(t *testing.T) {
	h := newHarness(t)
	conn := h.rawAgent("agent-1")
	for _, payload := range []string{"", "x", strings.Repeat("p", 125)} {
		require.NoError(t, conn.WriteControl(websocket.PongMessage, []byte(payload), time.Now().Add(time.Second)))
	}
	require.NoError(t, conn.WriteJSON(map[string]any{"type": "no.such.type"}))
	var ev event
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(eventWait)))
	require.NoError(t, conn.ReadJSON(&ev))
	assert.Equal(t, "error", ev.Type)
	assert.Contains(t, string(ev.Data), "no.such.type")
	// A ping from the browser (browsers send none, but the protocol allows it) is still gorilla's
	// to answer.
	pong := make(chan string, 1)
	conn.SetPongHandler(func(data string) error { pong <- data; return nil })
	require.NoError(t, conn.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(time.Second)))
	go func() { _, _, _ = conn.ReadMessage() }()
	select {
	case got := <-pong:
		assert.Equal(t, "hello", got)
	case <-time.After(eventWait):
		t.Fatal("no pong")
	}
}
