package web_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/vcc"
	"github.com/paybridge/paybridge/web"
)

// TestIdempotentReplayNeedsAuthorization: a replay is never an answer the caller could not get
// afresh. A stored response that holds a credential (a new API key, an agent token) is not
// handed to a publishable key, nor to another key of the merchant, nor to another agent.
func TestIdempotentReplayNeedsAuthorization(t *testing.T) {
	h := newHarness(t)
	keyBody := map[string]any{"type": "secret", "mode": "test"}
	tokenBody := map[string]any{"agentId": "agent-1"}
	made := h.do("POST", "/api/merchants/api-keys", h.secretKey, keyBody, "Idempotency-Key", "key-1")
	require.Equal(t, http.StatusCreated, made.Status, "%s", made.Body)
	madeKey := made.JSON(t)["key"].(string)
	minted := h.do("POST", "/v1/agent_tokens", h.secretKey, tokenBody, "Idempotency-Key", "token-1")
	require.Equal(t, http.StatusCreated, minted.Status, "%s", minted.Body)
	mintedToken := minted.JSON(t)["token"].(string)
	// The owner's retry does replay: the stored responses are there to be had.
	require.Equal(t, "true", h.do("POST", "/api/merchants/api-keys", h.secretKey, keyBody, "Idempotency-Key", "key-1").Header.Get("Idempotent-Replayed"))
	require.Equal(t, "true", h.do("POST", "/v1/agent_tokens", h.secretKey, tokenBody, "Idempotency-Key", "token-1").Header.Get("Idempotent-Replayed"))

	t.Run("publishable key", func(t *testing.T) {
		agentToken := h.agentToken("agent-1")
		tests := []struct {
			name    string
			path    string
			body    any
			idemKey string
			headers []string
		}{
			{"api-keys without an origin", "/api/merchants/api-keys", keyBody, "key-1", nil},
			{"api-keys from the desktop", "/api/merchants/api-keys", keyBody, "key-1", []string{"Origin", testOrigin, "X-Agent-Token", agentToken}},
			{"agent_tokens without an origin", "/v1/agent_tokens", tokenBody, "token-1", nil},
			{"agent_tokens from the desktop", "/v1/agent_tokens", tokenBody, "token-1", []string{"Origin", testOrigin, "X-Agent-Token", agentToken}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := h.do("POST", tt.path, h.publishableKey, tt.body, append([]string{"Idempotency-Key", tt.idemKey}, tt.headers...)...)
				assertErrorEnvelope(t, r, http.StatusForbidden, bridge.CodeAuthKeyTypeForbidden)
				assert.Empty(t, r.Header.Get("Idempotent-Replayed"))
				assert.NotContains(t, string(r.Body), madeKey)
				assert.NotContains(t, string(r.Body), mintedToken)
			})
		}
	})

	t.Run("another secret key of the merchant runs its own request", func(t *testing.T) {
		other := h.newKey(bridge.KeySecret, bridge.ModeTest)
		r := h.do("POST", "/api/merchants/api-keys", other, keyBody, "Idempotency-Key", "key-1")
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		assert.Empty(t, r.Header.Get("Idempotent-Replayed"))
		assert.NotEqual(t, made.JSON(t)["id"], r.JSON(t)["id"])
		assert.NotContains(t, string(r.Body), madeKey)

		tok := h.do("POST", "/v1/agent_tokens", other, tokenBody, "Idempotency-Key", "token-1")
		require.Equal(t, http.StatusCreated, tok.Status, "%s", tok.Body)
		assert.Empty(t, tok.Header.Get("Idempotent-Replayed"))
	})

	t.Run("another agent behind the same publishable key runs its own create", func(t *testing.T) {
		create := func(agent string) *response {
			return h.do("POST", "/v1/sessions", h.publishableKey, map[string]any{"amount": 1240, "currency": "GBP"},
				"Idempotency-Key", "cart-1", "Origin", testOrigin, "X-Agent-Token", h.agentToken(agent))
		}
		a := create("agent-a")
		require.Equal(t, http.StatusCreated, a.Status, "%s", a.Body)
		b := create("agent-b")
		require.Equal(t, http.StatusCreated, b.Status, "%s", b.Body)
		assert.Empty(t, b.Header.Get("Idempotent-Replayed"))
		assert.Equal(t, "agent-b", b.Session(t).AgentID)
		assert.NotEqual(t, a.Session(t).ID, b.Session(t).ID)
		// Agent A's own retry still replays.
		again := create("agent-a")
		assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		assert.Equal(t, a.Session(t).ID, again.Session(t).ID)
	})
	h.logs.AssertNoSecrets(t, madeKey, mintedToken, h.secretKey, h.publishableKey)
}

