package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/bridgetest"
)

// The browser tests drive the demo agent desktop (/demo/agent, built on /static/paybridge.js) in
// Debian's Chromium, as a new user would after `go run ./cmd/paybridge demo`.

// TestBrowserTakePayment takes a payment: the iframe shows the stub's capture page, loaded by
// the widget's form POST, and "Customer pays" ends in success on the page and over the API.
func TestBrowserTakePayment(t *testing.T) {
	info, _, traffic, d := openDemoDesk(t)

	d.takePayment()
	id := d.shownSession()
	fv, sess := d.waitCapturePage(info, id, 1)
	assert.Equal(t, 1, fv.Attempt)
	assert.Equal(t, bridge.StatusActive, sess.Status)
	assert.Equal(t, info.AgentID, sess.AgentID)
	assert.Equal(t, int64(1240), sess.Amount, "12.40 in the form is 1240 minor units")
	assert.Equal(t, "GBP", sess.Currency)
	assert.Equal(t, "INV-1001", sess.Reference)

	// The capture page came from the documented embedding: a POST of both tokens to the iframe
	// URL, answered with a frameable page.
	u := traffic.iframeURL(1)
	require.NotEmpty(t, u)
	docs := traffic.documentsFor(u)
	require.NotEmpty(t, docs, "a document response for %s", u)
	assert.Equal(t, int64(200), docs[0].Status)
	assert.Empty(t, docs[0].FrameOptions)
	assert.True(t, eval[bool](d, `document.querySelector("form.pb-handoff") === null`), "the form and its tokens left the page once the frame loaded")

	d.screenshot("take-payment-capture")
	if *updateDocs {
		png, err := chromedp.Run(d.ctx, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(moduleRoot, "docs", "demo-desktop.png"), png, 0o644))
	}

	d.customerPays(info, id)
	assert.Contains(t, eval[string](d, `document.querySelector(".pb-outcome").textContent`), "£12.40")
	assert.True(t, eval[bool](d, `document.querySelector(".pb-frame") === null`), "the capture page is gone once the outcome is in")
	assert.True(t, eval[bool](d, `Array.from(document.querySelectorAll("[data-demo-action]")).every(b => b.disabled)`), "demo buttons are off without an open payment")
	d.screenshot("take-payment-succeeded")
	assert.Equal(t, []string{"ready", "handoff", "frame.loaded", "succeeded"}, d.timelineTypes())
	traffic.assertNoTokenLeaks(t, d)
}

// holdFramePost makes the browser hold the iframe's next form POST, runs then (the provider
// session ends meanwhile), and lets the POST go on.
func (d *desk) holdFramePost(start func(), then func()) {
	d.t.Helper()
	paused := chromedp.Events(d.ctx, fetch.RequestPaused)
	_, err := chromedp.Call(d.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: "*/framed", ResourceType: network.ResourceTypeDocument}}})
	require.NoError(d.t, err)
	start()
	var held *fetch.EventRequestPaused
	for ev, err := range paused {
		require.NoError(d.t, err)
		held = &ev
		break
	}
	require.NotNil(d.t, held)
	then()
	_, err = chromedp.Call(d.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: held.RequestID})
	require.NoError(d.t, err)
	_, err = chromedp.Call(d.ctx, fetch.Disable, cdp.Empty{})
	require.NoError(d.t, err)
}

// expireWhileLoading takes a payment and expires its provider session while the browser is on
// its way to the payment page: the form POST is answered with X-Frame-Options: deny.
func (d *desk) expireWhileLoading() {
	d.t.Helper()
	d.holdFramePost(func() { d.click("#take-payment-button") }, func() {
		d.click(`[data-demo-action="expire"]`)
		d.waitFor("the demo's expire call", `document.getElementById("desk").dataset.lastAction === "expire"`)
	})
}

