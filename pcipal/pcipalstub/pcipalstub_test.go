package pcipalstub_test

import (
	"bytes"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/pcipal"
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
)

// fixture is a stub served over HTTP on a manual clock, with its log captured.
type fixture struct {
	clock *bridgetest.ManualClock
	stub  *pcipalstub.Server
	srv   *httptest.Server
	logs  *bridgetest.LogSink
}

func newFixture(t *testing.T, opts pcipalstub.Options) *fixture {
	t.Helper()
	f := &fixture{clock: newManualClock(), logs: &bridgetest.LogSink{}}
	opts.Clock = f.clock
	opts.Logger = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.stub = pcipalstub.New(opts)
	f.srv = httptest.NewServer(f.stub)
	t.Cleanup(f.srv.Close)
	f.stub.SetBaseURL(f.srv.URL)
	return f
}

// sample is a provider session with recognisable tokens.
func sample(id string) pcipalstub.Session {
	return pcipalstub.Session{
		ID:             id,
		BearerToken:    "bearer-" + id + "-SECRET",
		RefreshToken:   "refresh-" + id + "-SECRET",
		VCCSessionGUID: "vcc-" + id,
		Amount:         "12.40",
		Currency:       "GBP",
		Reference:      "INV-0042",
	}
}

// response is what a test needs of an HTTP answer.
type response struct {
	status int
	header http.Header
	body   string
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

// postForm POSTs form to target as the agent widget's hidden form does.
func postForm(t *testing.T, target string, form url.Values) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

// open does what the agent's browser does with the form POST req: the POST, the login
// interstitial's refresh and the navigation to the capture page. It returns the last answer.
func open(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := pcipalstub.OpenFrame(nil, req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// openForm opens the frame with a form POST of form to target.
func openForm(t *testing.T, target string, form url.Values) response {
	t.Helper()
	return open(t, formReq(t, target, form))
}

func tokensForm(s pcipalstub.Session) url.Values {
	return url.Values{pcipal.FieldBearerToken: {s.BearerToken}, pcipal.FieldRefreshToken: {s.RefreshToken}}
}

// assertCapturePage checks that r is the framable capture page of s, holding no token.
func assertCapturePage(t *testing.T, r response, s pcipalstub.Session) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Empty(t, r.header.Values("X-Frame-Options"), "the capture page is shown in a cross-origin iframe")
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	assert.Contains(t, r.header.Get("Content-Type"), "text/html")
	assert.Contains(t, r.body, "<title>PCI Pal secure capture (stub)</title>")
	assert.Contains(t, r.body, `data-pcipal-session="`+s.ID+`"`)
	assert.Contains(t, r.body, s.Amount)
	assert.Contains(t, r.body, s.Currency)
	assert.Contains(t, r.body, s.Reference)
	assert.NotContains(t, r.body, s.BearerToken)
	assert.NotContains(t, r.body, s.RefreshToken)
}

// assertDenied checks that r is the refusal a browser shows as "Refused to display ... in a frame".
func assertDenied(t *testing.T, r response, tokens ...string) {
	t.Helper()
	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "deny", r.header.Get("X-Frame-Options"))
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	assert.Contains(t, r.body, "This PCI Pal session has expired or is not valid.")
	assert.NotContains(t, r.body, "data-pcipal-state")
	for _, tok := range tokens {
		assert.NotContains(t, r.body, tok)
	}
}

func TestCapturePage(t *testing.T) {
	f := newFixture(t, pcipalstub.Options{})
	s := sample("0b6f0c3e-1111-4222-8333-444455556666")
	iframeURL := f.stub.Register(s)
	assert.Equal(t, f.srv.URL+"/session/paybridge-sandbox/view/"+s.ID+"/framed", iframeURL)

	r := openForm(t, iframeURL, tokensForm(s))
	assertCapturePage(t, r, s)
	assert.Contains(t, r.body, `data-pcipal-state="capture"`)
	assert.Contains(t, r.body, "waiting for the customer to key on the phone")
	for _, field := range []string{`id="card-number"`, `id="card-expiry"`, `id="card-cvv"`} {
		assert.Contains(t, r.body, field)
	}
	// The VCC session is on the page, for whoever drives the control API.
	assert.Contains(t, r.body, `data-vcc-session="`+s.VCCSessionGUID+`"`)
	assert.Contains(t, r.body, `<span id="vcc-session-guid">`+s.VCCSessionGUID+`</span>`)
	// Like live PCI Pal without a PostMessage flow step, the page tells its parent nothing.
	assert.NotContains(t, r.body, "postMessage")
	assert.Contains(t, r.body, `fetch("/refreshlogon"`, "the page keeps its login alive")
}

func TestCapturePageEscapesSessionDetails(t *testing.T) {
	f := newFixture(t, pcipalstub.Options{})
	s := sample(`x"y`)
	s.Reference = `<script>alert(1)</script>`
	r := openForm(t, f.stub.Register(s), tokensForm(s))
	require.Equal(t, http.StatusOK, r.status)
	assert.NotContains(t, r.body, `<script>alert(1)</script>`)
	assert.Contains(t, r.body, `data-pcipal-session="x&#34;y"`)
}

func TestCaptureAcceptsEveryWayOfSendingTheTokens(t *testing.T) {
	f := newFixture(t, pcipalstub.Options{})
	s := sample("c0ffee00-aaaa-4bbb-8ccc-dddddddddddd")
	iframeURL := f.stub.Register(s)

	tests := []struct {
		name    string
		request func(t *testing.T) *http.Request
	}{
		{"lower-case form fields", func(t *testing.T) *http.Request {
			form := url.Values{"x-bearer-token": {s.BearerToken}, "x-refresh-token": {s.RefreshToken}}
			req, err := http.NewRequest(http.MethodPost, iframeURL, strings.NewReader(form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}},
		{"multipart form", func(t *testing.T) *http.Request {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			require.NoError(t, mw.WriteField("X-BEARER-TOKEN", s.BearerToken))
			require.NoError(t, mw.WriteField("X-REFRESH-TOKEN", s.RefreshToken))
			require.NoError(t, mw.Close())
			req, err := http.NewRequest(http.MethodPost, iframeURL, &body)
			require.NoError(t, err)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			return req
		}},
		{"HTTP headers", func(t *testing.T) *http.Request {
			req, err := http.NewRequest(http.MethodPost, iframeURL, nil)
			require.NoError(t, err)
			req.Header.Set("x-bearer-token", s.BearerToken)
			req.Header.Set("X-REFRESH-TOKEN", s.RefreshToken)
			return req
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCapturePage(t, open(t, tt.request(t)), s)
		})
	}
}

func TestDeny(t *testing.T) {
	const lifetime = 10 * time.Minute
	f := newFixture(t, pcipalstub.Options{Lifetime: lifetime, TenantID: "acme"})
	good := sample("11111111-0000-4000-8000-000000000001")
	goodURL := f.stub.Register(good)
	byExpire := sample("11111111-0000-4000-8000-000000000002")
	byExpireURL := f.stub.Register(byExpire)
	require.NoError(t, f.stub.Expire(byExpire.ID))

	tests := []struct {
		name    string
		request func(t *testing.T) *http.Request
	}{
		{"unknown session", func(t *testing.T) *http.Request {
			return formReq(t, pcipal.FramedURL(f.srv.URL, "acme", "no-such-session"), tokensForm(good))
		}},
		{"wrong tenant", func(t *testing.T) *http.Request {
			return formReq(t, pcipal.FramedURL(f.srv.URL, "other", good.ID), tokensForm(good))
		}},
		{"wrong bearer token", func(t *testing.T) *http.Request {
			form := tokensForm(good)
			form.Set(pcipal.FieldBearerToken, "bearer-guess")
			return formReq(t, goodURL, form)
		}},
		{"wrong refresh token", func(t *testing.T) *http.Request {
			form := tokensForm(good)
			form.Set(pcipal.FieldRefreshToken, "refresh-guess")
			return formReq(t, goodURL, form)
		}},
		{"tokens swapped", func(t *testing.T) *http.Request {
			return formReq(t, goodURL, url.Values{pcipal.FieldBearerToken: {good.RefreshToken}, pcipal.FieldRefreshToken: {good.BearerToken}})
		}},
		{"missing refresh token", func(t *testing.T) *http.Request {
			return formReq(t, goodURL, url.Values{pcipal.FieldBearerToken: {good.BearerToken}})
		}},
		{"no tokens", func(t *testing.T) *http.Request {
			return formReq(t, goodURL, url.Values{})
		}},
		{"another session's tokens", func(t *testing.T) *http.Request {
			return formReq(t, goodURL, tokensForm(byExpire))
		}},
		{"expired by Expire", func(t *testing.T) *http.Request {
			return formReq(t, byExpireURL, tokensForm(byExpire))
		}},
		{"GET without tokens", func(t *testing.T) *http.Request {
			req, err := http.NewRequest(http.MethodGet, goodURL, nil)
			require.NoError(t, err)
			return req
		}},
		{"GET with token headers", func(t *testing.T) *http.Request {
			req, err := http.NewRequest(http.MethodGet, goodURL, nil)
			require.NoError(t, err)
			req.Header.Set(pcipal.FieldBearerToken, good.BearerToken)
			req.Header.Set(pcipal.FieldRefreshToken, good.RefreshToken)
			return req
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertDenied(t, do(t, tt.request(t)), good.BearerToken, good.RefreshToken, byExpire.BearerToken)
		})
	}
	// The good session itself is still fine: every refusal above was for its own reason.
	assertCapturePage(t, openForm(t, goodURL, tokensForm(good)), good)
}

func formReq(t *testing.T, target string, form url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestLifetime(t *testing.T) {
	tests := []struct {
		name     string
		lifetime time.Duration
		want     time.Duration
	}{
		{"default", 0, 15 * time.Minute},
		{"configured", 90 * time.Second, 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, pcipalstub.Options{Lifetime: tt.lifetime})
			assert.Equal(t, tt.want, f.stub.Lifetime())
			s := sample("22222222-0000-4000-8000-000000000001")
			start := f.clock.Now()
			iframeURL := f.stub.Register(s)

			at, found := f.stub.ExpiresAt(s.ID)
			require.True(t, found)
			assert.Equal(t, start.Add(tt.want), at)

			f.clock.Advance(tt.want - time.Nanosecond)
			assert.False(t, f.stub.Expired(s.ID))
			assertCapturePage(t, openForm(t, iframeURL, tokensForm(s)), s)

			f.clock.Advance(time.Nanosecond)
			assert.True(t, f.stub.Expired(s.ID))
			assertDenied(t, postForm(t, iframeURL, tokensForm(s)), s.BearerToken, s.RefreshToken)
		})
	}
}

func TestExpire(t *testing.T) {
	f := newFixture(t, pcipalstub.Options{})
	s := sample("33333333-0000-4000-8000-000000000001")
	iframeURL := f.stub.Register(s)
	assert.False(t, f.stub.Expired(s.ID))

	require.NoError(t, f.stub.Expire(s.ID))
	assert.True(t, f.stub.Expired(s.ID))
	at, found := f.stub.ExpiresAt(s.ID)
	require.True(t, found)
	assert.Equal(t, f.clock.Now(), at, "Expire ends the session now")
	assertDenied(t, postForm(t, iframeURL, tokensForm(s)), s.BearerToken, s.RefreshToken)

	// Expiring again keeps the first end.
	f.clock.Advance(time.Minute)
	require.NoError(t, f.stub.Expire(s.ID))
	again, _ := f.stub.ExpiresAt(s.ID)
	assert.Equal(t, at, again)
}

func TestUnknownSessions(t *testing.T) {
	f := newFixture(t, pcipalstub.Options{})
	assert.True(t, f.stub.Expired("nope"), "an unknown session cannot be shown")
	_, found := f.stub.ExpiresAt("nope")
	assert.False(t, found)
	assert.ErrorIs(t, f.stub.Expire("nope"), pcipalstub.ErrUnknownSession)
	assert.ErrorIs(t, f.stub.Complete("nope", "ACCEPT"), pcipalstub.ErrUnknownSession)
}

func TestCompleteShowsTheDecision(t *testing.T) {
	f := newFixture(t, pcipalstub.Options{})
	s := sample("44444444-0000-4000-8000-000000000001")
	iframeURL := f.stub.Register(s)
	require.NoError(t, f.stub.Complete(s.ID, "REJECT"))

	r := openForm(t, iframeURL, tokensForm(s))
	assertCapturePage(t, r, s)
	assert.Contains(t, r.body, `data-pcipal-state="complete"`)
	assert.Contains(t, r.body, "Payment decision: REJECT")
	assert.NotContains(t, r.body, "waiting for the customer")
}

func TestRegisterReplacesAndForgets(t *testing.T) {
	f := newFixture(t, pcipalstub.Options{Lifetime: time.Minute})
	old := sample("55555555-0000-4000-8000-000000000001")
	iframeURL := f.stub.Register(old)
	renewed := sample(old.ID)
	renewed.BearerToken, renewed.RefreshToken = "new-bearer-SECRET", "new-refresh-SECRET"
	assert.Equal(t, iframeURL, f.stub.Register(renewed))
	assertDenied(t, postForm(t, iframeURL, tokensForm(old)), old.BearerToken)
	assertCapturePage(t, openForm(t, iframeURL, tokensForm(renewed)), renewed)

	// Long-dead sessions are forgotten when others register.
	f.clock.Advance(48 * time.Hour)
	f.stub.Register(sample("55555555-0000-4000-8000-000000000002"))
	_, found := f.stub.ExpiresAt(old.ID)
	assert.False(t, found)
}

func TestDefaultsAndBaseURL(t *testing.T) {
	s := pcipalstub.New(pcipalstub.Options{})
	assert.Equal(t, "paybridge-sandbox", s.TenantID())
	assert.Equal(t, 15*time.Minute, s.Lifetime())
	assert.Equal(t, "", s.BaseURL())
	s.SetBaseURL("http://127.0.0.1:9999")
	assert.Equal(t, "http://127.0.0.1:9999", s.BaseURL())
	assert.Equal(t, "http://127.0.0.1:9999/session/paybridge-sandbox/view/abc/framed", s.Register(sample("abc")))
	assert.False(t, s.Expired("abc"), "the system clock is used when none is given")
}

func TestEveryResponseForbidsCaching(t *testing.T) {
	f := newFixture(t, pcipalstub.Options{})
	for _, path := range []string{"/", "/session/x/view/y/framed/extra", "/session/paybridge-sandbox/view/y/framed"} {
		req, err := http.NewRequest(http.MethodPut, f.srv.URL+path, nil)
		require.NoError(t, err)
		r := do(t, req)
		assert.Equal(t, "no-store", r.header.Get("Cache-Control"), path)
	}
}

func TestLogsHoldNoTokens(t *testing.T) {
	f := newFixture(t, pcipalstub.Options{})
	s := sample("66666666-0000-4000-8000-000000000001")
	iframeURL := f.stub.Register(s)
	openForm(t, iframeURL, tokensForm(s))
	bad := tokensForm(s)
	bad.Set(pcipal.FieldBearerToken, "guessed-SECRET-value")
	postForm(t, iframeURL, bad)
	require.NoError(t, f.stub.Complete(s.ID, "ACCEPT"))
	require.NoError(t, f.stub.Expire(s.ID))
	postForm(t, iframeURL, tokensForm(s))

	logs := f.logs.String()
	require.Contains(t, logs, s.ID, "the log should say something about the session")
	assert.NotContains(t, logs, "SECRET")
}
