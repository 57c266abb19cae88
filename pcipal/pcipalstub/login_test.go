package pcipalstub_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/pcipal/pcipalstub"
)

// browser is an HTTP client that keeps cookies and does not follow redirects, so a test sees
// every step a browser would take.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, target string, form url.Values) (response, *http.Response) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	require.NoError(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(data)}, resp
}

// setCookie returns the cookie named name that resp sets.
func setCookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no Set-Cookie %s in %v", name, resp.Header.Values("Set-Cookie"))
	return nil
}

// TestLoginTakesTwoNavigations walks the framed view's login step by step, as the browser does:
// the form POST answers the interstitial with the login cookies, whose script refreshes the
// login and goes on to the capture page.
func TestLoginTakesTwoNavigations(t *testing.T) {
	const loginLifetime = 20 * time.Minute
	f := newFixture(t, pcipalstub.Options{LoginLifetime: loginLifetime, LoginRefresh: 90 * time.Second})
	s := sample("88888888-0000-4000-8000-000000000001")
	iframeURL := f.stub.Register(s)
	b := newBrowser(t)

	// Navigation 1: the form POST.
	inter, resp := b.do(http.MethodPost, iframeURL, tokensForm(s))
	require.Equal(t, http.StatusOK, inter.status, inter.body)
	assert.Empty(t, inter.header.Values("X-Frame-Options"), "the interstitial shows in the frame")
	assert.Equal(t, "no-store", inter.header.Get("Cache-Control"))
	assert.Contains(t, inter.body, `data-pcipal-state="login"`)
	capturePath := "/session/paybridge-sandbox/view/" + s.ID + "/capture"
	assert.Contains(t, inter.body, `data-pcipal-next="`+capturePath+`"`)
	assert.Contains(t, inter.body, `fetch("/refreshlogon", {method: "POST"`)
	assert.Contains(t, inter.body, `window.location.replace(r.ok ? next : "/")`)
	assert.NotContains(t, inter.body, s.BearerToken)
	assert.NotContains(t, inter.body, s.RefreshToken)

	login := setCookie(t, resp, pcipalstub.LoginCookie)
	expiry := setCookie(t, resp, pcipalstub.ExpiryCookie)
	for _, c := range []*http.Cookie{login, expiry} {
		assert.Equal(t, "/", c.Path, c.Name)
		assert.Equal(t, http.SameSiteLaxMode, c.SameSite, "%s: plain http on one host is same-site", c.Name)
		assert.False(t, c.Secure, "%s: a Secure cookie would not be stored over http", c.Name)
	}
	assert.True(t, login.HttpOnly)
	assert.False(t, expiry.HttpOnly, "the page's script may read the login's end")
	assert.Len(t, login.Value, 32)
	assert.NotContains(t, []string{s.BearerToken, s.RefreshToken}, login.Value)
	assert.Equal(t, strconv.FormatInt(f.clock.Now().Add(loginLifetime).UnixMilli(), 10), expiry.Value)

	// The interstitial's script: the refresh, then navigation 2 to the capture page.
	f.clock.Advance(time.Second)
	refreshed, resp := b.do(http.MethodPost, f.srv.URL+"/refreshlogon", nil)
	require.Equal(t, http.StatusOK, refreshed.status, refreshed.body)
	assert.JSONEq(t, `{"expiresAt":"`+f.clock.Now().Add(loginLifetime).UTC().Format(time.RFC3339)+`"}`, refreshed.body)
	assert.Equal(t, strconv.FormatInt(f.clock.Now().Add(loginLifetime).UnixMilli(), 10), setCookie(t, resp, pcipalstub.ExpiryCookie).Value)
	page, _ := b.do(http.MethodGet, f.srv.URL+capturePath, nil)
	assertCapturePage(t, page, s)
	assert.Contains(t, page.body, "},  90000 );", "the page refreshes its login every LoginRefresh")

	assert.Equal(t, pcipalstub.Stats{FramePosts: 1, Logins: 1, LoginRefreshes: 1, CapturePages: 1}, f.stub.Stats())
}

