package vccstub_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/vcc/vccstub"
	"github.com/paybridge/paybridge/webhook"
)

// delivery is one webhook POST as the receiver saw it.
type delivery struct {
	header http.Header
	body   string
}

// receiver is a webhook endpoint that answers with the statuses it is given, in turn (the last
// one repeats), and records every delivery.
type receiver struct {
	srv *httptest.Server

	mu         sync.Mutex
	statuses   []int
	deliveries []delivery
	arrived    chan struct{}
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	if len(statuses) == 0 {
		statuses = []int{http.StatusOK}
	}
	rc := &receiver{statuses: statuses, arrived: make(chan struct{}, 100)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.deliveries = append(rc.deliveries, delivery{header: r.Header.Clone(), body: string(body)})
		status := rc.statuses[0]
		if len(rc.statuses) > 1 {
			rc.statuses = rc.statuses[1:]
		}
		rc.mu.Unlock()
		rc.arrived <- struct{}{}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.deliveries...)
}

// waitFor waits until n deliveries have arrived.
func (rc *receiver) waitFor(t *testing.T, n int) []delivery {
	t.Helper()
	require.Eventually(t, func() bool { return len(rc.got()) >= n }, 10*time.Second, 5*time.Millisecond)
	return rc.got()
}

// tokenServer is an OAuth2 client credentials endpoint such as paybridge's POST /oauth/token.
type tokenServer struct {
	srv *httptest.Server

	mu     sync.Mutex
	issued []string
	forms  []map[string]string
}

func newTokenServer(t *testing.T, id, secret string) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		ts.mu.Lock()
		defer ts.mu.Unlock()
		ts.forms = append(ts.forms, map[string]string{
			"grant_type": r.PostForm.Get("grant_type"), "client_id": r.PostForm.Get("client_id"),
			"client_secret": r.PostForm.Get("client_secret"), "content_type": r.Header.Get("Content-Type"),
		})
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("client_id") != id || r.PostForm.Get("client_secret") != secret {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		tok := "whtok-" + strconv.Itoa(len(ts.issued)+1) + "-" + bridge.RandomBase62(16)
		ts.issued = append(ts.issued, tok)
		_, _ = io.WriteString(w, `{"access_token":"`+tok+`","expires_in":3600,"token_type":"Bearer"}`)
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenServer) tokens() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.issued...)
}

// waitSent waits until the stub has counted n successful deliveries.
func (w *world) waitSent(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return w.stub.Stats().WebhooksSent >= n }, 10*time.Second, 5*time.Millisecond)
}

func TestWebhookSigned(t *testing.T) {
	rc := newReceiver(t)
	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{URL: rc.srv.URL, SigningSecret: "whsec_test_SECRET"}})
	tok := w.token(t)
	guid := w.create(t, tok, createBody("12.40", "GBP")).SessionGUID

	r := w.call(t, http.MethodPost, "/_control/sessions/"+guid+"/complete", "", `{"decision":"ACCEPT"}`)
	require.Equal(t, http.StatusOK, r.status)
	d := rc.waitFor(t, 1)[0]

	_, status := w.status(t, tok, guid)
	assert.Equal(t, status.body, d.body, "the webhook carries the same bytes as GET")
	assert.Equal(t, "application/json", d.header.Get("Content-Type"))
	assert.Empty(t, d.header.Get("Authorization"))

	sig := d.header.Get("X-VonPay-Signature")
	ts := strconv.FormatInt(w.clock.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte("whsec_test_SECRET"))
	mac.Write([]byte(ts + "." + d.body))
	assert.Equal(t, "t="+ts+",v1="+hex.EncodeToString(mac.Sum(nil)), sig)
	assert.NoError(t, webhook.Verify([]byte(d.body), sig, "whsec_test_SECRET", w.clock.Now(), 0))

	w.waitSent(t, 1)
	w.stub.Close()
	assert.Equal(t, 1, w.stub.Stats().WebhooksSent)
	assert.Equal(t, 0, w.stub.Stats().WebhooksFailed)
}