// assertRefusedByProvider checks that attempt 1's form POST was answered with X-Frame-Options:
// deny, which the browser logged, and that attempt 2 is a new provider session.
func (tr *traffic) assertRefusedByProvider(t *testing.T) {
	t.Helper()
	first := tr.iframeURL(1)
	require.NotEmpty(t, first)
	refused := tr.documentsFor(first)
	require.NotEmpty(t, refused, "the provider's answer to attempt 1's form POST")
	assert.Equal(t, "deny", strings.ToLower(refused[0].FrameOptions))
	assert.Contains(t, tr.consoleText(), "X-Frame-Options", "the browser's refusal is in the console (so the console is recorded)")
	assert.NotEqual(t, first, tr.iframeURL(2), "attempt 2 is a new provider session")
}

// restartReasons returns the reasons of the restarts on the desk's timeline.
func (d *desk) restartReasons() []string {
	d.t.Helper()
	return eval[[]string](d, `[...document.querySelectorAll(".pb-timeline li[data-type='restarting']")].map((li) => li.dataset.reason)`)
}

// TestBrowserExpiryRecovers expires the provider session while the browser is on its way to the
// payment page of a provider that announces nothing (the default, as live PCI Pal): the form
// POST is refused with X-Frame-Options: deny, which the page cannot see, so the widget reports
// nothing; paybridge learns it from VCC's status and restarts, and the new attempt's capture
// page appears with no human action; the payment then succeeds.
func TestBrowserExpiryRecovers(t *testing.T) {
	// paybridge polls VCC every 4 s here (the first poll of a new session comes 3.2 s or more
	// after it was created), and the stub VCC's webhook is off (it would report the expiry at
	// once and a new attempt would replace the frame whose POST the browser holds).
	info, _, traffic, d := openDemoDesk(t, "--poll-interval", "4s", "--vcc-webhook=false")

	d.expireWhileLoading()
	d.waitFor("paybridge to restart", `document.querySelector(".pb-timeline li[data-type='restarting']")`)
	id := d.shownSession()
	fv, sess := d.waitCapturePage(info, id, 2)
	assert.Equal(t, 2, fv.Attempt, "the new attempt's capture page, with no human action")
	assert.Equal(t, bridge.StatusActive, sess.Status)
	assert.Equal(t, []string{"provider_expired"}, d.restartReasons(), "one restart, from VCC's status")
	assert.NotContains(t, d.timelineTypes(), "frame.refused", "no announcement: a frame is never counted as refused")
	assert.Empty(t, traffic.sentSince(0, "frame.refused"))
	traffic.assertRefusedByProvider(t)
	d.screenshot("expiry-recovered")

	d.customerPays(info, id)
	traffic.assertNoTokenLeaks(t, d)
}

// TestBrowserRefusedFrameAnnounced runs the demo with the PCI Pal flow's PostMessage step
// (--announce) and expires the provider session while the browser is on its way to the payment
// page: no announcement comes from the refused frame, so the widget reports it when the frame
// timeout passes, and paybridge restarts on that report (VCC's status is not asked in time
// here: polls every minute, no webhook). The new attempt's page announces itself.
func TestBrowserRefusedFrameAnnounced(t *testing.T) {
	info, _, traffic, d := openDemoDesk(t, "--announce", "--poll-interval", "1m", "--vcc-webhook=false")

	d.expireWhileLoading()
	d.waitFor("the widget to report the refused frame", `document.querySelector(".pb-timeline li[data-type='frame.refused'][data-attempt='1']")`)
	d.waitFor("paybridge to restart", `document.querySelector(".pb-timeline li[data-type='restarting']")`)
	id := d.shownSession()
	// paybridge learns the provider session guid from VCC's status, which it does not ask here:
	// the capture page is recognised by the iframe URL handed over for attempt 2.
	d.waitFor("attempt 2's capture page", `(() => { const f = document.querySelector(".pb-frame"); return f && f.dataset.attempt === "2"; })()`)
	var fv frameView
	require.Eventually(t, func() bool {
		var err error
		fv, err = d.frame()
		return err == nil && fv.PCIPalState == "capture"
	}, waitTimeout, 50*time.Millisecond, "the capture page in the frame")
	assert.Equal(t, 2, fv.Attempt, "the new attempt's capture page, with no human action")
	assert.Contains(t, traffic.iframeURL(2), "/view/"+fv.PCIPalSession+"/framed")
	sess := apiSession(t, info, id)
	assert.Equal(t, bridge.StatusActive, sess.Status)
	assert.Equal(t, 2, sess.Attempt)
	assert.Equal(t, []string{"frame_refused"}, d.restartReasons(), "one restart, on the widget's report")
	d.waitFor("attempt 2 to announce itself", `document.querySelector(".pb-timeline li[data-type='frame.loaded'][data-attempt='2'][data-announced='true']")`)
	var refused []timelineItem
	for _, it := range d.timeline() {
		if it.Type == "frame.refused" {
			refused = append(refused, it)
		}
	}
	require.Len(t, refused, 1)
	assert.Equal(t, "no_announcement", refused[0].Reason)
	assert.NotEmpty(t, traffic.sentSince(0, "frame.refused"))
	traffic.assertRefusedByProvider(t)
	d.screenshot("refused-frame-announced")
	traffic.assertNoTokenLeaks(t, d)
}

