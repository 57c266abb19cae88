package pcipal_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/pcipal"
)

func TestFieldNamesAreTheBridgeOnes(t *testing.T) {
	assert.Equal(t, "X-BEARER-TOKEN", pcipal.FieldBearerToken)
	assert.Equal(t, "X-REFRESH-TOKEN", pcipal.FieldRefreshToken)
	assert.Equal(t, bridge.FieldBearerToken, pcipal.FieldBearerToken)
	assert.Equal(t, bridge.FieldRefreshToken, pcipal.FieldRefreshToken)
}

// formRequest builds a URL-encoded POST.
func formRequest(t *testing.T, target string, form url.Values) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// multipartRequest builds a multipart/form-data POST with fields in order.
func multipartRequest(t *testing.T, fields [][2]string) *http.Request {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range fields {
		require.NoError(t, mw.WriteField(f[0], f[1]))
	}
	require.NoError(t, mw.Close())
	r := httptest.NewRequest(http.MethodPost, "/framed", &body)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	return r
}

func TestTokensFromRequest(t *testing.T) {
	tests := []struct {
		name                    string
		request                 func(t *testing.T) *http.Request
		wantBearer, wantRefresh string
	}{
		{
			name: "form with documented names",
			request: func(t *testing.T) *http.Request {
				return formRequest(t, "/framed", url.Values{"X-BEARER-TOKEN": {"b1"}, "X-REFRESH-TOKEN": {"r1"}})
			},
			wantBearer: "b1", wantRefresh: "r1",
		},
		{
			name: "form with lower-case names",
			request: func(t *testing.T) *http.Request {
				return formRequest(t, "/framed", url.Values{"x-bearer-token": {"b2"}, "x-refresh-token": {"r2"}})
			},
			wantBearer: "b2", wantRefresh: "r2",
		},
		{
			name: "form with mixed-case names",
			request: func(t *testing.T) *http.Request {
				return formRequest(t, "/framed", url.Values{"X-Bearer-Token": {"b3"}, "x-REFRESH-token": {"r3"}})
			},
			wantBearer: "b3", wantRefresh: "r3",
		},
		{
			name: "multipart form",
			request: func(t *testing.T) *http.Request {
				return multipartRequest(t, [][2]string{{"X-BEARER-TOKEN", "b4"}, {"x-refresh-token", "r4"}})
			},
			wantBearer: "b4", wantRefresh: "r4",
		},
		{
			name: "headers from an embedded browser",
			request: func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/framed", nil)
				r.Header.Set("x-bearer-token", "b5")
				r.Header.Set("X-REFRESH-TOKEN", "r5")
				return r
			},
			wantBearer: "b5", wantRefresh: "r5",
		},
		{
			name: "one field in the form, the other in a header",
			request: func(t *testing.T) *http.Request {
				r := formRequest(t, "/framed", url.Values{"x-bearer-token": {"b6"}})
				r.Header.Set("X-Refresh-Token", "r6")
				return r
			},
			wantBearer: "b6", wantRefresh: "r6",
		},
		{
			name: "the form wins over headers",
			request: func(t *testing.T) *http.Request {
				r := formRequest(t, "/framed", url.Values{"X-BEARER-TOKEN": {"form-b"}, "X-REFRESH-TOKEN": {"form-r"}})
				r.Header.Set("X-BEARER-TOKEN", "header-b")
				r.Header.Set("X-REFRESH-TOKEN", "header-r")
				return r
			},
			wantBearer: "form-b", wantRefresh: "form-r",
		},
		{
			name: "an empty form value falls back to the header",
			request: func(t *testing.T) *http.Request {
				r := formRequest(t, "/framed", url.Values{"X-BEARER-TOKEN": {""}, "X-REFRESH-TOKEN": {"r8"}})
				r.Header.Set("X-BEARER-TOKEN", "b8")
				return r
			},
			wantBearer: "b8", wantRefresh: "r8",
		},
		{
			name: "the URL query is never read",
			request: func(t *testing.T) *http.Request {
				return formRequest(t, "/framed?X-BEARER-TOKEN=qb&X-REFRESH-TOKEN=qr", url.Values{"other": {"x"}})
			},
		},
		{
			name: "nothing at all",
			request: func(t *testing.T) *http.Request {
				return httptest.NewRequest(http.MethodPost, "/framed", nil)
			},
		},
		{
			name: "a body of another type is not a form",
			request: func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/framed", strings.NewReader(`X-BEARER-TOKEN=b&X-REFRESH-TOKEN=r`))
				r.Header.Set("Content-Type", "text/plain")
				return r
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bearer, refresh := pcipal.TokensFromRequest(tt.request(t))
			assert.Equal(t, tt.wantBearer, bearer)
			assert.Equal(t, tt.wantRefresh, refresh)
		})
	}
}

func TestFramedURL(t *testing.T) {
	tests := []struct {
		base, tenant, session, want string
	}{
		{"https://pcipal.example", "acme", "5f0c", "https://pcipal.example/session/acme/view/5f0c/framed"},
		{"https://pcipal.example/", "acme", "5f0c", "https://pcipal.example/session/acme/view/5f0c/framed"},
		{"http://127.0.0.1:8081/pcipal", "t", "s", "http://127.0.0.1:8081/pcipal/session/t/view/s/framed"},
		{"", "t", "s", "/session/t/view/s/framed"},
		{"https://h", "a b", "x/y", "https://h/session/a%20b/view/x%2Fy/framed"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := pcipal.FramedURL(tt.base, tt.tenant, tt.session)
			assert.Equal(t, tt.want, got)
			tenant, session, ok := pcipal.ParseFramedURL(got)
			require.True(t, ok)
			assert.Equal(t, tt.tenant, tenant)
			assert.Equal(t, tt.session, session)
		})
	}
}

func TestParseFramedURLRejects(t *testing.T) {
	for _, u := range []string{
		"",
		"https://pcipal.example/",
		"https://pcipal.example/session/t/view/s",
		"https://pcipal.example/session/t/view/s/framed/extra",
		"https://pcipal.example/sessions/t/view/s/framed",
		"https://pcipal.example/session/t/show/s/framed",
		"https://pcipal.example/session//view/s/framed",
		"https://pcipal.example/session/t/view//framed",
		"https://pcipal.example/session/t/view/%zz/framed",
		"://bad",
	} {
		t.Run(u, func(t *testing.T) {
			_, _, ok := pcipal.ParseFramedURL(u)
			assert.False(t, ok)
		})
	}
}

func TestPageAttributesContract(t *testing.T) {
	// The browser tests read the capture page by these exact names; changing them breaks them.
	assert.Equal(t, "data-pcipal-session", pcipal.AttrSession)
	assert.Equal(t, "data-pcipal-state", pcipal.AttrState)
	assert.Equal(t, "capture", pcipal.StateCapture)
}