func TestWebhookWithBearerToken(t *testing.T) {
	rc := newReceiver(t)
	ts := newTokenServer(t, "vcc-client", "vcc-client-SECRET")
	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{
		URL: rc.srv.URL, TokenURL: ts.srv.URL, ClientID: "vcc-client", ClientSecret: "vcc-client-SECRET",
		RetryEvery: fastRetryEvery, RetryFor: fastRetryFor,
	}})
	tok := w.token(t)
	first := w.create(t, tok, createBody("12.40", "GBP")).SessionGUID
	second := w.create(t, tok, createBody("12.40", "GBP")).SessionGUID

	_, err := w.stub.Complete(first, "ACCEPT", "")
	require.NoError(t, err)
	rc.waitFor(t, 1)
	_, err = w.stub.Expire(second)
	require.NoError(t, err)
	got := rc.waitFor(t, 2)

	issued := ts.tokens()
	require.Len(t, issued, 1, "the token is cached for its lifetime")
	for _, d := range got {
		assert.Equal(t, "Bearer "+issued[0], d.header.Get("Authorization"))
		assert.Empty(t, d.header.Get("X-VonPay-Signature"))
	}
	assert.Contains(t, got[0].body, `"sessionState":"Finished"`)
	assert.Contains(t, got[1].body, `"sessionState":"Expired"`)
	assert.NotContains(t, got[1].body, "paymentResultData")

	ts.mu.Lock()
	form := ts.forms[0]
	ts.mu.Unlock()
	assert.Equal(t, map[string]string{
		"grant_type": "client_credentials", "client_id": "vcc-client", "client_secret": "vcc-client-SECRET",
		"content_type": "application/x-www-form-urlencoded",
	}, form)
}

func TestWebhookRefetchesTheTokenAfter401(t *testing.T) {
	rc := newReceiver(t, http.StatusUnauthorized, http.StatusOK)
	ts := newTokenServer(t, "vcc-client", "vcc-client-SECRET")
	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{
		URL: rc.srv.URL, TokenURL: ts.srv.URL, ClientID: "vcc-client", ClientSecret: "vcc-client-SECRET",
		RetryEvery: fastRetryEvery, RetryFor: fastRetryFor,
	}})
	guid := w.create(t, w.token(t), createBody("1.00", "GBP")).SessionGUID
	_, err := w.stub.Complete(guid, "", "")
	require.NoError(t, err)

	got := rc.waitFor(t, 2)
	issued := ts.tokens()
	require.Len(t, issued, 2)
	assert.Equal(t, "Bearer "+issued[0], got[0].header.Get("Authorization"))
	assert.Equal(t, "Bearer "+issued[1], got[1].header.Get("Authorization"))
	w.waitSent(t, 1)
	w.stub.Close()
	assert.Equal(t, 1, w.stub.Stats().WebhooksSent)
	assert.Equal(t, 1, w.stub.Stats().WebhooksFailed)
}

func TestWebhookTokenEndpointRefusal(t *testing.T) {
	rc := newReceiver(t)
	ts := newTokenServer(t, "vcc-client", "vcc-client-SECRET")
	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{
		URL: rc.srv.URL, TokenURL: ts.srv.URL, ClientID: "vcc-client", ClientSecret: "wrong-SECRET",
		RetryEvery: fastRetryEvery, RetryFor: fastRetryFor,
	}})
	guid := w.create(t, w.token(t), createBody("1.00", "GBP")).SessionGUID
	_, err := w.stub.Complete(guid, "", "")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return w.stub.Stats().WebhooksFailed == 5 }, 10*time.Second, 5*time.Millisecond)
	w.stub.Close()
	assert.Empty(t, rc.got(), "nothing is posted without a token")
	assert.Equal(t, 0, w.stub.Stats().WebhooksSent)
}

