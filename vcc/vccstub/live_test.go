package vccstub_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/pcipal/pcipalstub"
	"github.com/paybridge/paybridge/vcc/vccstub"
)

// The tests here pin what makes the stub behave like live VCC (shared/UPSTREAM.md): the
// /globalpci base path, any gateway's result data, lenient paymentData, OAuth on the webhook, and
// the PCI Pal flow's PostMessage step on the control API.

func TestPaymentAPIUnderGlobalpciAndTheAlias(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	assert.Equal(t, "/globalpci", vccstub.PaymentAPIPath)
	assert.Equal(t, "/paymentapi", vccstub.LegacyPaymentAPIPath)
	assert.Equal(t, w.srv.URL+"/globalpci", w.stub.PaymentAPIURL())

	tests := []struct{ createBase, statusBase string }{
		{"/globalpci", "/globalpci"},
		{"/paymentapi", "/paymentapi"},
		{"/globalpci", "/paymentapi"},
		{"/paymentapi", "/globalpci"},
	}
	for _, tt := range tests {
		t.Run(tt.createBase+" then "+tt.statusBase, func(t *testing.T) {
			for _, endpoint := range []string{"/v1/session", "/v1/digitalsession"} {
				r := w.call(t, http.MethodPost, tt.createBase+endpoint, tok, createBody("12.40", "GBP"))
				require.Equal(t, http.StatusOK, r.status, r.body)
				var c created
				r.decode(t, &c)
				st := w.call(t, http.MethodGet, tt.statusBase+"/v1/session/"+c.SessionGUID, tok, nil)
				require.Equal(t, http.StatusOK, st.status, st.body)
				assert.Contains(t, st.body, `"sessionGuid":"`+c.SessionGUID+`"`)
			}
			// Both need the bearer token.
			assert.Equal(t, http.StatusUnauthorized, w.call(t, http.MethodPost, tt.createBase+"/v1/session", "", createBody("1.00", "GBP")).status)
		})
	}
	st := w.stub.Stats()
	assert.Equal(t, 8, st.CreateSession, "four created and four refused, under either base")
	assert.Equal(t, 4, st.CreateDigitalSession)
	assert.Equal(t, 8, st.GetSession)
}

// chaseResult is a Chase Orbital gateway's result data, as a public integration receives it.
var chaseResult = map[string]string{
	"ApprovalStatus": "1", "RespCode": "00", "TxRefNum": "5F2A9B7C1D3E4F5A6B7C8D9E0F1A2B3C4D5E6F7A",
	"AuthCode": "tst123", "AVSRespCode": "B", "ProcStatus": "0", "StatusMsg": "Approved",
}

