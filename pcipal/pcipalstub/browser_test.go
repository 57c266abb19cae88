package pcipalstub_test

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
)

// hostPage is an agent desktop on another origin that embeds the iframe the documented way: a
// hidden form POSTs the two tokens into a named iframe that starts at about:blank. It records
// the frame's loads of real (cross-origin) documents and every message that reaches it.
var hostPage = template.Must(template.New("host").Parse(`<!doctype html>
<html><body>
<iframe name="pcipal" id="pcipal" src="about:blank"></iframe>
<form id="handoff" method="POST" action="{{.IframeURL}}" target="pcipal">
<input type="hidden" name="X-BEARER-TOKEN" value="{{.Bearer}}">
<input type="hidden" name="X-REFRESH-TOKEN" value="{{.Refresh}}">
</form>
<script>
window.received = [];
window.loads = 0;
const frame = document.getElementById("pcipal");
window.addEventListener("message", function (e) {
  window.received.push({origin: e.origin, data: e.data, fromFrame: e.source === frame.contentWindow});
});
frame.addEventListener("load", function () {
  try { frame.contentWindow.location.href; } catch (err) { window.loads++; } // a cross-origin document
});
document.getElementById("handoff").submit();
</script>
</body></html>`))

// received is one message as the host page saw it.
type received struct {
	Origin    string          `json:"origin"`
	Data      json.RawMessage `json:"data"`
	FromFrame bool            `json:"fromFrame"`
}

// TestBrowserLoginAndPostMessage runs the framed view in Chromium, cross-origin to its host page:
// the login takes two navigations in the frame (its cookies work there), the capture page keeps
// the login alive, and the parent gets a message only from a configured PostMessage step,
// carrying exactly the configured data from the stub's origin.
func TestBrowserLoginAndPostMessage(t *testing.T) {
	browser := bridgetest.Browser(t)
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()

	const id = "77777777-0000-4000-8000-000000000001"
	tests := []struct {
		name string
		step func(hostOrigin string) *pcipalstub.PostMessage
		want []string // the messages' data, as JSON; nil: none
	}{
		{"no PostMessage step: the parent hears nothing", func(string) *pcipalstub.PostMessage { return nil }, nil},
		{"a PostMessage step: exactly its data", func(host string) *pcipalstub.PostMessage {
			return &pcipalstub.PostMessage{Data: json.RawMessage(`{"event":"ready","session":"{{sessionId}}","n":[1,2.5]}`), TargetOrigin: host}
		}, []string{`{"event":"ready","session":"` + id + `","n":[1,2.5]}`}},
		{"a step for another origin: the browser drops it", func(string) *pcipalstub.PostMessage {
			return &pcipalstub.PostMessage{Data: json.RawMessage(`{"event":"ready"}`), TargetOrigin: "http://127.0.0.1:1"}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A real clock: the login must outlive the page's real-time refreshes.
			stub := pcipalstub.New(pcipalstub.Options{LoginRefresh: 100 * time.Millisecond})
			srv := httptest.NewServer(stub)
			t.Cleanup(srv.Close)
			stub.SetBaseURL(srv.URL)
			s := sample(id)
			iframeURL := stub.Register(s)
			host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_ = hostPage.Execute(w, map[string]string{"IframeURL": iframeURL, "Bearer": s.BearerToken, "Refresh": s.RefreshToken})
			}))
			t.Cleanup(host.Close)
			require.NotEqual(t, host.URL, srv.URL, "the two pages must be cross-origin")
			require.NoError(t, stub.SetPostMessage(tt.step(host.URL)))

			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(host.URL)))
			// Two navigations in the frame: the interstitial, then the capture page (counted by
			// the stub: the interstitial's own load event may never fire when it navigates on
			// before its load completes, so the page's count of loads is no measure of them).
			// Then wait for two of the capture page's periodic login refreshes: by then its load
			// handler, which would post the message, has long run.
			_, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.loads >= 1`, chromedp.WithPollingTimeout(20*time.Second)))
			require.NoError(t, err)
			require.Eventually(t, func() bool { return stub.Stats().LoginRefreshes >= 3 }, 20*time.Second, 10*time.Millisecond,
				"the interstitial's refresh and two periodic ones: %+v", stub.Stats())

			st := stub.Stats()
			assert.Equal(t, 1, st.FramePosts)
			assert.Equal(t, 1, st.Logins)
			assert.Equal(t, 1, st.CapturePages)
			assert.Zero(t, st.Refused)
			assert.Zero(t, st.SignedOut, "the login cookie reached the capture page in the cross-origin frame")
			loads, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.loads`))
			require.NoError(t, err)
			assert.Contains(t, []int{1, 2}, loads, "the capture page loaded in the frame (the interstitial's load may not fire)")
			assert.Equal(t, 1, st.Logins, "two navigations per attempt: the interstitial (one login) ...")
			assert.Equal(t, 1, st.CapturePages, "... then the capture page")
			assert.True(t, strings.HasSuffix(childFrameURL(t, ctx), "/session/paybridge-sandbox/view/"+id+"/capture"))

			got, err := chromedp.Run(ctx, chromedp.Evaluate[[]received](`window.received`))
			require.NoError(t, err)
			require.Len(t, got, len(tt.want), "%+v", got)
			for i, want := range tt.want {
				assert.JSONEq(t, want, string(got[i].Data))
				assert.Equal(t, srv.URL, got[i].Origin, "the message comes from the stub's origin")
				assert.True(t, got[i].FromFrame)
			}
		})
	}
}

// childFrameURL returns the URL of the page's only child frame.
func childFrameURL(t *testing.T, ctx context.Context) string {
	t.Helper()
	tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
	require.NoError(t, err)
	require.Len(t, tree.FrameTree.ChildFrames, 1)
	return tree.FrameTree.ChildFrames[0].Frame.URL
}