func TestWebhookWithoutAuth(t *testing.T) {
	rc := newReceiver(t)
	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{URL: rc.srv.URL}})
	guid := w.create(t, w.token(t), createBody("1.00", "GBP")).SessionGUID
	_, err := w.stub.Complete(guid, "REJECT", "")
	require.NoError(t, err)
	d := rc.waitFor(t, 1)[0]
	assert.Empty(t, d.header.Get("Authorization"))
	assert.Empty(t, d.header.Get("X-VonPay-Signature"))
	assert.Contains(t, d.body, `"decision":"REJECT"`)
}

// fastRetryEvery and fastRetryFor shorten VCC's redelivery schedule (every 3 minutes for 12
// hours) to five tries, 10 ms apart.
const (
	fastRetryEvery = 10 * time.Millisecond
	fastRetryFor   = 4 * fastRetryEvery
)

func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []int
		wantPosts  int
		wantSent   int
		wantFailed int
	}{
		{"succeeds on the third try", []int{500, 503, 200}, 3, 1, 2},
		{"any 2xx is success", []int{204}, 1, 1, 0},
		{"4xx is retried too", []int{401, 200}, 2, 1, 1},
		{"gives up when the retry window has passed: five tries", []int{500}, 5, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, tt.statuses...)
			w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{URL: rc.srv.URL, RetryEvery: fastRetryEvery, RetryFor: fastRetryFor}})
			guid := w.create(t, w.token(t), createBody("1.00", "GBP")).SessionGUID
			_, err := w.stub.Complete(guid, "", "")
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				st := w.stub.Stats()
				return st.WebhooksSent+st.WebhooksFailed == tt.wantPosts
			}, 10*time.Second, 5*time.Millisecond)
			w.stub.Close() // waits for the delivery to return: no further tries after this
			got := rc.got()
			assert.Len(t, got, tt.wantPosts)
			for _, d := range got {
				assert.Equal(t, got[0].body, d.body, "every try carries the same body")
			}
			assert.Equal(t, tt.wantSent, w.stub.Stats().WebhooksSent)
			assert.Equal(t, tt.wantFailed, w.stub.Stats().WebhooksFailed)
		})
	}
}

func TestWebhookNetworkErrorIsRetried(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there now
	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{URL: deadURL, RetryEvery: fastRetryEvery, RetryFor: fastRetryFor}})
	guid := w.create(t, w.token(t), createBody("1.00", "GBP")).SessionGUID
	_, err := w.stub.Expire(guid)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return w.stub.Stats().WebhooksFailed == 5 }, 10*time.Second, 5*time.Millisecond)
}

func TestCloseStopsWebhookRetries(t *testing.T) {
	rc := newReceiver(t, http.StatusInternalServerError)
	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{URL: rc.srv.URL}})
	guid := w.create(t, w.token(t), createBody("1.00", "GBP")).SessionGUID
	_, err := w.stub.Complete(guid, "", "")
	require.NoError(t, err)
	select {
	case <-rc.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook arrived")
	}
	w.stub.Close()
	assert.Len(t, rc.got(), 1, "no retry after Close")

	// Nothing is sent after Close either.
	_, err = w.stub.Complete(w.create(t, w.token(t), createBody("1.00", "GBP")).SessionGUID, "", "")
	require.NoError(t, err)
	w.stub.Close()
	assert.Len(t, rc.got(), 1)
}