// TestBrowserAnnouncedLogin runs the demo with the PostMessage step (--announce): the stub's
// login takes two navigations in the frame before the capture page announces itself, and the
// widget counts the frame as loaded once, from the announcement, with no refusal and no second
// attempt once the frame timeout has long passed.
func TestBrowserAnnouncedLogin(t *testing.T) {
	info, _, traffic, d := openDemoDesk(t, "--announce")

	start := eval[float64](d, `performance.now()`)
	d.takePayment()
	id := d.shownSession()
	d.waitCapturePage(info, id, 1)
	items := d.timeline()
	require.Equal(t, []string{"ready", "handoff", "frame.loaded"}, d.timelineTypes())
	assert.Equal(t, "true", items[2].Announced, "loaded on the announcement, not on a load event")
	assert.Len(t, traffic.childFrameLoads(), 2, "two navigations in the frame: the login interstitial, then the capture page: %v", traffic.childFrameLoads())

	// The widget's frame timeout is 6 s: let it pass, with some margin.
	d.waitFor("the frame timeout to pass", fmt.Sprintf(`performance.now() > %f`, start+8000))
	assert.NotContains(t, d.timelineTypes(), "frame.refused")
	assert.Empty(t, traffic.sentSince(0, "frame.refused"))
	assert.Equal(t, 1, apiSession(t, info, id).Attempt, "no second attempt")
	assert.Equal(t, float64(1), getJSON(t, info.VCCStubURL+"/_control/stats", "")["createSession"], "one provider session")
	assert.Len(t, traffic.childFrameLoads(), 2, "nothing loaded since")
	d.customerPays(info, id)
	traffic.assertNoTokenLeaks(t, d)
}

// silentWidgetScript mounts a second widget on the demo page with a tiny frame timeout and
// records what it tells its host.
const silentWidgetScript = `(() => {
  const desk = document.getElementById("desk");
  const host = document.createElement("div");
  document.body.append(host);
  window.silent = {refused: [], loaded: []};
  const w = PayBridge.mount(host, {
    baseUrl: desk.dataset.baseUrl, publishableKey: desk.dataset.publishableKey, frameTimeoutMs: 20,
    getAgentToken: async () => (await (await fetch("/demo/api/agent-token", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({agentId: desk.dataset.agentId})})).json()).token,
  });
  w.on("frame.refused", (e) => window.silent.refused.push(e));
  w.on("frame.loaded", (e) => window.silent.loaded.push(e));
  window.silentWidget = w;
  return true;
})()`

