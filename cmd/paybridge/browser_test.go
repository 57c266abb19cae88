package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

// TestBrowserExpiryRecovers expires the provider session while the browser is on its way to the
// payment page: the form POST is refused with X-Frame-Options: deny, the widget notices and
// reports it, paybridge restarts, and the new attempt's capture page appears with no human
// action; the payment then succeeds.
func TestBrowserExpiryRecovers(t *testing.T) {
	// paybridge polls VCC every 4 s here (the first poll of a new session comes 3.2 s or more
	// after it was created), and the stub VCC's webhook is off (it would report the expiry at
	// once), so the widget's report usually finds the expiry first.
	info, ctx, traffic, d := openDemoDesk(t, "--poll-interval", "4s", "--vcc-webhook=false")

	// Hold the iframe's form POST in the browser until the provider session has ended.
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
	d.click(`[data-demo-action="expire"]`)
	d.waitFor("the demo's expire call", `document.getElementById("desk").dataset.lastAction === "expire"`)
	_, err = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: held.RequestID})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, fetch.Disable, cdp.Empty{})
	require.NoError(t, err)

	d.waitFor("the widget to report the refused frame", `document.querySelector(".pb-timeline li[data-type='frame.refused'][data-attempt='1']")`)
	d.waitFor("paybridge to restart", `document.querySelector(".pb-timeline li[data-type='restarting']")`)
	id := d.shownSession()
	fv, sess := d.waitCapturePage(info, id, 2)
	assert.Equal(t, 2, fv.Attempt, "the new attempt's capture page, with no human action")
	assert.Equal(t, bridge.StatusActive, sess.Status)
	// The widget's report is the trigger (reason frame_refused), unless paybridge's own poll of VCC
	// saw the ended provider session first on a loaded machine (reason provider_expired). Either
	// way there is exactly one restart.
	reasons := eval[[]string](d, `[...document.querySelectorAll(".pb-timeline li[data-type='restarting']")].map((li) => li.dataset.reason)`)
	require.Len(t, reasons, 1, "one restart")
	assert.Contains(t, []string{"frame_refused", "provider_expired"}, reasons[0])

	// The refused POST really was answered with X-Frame-Options: deny, which the browser logged.
	first := traffic.iframeURL(1)
	require.NotEmpty(t, first)
	refused := traffic.documentsFor(first)
	require.NotEmpty(t, refused, "the provider's answer to attempt 1's form POST")
	assert.Equal(t, "deny", strings.ToLower(refused[0].FrameOptions))
	assert.Contains(t, traffic.consoleText(), "X-Frame-Options", "the browser's refusal is in the console (so the console is recorded)")
	assert.NotEqual(t, first, traffic.iframeURL(2), "attempt 2 is a new provider session")
	d.screenshot("expiry-recovered")

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
