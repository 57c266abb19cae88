package vccstub_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/pcipal"
	"github.com/paybridge/paybridge/vcc/vccstub"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestCreateSession(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	r := w.call(t, http.MethodPost, "/paymentapi/v1/session", tok, createBody("12.40", "GBP"))
	require.Equal(t, http.StatusOK, r.status, r.body)
	var raw map[string]string
	r.decode(t, &raw)
	assert.Len(t, raw, 4, "sessionGuid, iframeUrl, agentAccessToken, agentRefreshToken")
	var c created
	r.decode(t, &c)

	assert.Regexp(t, uuidPattern, c.SessionGUID)
	assert.NotEmpty(t, c.AgentAccessToken)
	assert.NotEmpty(t, c.AgentRefreshToken)
	assert.NotEqual(t, c.AgentAccessToken, c.AgentRefreshToken)
	assert.NotEqual(t, c.AgentAccessToken, tok, "the agent tokens are not the API token")

	// The iframe URL is the PCI Pal stub's, for the provider session the status names.
	require.True(t, strings.HasPrefix(c.IframeURL, w.pcipalSrv.URL+"/"), c.IframeURL)
	tenant, providerID, ok := pcipal.ParseFramedURL(c.IframeURL)
	require.True(t, ok)
	assert.Equal(t, "paybridge-sandbox", tenant)

	st, sr := w.status(t, tok, c.SessionGUID)
	require.Equal(t, http.StatusOK, sr.status)
	assert.Equal(t, c.SessionGUID, st.SessionGUID)
	assert.Equal(t, providerID, st.ProviderSessionGUID)
	assert.Regexp(t, uuidPattern, st.ProviderSessionGUID)
	assert.Regexp(t, uuidPattern, st.CallGUID)
	assert.NotEqual(t, c.SessionGUID, st.ProviderSessionGUID)
	assert.Equal(t, "Created", st.SessionState)
	assert.Nil(t, st.PaymentResultData)
	assert.Equal(t, "2026-03-02T09:27:37.561413Z", st.CreatedOn)
	assert.Equal(t, st.CreatedOn, st.LastUpdatedOn)

	// The agent's form POST shows the capture page for this session.
	page := w.frame(t, c)
	require.Equal(t, http.StatusOK, page.status)
	assert.Empty(t, page.header.Get("X-Frame-Options"))
	assert.Contains(t, page.body, `data-pcipal-session="`+providerID+`"`)
	assert.Contains(t, page.body, "12.40")
	assert.Contains(t, page.body, "INV-0042")

	// Every session is new.
	other := w.create(t, tok, createBody("12.40", "GBP"))
	assert.NotEqual(t, c.SessionGUID, other.SessionGUID)
	assert.NotEqual(t, c.IframeURL, other.IframeURL)
	assert.NotEqual(t, c.AgentAccessToken, other.AgentAccessToken)
}