// TestBrowserSilentPageStays shows a payment from a provider page that announces nothing (the
// default, as live PCI Pal) in the desk's widget and in a second one with a 20 ms frame timeout,
// moves paybridge's clock 60 s on (so a refusal report would be acted on), and lets more than a
// hundred of those timeouts pass: no widget reports a refusal and the handoff stays on attempt 1.
func TestBrowserSilentPageStays(t *testing.T) {
	clock := &offsetClock{}
	info, _, traffic, d := openDemoDeskOn(t, clock)
	require.True(t, eval[bool](d, silentWidgetScript))
	d.waitFor("the second widget to connect", `document.querySelectorAll(".pb-widget[data-state='connected']").length === 2`)

	d.takePayment()
	id := d.shownSession()
	d.waitCapturePage(info, id, 1)
	d.waitFor("the second widget's frame to load", `window.silent.loaded.length === 1`)
	clock.advance(60 * time.Second)
	start := eval[float64](d, `performance.now()`)
	d.waitFor("a hundred 20 ms frame timeouts", fmt.Sprintf(`performance.now() > %f`, start+100*20))

	assert.Zero(t, eval[int](d, `window.silent.refused.length`))
	assert.Equal(t, 2, eval[int](d, `document.querySelectorAll(".pb-panel[data-frame='loaded']").length`), "both frames count as loaded")
	assert.NotContains(t, d.timelineTypes(), "frame.refused")
	assert.Empty(t, traffic.sentSince(0, "frame.refused"))
	assert.Len(t, traffic.sentSince(0, "frame.loaded"), 2, "each widget reported its frame loaded once")
	assert.Equal(t, 1, apiSession(t, info, id).Attempt, "still attempt 1, 60 s later")
	assert.Equal(t, float64(1), getJSON(t, info.VCCStubURL+"/_control/stats", "")["createSession"], "one provider session")
	d.customerPays(info, id)
	traffic.assertNoTokenLeaks(t, d)
}

// TestBrowserReloadAfterLifetime makes attempts old by moving paybridge's clock past the
// provider lifetime (1 minute here). A reload then shows a fresh attempt, and no form POST
// carries the old attempt's tokens: the widget asks (session.refresh) before posting what the
// ready snapshot holds. A tab coming back to the foreground after another lifetime asks too:
// paybridge renews the attempt, with no reload and no reconnect.
func TestBrowserReloadAfterLifetime(t *testing.T) {
	clock := &offsetClock{}
	info, ctx, traffic, d := openDemoDeskOn(t, clock, "--provider-lifetime", "1m")

	d.takePayment()
	id := d.shownSession()
	d.waitCapturePage(info, id, 1)
	old := traffic.bearer(1)
	require.NotEmpty(t, old)

	clock.advance(61 * time.Second)
	mark := traffic.mark()
	require.NoError(t, chromedp.Do(ctx, chromedp.Reload()))
	d.waitFor("the widget to connect again", `document.querySelector(".pb-widget").dataset.state === "connected"`)
	fv, _ := d.waitCapturePage(info, id, 2)
	assert.Equal(t, 2, fv.Attempt, "a fresh attempt after the lifetime")
	posts := traffic.postsSince(mark)
	require.NotEmpty(t, posts)
	for _, p := range posts {
		assert.NotEqual(t, old, p.Bearer, "no form POST of attempt 1's tokens after the lifetime")
	}
	assert.Equal(t, traffic.bearer(2), posts[0].Bearer)
	asks := traffic.sentSince(mark, "session.refresh")
	require.NotEmpty(t, asks, "the widget asked before posting the snapshot's tokens")
	assert.Less(t, asks[0].Seq, posts[0].Seq, "asked first, posted after the answer")
	assert.Equal(t, id, asks[0].SessionID)

	// The tab goes to the background and comes back after another lifetime (the browser's
	// visibilitychange, dispatched here: a headless tab is always visible).
	old = traffic.bearer(2)
	clock.advance(61 * time.Second)
	mark = traffic.mark()
	eval[bool](d, `document.dispatchEvent(new Event("visibilitychange")) || true`)
	fv, _ = d.waitCapturePage(info, id, 3)
	assert.Equal(t, 3, fv.Attempt)
	assert.Equal(t, []string{"lifetime_elapsed"}, d.restartReasons())
	asks = traffic.sentSince(mark, "session.refresh")
	require.NotEmpty(t, asks)
	assert.Equal(t, 2, asks[0].Attempt)
	for _, p := range traffic.postsSince(mark) {
		assert.NotEqual(t, old, p.Bearer, "no form POST of attempt 2's tokens after the lifetime")
	}
	d.customerPays(info, id)
	traffic.assertNoTokenLeaks(t, d)
}