func TestDropWebhooksFault(t *testing.T) {
	rc := newReceiver(t)
	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{URL: rc.srv.URL}})
	tok := w.token(t)
	dropped := w.create(t, tok, createBody("1.00", "GBP")).SessionGUID
	sent := w.create(t, tok, createBody("1.00", "GBP")).SessionGUID

	w.putFaults(t, `{"dropWebhooks":true}`)
	_, err := w.stub.Complete(dropped, "", "")
	require.NoError(t, err)
	st, _ := w.status(t, tok, dropped)
	assert.Equal(t, "Finished", st.SessionState, "the outcome is there to poll")

	w.stub.ClearFaults()
	_, err = w.stub.Complete(sent, "", "")
	require.NoError(t, err)
	w.waitSent(t, 1)
	w.stub.Close() // the dropped one was never queued, so nothing else can arrive
	got := rc.got()
	require.Len(t, got, 1)
	assert.Contains(t, got[0].body, sent)
	assert.Equal(t, 1, w.stub.Stats().WebhooksSent)
}

func TestWebhookOnProviderLifetimeExpiry(t *testing.T) {
	rc := newReceiver(t)
	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{URL: rc.srv.URL}})
	tok := w.token(t)
	guid := w.create(t, tok, createBody("1.00", "GBP")).SessionGUID
	w.clock.Advance(providerLifetime)
	st, _ := w.status(t, tok, guid) // the stub notices the end when asked
	require.Equal(t, "Expired", st.SessionState)
	d := rc.waitFor(t, 1)[0]
	assert.Contains(t, d.body, `"sessionState":"Expired"`)
	assert.Contains(t, d.body, guid)
	w.status(t, tok, guid)
	w.stub.Close()
	assert.Len(t, rc.got(), 1, "the end is reported once")
}

func TestSetWebhook(t *testing.T) {
	first, second := newReceiver(t), newReceiver(t)
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	complete := func() string {
		guid := w.create(t, tok, createBody("1.00", "GBP")).SessionGUID
		_, err := w.stub.Complete(guid, "", "")
		require.NoError(t, err)
		return guid
	}
	complete() // no target: nothing sent
	w.stub.SetWebhook(&vccstub.WebhookTarget{URL: first.srv.URL})
	a := complete()
	first.waitFor(t, 1)
	w.stub.SetWebhook(&vccstub.WebhookTarget{URL: second.srv.URL, SigningSecret: "whsec_x"})
	b := complete()
	second.waitFor(t, 1)
	w.waitSent(t, 2)
	w.stub.SetWebhook(nil)
	complete()
	w.stub.Close()

	require.Len(t, first.got(), 1)
	require.Len(t, second.got(), 1)
	assert.Contains(t, first.got()[0].body, a)
	assert.Contains(t, second.got()[0].body, b)
	assert.NotEmpty(t, second.got()[0].header.Get("X-VonPay-Signature"))
	assert.Equal(t, 2, w.stub.Stats().WebhooksSent)
}

// TestLogsHoldNoSecrets runs every flow that touches a secret and checks the log for each.
func TestLogsHoldNoSecrets(t *testing.T) {
	rc := newReceiver(t, http.StatusUnauthorized, http.StatusOK)
	ts := newTokenServer(t, "vcc-client", "vcc-client-SECRET")
	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{
		URL: rc.srv.URL, TokenURL: ts.srv.URL, ClientID: "vcc-client", ClientSecret: "vcc-client-SECRET", SigningSecret: "whsec_SECRET",
		RetryEvery: fastRetryEvery, RetryFor: fastRetryFor,
	}})
	tok := w.token(t)
	w.requestToken(t, credentialsForm(clientID, "wrong-SECRET"))
	c := w.create(t, tok, createBody("12.40", "GBP"))
	w.frame(t, c)
	_, err := w.stub.Complete(c.SessionGUID, "ACCEPT", "")
	require.NoError(t, err)
	w.frame(t, c)
	rc.waitFor(t, 2)
	w.stub.Close()

	logs := w.logs.String()
	require.Contains(t, logs, c.SessionGUID, "the log should say what happened")
	secrets := []string{clientSecret, tok, c.AgentAccessToken, c.AgentRefreshToken, "SECRET"}
	secrets = append(secrets, ts.tokens()...)
	for _, s := range secrets {
		assert.False(t, strings.Contains(logs, s), "the log holds a secret")
	}
}
