package vccstub_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/vcc/vccstub"
)

// putFaults sets faults over the control API.
func (w *world) putFaults(t *testing.T, body string) {
	t.Helper()
	r := w.call(t, http.MethodPut, "/_control/faults", "", body)
	require.Equal(t, http.StatusOK, r.status, r.body)
}

func TestCreateFaults(t *testing.T) {
	tests := []struct {
		fault       string
		configID    any // accountConfigurationId in the request; nil for none
		wantStatus  int
		wantBody    string
		contentType string
	}{
		{"invalid_client_key", nil, 500,
			`{"message":"Provider's authorization endpoint returned error message 'invalid_client_key'"}`, "application/json"},
		{"provider_permissions", nil, 500,
			`{"message":"Provider's authorization endpoint returned error message 'invalid_client'/'invalid_client' for account name: sandbox, configuration id: 1"}`, "application/json"},
		{"provider_permissions", 2, 500,
			`{"message":"Provider's authorization endpoint returned error message 'invalid_client'/'invalid_client' for account name: sandbox, configuration id: 2"}`, "application/json"},
		{"unknown_account_configuration", nil, 400,
			`{"message":"Account configuration does not exists for account: sandbox, configuration Id: 1."}`, "application/json"},
		{"unknown_account_configuration", 2, 400,
			`{"message":"Account configuration does not exists for account: sandbox, configuration Id: 2."}`, "application/json"},
		{"http_503", nil, 503, "Service Unavailable", "text/plain"},
	}
	for _, path := range []string{"/paymentapi/v1/session", "/paymentapi/v1/digitalsession"} {
		for _, tt := range tests {
			t.Run(path+" "+tt.fault, func(t *testing.T) {
				w := newWorld(t, vccstub.Options{})
				tok := w.token(t)
				w.putFaults(t, `{"create":"`+tt.fault+`"}`)
				body := createBody("12.40", "GBP")
				if tt.configID != nil {
					body["accountConfigurationId"] = tt.configID
				}
				for range 2 { // until cleared
					r := w.call(t, http.MethodPost, path, tok, body)
					assert.Equal(t, tt.wantStatus, r.status)
					assert.Equal(t, tt.wantBody, r.body)
					assert.Contains(t, r.header.Get("Content-Type"), tt.contentType)
				}
				assert.Empty(t, w.stub.Sessions(), "a failed create starts nothing")

				r := w.call(t, http.MethodDelete, "/_control/faults", "", nil)
				require.Equal(t, http.StatusOK, r.status)
				assert.Equal(t, http.StatusOK, w.call(t, http.MethodPost, path, tok, body).status)
			})
		}
	}
}

func TestProviderFaultsComeAfterAuthAndValidation(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	w.putFaults(t, `{"create":"invalid_client_key","times":1}`)

	r := w.call(t, http.MethodPost, "/paymentapi/v1/session", "", createBody("1.00", "GBP"))
	assert.Equal(t, http.StatusUnauthorized, r.status)
	body := createBody("1.00", "GBP")
	delete(body, "agentId")
	r = w.call(t, http.MethodPost, "/paymentapi/v1/session", tok, body)
	assert.Equal(t, http.StatusBadRequest, r.status)
	// Neither used up the single firing.
	r = w.call(t, http.MethodPost, "/paymentapi/v1/session", tok, createBody("1.00", "GBP"))
	assert.Equal(t, http.StatusInternalServerError, r.status)
	assert.Equal(t, http.StatusOK, w.call(t, http.MethodPost, "/paymentapi/v1/session", tok, createBody("1.00", "GBP")).status)
}

func TestTokenFault(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	w.putFaults(t, `{"token":"invalid_client"}`)
	for range 2 {
		r := w.requestToken(t, credentialsForm(clientID, clientSecret))
		assert.Equal(t, http.StatusBadRequest, r.status)
		exactBody(t, `{"error":"invalid_client"}`, r)
	}
	w.stub.ClearFaults()
	w.token(t)
}