// TestBrowserStartNewOne presses the panel's "Payment page not showing? Start a new one": right
// after a page was started paybridge refuses (rate_limit_exceeded), which the panel says kindly;
// a few seconds later (paybridge's clock) it starts a new attempt. The action is there while
// the payment is open and gone with the outcome.
func TestBrowserStartNewOne(t *testing.T) {
	clock := &offsetClock{}
	info, _, traffic, d := openDemoDeskOn(t, clock)
	assert.True(t, eval[bool](d, `document.querySelector(".pb-help").hidden`), "no action without a payment")

	d.takePayment()
	id := d.shownSession()
	d.waitCapturePage(info, id, 1)
	require.False(t, eval[bool](d, `document.querySelector(".pb-help").hidden`), "the action is shown while the payment is open")
	assert.Contains(t, eval[string](d, `document.querySelector(".pb-help").textContent`), "Payment page not showing?")

	d.click(".pb-retry")
	d.waitFor("paybridge's refusal", `document.querySelector(".pb-timeline li[data-type='error'][data-code='rate_limit_exceeded']")`)
	msg := eval[string](d, `document.querySelector(".pb-message").textContent`)
	assert.Contains(t, msg, "started a moment ago")
	assert.NotContains(t, msg, "rate_limit", "kindly, without the code")
	assert.Equal(t, 1, apiSession(t, info, id).Attempt)

	clock.advance(6 * time.Second)
	d.click(".pb-retry")
	fv, _ := d.waitCapturePage(info, id, 2)
	assert.Equal(t, 2, fv.Attempt)
	assert.Equal(t, []string{"restart_requested"}, d.restartReasons())
	assert.False(t, eval[bool](d, `document.querySelector(".pb-help").hidden`), "still there for the new attempt")
	sent := traffic.sentSince(0, "session.restart")
	require.Len(t, sent, 2)
	assert.Equal(t, id, sent[0].SessionID)

	d.customerPays(info, id)
	assert.True(t, eval[bool](d, `document.querySelector(".pb-help").hidden`), "gone with the outcome")
	traffic.assertNoTokenLeaks(t, d)
}

// TestBrowserCSPRefusal answers the iframe's form POST with a CSP frame-ancestors refusal (the
// browser intercepts it and answers for the provider): Chromium reports it to the page, the
// widget counts that as evidence without any announcement, and paybridge restarts on its report.
func TestBrowserCSPRefusal(t *testing.T) {
	clock := &offsetClock{}
	info, ctx, traffic, d := openDemoDeskOn(t, clock)

	paused := chromedp.Events(ctx, fetch.RequestPaused)
	_, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: "*/framed", ResourceType: network.ResourceTypeDocument}}})
	require.NoError(t, err)
	d.click("#take-payment-button")
	var held *fetch.EventRequestPaused
	for ev, err := range paused {
		require.NoError(t, err)
		held = &ev
		break
	}
	require.NotNil(t, held)
	// Old enough for paybridge to act on a browser's report at once.
	clock.advance(6 * time.Second)
	_, err = chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: held.RequestID, ResponseCode: 200,
		ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html"}, {Name: "Content-Security-Policy", Value: "frame-ancestors 'none'"}},
		Body:            []byte("<!doctype html><p>refused</p>")})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, fetch.Disable, cdp.Empty{})
	require.NoError(t, err)

	d.waitFor("the widget to report the refused frame", `document.querySelector(".pb-timeline li[data-type='frame.refused'][data-attempt='1']")`)
	id := d.shownSession()
	fv, _ := d.waitCapturePage(info, id, 2)
	assert.Equal(t, 2, fv.Attempt)
	assert.Equal(t, []string{"frame_refused"}, d.restartReasons())
	for _, it := range d.timeline() {
		if it.Type == "frame.refused" {
			assert.Equal(t, "csp_frame_ancestors", it.Reason)
		}
	}
	d.customerPays(info, id)
	traffic.assertNoTokenLeaks(t, d)
}