func TestCompleteWithAnyGatewaysResultData(t *testing.T) {
	rc := newReceiver(t)
	ts := newTokenServer(t, "vcc-client", "vcc-client-SECRET")
	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{
		URL: rc.srv.URL, TokenURL: ts.srv.URL, ClientID: "vcc-client", ClientSecret: "vcc-client-SECRET",
	}})
	tok := w.token(t)

	tests := []struct {
		name         string
		data         map[string]string
		wantDecision string // the summary's, and the PCI Pal page's label
		wantLabel    string
	}{
		{"Chase Orbital", chaseResult, "", "result received"},
		{"CyberSource REVIEW, with extra keys", map[string]string{"decision": "REVIEW", "reasonCode": "480", "requestID": "1", "Amount": "1240", "Currency": "GBP", "ccAuthReply_avsCode": "Y"}, "REVIEW", "REVIEW"},
		{"odd keys and values", map[string]string{"": "", "ü ключ": "ñ \"quoted\" <b>", "n": "00012"}, "", "result received"},
		{"no result data at all", map[string]string{}, "", "result received"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := w.create(t, tok, createBody("12.40", "GBP"))
			raw, err := json.Marshal(map[string]any{"paymentResultData": tt.data})
			require.NoError(t, err)
			r := w.call(t, http.MethodPost, "/_control/sessions/"+c.SessionGUID+"/complete", "", string(raw))
			require.Equal(t, http.StatusOK, r.status, r.body)

			st, sr := w.status(t, tok, c.SessionGUID)
			assert.Equal(t, sr.body, r.body, "the control call answers the status")
			assert.Equal(t, "Finished", st.SessionState)
			assert.Equal(t, vccstub.ResultData(tt.data), st.PaymentResultData, "verbatim: nothing added, nothing dropped")
			var shape struct {
				PaymentResultData *map[string]string `json:"paymentResultData"`
			}
			sr.decode(t, &shape)
			require.NotNil(t, shape.PaymentResultData, "an empty result is {}, not absent")
			assert.Equal(t, tt.data, *shape.PaymentResultData)

			d := rc.waitFor(t, i+1)[i]
			assert.Equal(t, sr.body, d.body, "the webhook carries the same body")
			assert.Equal(t, tt.wantDecision, findSummary(t, w.stub.Sessions(), c.SessionGUID).Decision)
			page := w.frame(t, c)
			assert.Contains(t, page.body, "Payment decision: "+tt.wantLabel)

			again := w.call(t, http.MethodPost, "/_control/sessions/"+c.SessionGUID+"/complete", "", string(raw))
			assert.Equal(t, http.StatusConflict, again.status, "a finished session takes no second result")
		})
	}

	t.Run("Go API", func(t *testing.T) {
		c := w.create(t, tok, createBody("12.40", "GBP"))
		in := map[string]string{"ApprovalStatus": "0", "RespCode": "05"}
		st, err := w.stub.CompleteWithResult(c.SessionGUID, in)
		require.NoError(t, err)
		in["ApprovalStatus"] = "1" // the stub holds its own copy
		got, err := w.stub.Status(c.SessionGUID)
		require.NoError(t, err)
		assert.Equal(t, vccstub.ResultData{"ApprovalStatus": "0", "RespCode": "05"}, got.PaymentResultData)
		assert.Equal(t, st, got)
		_, err = w.stub.CompleteWithResult("nope", in)
		assert.ErrorIs(t, err, vccstub.ErrSessionNotFound)
	})

	t.Run("bad bodies", func(t *testing.T) {
		c := w.create(t, tok, createBody("12.40", "GBP"))
		for _, body := range []string{
			`{"paymentResultData":{"Amount":1240}}`,
			`{"paymentResultData":{"nested":{"a":"b"}}}`,
			`{"paymentResultData":["a"]}`,
			`{"paymentResultData":{"decision":"ACCEPT"},"decision":"ACCEPT"}`,
			`{"paymentResultData":{},"amount":"100"}`,
		} {
			r := w.call(t, http.MethodPost, "/_control/sessions/"+c.SessionGUID+"/complete", "", body)
			assert.Equal(t, http.StatusBadRequest, r.status, body)
		}
		st, _ := w.status(t, tok, c.SessionGUID)
		assert.Equal(t, "Created", st.SessionState, "a refused complete changes nothing")
	})
}

func TestLenientPaymentData(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)

	t.Run("a flow's own Amount format", func(t *testing.T) {
		c := w.create(t, tok, createBody("$12.40", "usd"))
		assert.Contains(t, w.frame(t, c).body, `<span id="amount">$12.40</span>`, "the page shows the amount as the flow got it")
		st, err := w.stub.Complete(c.SessionGUID, "ACCEPT", "")
		require.NoError(t, err)
		assert.Equal(t, "1240", st.PaymentResultData["Amount"], "results report minor units")
		assert.Equal(t, "USD", st.PaymentResultData["Currency"])
		assert.Equal(t, "1240", findSummary(t, w.stub.Sessions(), c.SessionGUID).Amount)
	})

	t.Run("no Amount: the decision form needs an amount", func(t *testing.T) {
		body := createBody("", "GBP")
		body["paymentData"] = map[string]string{"PaymentAmount": "12.40"}
		c := w.create(t, tok, body)
		r := w.call(t, http.MethodPost, "/_control/sessions/"+c.SessionGUID+"/complete", "", `{"decision":"ACCEPT"}`)
		assert.Equal(t, http.StatusBadRequest, r.status)
		assert.Contains(t, r.body, "no Amount")
		_, err := w.stub.Complete(c.SessionGUID, "ACCEPT", "")
		assert.ErrorIs(t, err, vccstub.ErrNoAmount)

		r = w.call(t, http.MethodPost, "/_control/sessions/"+c.SessionGUID+"/complete", "", `{"decision":"ACCEPT","amount":"1240"}`)
		require.Equal(t, http.StatusOK, r.status, r.body)
		st, _ := w.status(t, tok, c.SessionGUID)
		assert.Equal(t, "1240", st.PaymentResultData["Amount"])
		assert.Equal(t, "", st.PaymentResultData["Currency"], "no currency given, none reported")
	})
}