// TestIdempotentResponsesSealedAtRest: a stored response holding a new API key or an agent token
// is sealed in the data file, still replays, and one that cannot be opened (here: another master
// key) is run again rather than replayed.
func TestIdempotentResponsesSealedAtRest(t *testing.T) {
	h := newHarness(t)
	keyBody := map[string]any{"type": "publishable", "mode": "test"}
	made := h.do("POST", "/api/merchants/api-keys", h.secretKey, keyBody, "Idempotency-Key", "sealed-key-1")
	require.Equal(t, http.StatusCreated, made.Status, "%s", made.Body)
	plainKey := made.JSON(t)["key"].(string)
	minted := h.do("POST", "/v1/agent_tokens", h.secretKey, map[string]any{"agentId": "agent-1"}, "Idempotency-Key", "sealed-token-1")
	require.Equal(t, http.StatusCreated, minted.Status, "%s", minted.Body)
	plainToken := minted.JSON(t)["token"].(string)

	replay := h.do("POST", "/api/merchants/api-keys", h.secretKey, keyBody, "Idempotency-Key", "sealed-key-1")
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	assert.JSONEq(t, string(made.Body), string(replay.Body), "the sealed response opens to the first one")
	assert.Equal(t, "no-store", replay.Header.Get("Cache-Control"))

	file, err := os.ReadFile(h.store.Path())
	require.NoError(t, err)
	require.Contains(t, string(file), "sealed-key-1", "the records are in this file")
	assertNotInFile(t, file, plainKey)
	assertNotInFile(t, file, plainToken)

	// A server with another master key cannot open the record: it runs the request again.
	otherKeyring, err := bridge.NewKeyring(bytes.Repeat([]byte{9}, 32))
	require.NoError(t, err)
	other := h.extraServer(func(o *web.Options) { o.Keyring = otherKeyring })
	rerun := doAt(t, other, "POST", "/api/merchants/api-keys", h.secretKey, keyBody, "Idempotency-Key", "sealed-key-1")
	require.Equal(t, http.StatusCreated, rerun.Status, "%s", rerun.Body)
	assert.Empty(t, rerun.Header.Get("Idempotent-Replayed"))
	assert.NotEqual(t, made.JSON(t)["id"], rerun.JSON(t)["id"])
	assert.Contains(t, h.logs.String(), "stored idempotent response cannot be opened")
	h.logs.AssertNoSecrets(t, plainKey, plainToken, rerun.JSON(t)["key"].(string))
}

// assertNotInFile fails if secret is in data as it is or base64-encoded at any alignment
// (encoding/json writes a []byte as base64).
func assertNotInFile(t *testing.T, data []byte, secret string) {
	t.Helper()
	require.Greater(t, len(secret), 12)
	assert.NotContains(t, string(data), secret)
	for shift := range 3 {
		part := secret[shift:]
		part = part[:len(part)/3*3]
		assert.NotContains(t, string(data), base64.StdEncoding.EncodeToString([]byte(part)), "base64 at shift %d", shift)
	}
}

// TestReplayedErrorHasItsOwnRequestID: a replayed error body names the request it answers, as
// its X-Request-Id header does.
func TestReplayedErrorHasItsOwnRequestID(t *testing.T) {
	h := newHarness(t)
	bad := map[string]any{"type": "secret", "mode": "sandbox"}
	first := h.do("POST", "/api/merchants/api-keys", h.secretKey, bad, "Idempotency-Key", "bad-1")
	firstBody := assertErrorEnvelope(t, first, http.StatusBadRequest, bridge.CodeValidationError)
	replay := h.do("POST", "/api/merchants/api-keys", h.secretKey, bad, "Idempotency-Key", "bad-1")
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	replayBody := assertErrorEnvelope(t, replay, http.StatusBadRequest, bridge.CodeValidationError)
	assert.NotEqual(t, firstBody["requestId"], replayBody["requestId"])
	// Everything else is the first answer, in the same order.
	assert.Equal(t, strings.Replace(string(first.Body), first.Header.Get("X-Request-Id"), replay.Header.Get("X-Request-Id"), 1), string(replay.Body))
}

// diesMidRequest is the store of a process killed right after reserving an Idempotency-Key:
// nothing it would write afterwards about the record reaches the store.
type diesMidRequest struct{ bridge.Store }

