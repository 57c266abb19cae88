package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/bridgetest"
)

// updateDocs makes TestBrowserTakePayment write the README's picture of the demo desktop.
var updateDocs = flag.Bool("update-docs", false, "write docs/demo-desktop.png (TestBrowserTakePayment)")

// screenshotsEnv names a directory for the browser tests' screenshots; a relative one is taken
// from the module root. Unset, they go to a temporary directory.
const screenshotsEnv = "PAYBRIDGE_SCREENSHOTS"

// moduleRoot is the repository root, seen from this package's directory (go test's working
// directory).
const moduleRoot = "../.."

// browserTimeout bounds each browser test.
const browserTimeout = 60 * time.Second

// waitTimeout bounds one wait for the page.
const waitTimeout = 20 * time.Second

// startDemo runs `paybridge demo` in-process on a free port until the test ends and returns what
// it wrote to --info.
func startDemo(t *testing.T, args ...string) demoInfo {
	t.Helper()
	return startDemoOn(t, nil, args...)
}

// offsetClock is the real time plus an offset the test moves forward: paybridge runs on it so a
// test can age an attempt without waiting, while everything else keeps going at its pace.
type offsetClock struct{ offset atomic.Int64 }

// Now implements bridge.Clock.
func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// advance moves the clock forward by d.
func (c *offsetClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// startDemoOn is startDemo with paybridge on clock (nil: the system clock); the stubs keep the
// real time.
func startDemoOn(t *testing.T, clock bridge.Clock, args ...string) demoInfo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if clock != nil {
		ctx = withDemoClock(ctx, clock)
	}
	infoPath := filepath.Join(t.TempDir(), "info.json")
	stderr := &bridgetest.LogSink{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"paybridge", "demo", "--addr", "127.0.0.1:0", "--info", infoPath}, args...), os.Getenv, io.Discard, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("the demo did not stop")
		}
	})
	info := waitInfo(t, infoPath, stderr)
	t.Cleanup(func() {
		for _, secret := range []string{info.SecretKey, info.PublishableKey} {
			assert.NotContains(t, stderr.String(), secret, "no key in the demo's logs")
		}
	})
	return info
}

// waitInfo waits for a demo's --info file.
func waitInfo(t *testing.T, path string, stderr fmt.Stringer) demoInfo {
	t.Helper()
	var info demoInfo
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(path)
		return err == nil && json.Unmarshal(data, &info) == nil
	}, 20*time.Second, 20*time.Millisecond, "the demo wrote its info file; stderr: %s", stderr)
	return info
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// apiSession reads a session over the API with the demo's secret key.
func apiSession(t *testing.T, info demoInfo, id string) bridge.SessionView {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, info.BaseURL+"/v1/sessions/"+url.PathEscape(id), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+info.SecretKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var s bridge.SessionView
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	require.NotNil(t, s.VCC)
	return s
}

// desk is one browser tab showing the demo agent desktop.
type desk struct {
	t    *testing.T
	ctx  context.Context
	name string // for screenshots
}

// openDemoDesk starts a demo (with extra flags) and opens its agent desktop in Chromium; the
// test's time is bounded by browserTimeout.
func openDemoDesk(t *testing.T, demoArgs ...string) (demoInfo, context.Context, *traffic, *desk) {
	t.Helper()
	return openDemoDeskOn(t, nil, demoArgs...)
}

// openDemoDeskOn is openDemoDesk with paybridge on clock (nil: the system clock).
func openDemoDeskOn(t *testing.T, clock bridge.Clock, demoArgs ...string) (demoInfo, context.Context, *traffic, *desk) {
	t.Helper()
	browser := bridgetest.Browser(t)
	info := startDemoOn(t, clock, demoArgs...)
	ctx, cancel := context.WithTimeout(browser, browserTimeout)
	t.Cleanup(cancel)
	traffic := newTraffic()
	return info, ctx, traffic, openDesk(t, ctx, traffic, "desk", info.BaseURL+"/demo/agent")
}

// customerPays presses the demo's "Customer pays" and waits for the success shown on the page
// and the session succeeded over the API.
func (d *desk) customerPays(info demoInfo, id string) {
	d.t.Helper()
	d.click(`[data-demo-action="pay"]`)
	d.waitFor("the success outcome", `document.querySelector(".pb-outcome[data-outcome='succeeded']")`)
	assert.Equal(d.t, bridge.StatusSucceeded, apiSession(d.t, info, id).Status)
}