func TestCreateValidation(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	with := func(change func(b map[string]any)) map[string]any {
		b := createBody("12.40", "GBP")
		change(b)
		return b
	}
	paymentData := func(key, value string) func(b map[string]any) {
		return func(b map[string]any) {
			pd := b["paymentData"].(map[string]string)
			if value == "" {
				delete(pd, key)
			} else {
				pd[key] = value
			}
		}
	}

	tests := []struct {
		name       string
		body       any
		wantStatus int
		wantBody   string // exact; "" to check only the status
		wantConfig int    // for a success: the configuration used
	}{
		{"no agentId", with(func(b map[string]any) { delete(b, "agentId") }), 400, `{"message":"agentId is required"}`, 0},
		{"blank agentId", with(func(b map[string]any) { b["agentId"] = "  " }), 400, `{"message":"agentId is required"}`, 0},
		{"unknown configuration", with(func(b map[string]any) { b["accountConfigurationId"] = 7 }), 400,
			`{"message":"Account configuration does not exists for account: sandbox, configuration Id: 7."}`, 0},
		{"configuration zero", with(func(b map[string]any) { b["accountConfigurationId"] = 0 }), 400,
			`{"message":"Account configuration does not exists for account: sandbox, configuration Id: 0."}`, 0},
		{"no configuration: the account's first", createBody("12.40", "GBP"), 200, "", 1},
		{"null configuration: the account's first", with(func(b map[string]any) { b["accountConfigurationId"] = nil }), 200, "", 1},
		{"second configuration", with(func(b map[string]any) { b["accountConfigurationId"] = 2 }), 200, "", 2},
		// paymentData's keys and formats are the flow's: VCC checks them no more strictly than
		// the flow, so neither does the stub.
		{"no Amount", with(paymentData("Amount", "")), 200, "", 1},
		{"Amount with a currency sign", with(paymentData("Amount", "$12.40")), 200, "", 1},
		{"Amount with a comma", with(paymentData("Amount", "12,40")), 200, "", 1},
		{"negative Amount", with(paymentData("Amount", "-1.00")), 200, "", 1},
		{"Amount with two points", with(paymentData("Amount", "1.2.3")), 200, "", 1},
		{"no Currency", with(paymentData("Currency", "")), 200, "", 1},
		{"Currency of 2 letters", with(paymentData("Currency", "GB")), 200, "", 1},
		{"Currency with a digit", with(paymentData("Currency", "GB1")), 200, "", 1},
		{"flow-specific keys only", with(func(b map[string]any) {
			b["paymentData"] = map[string]string{"PaymentAmount": "12.40", "AVSZip": "90210", "Anything": ""}
		}), 200, "", 1},
		{"empty paymentData", with(func(b map[string]any) { b["paymentData"] = map[string]string{} }), 200, "", 1},
		{"no paymentData", with(func(b map[string]any) { delete(b, "paymentData") }), 400, `{"message":"paymentData is required"}`, 0},
		{"paymentData value not a string", `{"agentId":"a","paymentData":{"Amount":12.4,"Currency":"GBP"}}`, 400, "", 0},
		{"not JSON", `agentId=a`, 400, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.call(t, http.MethodPost, "/paymentapi/v1/session", tok, tt.body)
			require.Equal(t, tt.wantStatus, r.status, r.body)
			if tt.wantBody != "" {
				exactBody(t, tt.wantBody, r)
			}
			if tt.wantStatus != http.StatusOK {
				var m map[string]string
				r.decode(t, &m)
				assert.NotEmpty(t, m["message"])
				return
			}
			var c created
			r.decode(t, &c)
			sum := findSummary(t, w.stub.Sessions(), c.SessionGUID)
			assert.Equal(t, tt.wantConfig, sum.AccountConfigurationID)
		})
	}
}

func findSummary(t *testing.T, list []vccstub.SessionSummary, guid string) vccstub.SessionSummary {
	t.Helper()
	for _, s := range list {
		if s.SessionGUID == guid {
			return s
		}
	}
	require.Failf(t, "session not listed", "%s", guid)
	return vccstub.SessionSummary{}
}

func TestDigitalSession(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	body := createBody("30.00", "EUR")
	delete(body, "skipCallTransfer")
	r := w.call(t, http.MethodPost, "/paymentapi/v1/digitalsession", tok, body)
	require.Equal(t, http.StatusOK, r.status, r.body)
	var raw map[string]string
	r.decode(t, &raw)
	assert.Len(t, raw, 2)
	guid := raw["sessionGuid"]
	assert.Regexp(t, uuidPattern, guid)
	assert.Equal(t, w.srv.URL+"/pay/"+guid, raw["link"])

	st, sr := w.status(t, tok, guid)
	require.Equal(t, http.StatusOK, sr.status)
	assert.Equal(t, "Created", st.SessionState)
	sum := findSummary(t, w.stub.Sessions(), guid)
	assert.Equal(t, "digital", string(sum.Channel))
	assert.Equal(t, "3000", sum.Amount)
	assert.Equal(t, "EUR", sum.Currency)

	// The customer's link opens a page while the session is open, and 404 once purged.
	page := do(t, mustRequest(t, http.MethodGet, raw["link"]))
	require.Equal(t, http.StatusOK, page.status)
	assert.Contains(t, page.body, "30.00 EUR")
	assert.Contains(t, page.body, `data-vcc-state="Created"`)

	done, err := w.stub.Complete(guid, "ACCEPT", "")
	require.NoError(t, err)
	assert.Equal(t, "3000", done.PaymentResultData["Amount"])

	// Digital creates are validated the same way.
	bad := w.call(t, http.MethodPost, "/paymentapi/v1/digitalsession", tok, map[string]any{"paymentData": map[string]string{"Amount": "1.00", "Currency": "GBP"}})
	assert.Equal(t, http.StatusBadRequest, bad.status)
	exactBody(t, `{"message":"agentId is required"}`, bad)

	w.clock.Advance(vccstub.DefaultRetention)
	assert.Equal(t, http.StatusNotFound, do(t, mustRequest(t, http.MethodGet, raw["link"])).status)
}