// TestWebhookTokenURLDefaultsToPaybridges: VCC's webhook authentication is OAuth client
// credentials; without a token URL the stub asks the webhook host's /oauth/token, where paybridge
// serves it.
func TestWebhookTokenURLDefaultsToPaybridges(t *testing.T) {
	ts := newTokenServer(t, "vcc-client", "vcc-client-SECRET")
	var got []delivery
	hooks := make(chan struct{}, 10)
	mux := http.NewServeMux()
	mux.Handle("POST /oauth/token", ts.srv.Config.Handler)
	mux.HandleFunc("POST /v1/webhooks/vcc", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, delivery{header: r.Header.Clone(), body: string(body)})
		hooks <- struct{}{}
	})
	paybridge := httptest.NewServer(mux)
	t.Cleanup(paybridge.Close)

	w := newWorld(t, vccstub.Options{Webhook: &vccstub.WebhookTarget{
		URL: paybridge.URL + "/v1/webhooks/vcc", ClientID: "vcc-client", ClientSecret: "vcc-client-SECRET",
	}})
	guid := w.create(t, w.token(t), createBody("1.00", "GBP")).SessionGUID
	_, err := w.stub.Complete(guid, "", "")
	require.NoError(t, err)
	<-hooks
	w.stub.Close()
	require.Len(t, got, 1)
	issued := ts.tokens()
	require.Len(t, issued, 1, "the token came from paybridge's /oauth/token")
	assert.Equal(t, "Bearer "+issued[0], got[0].header.Get("Authorization"))
	assert.Empty(t, got[0].header.Get(vccstub.SignatureHeader), "the HMAC is an option, not VCC's default")
}

func TestControlPCIPalPostMessage(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	get := func() string {
		r := w.call(t, http.MethodGet, "/_control/pcipal", "", nil)
		require.Equal(t, http.StatusOK, r.status)
		return r.body
	}
	assert.JSONEq(t, `{"postMessage":null}`, get(), "off by default, as live PCI Pal")
	c := w.create(t, tok, createBody("12.40", "GBP"))
	assert.NotContains(t, w.frame(t, c).body, "postMessage")

	on := `{"postMessage":{"data":{"event":"ready","id":"{{sessionId}}"},"targetOrigin":"https://desk.acme.test"}}`
	r := w.call(t, http.MethodPut, "/_control/pcipal", "", on)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.JSONEq(t, on, r.body)
	assert.JSONEq(t, on, get())
	assert.Equal(t, &pcipalstub.PostMessage{Data: json.RawMessage(`{"event":"ready","id":"{{sessionId}}"}`), TargetOrigin: "https://desk.acme.test"}, w.pcipal.PostMessage())
	st, _ := w.status(t, tok, c.SessionGUID)
	assert.Contains(t, w.frame(t, c).body, `window.parent.postMessage({"event":"ready","id":"`+st.ProviderSessionGUID+`"}, "https://desk.acme.test");`,
		"switched at run time: the next page load has it")

	for _, bad := range []string{
		``, `{}`, `null`, `{"postMessage":{"data":{}}}`, `{"postMessage":{"data":null,"targetOrigin":"*"}}`,
		`{"postMessage":{"targetOrigin":"*"}}`, `{"postMessage":{"data":{},"targetOrigin":"https://x/y"}}`,
		`{"postMessage":{"data":{},"targetOrigin":"*","extra":1}}`, `{"postMessage":null,"other":1}`, `{"postMessage":`,
	} {
		r := w.call(t, http.MethodPut, "/_control/pcipal", "", bad)
		assert.Equal(t, http.StatusBadRequest, r.status, bad)
		var m map[string]string
		r.decode(t, &m)
		assert.NotEmpty(t, m["message"], bad)
	}
	assert.JSONEq(t, on, get(), "refused bodies change nothing")

	r = w.call(t, http.MethodPut, "/_control/pcipal", "", `{"postMessage":null}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.JSONEq(t, `{"postMessage":null}`, get())
	assert.Nil(t, w.pcipal.PostMessage())
	assert.NotContains(t, w.frame(t, c).body, "postMessage")

	t.Run("without a PCI Pal stub", func(t *testing.T) {
		stub := vccstub.New(vccstub.Options{})
		t.Cleanup(stub.Close)
		for _, method := range []string{http.MethodGet, http.MethodPut} {
			rec := httptest.NewRecorder()
			stub.ServeHTTP(rec, httptest.NewRequest(method, "/_control/pcipal", strings.NewReader(`{"postMessage":null}`)))
			assert.Equal(t, http.StatusNotFound, rec.Code, method)
		}
	})
}