func (diesMidRequest) CompleteIdempotency(context.Context, string, int, []byte) error { return nil }
func (diesMidRequest) ReleaseIdempotency(context.Context, string) error               { return nil }

// TestDeadProcessReservationIsReleased: a reservation left by a process that died before this one
// started is released at once, not waited on for minutes.
func TestDeadProcessReservationIsReleased(t *testing.T) {
	h := newHarness(t)
	body := map[string]any{"agentId": "agent-1"}
	dead := h.extraServer(func(o *web.Options) { o.Store = diesMidRequest{h.store} })
	first := doAt(t, dead, "POST", "/v1/agent_tokens", h.secretKey, body, "Idempotency-Key", "orphan-1")
	require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)

	// The process restarts a second later on the same data. The service clock does not move while
	// the retry waits, so the old rule (poll until the reservation is 2 minutes old) never ends
	// and doAt's deadline fails the test.
	h.clock.Advance(time.Second)
	restarted := h.extraServer(nil)
	retry := doAt(t, restarted, "POST", "/v1/agent_tokens", h.secretKey, body, "Idempotency-Key", "orphan-1")
	require.Equal(t, http.StatusCreated, retry.Status, "%s", retry.Body)
	assert.Empty(t, retry.Header.Get("Idempotent-Replayed"))
	again := doAt(t, restarted, "POST", "/v1/agent_tokens", h.secretKey, body, "Idempotency-Key", "orphan-1")
	assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"), "the rerun's response is stored")
	assert.JSONEq(t, string(retry.Body), string(again.Body))
}

// TestSocketClosesWhenKeyEnds: an open agent socket closes with 4401 once the publishable key it
// was opened with stops working: revoked, or rolled and past its grace.
func TestSocketClosesWhenKeyEnds(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.server.PingInterval = 20 * time.Millisecond })
	tests := []struct {
		name   string
		end    func(id string)
		reason string
	}{
		{"revoked", func(id string) {
			require.Equal(t, http.StatusOK, h.do("DELETE", "/api/merchants/api-keys/"+id, h.secretKey, nil).Status)
		}, "auth_key_expired: This API key was revoked."},
		{"rolled past its grace", func(id string) {
			r := h.do("POST", "/api/merchants/api-keys/"+id+"/roll", h.secretKey, map[string]any{"graceSeconds": 60})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			h.clock.Advance(61 * time.Second)
		}, "auth_key_expired: This API key was rolled"},
	}
	var keys []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			made := h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "publishable", "mode": "test"})
			require.Equal(t, http.StatusCreated, made.Status, "%s", made.Body)
			k := made.JSON(t)
			keys = append(keys, k["key"].(string))
			s := h.dial(k["key"].(string), testOrigin)
			s.send(map[string]any{"type": "auth", "agentToken": h.agentToken("agent-1")})
			s.next("ready")

			tt.end(k["id"].(string))
			ce := s.waitClosed()
			assert.Equal(t, web.CloseAgentTokenRejected, ce.Code)
			assert.True(t, strings.HasPrefix(ce.Text, tt.reason), "close reason %q", ce.Text)
		})
	}
	h.logs.AssertNoSecrets(t, append(keys, h.secretKey)...)
}