func mustRequest(t *testing.T, method, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	require.NoError(t, err)
	return req
}

func TestStatusHasExactlyTheDocumentedShape(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	c := w.create(t, tok, createBody("12.40", "GBP"))

	_, open := w.status(t, tok, c.SessionGUID)
	assert.Equal(t, []string{"lastUpdatedOn", "callGuid", "createdOn", "sessionGuid", "sessionState", "providerSessionGuid"}, keysInOrder(t, open.body))

	w.clock.Advance(90 * time.Second)
	_, err := w.stub.Complete(c.SessionGUID, "ACCEPT", "")
	require.NoError(t, err)
	_, done := w.status(t, tok, c.SessionGUID)
	assert.Equal(t, []string{"lastUpdatedOn", "callGuid", "createdOn", "sessionGuid", "sessionState", "providerSessionGuid", "paymentResultData"}, keysInOrder(t, done.body))

	var body struct {
		LastUpdatedOn     string            `json:"lastUpdatedOn"`
		CreatedOn         string            `json:"createdOn"`
		PaymentResultData map[string]string `json:"paymentResultData"` // every value a string
	}
	done.decode(t, &body)
	assert.Equal(t, "2026-03-02T09:29:07.561413Z", body.LastUpdatedOn)
	assert.Equal(t, "2026-03-02T09:27:37.561413Z", body.CreatedOn)
	for _, ts := range []string{body.LastUpdatedOn, body.CreatedOn} {
		_, err := time.Parse(time.RFC3339Nano, ts)
		assert.NoError(t, err)
		assert.True(t, strings.HasSuffix(ts, "Z"))
	}
	require.Len(t, body.PaymentResultData, 6)
	assert.Equal(t, "ACCEPT", body.PaymentResultData["decision"])
	assert.Equal(t, "100", body.PaymentResultData["reasonCode"])
	assert.Regexp(t, `^[0-9]{10,}$`, body.PaymentResultData["requestID"])
	assert.Equal(t, "Capture", body.PaymentResultData["transactionType"])
	assert.Equal(t, "1240", body.PaymentResultData["Amount"])
	assert.Equal(t, "GBP", body.PaymentResultData["Currency"])
}

// keysInOrder returns the top-level keys of a JSON object in the order they appear.
func keysInOrder(t *testing.T, body string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}

func TestAmountInMinorUnits(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	tests := []struct{ amount, currency, want string }{
		{"12.40", "GBP", "1240"},
		{"1240", "JPY", "1240"},
		{"1.240", "KWD", "1240"},
		{"0.50", "GBP", "50"},
		{"100.00", "usd", "10000"},
	}
	for _, tt := range tests {
		t.Run(tt.amount, func(t *testing.T) {
			c := w.create(t, tok, createBody(tt.amount, tt.currency))
			st, err := w.stub.Complete(c.SessionGUID, "", "")
			require.NoError(t, err)
			assert.Equal(t, tt.want, st.PaymentResultData["Amount"])
			assert.Equal(t, strings.ToUpper(tt.currency), st.PaymentResultData["Currency"])
		})
	}
}

