package pcipalstub_test

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/pcipal"
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
)

// hostPage is an agent desktop on another origin that embeds the iframe the documented way: a
// hidden form POSTs the two tokens into a named iframe that starts at about:blank.
var hostPage = template.Must(template.New("host").Parse(`<!doctype html>
<html><body>
<iframe name="pcipal" src="about:blank"></iframe>
<form id="handoff" method="POST" action="{{.IframeURL}}" target="pcipal">
<input type="hidden" name="X-BEARER-TOKEN" value="{{.Bearer}}">
<input type="hidden" name="X-REFRESH-TOKEN" value="{{.Refresh}}">
</form>
<script>
window.received = [];
window.addEventListener("message", function (e) { window.received.push({origin: e.origin, data: e.data}); });
document.getElementById("handoff").submit();
</script>
</body></html>`))

func TestBrowserShowsCapturePageAndGetsReadyMessage(t *testing.T) {
	ctx := bridgetest.Browser(t)
	f := newFixture(t, pcipalstub.Options{})
	s := sample("77777777-0000-4000-8000-000000000001")
	iframeURL := f.stub.Register(s)

	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = hostPage.Execute(w, map[string]string{"IframeURL": iframeURL, "Bearer": s.BearerToken, "Refresh": s.RefreshToken})
	}))
	t.Cleanup(host.Close)
	require.NotEqual(t, host.URL, f.srv.URL, "the two pages must be cross-origin")

	ctx, cancelTimeout := context.WithTimeout(ctx, 30*time.Second)
	defer cancelTimeout()

	type received struct {
		Origin string              `json:"origin"`
		Data   pcipal.ReadyMessage `json:"data"`
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(host.URL)))
	got, err := chromedp.Run(ctx, chromedp.Poll[received](`window.received.length > 0 && window.received[0]`,
		chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err)
	assert.Equal(t, pcipal.ReadyMessage{Source: "pcipal-stub", Type: "pcipal.ready", SessionID: s.ID}, got.Data)
	assert.Equal(t, strings.TrimSuffix(f.srv.URL, "/"), got.Origin, fmt.Sprintf("the message comes from the stub's origin %s", f.srv.URL))
}