// TestRolledKeyCannotManageKeys: a key in its roll grace window still serves ordinary calls but
// may no longer create, roll or revoke keys.
func TestRolledKeyCannotManageKeys(t *testing.T) {
	h := newHarness(t)
	made := h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "secret", "mode": "test"})
	require.Equal(t, http.StatusCreated, made.Status, "%s", made.Body)
	old := made.JSON(t)
	oldKey := old["key"].(string)
	rolled := h.do("POST", "/api/merchants/api-keys/"+old["id"].(string)+"/roll", h.secretKey, map[string]any{"graceSeconds": 3600})
	require.Equal(t, http.StatusCreated, rolled.Status, "%s", rolled.Body)
	newID := rolled.JSON(t)["id"].(string)
	victim := h.do("POST", "/api/merchants/api-keys", h.secretKey, map[string]any{"type": "publishable", "mode": "test"})
	require.Equal(t, http.StatusCreated, victim.Status)
	victimID := victim.JSON(t)["id"].(string)

	refused := []struct {
		name    string
		method  string
		path    string
		body    any
		headers []string
	}{
		{"create", "POST", "/api/merchants/api-keys", map[string]any{"type": "secret", "mode": "test"}, nil},
		{"create with an Idempotency-Key", "POST", "/api/merchants/api-keys", map[string]any{"type": "secret", "mode": "test"}, []string{"Idempotency-Key", "mint-1"}},
		{"roll", "POST", "/api/merchants/api-keys/" + victimID + "/roll", nil, nil},
		{"roll itself", "POST", "/api/merchants/api-keys/" + old["id"].(string) + "/roll", nil, nil},
		{"revoke", "DELETE", "/api/merchants/api-keys/" + victimID, nil, nil},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			m := assertErrorEnvelope(t, h.do(tt.method, tt.path, oldKey, tt.body, tt.headers...), http.StatusUnauthorized, bridge.CodeAuthKeyExpired)
			assert.Contains(t, m["fix"], newID, "the fix names the key to use")
		})
	}
	// The victim is untouched, and other endpoints keep working during the grace window.
	list := h.do("GET", "/api/merchants/api-keys", oldKey, nil)
	require.Equal(t, http.StatusOK, list.Status)
	// The harness's two keys, the rolled one, its successor and the victim: no key was made.
	assert.Len(t, list.JSON(t)["data"], 5)
	assert.NotContains(t, string(list.Body), `"revokedAt"`)
	assert.Equal(t, http.StatusOK, h.do("GET", "/v1/sessions", oldKey, nil).Status)
	assert.Equal(t, http.StatusCreated, h.do("POST", "/v1/agent_tokens", oldKey, map[string]any{"agentId": "agent-1"}).Status)
	h.logs.AssertNoSecrets(t, oldKey)
}

// TestPerKeyLimitIsPerAgentForBrowserCallers: agents sharing a publishable key each have their own
// create bucket; a secret key keeps its own.
func TestPerKeyLimitIsPerAgentForBrowserCallers(t *testing.T) {
	h := newHarness(t)
	body := map[string]any{"amount": 1240, "currency": "GBP"}
	tokens := map[string]string{"agent-a": h.agentToken("agent-a"), "agent-b": h.agentToken("agent-b")}
	create := func(agent string) *response {
		return h.do("POST", "/v1/sessions", h.publishableKey, body, "Origin", testOrigin, "X-Agent-Token", tokens[agent])
	}
	for i := range 30 {
		r := create("agent-a")
		require.Equal(t, http.StatusCreated, r.Status, "create %d: %s", i+1, r.Body)
		assert.Equal(t, strconv.Itoa(29-i), r.Header.Get("X-RateLimit-Remaining"))
	}
	m := assertErrorEnvelope(t, create("agent-a"), http.StatusTooManyRequests, bridge.CodeRateLimitExceededPerKey)
	assert.Contains(t, m["error"], "agent-a")

	b := create("agent-b")
	require.Equal(t, http.StatusCreated, b.Status, "%s", b.Body)
	assert.Equal(t, "29", b.Header.Get("X-RateLimit-Remaining"), "agent-b has its own 30")
	backend := h.do("POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": "agent-a", "amount": 1240, "currency": "GBP"})
	require.Equal(t, http.StatusCreated, backend.Status, "%s", backend.Body)
	assert.Equal(t, "29", backend.Header.Get("X-RateLimit-Remaining"), "the secret key has its own 30")
}

// serverOptions are the options of another paybridge server over the harness's services, store
// and master key, logging to the harness's log, after configure has changed them.
func (h *harness) serverOptions(configure func(*web.Options)) web.Options {
	h.t.Helper()
	keyring, err := bridge.NewKeyring(bytes.Repeat([]byte{7}, 32)) // the harness's master key
	require.NoError(h.t, err)
	opts := web.Options{
		Sessions: h.sessions, Keys: h.keys, Hub: h.hub, Store: h.store,
		Merchants: bridge.StaticMerchants{h.merchant}, Keyring: keyring, Clock: h.clock,
		Logger: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if configure != nil {
		configure(&opts)
	}
	return opts
}

// extraServer starts another paybridge server over the harness's services and store, as a second
// process on the same data would be, after configure has changed its options.
func (h *harness) extraServer(configure func(*web.Options)) string {
	h.t.Helper()
	opts := h.serverOptions(configure)
	server, err := web.NewServer(opts)
	require.NoError(h.t, err)
	srv := httptest.NewServer(server)
	h.t.Cleanup(func() {
		_ = server.Shutdown(context.Background())
		srv.Close()
	})
	return srv.URL
}

// doAt is h.do against the server at base, bounded so a request that would wait forever fails.
func doAt(t *testing.T, base, method, path, key string, body any, headers ...string) *response {
	t.Helper()
	data, err := json.Marshal(body)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(data))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: out}
}