func TestSessionLifecycle(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	newSession := func() string { return w.create(t, tok, createBody("12.40", "GBP")).SessionGUID }

	t.Run("decisions", func(t *testing.T) {
		tests := []struct {
			body, decision, reason, amount string
		}{
			{``, "ACCEPT", "100", "1240"},
			{`{}`, "ACCEPT", "100", "1240"},
			{`{"decision":"ACCEPT"}`, "ACCEPT", "100", "1240"},
			{`{"decision":"REJECT"}`, "REJECT", "202", "1240"},
			{`{"decision":"ERROR"}`, "ERROR", "150", "1240"},
			{`{"decision":"ACCEPT","amount":"999"}`, "ACCEPT", "100", "999"},
		}
		for _, tt := range tests {
			t.Run(tt.body, func(t *testing.T) {
				guid := newSession()
				r := w.call(t, http.MethodPost, "/_control/sessions/"+guid+"/complete", "", tt.body)
				require.Equal(t, http.StatusOK, r.status, r.body)
				var fromControl vccstub.SessionStatus
				r.decode(t, &fromControl)
				st, sr := w.status(t, tok, guid)
				assert.Equal(t, sr.body, r.body, "the control call answers the status")
				assert.Equal(t, "Finished", st.SessionState)
				require.NotNil(t, st.PaymentResultData)
				assert.Equal(t, vccstub.ResultData{
					"decision": tt.decision, "reasonCode": tt.reason, "requestID": st.PaymentResultData["requestID"],
					"transactionType": "Capture", "Amount": tt.amount, "Currency": "GBP",
				}, st.PaymentResultData)
				assert.Regexp(t, `^[0-9]{22}$`, st.PaymentResultData["requestID"])
				assert.Equal(t, fromControl, st)
			})
		}
	})

	t.Run("bad complete bodies", func(t *testing.T) {
		guid := newSession()
		for _, body := range []string{`{"decision":"MAYBE"}`, `{"decision":"accept"}`, `{"amount":"12.40"}`, `{"amount":"-5"}`, `{"other":1}`, `[`} {
			r := w.call(t, http.MethodPost, "/_control/sessions/"+guid+"/complete", "", body)
			assert.Equal(t, http.StatusBadRequest, r.status, body)
			var m map[string]string
			r.decode(t, &m)
			assert.NotEmpty(t, m["message"])
		}
		st, _ := w.status(t, tok, guid)
		assert.Equal(t, "Created", st.SessionState, "a refused complete changes nothing")
	})

	t.Run("keying then complete", func(t *testing.T) {
		guid := newSession()
		w.clock.Advance(time.Second)
		r := w.call(t, http.MethodPost, "/_control/sessions/"+guid+"/keying", "", nil)
		require.Equal(t, http.StatusOK, r.status)
		st, _ := w.status(t, tok, guid)
		assert.Equal(t, "InProgress", st.SessionState)
		assert.Nil(t, st.PaymentResultData)
		assert.NotEqual(t, st.CreatedOn, st.LastUpdatedOn)
		again := w.call(t, http.MethodPost, "/_control/sessions/"+guid+"/keying", "", nil)
		assert.Equal(t, http.StatusOK, again.status, "keying twice is harmless")

		_, err := w.stub.Complete(guid, "REJECT", "")
		require.NoError(t, err)
		st, _ = w.status(t, tok, guid)
		assert.Equal(t, "Finished", st.SessionState)
	})

	t.Run("expire", func(t *testing.T) {
		c := w.create(t, tok, createBody("12.40", "GBP"))
		require.Equal(t, http.StatusOK, w.frame(t, c).status)
		require.Empty(t, w.frame(t, c).header.Get("X-Frame-Options"))

		r := w.call(t, http.MethodPost, "/_control/sessions/"+c.SessionGUID+"/expire", "", nil)
		require.Equal(t, http.StatusOK, r.status)
		st, sr := w.status(t, tok, c.SessionGUID)
		assert.Equal(t, sr.body, r.body)
		assert.Equal(t, "Expired", st.SessionState)
		assert.Nil(t, st.PaymentResultData)
		assert.NotContains(t, sr.body, "paymentResultData")

		// The browser now sees the documented symptom.
		page := w.frame(t, c)
		assert.Equal(t, "deny", page.header.Get("X-Frame-Options"))
		assert.True(t, w.pcipal.Expired(st.ProviderSessionGUID))
	})

	t.Run("closed sessions refuse changes", func(t *testing.T) {
		finished, expired := newSession(), newSession()
		_, err := w.stub.Complete(finished, "", "")
		require.NoError(t, err)
		_, err = w.stub.Expire(expired)
		require.NoError(t, err)
		for _, guid := range []string{finished, expired} {
			for _, action := range []string{"complete", "expire", "keying"} {
				r := w.call(t, http.MethodPost, "/_control/sessions/"+guid+"/"+action, "", nil)
				assert.Equal(t, http.StatusConflict, r.status, action)
				var m map[string]string
				r.decode(t, &m)
				assert.NotEmpty(t, m["message"])
			}
		}
		_, err = w.stub.Complete(finished, "", "")
		assert.ErrorIs(t, err, vccstub.ErrSessionClosed)
		_, err = w.stub.Keying(expired)
		assert.ErrorIs(t, err, vccstub.ErrSessionClosed)
	})

	t.Run("unknown sessions", func(t *testing.T) {
		for _, action := range []string{"complete", "expire", "keying"} {
			r := w.call(t, http.MethodPost, "/_control/sessions/00000000-0000-4000-8000-000000000000/"+action, "", nil)
			assert.Equal(t, http.StatusNotFound, r.status)
			exactBody(t, `{"message":"Session not found"}`, r)
		}
		_, r := w.status(t, tok, "00000000-0000-4000-8000-000000000000")
		assert.Equal(t, http.StatusNotFound, r.status)
		exactBody(t, `{"message":"Session not found"}`, r)
		_, err := w.stub.Expire("nope")
		assert.ErrorIs(t, err, vccstub.ErrSessionNotFound)
		_, err = w.stub.Status("nope")
		assert.ErrorIs(t, err, vccstub.ErrSessionNotFound)
	})
}