// TestBrowserReloadMidPayment reloads the desktop mid-payment, after a recovered expiry: the
// iframe comes back with the current attempt, from the socket's snapshot.
func TestBrowserReloadMidPayment(t *testing.T) {
	info, ctx, traffic, d := openDemoDesk(t)

	d.takePayment()
	id := d.shownSession()
	// The demo's "Provider session expires": VCC reports it, paybridge restarts by itself.
	d.click(`[data-demo-action="expire"]`)
	d.waitFor("the recovery", `document.getElementById("drive-status").dataset.state === "recovered"`)
	before, _ := d.waitCapturePage(info, id, 2)

	require.NoError(t, chromedp.Do(ctx, chromedp.Reload()))
	d.waitFor("the widget to connect again", `document.querySelector(".pb-widget").dataset.state === "connected"`)
	after, sess := d.waitCapturePage(info, id, 2)
	assert.Equal(t, before.Attempt, after.Attempt, "the current attempt, not the first")
	assert.Equal(t, sess.VCC.ProviderSessionGUID, after.PCIPalSession)
	assert.NotEqual(t, before.Name, "", "the frame was shown before the reload")
	assert.Equal(t, []string{"ready", "frame.loaded"}, d.timelineTypes(), "after the reload the page came from the ready snapshot")
	d.screenshot("reload-mid-payment")

	d.customerPays(info, id)
	traffic.assertNoTokenLeaks(t, d)
}

// TestBrowserTwoTabsAndAnotherAgent opens two tabs of the demo agent and one of another agent:
// both of the agent's tabs show every step of a payment, the other agent's shows nothing.
func TestBrowserTwoTabsAndAnotherAgent(t *testing.T) {
	browser := bridgetest.Browser(t)
	info := startDemo(t)
	ctx, cancel := context.WithTimeout(browser, browserTimeout)
	defer cancel()
	traffic := newTraffic()
	first := openDesk(t, ctx, traffic, "first tab", info.BaseURL+"/demo/agent")
	secondTab, closeSecond := chromedp.NewContext(ctx)
	defer closeSecond()
	second := openDesk(t, secondTab, traffic, "second tab", info.BaseURL+"/demo/agent")
	otherTab, closeOther := chromedp.NewContext(ctx)
	defer closeOther()
	other := openDesk(t, otherTab, traffic, "other agent", info.BaseURL+"/demo/agent?agent=agent-2")
	same := []*desk{first, second}

	first.takePayment()
	id := first.shownSession()
	for _, d := range same {
		fv, _ := d.waitCapturePage(info, id, 1)
		assert.Equal(t, 1, fv.Attempt, d.name)
	}
	// Expire from the second tab: both recover to attempt 2.
	second.click(`[data-demo-action="expire"]`)
	for _, d := range same {
		fv, _ := d.waitCapturePage(info, id, 2)
		assert.Equal(t, 2, fv.Attempt, d.name)
	}
	first.click(`[data-demo-action="pay"]`)
	for _, d := range same {
		d.waitFor("the success outcome", `document.querySelector(".pb-outcome[data-outcome='succeeded']")`)
		d.screenshot("tabs-" + strings.ReplaceAll(d.name, " ", "-"))
		types := d.timelineTypes()
		for _, want := range []string{"ready", "handoff", "frame.loaded", "restarting", "succeeded"} {
			assert.Contains(t, types, want, "%s timeline", d.name)
		}
		assert.Equal(t, 2, count(types, "handoff"), "%s got both attempts", d.name)
	}
	assert.Equal(t, bridge.StatusSucceeded, apiSession(t, info, id).Status)

	assert.Equal(t, []string{"ready"}, other.timelineTypes(), "another agent's tab sees nothing of it")
	assert.True(t, eval[bool](other, `document.querySelector(".pb-frame") === null && document.querySelector(".pb-panel").dataset.frame === "none"`))
	assert.Contains(t, eval[string](other, `document.querySelector(".pb-status-text").textContent`), "agent-2")
	other.screenshot("tabs-other-agent")
	traffic.assertNoTokenLeaks(t, first, second, other)
}

