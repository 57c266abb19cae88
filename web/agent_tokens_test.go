package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/web"
)

// noPings makes the keepalive far longer than any wait of these tests, so a socket that closes
// can only have closed on an event, never on a check at a ping.
func noPings(c *harnessConfig) { c.server.PingInterval = time.Hour }

// browserCreate creates a session as the agent's browser does: publishable key, agent token,
// allowed Origin.
func (h *harness) browserCreate(token string) *response {
	h.t.Helper()
	return h.do("POST", "/v1/sessions", h.publishableKey, map[string]any{"amount": 1240, "currency": "GBP"},
		"Origin", testOrigin, "X-Agent-Token", token)
}

// connectWith opens an agent socket with an agent token the test minted.
func (h *harness) connectWith(token string) *agentSocket {
	h.t.Helper()
	s := h.dial(h.publishableKey, testOrigin)
	s.token = token
	s.send(map[string]any{"type": "auth", "agentToken": token})
	s.next("ready")
	return s
}

// mintWith mints an agent token for agent with secret key sk.
func (h *harness) mintWith(sk, agent string) string {
	h.t.Helper()
	r := h.do("POST", "/v1/agent_tokens", sk, map[string]any{"agentId": agent})
	require.Equal(h.t, http.StatusCreated, r.Status, "agent token: %s", r.Body)
	return r.JSON(h.t)["token"].(string)
}

// newSecretKey makes another secret key of the harness merchant over the API and returns it and
// its id.
func (h *harness) newSecretKey() (string, string) {
	h.t.Helper()
	r := h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "secret", "mode": "test"})
	require.Equal(h.t, http.StatusCreated, r.Status, "%s", r.Body)
	k := r.JSON(h.t)
	return k["key"].(string), k["id"].(string)
}

// assertClosedFor checks that s was closed with 4401 and a reason starting with the error code
// auth_key_expired and containing want.
func assertClosedFor(t *testing.T, s *agentSocket, want string) {
	t.Helper()
	ce := s.waitClosed()
	assert.Equal(t, web.CloseAgentTokenRejected, ce.Code)
	assert.True(t, strings.HasPrefix(ce.Text, string(bridge.CodeAuthKeyExpired)+": "), "close reason %q", ce.Text)
	assert.Contains(t, ce.Text, want)
}

// assertNoEventBeforeClose fails if s received any event (after ready) before it closed.
func assertNoEventBeforeClose(t *testing.T, s *agentSocket) {
	t.Helper()
	<-s.closed
	select {
	case ev := <-s.events:
		t.Errorf("the socket received %s after its credentials ended", ev.Type)
	default:
	}
}

// TestAgentTokenEndsWithItsMintingKey (issue 10 item 3, item 5): an agent token stops working when
// the secret key that minted it is revoked, or reaches the end of its roll grace: its socket
// closes at that instant (4401, auth_key_expired first) and REST answers 401. Tokens of other keys
// are unaffected.
func TestAgentTokenEndsWithItsMintingKey(t *testing.T) {
	tests := []struct {
		name   string
		end    func(h *harness, id, token string) // ends the minting key; returns once it has
		reason string
	}{
		{"minting key revoked", func(h *harness, id, _ string) {
			require.Equal(t, http.StatusOK, h.do("DELETE", "/api/merchants/api-keys/"+id, h.secretKey, nil).Status)
		}, "minted this agent token was revoked"},
		{"minting key rolled, grace over", func(h *harness, id, token string) {
			r := h.do("POST", "/api/merchants/api-keys/"+id+"/roll", h.secretKey, map[string]any{"graceSeconds": 60})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			// Inside the grace the token still works (a dry run publishes nothing), the socket stays.
			h.clock.Advance(59 * time.Second)
			dry := h.do("POST", "/v1/sessions?dry_run=true", h.publishableKey, map[string]any{"amount": 1240, "currency": "GBP"},
				"Origin", testOrigin, "X-Agent-Token", token)
			require.Equal(t, http.StatusOK, dry.Status, "inside the grace window: %s", dry.Body)
			require.EqualValues(t, 2, h.hub.Subscribers())
			h.clock.Advance(time.Second)
		}, "grace window has ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, noPings)
			sk, id := h.newSecretKey()
			token := h.mintWith(sk, "agent-1")
			doomed := h.connectWith(token)
			survivor, _ := h.connect("agent-1") // its token comes from the harness's own key

			tt.end(h, id, token)
			// Nothing published after the key's end reaches the doomed socket.
			h.createSession("agent-1", nil)
			assertClosedFor(t, doomed, tt.reason)
			assertNoEventBeforeClose(t, doomed)
			survivor.handoff()

			r := h.browserCreate(token)
			assertErrorEnvelope(t, r, http.StatusUnauthorized, bridge.CodeAuthKeyExpired)
			assert.Contains(t, r.JSON(t)["error"], tt.reason)
			reconnect := h.dial(h.publishableKey, testOrigin)
			reconnect.send(map[string]any{"type": "auth", "agentToken": token})
			assertClosedFor(t, reconnect, tt.reason)
			assert.Equal(t, http.StatusCreated, h.browserCreate(survivor.token).Status, "another key's token works")
			h.logs.AssertNoSecrets(t, sk, token, h.secretKey)
		})
	}
}