func TestCapturePageNeedsTheLogin(t *testing.T) {
	const loginLifetime = 10 * time.Minute
	f := newFixture(t, pcipalstub.Options{LoginLifetime: loginLifetime, Lifetime: time.Hour})
	s := sample("99999999-0000-4000-8000-000000000001")
	other := sample("99999999-0000-4000-8000-000000000002")
	iframeURL := f.stub.Register(s)
	otherURL := f.stub.Register(other)
	capture := strings.TrimSuffix(iframeURL, "/framed") + "/capture"

	assertSentToSignIn := func(t *testing.T, r response) {
		t.Helper()
		assert.Equal(t, http.StatusFound, r.status)
		assert.Equal(t, "/", r.header.Get("Location"))
		assert.NotContains(t, r.body, "data-pcipal-state=\"capture\"")
	}

	t.Run("no cookie", func(t *testing.T) {
		r, _ := newBrowser(t).do(http.MethodGet, capture, nil)
		assertSentToSignIn(t, r)
	})
	t.Run("a made-up cookie", func(t *testing.T) {
		b := newBrowser(t)
		u, _ := url.Parse(f.srv.URL)
		b.client.Jar.SetCookies(u, []*http.Cookie{{Name: pcipalstub.LoginCookie, Value: "guessed", Path: "/"}})
		r, _ := b.do(http.MethodGet, capture, nil)
		assertSentToSignIn(t, r)
		refresh, _ := b.do(http.MethodPost, f.srv.URL+"/refreshlogon", nil)
		assert.Equal(t, http.StatusUnauthorized, refresh.status)
	})
	t.Run("logged in for another session", func(t *testing.T) {
		b := newBrowser(t)
		b.do(http.MethodPost, otherURL, tokensForm(other))
		r, _ := b.do(http.MethodGet, capture, nil)
		assertSentToSignIn(t, r)
	})
	t.Run("one login covers every session the browser opened", func(t *testing.T) {
		b := newBrowser(t)
		b.do(http.MethodPost, otherURL, tokensForm(other))
		b.do(http.MethodPost, iframeURL, tokensForm(s))
		for _, sess := range []pcipalstub.Session{s, other} {
			r, _ := b.do(http.MethodGet, strings.TrimSuffix(pcipalFramed(f, sess), "/framed")+"/capture", nil)
			assertCapturePage(t, r, sess)
		}
	})
	t.Run("the login lapses after a long idle time; refreshes keep it", func(t *testing.T) {
		idle, kept := newBrowser(t), newBrowser(t)
		idle.do(http.MethodPost, iframeURL, tokensForm(s))
		kept.do(http.MethodPost, iframeURL, tokensForm(s))
		for range 3 {
			f.clock.Advance(loginLifetime / 2)
			r, _ := kept.do(http.MethodPost, f.srv.URL+"/refreshlogon", nil)
			require.Equal(t, http.StatusOK, r.status)
		}
		page, _ := kept.do(http.MethodGet, capture, nil)
		assertCapturePage(t, page, s)

		refresh, resp := idle.do(http.MethodPost, f.srv.URL+"/refreshlogon", nil)
		assert.Equal(t, http.StatusUnauthorized, refresh.status)
		assert.Equal(t, -1, setCookie(t, resp, pcipalstub.LoginCookie).MaxAge, "the dead login's cookie is deleted")
		r, _ := idle.do(http.MethodGet, capture, nil)
		assertSentToSignIn(t, r)
	})
	t.Run("the sign-in page", func(t *testing.T) {
		r, _ := newBrowser(t).do(http.MethodGet, f.srv.URL+"/", nil)
		assert.Equal(t, http.StatusOK, r.status)
		assert.Contains(t, r.body, `data-pcipal-state="signed-out"`)
		assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	})
	t.Run("an expired session is refused even when logged in", func(t *testing.T) {
		b := newBrowser(t)
		b.do(http.MethodPost, iframeURL, tokensForm(s))
		require.NoError(t, f.stub.Expire(s.ID))
		r, _ := b.do(http.MethodGet, capture, nil)
		assertDenied(t, r, s.BearerToken, s.RefreshToken)
	})
}

// pcipalFramed is sess's framed URL on f's stub.
func pcipalFramed(f *fixture, sess pcipalstub.Session) string {
	return f.srv.URL + "/session/" + f.stub.TenantID() + "/view/" + sess.ID + "/framed"
}

// TestLoginCookiesOverHTTPS: a cross-site frame needs SameSite=None; Secure, which https allows.
func TestLoginCookiesOverHTTPS(t *testing.T) {
	stub := pcipalstub.New(pcipalstub.Options{Clock: newManualClock()})
	srv := httptest.NewTLSServer(stub)
	t.Cleanup(srv.Close)
	stub.SetBaseURL(srv.URL)
	s := sample("aaaaaaaa-0000-4000-8000-000000000001")
	iframeURL := stub.Register(s)

	req := formReq(t, iframeURL, tokensForm(s))
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	for _, name := range []string{pcipalstub.LoginCookie, pcipalstub.ExpiryCookie} {
		c := setCookie(t, resp, name)
		assert.True(t, c.Secure, name)
		assert.Equal(t, http.SameSiteNoneMode, c.SameSite, name)
	}

	// OpenFrame follows the login over https too.
	got, err := pcipalstub.OpenFrame(srv.Client(), formReq(t, iframeURL, tokensForm(s)))
	require.NoError(t, err)
	defer got.Body.Close()
	body, _ := io.ReadAll(got.Body)
	assert.Contains(t, string(body), `data-pcipal-state="capture"`)
}

func TestMountServesEveryPathOnASharedMux(t *testing.T) {
	stub := pcipalstub.New(pcipalstub.Options{Clock: newManualClock()})
	mux := http.NewServeMux()
	stub.Mount(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "other") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	stub.SetBaseURL(srv.URL)
	s := sample("bbbbbbbb-0000-4000-8000-000000000001")
	iframeURL := stub.Register(s)

	resp, err := pcipalstub.OpenFrame(nil, formReq(t, iframeURL, tokensForm(s)))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), `data-pcipal-state="capture"`)
	assert.Equal(t, 1, stub.Stats().LoginRefreshes, "POST /refreshlogon reached the stub")

	r, _ := newBrowser(t).do(http.MethodGet, srv.URL+"/", nil)
	assert.Contains(t, r.body, `data-pcipal-state="signed-out"`, "GET / is the stub's sign-in page")
	r, _ = newBrowser(t).do(http.MethodGet, srv.URL+"/_control/stats", nil)
	assert.Equal(t, "other", r.body, "every other path stays with the shared mux")
}
