package pcipalstub

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// interstitialNext finds the interstitial's capture URL.
var interstitialNext = regexp.MustCompile(`<html[^>]*\s` + AttrNext + `="([^"]*)"`)

// maxPage bounds how much of a page OpenFrame reads.
const maxPage = 1 << 20

// OpenFrame does without a browser what an agent's browser does with post, the form POST of the
// tokens into the iframe: it sends post and, when the stub answers with its login interstitial,
// refreshes the login (POST /refreshlogon) and follows on to the capture page, keeping the login
// cookies in client's jar (client nil, or without a jar: a fresh jar). It returns the last
// response: the capture page, the refusal of the POST, or the sign-in page if the login failed.
// The caller closes its body. Tests of other packages use it to look at what the frame shows.
func OpenFrame(client *http.Client, post *http.Request) (*http.Response, error) {
	c := http.Client{}
	if client != nil {
		c = *client
	}
	if c.Jar == nil {
		c.Jar, _ = cookiejar.New(nil)
	}
	resp, err := c.Do(post)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	m := interstitialNext.FindSubmatch(body)
	if m == nil || !strings.Contains(string(body), `data-pcipal-state="`+StateLogin+`"`) {
		return resp, nil // not the interstitial: the refusal, or another page
	}
	base := *post.URL
	base.RawQuery, base.Fragment = "", ""
	next, err := base.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		return nil, fmt.Errorf("pcipalstub: interstitial's next URL: %w", err)
	}
	refresh, err := base.Parse(RefreshLogonPath)
	if err != nil {
		return nil, err
	}
	rr, err := do(&c, post, http.MethodPost, refresh)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(rr.Body, maxPage))
	_ = rr.Body.Close()
	if rr.StatusCode != http.StatusOK {
		next = &url.URL{Scheme: base.Scheme, Host: base.Host, Path: "/"}
	}
	return do(&c, post, http.MethodGet, next)
}

// do sends a bodiless request to u in post's context.
func do(c *http.Client, post *http.Request, method string, u *url.URL) (*http.Response, error) {
	req, err := http.NewRequestWithContext(post.Context(), method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}