// TestRevokeAgentTokens (issue 10 item 3, item 5): DELETE /v1/agent_tokens/{agentId} voids every
// token of that agent at once, durably: its sockets close (4401) before anything else reaches
// them, REST answers 401, a server started afresh on the same store agrees; another agent and the
// other mode are untouched, and a token minted afterwards works.
func TestRevokeAgentTokens(t *testing.T) {
	h := newHarness(t, noPings)
	spec, _ := fetchOpenAPI(t, h)
	tabA, _ := h.connect("agent 1") // two tabs of the agent, with two tokens
	tabB, _ := h.connect("agent 1")
	other, _ := h.connect("agent-2")
	liveSK := h.newKey(bridge.KeySecret, bridge.ModeLive)
	liveToken := h.mintWith(liveSK, "agent 1")

	r := h.do("DELETE", "/v1/agent_tokens/"+url.PathEscape("agent 1"), h.secretKey, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	checkResponse(t, spec, "DELETE", "/v1/agent_tokens/{agentId}", r)
	body := r.JSON(t)
	assert.Equal(t, "agent_token_revocation", body["object"])
	assert.Equal(t, "agent 1", body["agentId"])
	assert.Equal(t, false, body["livemode"])
	assert.Equal(t, t0.Format(time.RFC3339), body["revokedAt"])

	h.createSession("agent 1", nil)
	for _, s := range []*agentSocket{tabA, tabB} {
		assertClosedFor(t, s, "tokens were revoked")
		assertNoEventBeforeClose(t, s)
	}
	h.createSession("agent-2", nil)
	other.handoff()

	restarted := h.extraServer(func(o *web.Options) {
		o.Keys = bridge.NewKeyService(bridge.KeyServiceOptions{Store: h.store, Merchants: bridge.StaticMerchants{h.merchant},
			Keyring: mustKeyring(t), Clock: h.clock})
	})
	for _, base := range []string{h.srv.URL, restarted} {
		for _, token := range []string{tabA.token, tabB.token} {
			r := doAt(t, base, "POST", "/v1/sessions", h.publishableKey, map[string]any{"amount": 1240, "currency": "GBP"},
				"Origin", testOrigin, "X-Agent-Token", token)
			assertErrorEnvelope(t, r, http.StatusUnauthorized, bridge.CodeAuthKeyExpired)
		}
	}
	assert.Equal(t, http.StatusCreated, h.browserCreate(other.token).Status, "another agent's token works")
	fresh := h.mintWith(h.secretKey, "agent 1")
	assert.Equal(t, http.StatusCreated, h.browserCreate(fresh).Status, "a token minted after the revocation works")
	h.connectWith(fresh)

	// The live agent of the same id is another agent.
	livePK := h.newKey(bridge.KeyPublishable, bridge.ModeLive)
	live := h.do("POST", "/v1/sessions", livePK, map[string]any{"amount": 1240, "currency": "GBP"}, "Origin", testOrigin, "X-Agent-Token", liveToken)
	assert.Equal(t, http.StatusCreated, live.Status, "%s", live.Body)

	for _, tt := range []struct {
		name   string
		path   string
		key    string
		status int
		code   bridge.Code
	}{
		{"publishable key", "/v1/agent_tokens/agent-1", h.publishableKey, http.StatusForbidden, bridge.CodeAuthKeyTypeForbidden},
		{"no key", "/v1/agent_tokens/agent-1", "", http.StatusUnauthorized, bridge.CodeAuthMissingBearer},
		{"agent id too long", "/v1/agent_tokens/" + strings.Repeat("a", 129), h.secretKey, http.StatusBadRequest, bridge.CodeValidationError},
		{"agent id unprintable", "/v1/agent_tokens/agent%0A1", h.secretKey, http.StatusBadRequest, bridge.CodeValidationError},
		{"agent id shaped like a key", "/v1/agent_tokens/" + url.PathEscape(h.secretKey), h.secretKey, http.StatusBadRequest, bridge.CodeValidationError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("DELETE", tt.path, tt.key, nil)
			assertErrorEnvelope(t, r, tt.status, tt.code)
			checkResponse(t, spec, "DELETE", "/v1/agent_tokens/{agentId}", r)
		})
	}
	h.logs.AssertNoSecrets(t, h.secretKey, liveSK, tabA.token, tabB.token, fresh, liveToken)
}

