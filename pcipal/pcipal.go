// Package pcipal models PCI Pal's agent view as paybridge and its stubs see it: the framed
// iframe URL, the two token form fields an agent's browser POSTs into the iframe, and the message
// the widget's legacy frame check waits for.
//
// paybridge never calls PCI Pal itself (VCC does); it only hands the iframe URL and tokens to the
// agent's browser. This package keeps the few facts both sides must agree on in one place.
package pcipal

import (
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/paybridge/paybridge/bridge"
)

// Form field (or header) names that carry the provider tokens in the POST into the iframe.
const (
	FieldBearerToken  = bridge.FieldBearerToken
	FieldRefreshToken = bridge.FieldRefreshToken
)

// Attributes on the capture page's <html> element, so browser tests can recognise the page and
// which session it shows.
const (
	AttrSession  = "data-pcipal-session"
	AttrState    = "data-pcipal-state"
	StateCapture = "capture"  // the page waits for the customer to key the card
	StateDone    = "complete" // a payment decision is in
)

// maxFormMemory bounds how much of a multipart form is held in memory; the form carries two
// short tokens, so anything large is not a real provider POST.
const maxFormMemory = 64 << 10

// TokensFromRequest returns the bearer and refresh tokens of a POST into the iframe. They come
// from the form body (URL-encoded or multipart), with field names matched regardless of case,
// and failing that from HTTP headers of the same names, which embedded browsers may send instead.
// A value it cannot find is "". It never reads the URL query: tokens do not belong in URLs.
func TokensFromRequest(r *http.Request) (bearer, refresh string) {
	parseForm(r)
	bearer = formValueFold(r, FieldBearerToken)
	if bearer == "" {
		bearer = r.Header.Get(FieldBearerToken)
	}
	refresh = formValueFold(r, FieldRefreshToken)
	if refresh == "" {
		refresh = r.Header.Get(FieldRefreshToken)
	}
	return bearer, refresh
}

// parseForm fills r.PostForm from a URL-encoded or multipart body. Errors leave the form empty,
// which the header fallback then covers.
func parseForm(r *http.Request) {
	if r.PostForm != nil || r.Body == nil {
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		_ = r.ParseMultipartForm(maxFormMemory)
		return
	}
	_ = r.ParseForm()
}

// formValueFold returns the first non-empty posted value whose field name equals name,
// ignoring case.
func formValueFold(r *http.Request, name string) string {
	if v := r.PostForm.Get(name); v != "" {
		return v
	}
	for k, vs := range r.PostForm {
		if strings.EqualFold(k, name) {
			for _, v := range vs {
				if v != "" {
					return v
				}
			}
		}
	}
	return ""
}

// FramedURL returns the iframe URL of a provider session:
// {base}/session/{tenantID}/view/{sessionID}/framed.
func FramedURL(base, tenantID, sessionID string) string {
	return strings.TrimRight(base, "/") + "/session/" + url.PathEscape(tenantID) +
		"/view/" + url.PathEscape(sessionID) + "/framed"
}

// ParseFramedURL returns the tenant and session of an iframe URL made like FramedURL's, whatever
// its scheme, host and path prefix; ok is false for any other URL.
func ParseFramedURL(u string) (tenantID, sessionID string, ok bool) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", "", false
	}
	segs := strings.Split(strings.TrimPrefix(parsed.EscapedPath(), "/"), "/")
	n := len(segs)
	if n < 5 || segs[n-5] != "session" || segs[n-3] != "view" || segs[n-1] != "framed" {
		return "", "", false
	}
	tenantID, err1 := url.PathUnescape(segs[n-4])
	sessionID, err2 := url.PathUnescape(segs[n-2])
	if err1 != nil || err2 != nil || tenantID == "" || sessionID == "" {
		return "", "", false
	}
	return tenantID, sessionID, true
}