func TestProviderLifetimeEndsTheSession(t *testing.T) {
	w := newWorld(t, vccstub.Options{Retention: time.Hour})
	tok := w.token(t)
	open := w.create(t, tok, createBody("12.40", "GBP"))
	keying := w.create(t, tok, createBody("12.40", "GBP"))
	finished := w.create(t, tok, createBody("12.40", "GBP"))
	_, err := w.stub.Keying(keying.SessionGUID)
	require.NoError(t, err)
	_, err = w.stub.Complete(finished.SessionGUID, "ACCEPT", "")
	require.NoError(t, err)
	start := w.clock.Now()

	w.clock.Advance(providerLifetime - time.Nanosecond)
	st, _ := w.status(t, tok, open.SessionGUID)
	assert.Equal(t, "Created", st.SessionState)

	w.clock.Advance(time.Nanosecond + time.Minute)
	for _, c := range []created{open, keying} {
		st, _ := w.status(t, tok, c.SessionGUID)
		assert.Equal(t, "Expired", st.SessionState)
		assert.Nil(t, st.PaymentResultData)
		assert.Equal(t, start.Add(providerLifetime).Format(time.RFC3339Nano), st.LastUpdatedOn, "it ended when the provider session did")
		assert.Equal(t, "deny", w.frame(t, c).header.Get("X-Frame-Options"))
		_, err := w.stub.Complete(c.SessionGUID, "ACCEPT", "")
		assert.ErrorIs(t, err, vccstub.ErrSessionClosed, "too late to pay")
	}
	st, _ = w.status(t, tok, finished.SessionGUID)
	assert.Equal(t, "Finished", st.SessionState, "a finished session keeps its result")
}

func TestResultsArePurgedAfterRetention(t *testing.T) {
	tests := []struct {
		name      string
		retention time.Duration
		end       func(w *world, guid string)
		endedIn   time.Duration // how long after creation the session ended
	}{
		{"finished, default retention", 0, func(w *world, guid string) { _, _ = w.stub.Complete(guid, "ACCEPT", "") }, 0},
		{"expired by control", 5 * time.Minute, func(w *world, guid string) { _, _ = w.stub.Expire(guid) }, 0},
		{"expired by provider lifetime", 5 * time.Minute, func(*world, string) {}, providerLifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, vccstub.Options{Retention: tt.retention})
			retention := tt.retention
			if retention == 0 {
				retention = 15 * time.Minute
			}
			tok := w.token(t)
			guid := w.create(t, tok, createBody("12.40", "GBP")).SessionGUID
			tt.end(w, guid)

			w.clock.Advance(tt.endedIn + retention - time.Nanosecond)
			_, r := w.status(t, tok, guid)
			require.Equal(t, http.StatusOK, r.status)
			findSummary(t, w.stub.Sessions(), guid)

			w.clock.Advance(time.Nanosecond)
			_, r = w.status(t, tok, guid)
			assert.Equal(t, http.StatusNotFound, r.status)
			exactBody(t, `{"message":"Session not found"}`, r)
			for _, s := range w.stub.Sessions() {
				assert.NotEqual(t, guid, s.SessionGUID)
			}
			_, err := w.stub.Complete(guid, "", "")
			assert.ErrorIs(t, err, vccstub.ErrSessionNotFound)
		})
	}
}

func TestOpenSessionsAreNotPurged(t *testing.T) {
	w := newWorld(t, vccstub.Options{Retention: time.Minute})
	tok := w.token(t)
	guid := w.create(t, tok, createBody("12.40", "GBP")).SessionGUID
	w.clock.Advance(providerLifetime - time.Second) // much longer than Retention, still open
	st, r := w.status(t, tok, guid)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "Created", st.SessionState)
}

