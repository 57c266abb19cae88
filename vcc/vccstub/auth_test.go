package vccstub_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/paybridge/paybridge/vcc/vccstub"
)

func TestTokenEndpoint(t *testing.T) {
	special := vccstub.Account{Name: "special", ClientID: "client+1@x", ClientSecret: "s3cr+t/=%&", ConfigurationIDs: []int{9}}
	w := newWorld(t, vccstub.Options{Accounts: []vccstub.Account{vccstub.DefaultAccount(), special}})

	basic := func(id, secret string, form url.Values) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			req, err := http.NewRequest(http.MethodPost, w.stub.TokenURL(), strings.NewReader(form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(id, secret)
			return req
		}
	}
	formReq := func(form url.Values) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			req, err := http.NewRequest(http.MethodPost, w.stub.TokenURL(), strings.NewReader(form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}
	}
	grantOnly := url.Values{"grant_type": {"client_credentials"}, "scope": {"globalpci"}}
	with := func(key, value string) url.Values {
		f := credentialsForm(clientID, clientSecret)
		if value == "" {
			f.Del(key)
		} else {
			f.Set(key, value)
		}
		return f
	}

	tests := []struct {
		name     string
		request  func(t *testing.T) *http.Request
		wantBody string // exact body on failure; "" means success
	}{
		{"credentials in the form", formReq(credentialsForm(clientID, clientSecret)), ""},
		{"credentials as HTTP Basic", basic(clientID, clientSecret, grantOnly), ""},
		{"Basic credentials form-encoded first (RFC 6749)", basic(url.QueryEscape(special.ClientID), url.QueryEscape(special.ClientSecret), grantOnly), ""},
		{"Basic credentials raw", basic(special.ClientID, special.ClientSecret, grantOnly), ""},
		{"scope among others", formReq(with("scope", "openid globalpci")), ""},
		{"wrong secret", formReq(credentialsForm(clientID, "wrong")), `{"error":"invalid_client"}`},
		{"unknown client", formReq(credentialsForm("someone", clientSecret)), `{"error":"invalid_client"}`},
		{"another account's secret", formReq(credentialsForm(clientID, special.ClientSecret)), `{"error":"invalid_client"}`},
		{"no credentials", formReq(grantOnly), `{"error":"invalid_client"}`},
		{"wrong Basic secret", basic(clientID, "wrong", grantOnly), `{"error":"invalid_client"}`},
		{"wrong grant type", formReq(with("grant_type", "password")), `{"error":"invalid_request"}`},
		{"no grant type", formReq(with("grant_type", "")), `{"error":"invalid_request"}`},
		{"wrong scope", formReq(with("scope", "openid")), `{"error":"invalid_scope"}`},
		{"no scope", formReq(with("scope", "")), `{"error":"invalid_scope"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.request(t))
			assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
			if tt.wantBody != "" {
				assert.Equal(t, http.StatusBadRequest, r.status)
				exactBody(t, tt.wantBody, r)
				return
			}
			require.Equal(t, http.StatusOK, r.status, r.body)
			var tok map[string]any
			r.decode(t, &tok)
			assert.Len(t, tok, 3)
			assert.NotEmpty(t, tok["access_token"])
			assert.EqualValues(t, 3600, tok["expires_in"])
			assert.Equal(t, "Bearer", tok["token_type"])
		})
	}
}

func TestTokensAreDistinctAndReportTheirLifetime(t *testing.T) {
	w := newWorld(t, vccstub.Options{TokenLifetime: 7200 * time.Second})
	r := w.requestToken(t, credentialsForm(clientID, clientSecret))
	require.Equal(t, http.StatusOK, r.status)
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	r.decode(t, &tok)
	assert.Equal(t, 7200, tok.ExpiresIn)
	assert.NotEqual(t, tok.AccessToken, w.token(t))
}

// The stub must work with the library paybridge's client uses, whichever way it sends credentials.
func TestTokenWithOAuth2Library(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleAutoDetect, oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: w.stub.TokenURL(), Scopes: []string{"globalpci"}, AuthStyle: style}
		tok, err := cfg.Token(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "Bearer", tok.TokenType)
		assert.NotEmpty(t, tok.AccessToken)

		r := w.create(t, tok.AccessToken, createBody("12.40", "GBP"))
		assert.NotEmpty(t, r.SessionGUID)
	}
}

func TestPaymentAPIRequiresAValidBearerToken(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	good := w.token(t)
	guid := w.create(t, good, createBody("12.40", "GBP")).SessionGUID

	endpoints := []struct {
		name, method, path string
	}{
		{"create", http.MethodPost, "/paymentapi/v1/session"},
		{"digital", http.MethodPost, "/paymentapi/v1/digitalsession"},
		{"status", http.MethodGet, "/paymentapi/v1/session/" + guid},
	}
	auths := []struct {
		name, header string
	}{
		{"no header", ""},
		{"unknown token", "Bearer not-a-token"},
		{"Basic scheme", "Basic " + good},
		{"bare token", good},
		{"empty bearer", "Bearer "},
	}
	for _, e := range endpoints {
		for _, a := range auths {
			t.Run(e.name+" "+a.name, func(t *testing.T) {
				req, err := http.NewRequest(e.method, w.srv.URL+e.path, strings.NewReader(`{"agentId":"a","paymentData":{"Amount":"1.00","Currency":"GBP"}}`))
				require.NoError(t, err)
				if a.header != "" {
					req.Header.Set("Authorization", a.header)
				}
				r := do(t, req)
				assert.Equal(t, http.StatusUnauthorized, r.status)
				exactBody(t, `{"message":"Authorization has been denied for this request."}`, r)
			})
		}
	}
	// The scheme is case-insensitive, as in RFC 6750.
	req, err := http.NewRequest(http.MethodGet, w.srv.URL+"/paymentapi/v1/session/"+guid, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "bearer "+good)
	assert.Equal(t, http.StatusOK, do(t, req).status)
}

func TestTokenExpiresOnTheStubClock(t *testing.T) {
	tests := []struct {
		name     string
		lifetime time.Duration
		want     time.Duration
	}{
		{"default hour", 0, time.Hour},
		{"configured", 10 * time.Minute, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, vccstub.Options{TokenLifetime: tt.lifetime})
			tok := w.token(t)
			create := func(tok string) response {
				return w.call(t, http.MethodPost, "/paymentapi/v1/session", tok, createBody("1.00", "GBP"))
			}

			w.clock.Advance(tt.want - time.Nanosecond)
			assert.Equal(t, http.StatusOK, create(tok).status)

			w.clock.Advance(time.Nanosecond)
			r := create(tok)
			assert.Equal(t, http.StatusUnauthorized, r.status)
			exactBody(t, `{"message":"Authorization has been denied for this request."}`, r)

			// A new token works again.
			assert.Equal(t, http.StatusOK, create(w.token(t)).status)
		})
	}
}

func TestRevokeTokens(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	first, second := w.token(t), w.token(t)
	guid := w.create(t, first, createBody("1.00", "GBP")).SessionGUID

	r := w.call(t, http.MethodPost, "/_control/tokens/revoke", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	exactBody(t, `{"revoked":2}`, r)
	for _, tok := range []string{first, second} {
		_, r := w.status(t, tok, guid)
		assert.Equal(t, http.StatusUnauthorized, r.status)
	}
	fresh := w.token(t)
	_, r = w.status(t, fresh, guid)
	assert.Equal(t, http.StatusOK, r.status)

	assert.Equal(t, 1, w.stub.RevokeTokens(), "the Go method does the same")
	_, r = w.status(t, fresh, guid)
	assert.Equal(t, http.StatusUnauthorized, r.status)
}

func TestSessionsBelongToTheirAccount(t *testing.T) {
	other := vccstub.Account{Name: "other", ClientID: "other-client", ClientSecret: "other-secret", ConfigurationIDs: []int{5}}
	w := newWorld(t, vccstub.Options{Accounts: []vccstub.Account{vccstub.DefaultAccount(), other}})
	guid := w.create(t, w.token(t), createBody("1.00", "GBP")).SessionGUID

	r := w.requestToken(t, credentialsForm(other.ClientID, other.ClientSecret))
	require.Equal(t, http.StatusOK, r.status)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.decode(t, &tok)
	_, got := w.status(t, tok.AccessToken, guid)
	assert.Equal(t, http.StatusNotFound, got.status)
	exactBody(t, `{"message":"Session not found"}`, got)

	// The other account's own configuration ids apply to it.
	body := createBody("1.00", "GBP")
	body["accountConfigurationId"] = 1
	bad := w.call(t, http.MethodPost, "/paymentapi/v1/session", tok.AccessToken, body)
	assert.Equal(t, http.StatusBadRequest, bad.status)
	exactBody(t, `{"message":"Account configuration does not exists for account: other, configuration Id: 1."}`, bad)
	body["accountConfigurationId"] = 5
	assert.Equal(t, http.StatusOK, w.call(t, http.MethodPost, "/paymentapi/v1/session", tok.AccessToken, body).status)
}