func TestFaultTimes(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	w.putFaults(t, `{"token":"invalid_client","create":"http_503","times":2}`)

	var tokenStatuses, createStatuses []int
	for range 3 {
		tokenStatuses = append(tokenStatuses, w.requestToken(t, credentialsForm(clientID, clientSecret)).status)
	}
	for range 3 {
		createStatuses = append(createStatuses, w.call(t, http.MethodPost, "/paymentapi/v1/session", tok, createBody("1.00", "GBP")).status)
	}
	assert.Equal(t, []int{400, 400, 200}, tokenStatuses, "the token fault fires twice, then clears")
	assert.Equal(t, []int{503, 503, 200}, createStatuses, "the create fault fires twice, then clears")

	r := w.call(t, http.MethodGet, "/_control/faults", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	exactBody(t, `{"token":"","create":"","latencyMs":0,"dropWebhooks":false,"times":2}`, r)
}

func TestFaultTimesAcrossBothCreateEndpoints(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	require.NoError(t, w.stub.SetFaults(vccstub.Faults{Create: vccstub.FaultProviderPermissions, Times: 1}))
	assert.Equal(t, http.StatusInternalServerError, w.call(t, http.MethodPost, "/paymentapi/v1/digitalsession", tok, createBody("1.00", "GBP")).status)
	assert.Equal(t, http.StatusOK, w.call(t, http.MethodPost, "/paymentapi/v1/session", tok, createBody("1.00", "GBP")).status)
	assert.Equal(t, vccstub.Faults{Times: 1}, w.stub.Faults())
}

func TestFaultsControlValidation(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	for _, body := range []string{
		`{"token":"expired"}`,
		`{"create":"boom"}`,
		`{"latencyMs":-1}`,
		`{"times":-1}`,
		`{"latency":5}`,
		`{"token":"invalid_client"} {}`,
		`{"latencyMs":"5"}`,
		``,
	} {
		t.Run(body, func(t *testing.T) {
			r := w.call(t, http.MethodPut, "/_control/faults", "", body)
			assert.Equal(t, http.StatusBadRequest, r.status)
			var m map[string]string
			r.decode(t, &m)
			assert.NotEmpty(t, m["message"])
			assert.Equal(t, vccstub.Faults{}, w.stub.Faults(), "a refused PUT changes nothing")
		})
	}
	assert.Error(t, w.stub.SetFaults(vccstub.Faults{Create: "nope"}))

	w.putFaults(t, `{"token":"invalid_client","create":"timeout","latencyMs":5,"dropWebhooks":true,"times":3}`)
	assert.Equal(t, vccstub.Faults{Token: "invalid_client", Create: "timeout", LatencyMs: 5, DropWebhooks: true, Times: 3}, w.stub.Faults())
	r := w.call(t, http.MethodDelete, "/_control/faults", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	exactBody(t, `{"token":"","create":"","latencyMs":0,"dropWebhooks":false,"times":0}`, r)
	assert.Equal(t, vccstub.Faults{}, w.stub.Faults())
}

func TestTimeoutFaultHoldsUntilTheClientGivesUp(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	w.putFaults(t, `{"create":"timeout"}`)

	client := &http.Client{Timeout: 100 * time.Millisecond}
	for _, path := range []string{"/paymentapi/v1/session", "/paymentapi/v1/digitalsession"} {
		req, err := http.NewRequest(http.MethodPost, w.srv.URL+path, strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		_, err = client.Do(req)
		require.Error(t, err)
		var netErr interface{ Timeout() bool }
		require.True(t, errors.As(err, &netErr) && netErr.Timeout(), "want a client timeout, got %v", err)
	}
	// Other endpoints are unaffected.
	_, r := w.status(t, tok, "00000000-0000-4000-8000-000000000000")
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestCloseReleasesHeldRequests(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	w.putFaults(t, `{"create":"timeout"}`)

	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, w.srv.URL+"/paymentapi/v1/session", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	require.Eventually(t, func() bool { return w.stub.Stats().CreateSession == 1 }, 5*time.Second, 5*time.Millisecond)
	w.stub.Close()
	select {
	case got := <-done:
		require.NoError(t, got.err)
		assert.Equal(t, http.StatusServiceUnavailable, got.status)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the held request")
	}
}

func TestLatencyFault(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	guid := w.create(t, tok, createBody("1.00", "GBP")).SessionGUID

	t.Run("every token and Payment API request waits, and a client can give up", func(t *testing.T) {
		w.putFaults(t, `{"latencyMs":60000}`)
		defer w.stub.ClearFaults()
		for _, ep := range []struct{ method, path, body string }{
			{http.MethodPost, vccstub.TokenPath, "grant_type=client_credentials"},
			{http.MethodPost, "/paymentapi/v1/session", `{}`},
			{http.MethodPost, "/paymentapi/v1/digitalsession", `{}`},
			{http.MethodGet, "/paymentapi/v1/session/" + guid, ``},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			req, err := http.NewRequestWithContext(ctx, ep.method, w.srv.URL+ep.path, strings.NewReader(ep.body))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tok)
			_, err = http.DefaultClient.Do(req)
			cancel()
			assert.ErrorIs(t, err, context.DeadlineExceeded, ep.path)
		}
		// The control API is not slowed down.
		assert.Equal(t, http.StatusOK, w.call(t, http.MethodGet, "/_control/stats", "", nil).status)
	})

	t.Run("a request delayed by the latency still succeeds", func(t *testing.T) {
		// That it waits is shown above: a deadline shorter than the latency expires.
		w.putFaults(t, `{"latencyMs":40}`)
		defer w.stub.ClearFaults()
		_, r := w.status(t, tok, guid)
		assert.Equal(t, http.StatusOK, r.status)
	})
}

func TestStats(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	w.requestToken(t, credentialsForm(clientID, "wrong"))
	w.create(t, tok, createBody("1.00", "GBP"))
	guid := w.create(t, tok, createBody("1.00", "GBP")).SessionGUID
	w.call(t, http.MethodPost, "/paymentapi/v1/session", "", createBody("1.00", "GBP")) // 401: counted too
	w.call(t, http.MethodPost, "/paymentapi/v1/digitalsession", tok, createBody("1.00", "GBP"))
	for range 4 {
		w.status(t, tok, guid)
	}

	want := vccstub.Stats{TokenRequests: 2, CreateSession: 3, CreateDigitalSession: 1, GetSession: 4}
	assert.Equal(t, want, w.stub.Stats())
	r := w.call(t, http.MethodGet, "/_control/stats", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	exactBody(t, `{"tokenRequests":2,"createSession":3,"createDigitalSession":1,"getSession":4,"webhooksSent":0,"webhooksFailed":0}`, r)

	r = w.call(t, http.MethodPost, "/_control/stats/reset", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, vccstub.Stats{}, w.stub.Stats())
	w.status(t, tok, guid)
	assert.Equal(t, vccstub.Stats{GetSession: 1}, w.stub.Stats())
	w.stub.ResetStats()
	assert.Equal(t, vccstub.Stats{}, w.stub.Stats())
}