func TestSessionsList(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	tok := w.token(t)
	first := w.create(t, tok, createBody("12.40", "GBP")).SessionGUID
	w.clock.Advance(time.Second)
	second := w.create(t, tok, createBody("5.00", "EUR")).SessionGUID
	_, err := w.stub.Complete(first, "REJECT", "")
	require.NoError(t, err)

	r := w.call(t, http.MethodGet, "/_control/sessions", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	var list []map[string]any
	r.decode(t, &list)
	require.Len(t, list, 2)
	assert.Equal(t, second, list[0]["sessionGuid"], "newest first")
	assert.Equal(t, first, list[1]["sessionGuid"])
	assert.Equal(t, map[string]any{
		"sessionGuid": first, "providerSessionGuid": list[1]["providerSessionGuid"], "agentId": "agent-7",
		"channel": "agent_assist", "accountConfigurationId": float64(1), "state": "Finished",
		"amount": "1240", "currency": "GBP", "decision": "REJECT", "createdOn": "2026-03-02T09:27:37.561413Z",
	}, list[1])

	var fromGo []vccstub.SessionSummary
	r.decode(t, &fromGo)
	assert.Equal(t, w.stub.Sessions(), fromGo)
}

func TestUnknownControlPath(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	r := w.call(t, http.MethodPost, "/_control/nothing", "", nil)
	assert.Equal(t, http.StatusNotFound, r.status)
	var m map[string]string
	r.decode(t, &m)
	assert.NotEmpty(t, m["message"])
}

// TestDocumentedTextsMatchTheSeed checks the texts the tests expect against the seed document
// itself, when it is at hand (shared/ next to the repository).
func TestDocumentedTextsMatchTheSeed(t *testing.T) {
	seed := findSeed(t, "000_bdbc1e559238ed17.txt")
	for _, text := range []string{
		`{"error":"invalid_client"}`,
		`Provider's authorization endpoint returned error message 'invalid_client_key'`,
		`Account configuration does not exists for account: {account}, configuration Id: {id}.`,
		`Provider's authorization endpoint returned error message 'invalid_client'/'invalid_client' for account name: {account}, configuration id: {id}`,
	} {
		assert.Contains(t, seed, text)
	}
}

func findSeed(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "shared", "seeds", name)); err == nil {
			return string(b)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("shared/seeds not found next to the repository")
		}
		dir = parent
	}
}

func TestURLsAndDefaults(t *testing.T) {
	s := vccstub.New(vccstub.Options{})
	defer s.Close()
	assert.Equal(t, "", s.BaseURL())
	s.SetBaseURL("http://127.0.0.1:9000/")
	assert.Equal(t, "http://127.0.0.1:9000", s.BaseURL())
	assert.Equal(t, "http://127.0.0.1:9000/Auth/connect/token", s.TokenURL())
	assert.Equal(t, "http://127.0.0.1:9000/globalpci", s.PaymentAPIURL(), "the live base path")
	assert.Equal(t, vccstub.Account{Name: "sandbox", ClientID: "paybridge-sandbox", ClientSecret: "sandbox-secret", ConfigurationIDs: []int{1, 2}}, vccstub.DefaultAccount())
}

func TestWithoutPCIPalOnlyDigitalSessionsStart(t *testing.T) {
	stub := vccstub.New(vccstub.Options{})
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	t.Cleanup(stub.Close)
	stub.SetBaseURL(srv.URL)
	w := &world{clock: newManualClock(), logs: &bridgetest.LogSink{}, stub: stub, srv: srv}
	tok := w.token(t)

	r := w.call(t, http.MethodPost, "/paymentapi/v1/session", tok, createBody("1.00", "GBP"))
	assert.Equal(t, http.StatusInternalServerError, r.status)
	r = w.call(t, http.MethodPost, "/paymentapi/v1/digitalsession", tok, createBody("1.00", "GBP"))
	require.Equal(t, http.StatusOK, r.status)
	var d struct {
		SessionGUID string `json:"sessionGuid"`
	}
	r.decode(t, &d)
	st, err := stub.Status(d.SessionGUID)
	require.NoError(t, err)
	assert.Equal(t, "Created", st.SessionState)
	done, err := stub.Complete(d.SessionGUID, "ERROR", "")
	require.NoError(t, err)
	assert.Equal(t, "150", done.PaymentResultData["reasonCode"])
}

func TestZeroAmount(t *testing.T) {
	w := newWorld(t, vccstub.Options{})
	c := w.create(t, w.token(t), createBody("0.00", "GBP"))
	st, err := w.stub.Complete(c.SessionGUID, "", "")
	require.NoError(t, err)
	assert.Equal(t, "0", st.PaymentResultData["Amount"])
}