// TestBrowserBridgeRestart kills the paybridge process (SIGKILL) mid-payment and starts it again
// on the same address and data: the open page reconnects by itself, gets a fresh snapshot, and
// the payment completes.
func TestBrowserBridgeRestart(t *testing.T) {
	browser := bridgetest.Browser(t)
	dir := t.TempDir()
	infoPath := filepath.Join(dir, "info.json")
	args := []string{"demo", "--addr", freeAddr(t), "--stub-addr", freeAddr(t), "--data", filepath.Join(dir, "data"), "--info", infoPath}
	firstRun := startCommand(t, args...)
	info := waitInfo(t, infoPath, firstRun.stderr)
	keys := []string{info.SecretKey, info.PublishableKey}
	ctx, cancel := context.WithTimeout(browser, browserTimeout)
	defer cancel()
	traffic := newTraffic()
	d := openDesk(t, ctx, traffic, "desk", info.BaseURL+"/demo/agent")
	eval[bool](d, `window.paybridgeTestMarker = true`)

	d.takePayment()
	id := d.shownSession()
	d.waitCapturePage(info, id, 1)
	readyBefore := count(d.timelineTypes(), "ready")

	firstRun.kill9(t)
	require.NoError(t, os.Remove(infoPath))
	d.waitFor("the widget to notice", `document.querySelector(".pb-widget").dataset.state === "reconnecting"`)
	secondRun := startCommand(t, args...)
	info = waitInfo(t, infoPath, secondRun.stderr)
	d.waitFor("the widget to reconnect by itself", `document.querySelector(".pb-widget").dataset.state === "connected"`)
	assert.Greater(t, count(d.timelineTypes(), "ready"), readyBefore, "a new ready snapshot")
	assert.True(t, eval[bool](d, `window.paybridgeTestMarker === true`), "the page was not reloaded")

	// The stubs restarted empty, so paybridge finds the provider session gone and starts a new
	// attempt; the page shows it.
	d.waitCapturePage(info, id, 2)
	d.screenshot("bridge-restart-reconnected")
	d.customerPays(info, id)
	traffic.assertNoTokenLeaks(t, d)
	for _, secret := range append(keys, info.SecretKey, info.PublishableKey) {
		assert.NotContains(t, firstRun.stderr.String()+secondRun.stderr.String(), secret, "no key in the demo's logs")
	}
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// widgetAPIScript mounts a second widget on the demo page, as an integrator's page would, and
// reports what its public API did.
const widgetAPIScript = `(async () => {
  const desk = document.getElementById("desk");
  const out = {statuses: []};
  try {
    PayBridge.mount(document.createElement("div"), {baseUrl: desk.dataset.baseUrl, publishableKey: "vp_sk_test_x", getAgentToken: () => "x"});
  } catch (e) {
    out.secretKeyRefused = e.name;
  }
  try {
    PayBridge.mount(document.createElement("div"), {baseUrl: desk.dataset.baseUrl, publishableKey: desk.dataset.publishableKey, getAgentToken: () => "x", frameCheck: "maybe"});
  } catch (e) {
    out.badFrameCheck = e.name;
  }
  out.frameChecks = [];
  for (const frameCheck of ["auto", "announcement", "none", undefined]) {
    try {
      PayBridge.mount(document.createElement("div"), {baseUrl: desk.dataset.baseUrl, publishableKey: desk.dataset.publishableKey, getAgentToken: () => "x", frameCheck}).close();
      out.frameChecks.push(String(frameCheck));
    } catch (e) {
      out.frameChecks.push(e.name);
    }
  }
  let calls = 0;
  const host = document.createElement("div");
  document.body.append(host);
  const w = PayBridge.mount(host, {
    baseUrl: desk.dataset.baseUrl, publishableKey: desk.dataset.publishableKey,
    getAgentToken: async () => {
      calls++;
      if (calls === 1) return "vp_at_test_not.a-valid-token"; // paybridge rejects it: the widget must ask again
      const r = await fetch("/demo/api/agent-token", {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({agentId: desk.dataset.agentId})});
      return r.json(); // {token, expiresAt}: the object form
    },
    frameCheck: "none", // as for a provider page that does not announce itself
  });
  await new Promise((resolve) => w.on("status", (s) => { out.statuses.push(s.state); if (s.state === "connected") resolve(); }));
  out.tokenCalls = calls;
  try {
    await w.takePayment({amount: 0, currency: "GBP"});
  } catch (e) {
    Object.assign(out, {errName: e.name, errCode: e.code, errStatus: e.status, errFix: e.fix});
  }
  const handoff = new Promise((resolve) => w.on("handoff", resolve));
  const loaded = new Promise((resolve) => w.on("frame.loaded", resolve));
  const created = await w.takePayment({amount: 995, currency: "USD", reference: "API-1"});
  const h = await handoff;
  Object.assign(out, {createdId: created.id, handoffSession: h.sessionId, handoffHasFields: "formFields" in h, handoffHasURL: !!h.iframeUrl});
  out.loadedAttempt = (await loaded).attempt; // with frameCheck "none", the frame's load is enough
  w.close();
  out.closed = w.state.status;
  return out;
})()`

// TestBrowserWidgetAPI drives PayBridge.mount's public API directly: a rejected agent token is
// replaced by a fresh one from the host, takePayment's errors carry the API's code and fix,
// handoffs reach the host without the provider tokens, and a secret key is refused outright.
func TestBrowserWidgetAPI(t *testing.T) {
	info, ctx, traffic, d := openDemoDesk(t)

	type result struct {
		SecretKeyRefused string   `json:"secretKeyRefused"`
		BadFrameCheck    string   `json:"badFrameCheck"`
		FrameChecks      []string `json:"frameChecks"`
		LoadedAttempt    int      `json:"loadedAttempt"`
		Statuses         []string `json:"statuses"`
		TokenCalls       int      `json:"tokenCalls"`
		ErrName          string   `json:"errName"`
		ErrCode          string   `json:"errCode"`
		ErrStatus        int      `json:"errStatus"`
		ErrFix           string   `json:"errFix"`
		CreatedID        string   `json:"createdId"`
		HandoffSession   string   `json:"handoffSession"`
		HandoffHasFields bool     `json:"handoffHasFields"`
		HandoffHasURL    bool     `json:"handoffHasURL"`
		Closed           string   `json:"closed"`
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[result](widgetAPIScript, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, "TypeError", got.SecretKeyRefused, "mount refuses a secret key")
	assert.Equal(t, "TypeError", got.BadFrameCheck, "mount refuses an unknown frameCheck")
	assert.Equal(t, []string{"auto", "announcement", "none", "undefined"}, got.FrameChecks, "the known ones (and the old name of auto) are taken")
	assert.Equal(t, 1, got.LoadedAttempt, "with frameCheck none the frame counts as loaded when it loads")
	assert.Equal(t, 2, got.TokenCalls, "a rejected token (4401) makes the widget ask the host for a fresh one")
	// Waiting for the retry, retrying, connected; then closed by close().
	assert.Equal(t, []string{"reconnecting", "reconnecting", "connected", "closed"}, got.Statuses)
	assert.Equal(t, "PayBridgeAPIError", got.ErrName)
	assert.Equal(t, "validation_invalid_amount", got.ErrCode)
	assert.Equal(t, 400, got.ErrStatus)
	assert.NotEmpty(t, got.ErrFix)
	assert.NotEmpty(t, got.CreatedID)
	assert.Equal(t, got.CreatedID, got.HandoffSession)
	assert.True(t, got.HandoffHasURL)
	assert.False(t, got.HandoffHasFields, "the host never gets the provider tokens")
	assert.Equal(t, "closed", got.Closed)

	sess := apiSession(t, info, got.CreatedID)
	assert.Equal(t, int64(995), sess.Amount)
	assert.Equal(t, info.AgentID, sess.AgentID, "the agent comes from the agent token")
	// The page's own widget shows the session created through the other one: same agent.
	d.waitCapturePage(info, got.CreatedID, 1)
	d.screenshot("widget-api")
	traffic.assertNoTokenLeaks(t, d)
}