// openDesk opens url in tab (a chromedp context whose tab may not exist yet) at 1280x800, with
// its traffic recorded, and waits until the widget is connected.
func openDesk(t *testing.T, tab context.Context, traffic *traffic, name, u string) *desk {
	t.Helper()
	return openDeskWith(t, tab, traffic, name, u, "")
}

// openDeskWith is openDesk with a script that runs in every document of the tab before the
// page's own (none if empty).
func openDeskWith(t *testing.T, tab context.Context, traffic *traffic, name, u, initScript string) *desk {
	t.Helper()
	require.NoError(t, chromedp.Do(tab), "open the tab")
	require.NoError(t, traffic.record(tab))
	if initScript != "" {
		_, err := chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: initScript})
		require.NoError(t, err)
	}
	require.NoError(t, chromedp.Do(tab, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(u)))
	d := &desk{t: t, ctx: tab, name: name}
	d.waitFor("the widget to connect", `document.querySelector(".pb-widget").dataset.state === "connected"`)
	return d
}

// waitFor polls the page until expr is truthy.
func (d *desk) waitFor(what, expr string) {
	d.t.Helper()
	_, err := chromedp.Run(d.ctx, chromedp.Poll[bool]("!!("+expr+")",
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(waitTimeout)))
	require.NoError(d.t, err, "%s: waiting for %s; the timeline:\n%s", d.name, what, d.timelineText())
}

// eval evaluates expr in the page.
func eval[T any](d *desk, expr string) T {
	d.t.Helper()
	v, err := chromedp.Run(d.ctx, chromedp.Evaluate[T](expr))
	require.NoError(d.t, err, "evaluate %s", expr)
	return v
}

// click clicks the element sel (with a script, so a background tab needs no focus).
func (d *desk) click(sel string) {
	d.t.Helper()
	ok := eval[bool](d, fmt.Sprintf(`(() => { const b = document.querySelector(%q); if (!b || b.disabled) return false; b.click(); return true; })()`, sel))
	require.True(d.t, ok, "%s: %s is missing or disabled", d.name, sel)
}

// takePayment submits the take-payment form as it is (12.40 GBP, INV-1001) and waits for the
// payment page's first attempt to load.
func (d *desk) takePayment() {
	d.t.Helper()
	d.click("#take-payment-button")
	d.waitFor("the payment page", `document.querySelector(".pb-panel").dataset.frame === "loaded"`)
}

// timelineItem is one entry of the widget's timeline.
type timelineItem struct {
	Type      string `json:"type"`
	Attempt   string `json:"attempt"`
	Reason    string `json:"reason"`
	Announced string `json:"announced"` // of frame.loaded: "true" when the announcement came
	Code      string `json:"code"`      // of error
	Text      string `json:"text"`
}

// timeline returns the widget's timeline, oldest first.
func (d *desk) timeline() []timelineItem {
	d.t.Helper()
	return eval[[]timelineItem](d, `Array.from(document.querySelectorAll(".pb-timeline li")).reverse().map(li =>
		({type: li.dataset.type, attempt: li.dataset.attempt || "", reason: li.dataset.reason || "",
		  announced: li.dataset.announced || "", code: li.dataset.code || "", text: li.textContent}))`)
}