// TestSocketClosesAtTokenExpiry (issue 10 item 5): the agent token's expiry is scheduled on the
// service clock: moving the clock to it closes the socket (4401, auth_key_expired) before the
// clock call returns, with no ping in between, and nothing published after it arrives; a moment
// before it the socket is open and served.
func TestSocketClosesAtTokenExpiry(t *testing.T) {
	h := newHarness(t, noPings)
	s, ready := h.connect("agent-1")
	var data struct {
		AgentTokenExpiresAt time.Time `json:"agentTokenExpiresAt"`
	}
	require.NoError(t, json.Unmarshal(ready.Data, &data))
	require.True(t, data.AgentTokenExpiresAt.Equal(t0.Add(time.Hour)), "expires %v", data.AgentTokenExpiresAt)

	h.clock.Set(t0.Add(time.Hour - time.Nanosecond))
	h.createSession("agent-1", nil)
	s.handoff()

	h.clock.Set(t0.Add(time.Hour))
	require.Zero(t, h.hub.Subscribers(), "the subscription ended when the clock reached the expiry")
	h.createSession("agent-1", nil)
	assertClosedFor(t, s, "agent token expired")
	assertNoEventBeforeClose(t, s)
}

// TestSocketOpenedWithRolledKeysClosesAtGraceEnd: a socket opened while its publishable key, or
// the secret key that minted its token, is already in its roll grace closes when that grace ends.
func TestSocketOpenedWithRolledKeysClosesAtGraceEnd(t *testing.T) {
	for _, which := range []string{"publishable", "minting"} {
		t.Run(which, func(t *testing.T) {
			h := newHarness(t, noPings)
			sk, skID := h.newSecretKey()
			token := h.mintWith(sk, "agent-1")
			made := h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "publishable", "mode": "test"}).JSON(t)
			pk := made["key"].(string)
			id := skID
			if which == "publishable" {
				id = made["id"].(string)
			}
			r := h.do("POST", "/api/merchants/api-keys/"+id+"/roll", h.secretKey, map[string]any{"graceSeconds": 120})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)

			h.clock.Advance(time.Minute)
			s := h.dial(pk, testOrigin)
			s.send(map[string]any{"type": "auth", "agentToken": token})
			s.next("ready")
			h.clock.Advance(59 * time.Second)
			require.EqualValues(t, 1, h.hub.Subscribers(), "open inside the grace window")
			h.clock.Advance(time.Second)
			assertClosedFor(t, s, "grace window has ended")
		})
	}
}

// TestShutdownClosesSockets: Shutdown ends every socket with 1001 and waits for them.
func TestShutdownClosesSockets(t *testing.T) {
	h := newHarness(t, noPings)
	server, err := web.NewServer(web.Options{Sessions: h.sessions, Keys: h.keys, Hub: h.hub, Store: h.store,
		Merchants: bridge.StaticMerchants{h.merchant}, Keyring: mustKeyring(t), Clock: h.clock})
	require.NoError(t, err)
	srv := httptest.NewServer(server)
	t.Cleanup(srv.Close)
	token := h.agentToken("agent-1")
	socket := func() *agentSocket {
		conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/ws?key="+url.QueryEscape(h.publishableKey),
			http.Header{"Origin": {testOrigin}})
		require.NoError(t, err)
		resp.Body.Close()
		t.Cleanup(func() { conn.Close() })
		require.NoError(t, conn.WriteJSON(map[string]any{"type": "auth", "agentToken": token}))
		var ready event
		require.NoError(t, conn.ReadJSON(&ready))
		require.Equal(t, "ready", ready.Type)
		return &agentSocket{t: t, conn: conn}
	}
	a, b := socket(), socket()
	require.EqualValues(t, 2, h.hub.Subscribers())
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	require.NoError(t, server.Shutdown(ctx), "Shutdown waits for its sockets")
	assert.Zero(t, h.hub.Subscribers())
	for _, s := range []*agentSocket{a, b} {
		_, _, err := s.conn.ReadMessage()
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	}
}