// diesBeforeStoring is the store of a process killed after reserving an Idempotency-Key and
// before it stored the session: VCC was never called.
type diesBeforeStoring struct{ diesMidRequest }

func (diesBeforeStoring) CreateSession(context.Context, *bridge.Session) error {
	return errors.New("killed before the session was stored")
}

// TestIdempotentCreateSurvivesACrash (issue 9): a retry of a create whose first run died
// returns the session that run made, whatever became of it, and never makes a second VCC
// session; a first run that died before storing anything is run again under the same session id.
func TestIdempotentCreateSurvivesACrash(t *testing.T) {
	body := map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"}
	t.Run("died after VCC answered", func(t *testing.T) {
		h := newHarness(t)
		dead := h.extraServer(func(o *web.Options) { o.Store = diesMidRequest{h.store} })
		first := doAt(t, dead, "POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", "order-1")
		require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)
		made := first.Session(t)

		h.clock.Advance(time.Second)
		restarted := h.extraServer(nil)
		retry := doAt(t, restarted, "POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", "order-1")
		require.Equal(t, http.StatusCreated, retry.Status, "%s", retry.Body)
		assert.Equal(t, made.ID, retry.Session(t).ID, "the first run's session")
		assert.Equal(t, 1, h.vcc.Stats().CreateSession, "no second VCC session")
		again := doAt(t, restarted, "POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", "order-1")
		assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		assert.Equal(t, made.ID, again.Session(t).ID)
		assert.Equal(t, 1, h.vcc.Stats().CreateSession)
	})
	t.Run("died before storing the session", func(t *testing.T) {
		h := newHarness(t)
		dead := h.extraServer(func(o *web.Options) {
			o.Store = diesBeforeStoring{diesMidRequest{h.store}}
			svc, err := bridge.NewService(bridge.ServiceOptions{Store: o.Store, Merchants: bridge.StaticMerchants{h.merchant},
				Provider: vcc.New(vcc.Options{Clock: h.clock}), Publisher: h.hub, Keyring: o.Keyring, Clock: h.clock})
			require.NoError(t, err)
			o.Sessions = svc
		})
		first := doAt(t, dead, "POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", "order-2")
		require.Equal(t, http.StatusInternalServerError, first.Status, "%s", first.Body)
		require.Equal(t, 0, h.vcc.Stats().CreateSession)

		h.clock.Advance(time.Second)
		restarted := h.extraServer(nil)
		retry := doAt(t, restarted, "POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", "order-2")
		require.Equal(t, http.StatusCreated, retry.Status, "%s", retry.Body)
		rec, err := h.store.IdempotencyRecord(context.Background(), idempotencyScopeOf(t, h, "order-2"), h.clock.Now())
		require.NoError(t, err)
		assert.Equal(t, rec.ResourceID, retry.Session(t).ID, "run again under the id fixed before the first run")
		assert.Equal(t, 1, h.vcc.Stats().CreateSession)
	})
}

// idempotencyScopeOf is the store key of Idempotency-Key key sent with the harness's secret key.
func idempotencyScopeOf(t *testing.T, h *harness, key string) string {
	t.Helper()
	k, err := h.store.APIKeyByHash(context.Background(), bridge.HashSecret(h.secretKey))
	require.NoError(t, err)
	return k.MerchantID + "\x00" + string(k.Mode) + "\x00" + k.ID + "\x00\x00" + key
}

// TestIdempotentCreateUnderAnotherMasterKey: a create's stored answer that cannot be opened (the
// master key changed) is not run again, which could make a second provider session: the session
// the first run made is answered.
func TestIdempotentCreateUnderAnotherMasterKey(t *testing.T) {
	h := newHarness(t)
	body := map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"}
	first := h.do("POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", "order-9")
	require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)
	other, err := bridge.NewKeyring(bytes.Repeat([]byte{8}, 32))
	require.NoError(t, err)
	rekeyed := h.extraServer(func(o *web.Options) { o.Keyring = other })
	retry := doAt(t, rekeyed, "POST", "/v1/sessions", h.secretKey, body, "Idempotency-Key", "order-9")
	require.Equal(t, http.StatusCreated, retry.Status, "%s", retry.Body)
	assert.Equal(t, first.Session(t).ID, retry.Session(t).ID)
	assert.Equal(t, 1, h.vcc.Stats().CreateSession, "no second VCC session")
}