func (d *desk) timelineText() string {
	items, err := chromedp.Run(d.ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll(".pb-timeline li")).reverse().map(li => li.textContent).join("\n")`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return items
}

// timelineTypes returns the types of the timeline's entries, oldest first.
func (d *desk) timelineTypes() []string {
	var out []string
	for _, it := range d.timeline() {
		out = append(out, it.Type)
	}
	return out
}

// frameView is what the widget's iframe shows: the widget's attributes and the attributes of
// the capture page's <html> inside it.
type frameView struct {
	Name          string `json:"name"`
	SessionID     string `json:"sessionId"`
	Attempt       int    `json:"attempt"`
	PCIPalSession string `json:"pcipalSession"`
	PCIPalState   string `json:"pcipalState"`
	VCCSession    string `json:"vccSession"` // the VCC sessionGuid the capture page shows
}

// frame reads the widget's iframe and, through an isolated world in it, the document it shows.
func (d *desk) frame() (frameView, error) {
	v, err := chromedp.Run(d.ctx, chromedp.Evaluate[frameView](`(() => { const f = document.querySelector(".pb-frame");
		return f ? {name: f.name, sessionId: f.dataset.sessionId, attempt: Number(f.dataset.attempt)} : {}; })()`))
	if err != nil || v.Name == "" {
		return v, err
	}
	tree, err := chromedp.Call(d.ctx, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		return v, err
	}
	var id cdp.FrameID
	for _, child := range tree.FrameTree.ChildFrames {
		if child.Frame.Name == v.Name {
			id = child.Frame.ID
		}
	}
	if id == "" {
		return v, nil
	}
	world, err := chromedp.Call(d.ctx, page.CreateIsolatedWorld, page.CreateIsolatedWorldParams{FrameID: id, WorldName: "paybridge-test"})
	if err != nil {
		return v, err
	}
	res, err := chromedp.Call(d.ctx, runtime.Evaluate, runtime.EvaluateParams{
		Expression: `["data-pcipal-session", "data-pcipal-state", "data-vcc-session"].map((a) => document.documentElement.getAttribute(a) || "")`,
		ContextID:  world.ExecutionContextID, ReturnByValue: new(true),
	})
	if err != nil || res.Result == nil {
		return v, err
	}
	var attrs []string
	if err := json.Unmarshal(res.Result.Value, &attrs); err == nil && len(attrs) == 3 {
		v.PCIPalSession, v.PCIPalState, v.VCCSession = attrs[0], attrs[1], attrs[2]
	}
	return v, nil
}

// waitCapturePage waits until the iframe shows the capture page of session id's current attempt
// (read over the API each time) and returns what it shows.
func (d *desk) waitCapturePage(info demoInfo, id string, minAttempt int) (frameView, bridge.SessionView) {
	d.t.Helper()
	var fv frameView
	var sess bridge.SessionView
	var lastErr error
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		sess = apiSession(d.t, info, id)
		fv, lastErr = d.frame()
		if lastErr == nil && sess.Attempt >= minAttempt && fv.SessionID == id && fv.Attempt == sess.Attempt &&
			fv.PCIPalState == "capture" && fv.PCIPalSession == sess.VCC.ProviderSessionGUID {
			return fv, sess
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: the iframe never showed the capture page of %s attempt >= %d: frame %+v (err %v), session attempt %d; timeline:\n%s",
				d.name, id, minAttempt, fv, lastErr, sess.Attempt, d.timelineText())
		}
		<-tick.C
	}
}

// shownSession returns the id of the session the widget shows.
func (d *desk) shownSession() string {
	d.t.Helper()
	id := eval[string](d, `(document.querySelector(".pb-frame") || {dataset: {}}).dataset.sessionId || ""`)
	require.NotEmpty(d.t, id, "%s shows no session", d.name)
	return id
}

// screenshot saves the tab as <name>.png in the screenshot directory.
func (d *desk) screenshot(name string) string {
	d.t.Helper()
	png, err := chromedp.Run(d.ctx, chromedp.CaptureScreenshot())
	require.NoError(d.t, err)
	path := filepath.Join(screenshotDir(d.t), name+".png")
	require.NoError(d.t, os.WriteFile(path, png, 0o644))
	d.t.Logf("screenshot: %s", path)
	return path
}

var (
	screenshotDirsMu sync.Mutex
	screenshotDirs   = map[*testing.T]string{} // each test's temporary screenshot directory
)

// screenshotDir is $PAYBRIDGE_SCREENSHOTS (relative to the module root), else a temporary one.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv(screenshotsEnv); dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(moduleRoot, dir)
		}
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	screenshotDirsMu.Lock()
	defer screenshotDirsMu.Unlock()
	dir, ok := screenshotDirs[t]
	if !ok {
		dir = t.TempDir()
		screenshotDirs[t] = dir
		t.Cleanup(func() {
			screenshotDirsMu.Lock()
			defer screenshotDirsMu.Unlock()
			delete(screenshotDirs, t)
		})
	}
	return dir
}

// traffic records what the browser tabs of one test send, receive and log: it learns the agent
// and provider tokens where they legitimately travel (the socket's auth message, X-Agent-Token
// headers, handoff events, the iframe's form POST) so a test can prove they appear nowhere else.
type traffic struct {
	mu             sync.Mutex
	urls           []string // every request, WebSocket and frame navigation URL
	console        []string // every console message, exception and browser log entry
	agentTokens    map[string]bool
	providerTokens map[string]bool
	formPosts      []formPost         // the iframe's document POSTs
	documents      []documentResponse // the responses to them
	handoffs       map[int]string     // attempt -> iframe URL, from handoff events and snapshots
	bearers        map[int]string     // attempt -> its bearer token, from the same
	sent           []sentMessage      // what the pages sent on their sockets, auth excepted
	frameLoads     []string           // navigations of the pages' child frames to documents
	seq            int                // orders form POSTs and sent messages
}

// formPost is one POST of the hidden form into the iframe.
type formPost struct {
	Seq             int
	URL             string
	Bearer, Refresh string
}

// sentMessage is one message a page sent on its socket.
type sentMessage struct {
	Seq       int
	Type      string `json:"type"`
	SessionID string `json:"sessionId"`
	Attempt   int    `json:"attempt"`
}

// documentResponse is the provider's answer to one form POST.
type documentResponse struct {
	URL          string
	Status       int64
	FrameOptions string
}

func newTraffic() *traffic {
	return &traffic{agentTokens: map[string]bool{}, providerTokens: map[string]bool{}, handoffs: map[int]string{}, bearers: map[int]string{}}
}

// record listens to tab's events from now on.
func (tr *traffic) record(tab context.Context) error {
	return chromedp.Listen(tab, func(ev any) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			tr.urls = append(tr.urls, ev.Request.URL+ev.Request.URLFragment)
			tr.headerTokens(ev.Request.Headers)
			if ev.Type == network.ResourceTypeDocument && strings.HasSuffix(ev.Request.URL, "/framed") && ev.Request.Method == http.MethodPost {
				var body []byte
				for _, e := range ev.Request.PostDataEntries {
					body = append(body, e.Bytes...)
				}
				form, _ := url.ParseQuery(string(body))
				tr.seq++
				p := formPost{Seq: tr.seq, URL: ev.Request.URL, Bearer: form.Get("X-BEARER-TOKEN"), Refresh: form.Get("X-REFRESH-TOKEN")}
				tr.formPosts = append(tr.formPosts, p)
				tr.providerToken(p.Bearer)
				tr.providerToken(p.Refresh)
			}
		case *network.EventRequestWillBeSentExtraInfo:
			tr.headerTokens(ev.Headers)
		case *network.EventResponseReceived:
			if ev.Type == network.ResourceTypeDocument && strings.HasSuffix(ev.Response.URL, "/framed") {
				tr.documents = append(tr.documents, documentResponse{URL: ev.Response.URL, Status: ev.Response.Status,
					FrameOptions: headerValue(ev.Response.Headers, "X-Frame-Options")})
			}
		case *network.EventWebSocketCreated:
			tr.urls = append(tr.urls, ev.URL)
		case *network.EventWebSocketFrameSent:
			var msg struct{ Type, AgentToken string }
			if json.Unmarshal(ev.Response.PayloadData, &msg) == nil && msg.Type == "auth" && msg.AgentToken != "" {
				tr.agentTokens[msg.AgentToken] = true
			} else if m := (sentMessage{}); json.Unmarshal(ev.Response.PayloadData, &m) == nil && m.Type != "" {
				tr.seq++
				m.Seq = tr.seq
				tr.sent = append(tr.sent, m)
			}
		case *network.EventWebSocketFrameReceived:
			tr.socketEvent(ev.Response.PayloadData)
		case *page.EventFrameNavigated:
			tr.urls = append(tr.urls, ev.Frame.URL+ev.Frame.URLFragment)
			if ev.Frame.ParentID != "" && !strings.HasPrefix(ev.Frame.URL, "about:") {
				tr.frameLoads = append(tr.frameLoads, ev.Frame.URL)
			}
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value), a.Description)
			}
			tr.console = append(tr.console, string(ev.Type)+": "+strings.Join(parts, " "))
		case *runtime.EventExceptionThrown:
			text := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				text += " " + ev.ExceptionDetails.Exception.Description
			}
			tr.console = append(tr.console, "exception: "+text)
		case *cdplog.EventEntryAdded:
			tr.console = append(tr.console, string(ev.Entry.Level)+": "+ev.Entry.Text+" "+ev.Entry.URL)
		}
	})
}

// socketEvent learns the provider tokens of a handoff event or of a ready snapshot.
func (tr *traffic) socketEvent(payload []byte) {
	type handoff struct {
		Attempt    int               `json:"attempt"`
		IframeURL  string            `json:"iframeUrl"`
		FormFields map[string]string `json:"formFields"`
	}
	var msg struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(payload, &msg) != nil {
		return
	}
	var hs []handoff
	switch msg.Type {
	case "session.handoff":
		var h handoff
		if json.Unmarshal(msg.Data, &h) == nil {
			hs = append(hs, h)
		}
	case "ready":
		var ready struct {
			Sessions []struct{ Handoff *handoff } `json:"sessions"`
		}
		if json.Unmarshal(msg.Data, &ready) == nil {
			for _, s := range ready.Sessions {
				if s.Handoff != nil {
					hs = append(hs, *s.Handoff)
				}
			}
		}
	}
	for _, h := range hs {
		tr.handoffs[h.Attempt] = h.IframeURL
		tr.bearers[h.Attempt] = h.FormFields["X-BEARER-TOKEN"]
		for _, v := range h.FormFields {
			tr.providerToken(v)
		}
	}
}

func (tr *traffic) headerTokens(h network.Headers) {
	if v := headerValue(h, "X-Agent-Token"); v != "" {
		tr.agentTokens[v] = true
	}
}

func (tr *traffic) providerToken(v string) {
	if v != "" {
		tr.providerTokens[v] = true
	}
}

// headerValue returns header name of h, whatever its case.
func headerValue(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// iframeURL returns the iframe URL the socket handed over for attempt.
func (tr *traffic) iframeURL(attempt int) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.handoffs[attempt]
}

// bearer returns the bearer token the socket handed over for attempt.
func (tr *traffic) bearer(attempt int) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.bearers[attempt]
}

// mark returns a position in the order of form POSTs and sent messages: what comes later has a
// greater Seq.
func (tr *traffic) mark() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.seq
}

// postsSince returns the form POSTs after mark.
func (tr *traffic) postsSince(mark int) []formPost {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []formPost
	for _, p := range tr.formPosts {
		if p.Seq > mark {
			out = append(out, p)
		}
	}
	return out
}

// sentSince returns the socket messages of type typ ("": any) the pages sent after mark.
func (tr *traffic) sentSince(mark int, typ string) []sentMessage {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []sentMessage
	for _, m := range tr.sent {
		if m.Seq > mark && (typ == "" || m.Type == typ) {
			out = append(out, m)
		}
	}
	return out
}

// childFrameLoads returns the navigations of child frames to documents (not about:blank) so far.
func (tr *traffic) childFrameLoads() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.frameLoads...)
}

// documentsFor returns the provider's answers to the form POSTs to u.
func (tr *traffic) documentsFor(u string) []documentResponse {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []documentResponse
	for _, d := range tr.documents {
		if d.URL == u {
			out = append(out, d)
		}
	}
	return out
}

// consoleText returns every console line recorded so far.
func (tr *traffic) consoleText() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.console, "\n")
}

// assertNoTokenLeaks checks that the tokens learned from the traffic appear in no request URL,
// no console message and no browser storage of the desks' pages, and that the iframe's form
// POSTs carried exactly the tokens the socket handed over.
func (tr *traffic) assertNoTokenLeaks(t *testing.T, desks ...*desk) {
	t.Helper()
	var storage []string
	for _, d := range desks {
		storage = append(storage, eval[string](d, `JSON.stringify({local: Object.entries(localStorage), session: Object.entries(sessionStorage), cookies: document.cookie})`))
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	require.NotEmpty(t, tr.agentTokens, "the agent token was seen where it travels (socket auth, X-Agent-Token)")
	require.NotEmpty(t, tr.providerTokens, "the provider tokens were seen where they travel (handoffs, form POST)")
	require.NotEmpty(t, tr.formPosts, "the iframe was loaded with a form POST")
	for _, p := range tr.formPosts {
		assert.True(t, tr.providerTokens[p.Bearer] && tr.providerTokens[p.Refresh] && p.Bearer != "" && p.Refresh != "",
			"the form POST to %s carried the handed-over tokens", p.URL)
	}
	tokens := map[string]string{}
	for tok := range tr.agentTokens {
		require.Greater(t, len(tok), 20)
		tokens[tok] = "the agent token"
	}
	for tok := range tr.providerTokens {
		require.Greater(t, len(tok), 8)
		tokens[tok] = "a provider token"
	}
	for tok, kind := range tokens {
		for _, u := range tr.urls {
			unescaped, _ := url.QueryUnescape(u)
			assertNoToken(t, tok, kind, "request URL", u, unescaped)
		}
		for _, line := range tr.console {
			assertNoToken(t, tok, kind, "console message", line)
		}
		for _, s := range storage {
			assertNoToken(t, tok, kind, "browser storage or cookies", s)
		}
	}
}

// assertNoToken fails t if tok is in any of texts, showing where with the token blacked out so
// the test's own output does not spread it.
func assertNoToken(t *testing.T, tok, kind, where string, texts ...string) {
	t.Helper()
	for _, text := range texts {
		if strings.Contains(text, tok) {
			t.Errorf("%s appears in a %s: %s", kind, where, strings.ReplaceAll(text, tok, "<"+kind+">"))
			return
		}
	}
}

// deskClockScript installs the desk's clock (window.PayBridgeDeskClock) as one the test moves:
// advance(ms) runs what falls due. The widget keeps the browser's own time.
const deskClockScript = `window.PayBridgeDeskClock = (() => {
  let now = 0, timers = [];
  return {
    now: () => now,
    after: (ms, fn) => { timers.push({at: now + ms, fn}); },
    advance: (ms) => {
      now += ms;
      const due = timers.filter((x) => x.at <= now);
      timers = timers.filter((x) => x.at > now);
      for (const x of due) x.fn();
    },
  };
})();`

// driveStatus returns the desk's status line: its state and text.
func (d *desk) driveStatus() (state, text string) {
	d.t.Helper()
	st := eval[[]string](d, `[document.getElementById("drive-status").dataset.state || "", document.getElementById("drive-status").textContent]`)
	return st[0], st[1]
}

// TestBrowserRecoveryStaysVisible expires the payment on screen: paybridge recovers within
// milliseconds, and the desk keeps "starting a new payment page" on screen for
// demoRecoveryMinDisplay of the page's clock, which the test moves, before it says recovered.
func TestBrowserRecoveryStaysVisible(t *testing.T) {
	browser := bridgetest.Browser(t)
	info := startDemo(t)
	ctx, cancel := context.WithTimeout(browser, browserTimeout)
	defer cancel()
	traffic := newTraffic()
	d := openDeskWith(t, ctx, traffic, "desk", info.BaseURL+"/demo/agent", deskClockScript)
	require.Equal(t, fmt.Sprint(demoRecoveryMinDisplay.Milliseconds()), eval[string](d, `document.getElementById("desk").dataset.recoveryMinMs`))

	d.takePayment()
	id := d.shownSession()
	d.waitCapturePage(info, id, 1)
	d.click(`[data-demo-action="expire"]`)
	// The new attempt is on screen, and the recovery is still what the desk says.
	d.waitCapturePage(info, id, 2)
	d.waitFor("the desk to see attempt 2", `document.querySelector(".open-item[data-shown='true']") &&
		document.querySelector(".open-item[data-shown='true']").textContent.includes("attempt 2")`)
	state, text := d.driveStatus()
	assert.Equal(t, "restarting", state)
	assert.Contains(t, text, "paybridge is starting a new payment page (the provider session ended)")
	d.screenshot("recovery-visible")

	eval[any](d, fmt.Sprintf(`PayBridgeDeskClock.advance(%d)`, demoRecoveryMinDisplay.Milliseconds()-1))
	state, _ = d.driveStatus()
	assert.Equal(t, "restarting", state, "still on screen 1 ms before the minimum")
	eval[any](d, `PayBridgeDeskClock.advance(1)`)
	state, text = d.driveStatus()
	assert.Equal(t, "recovered", state)
	assert.Contains(t, text, "attempt 2 is on screen")

	d.customerPays(info, id)
	traffic.assertNoTokenLeaks(t, d)
}

// openItems returns the desk's open payments list: session id -> shown ("true"/"false").
func (d *desk) openItems() map[string]string {
	d.t.Helper()
	return eval[map[string]string](d, `Object.fromEntries([...document.querySelectorAll("#open-payments li")].map((li) => [li.dataset.sessionId, li.dataset.shown]))`)
}

// TestBrowserOpenPayments takes two payments on the desk: each gets its own reference, both are
// listed, the agent switches back to the first (its page is asked of paybridge before its tokens
// are posted again), the customer's card is declined there, which reads as a sentence, and the
// agent cancels the second from the list. The capture page shows the VCC sessionGuid.
func TestBrowserOpenPayments(t *testing.T) {
	info, _, traffic, d := openDemoDesk(t)
	assert.Empty(t, d.openItems())

	d.takePayment()
	first := d.shownSession()
	fv, sess := d.waitCapturePage(info, first, 1)
	assert.Equal(t, "INV-1001", sess.Reference)
	assert.Equal(t, sess.VCC.SessionGUID, fv.VCCSession, "the capture page shows the VCC sessionGuid the control API needs")
	d.waitFor("the next reference", `document.getElementById("reference").value === "INV-1002"`)

	d.click("#take-payment-button")
	d.waitFor("the second payment", `document.querySelectorAll("#open-payments li").length === 2`)
	second := d.shownSession()
	require.NotEqual(t, first, second)
	_, sess = d.waitCapturePage(info, second, 1)
	assert.Equal(t, "INV-1002", sess.Reference, "each payment its own reference")
	assert.Equal(t, map[string]string{first: "false", second: "true"}, d.openItems())
	assert.Contains(t, eval[string](d, `document.querySelector(".open-item[data-session-id='`+second+`'] .open-guid").textContent`), sess.VCC.SessionGUID)

	// Switch back to the first: paybridge is asked first, then its page is posted again.
	mark := traffic.mark()
	d.click(`.open-item[data-session-id='` + first + `'] button[data-open-action='show']`)
	fv, _ = d.waitCapturePage(info, first, 1)
	assert.Equal(t, 1, fv.Attempt)
	asks := traffic.sentSince(mark, "session.refresh")
	require.NotEmpty(t, asks, "the widget asked paybridge before posting the first payment's tokens again")
	assert.Equal(t, first, asks[0].SessionID)
	d.waitFor("the list to follow", `document.querySelector(".open-item[data-session-id='`+first+`']").dataset.shown === "true"`)
	assert.Equal(t, first, eval[string](d, `document.getElementById("desk").dataset.activeSession`), "the demo buttons act on the payment shown")
	d.screenshot("open-payments")

	// paybridge starts a new page for the second in the background: the list shows it, the panel
	// stays on the first, whose page is not posted again.
	mark = traffic.mark()
	postJSON(t, info.BaseURL+"/v1/sessions/"+second+"/restart", info.SecretKey, "")
	d.waitFor("the second's new attempt in the list",
		`document.querySelector(".open-item[data-session-id='`+second+`'] .open-label").textContent.endsWith("attempt 2")`)
	assert.Equal(t, first, d.shownSession(), "a background restart does not take the panel")
	fv, _ = d.waitCapturePage(info, first, 1)
	assert.Equal(t, 1, fv.Attempt)
	assert.Empty(t, traffic.sentSince(mark, "session.refresh"), "nothing asked about the payment on screen")

	// The card is declined: the agent reads a sentence, not the gateway's REJECT.
	d.click(`[data-demo-action="decline"]`)
	d.waitFor("the decline", `document.querySelector(".pb-outcome[data-outcome='failed']")`)
	outcome := eval[string](d, `document.querySelector(".pb-outcome").textContent`)
	assert.Contains(t, outcome, "The card was declined.")
	assert.NotContains(t, outcome, "REJECT")
	_, status := d.driveStatus()
	assert.Contains(t, status, "INV-1001: the card was declined.")
	assert.Equal(t, bridge.StatusFailed, apiSession(t, info, first).Status)
	assert.Equal(t, map[string]string{second: "false"}, d.openItems())

	// Cancel the second from the list, through the demo backend and paybridge's API.
	d.click(`.open-item[data-session-id='` + second + `'] button[data-open-action='cancel']`)
	d.waitFor("the list to empty", `document.querySelectorAll("#open-payments li").length === 0`)
	assert.Equal(t, bridge.StatusCancelled, apiSession(t, info, second).Status)
	_, status = d.driveStatus()
	assert.Contains(t, status, "INV-1002: the payment was cancelled.")
	assert.False(t, eval[bool](d, `document.getElementById("open-empty").hidden`))
	traffic.assertNoTokenLeaks(t, d)
}
