package pcipalstub

import (
	"encoding/json"
	"html/template"
)

// StateLogin is the data-pcipal-state of the login interstitial, and StateSignedOut that of the
// sign-in page at /.
const (
	StateLogin     = "login"
	StateSignedOut = "signed-out"
)

// AttrNext on the interstitial's <html> element holds the capture page's URL, where its script
// goes once the login is refreshed; OpenFrame follows it.
const AttrNext = "data-pcipal-next"

const denyPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PCI Pal</title></head>
<body><p>` + DenyText + `</p></body></html>
`

const signInPage = `<!doctype html>
<html lang="en" data-pcipal-state="` + StateSignedOut + `"><head><meta charset="utf-8"><title>PCI Pal sign in (stub)</title></head>
<body style="font: 15px/1.4 system-ui, sans-serif; padding: 16px">
<h1 style="font-size: 17px">PCI Pal (stub)</h1>
<p>You are not signed in. Open the payment again from the agent desktop.</p>
</body></html>
`

// interstitialPage is what the login interstitial needs. It has no field for a token.
type interstitialPage struct {
	SessionID string
	Next      string // the capture page's path
}

// The interstitial refreshes the login it was just given, as PCI Pal's client does, then
// replaces itself with the capture page: the frame's second navigation.
var interstitialTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en" data-pcipal-session="{{.SessionID}}" data-pcipal-state="login" data-pcipal-next="{{.Next}}">
<head><meta charset="utf-8"><title>PCI Pal (stub): signing in</title></head>
<body style="font: 15px/1.4 system-ui, sans-serif; padding: 16px">
<p>Signing in to the secure payment page…</p>
<script>
(function () {
  var next = document.documentElement.getAttribute("data-pcipal-next");
  fetch("/refreshlogon", {method: "POST", credentials: "same-origin"}).then(function (r) {
    window.location.replace(r.ok ? next : "/");
  }, function () {
    window.location.replace("/");
  });
})();
</script>
</body>
</html>
`))

// capturePage is what the capture page shows. It has no field for a token, so none can leak.
type capturePage struct {
	SessionID, VCCSessionGUID, Amount, Currency, Reference string
	Decision, State                                        string
	RefreshMs                                              int64
	PostMessage                                            *postMessageView
}

// postMessageView is the flow's PostMessage step as the page runs it.
type postMessageView struct {
	Data         json.RawMessage // html/template writes it into the script as the JSON it is
	TargetOrigin string
}

var captureTemplate = template.Must(template.New("capture").Parse(`<!doctype html>
<html lang="en" data-pcipal-session="{{.SessionID}}" data-pcipal-state="{{.State}}" data-vcc-session="{{.VCCSessionGUID}}">
<head>
<meta charset="utf-8">
<title>PCI Pal secure capture (stub)</title>
<style>
 body { font: 15px/1.4 system-ui, sans-serif; margin: 0; padding: 16px; background: #f6f8fa; color: #1f2328; }
 h1 { font-size: 17px; margin: 0 0 12px; }
 .amount { font-size: 22px; font-weight: 600; }
 .field { margin: 10px 0; }
 .field label { display: block; font-size: 12px; color: #59636e; }
 .field output { display: block; padding: 6px 8px; border: 1px solid #d1d9e0; border-radius: 4px; background: #fff; font-family: ui-monospace, monospace; }
 .status { margin-top: 12px; color: #59636e; }
 .decision { margin-top: 12px; font-weight: 600; }
 .session { margin-top: 16px; font-size: 11px; color: #818b98; }
</style>
</head>
<body>
<h1>PCI Pal secure capture (stub)</h1>
<div class="amount"><span id="amount">{{.Amount}}</span> <span id="currency">{{.Currency}}</span></div>
{{if .Reference}}<div>Reference: <span id="reference">{{.Reference}}</span></div>{{end}}
<div class="field"><label>Card number</label><output id="card-number">•••• •••• •••• ••••</output></div>
<div class="field"><label>Expiry</label><output id="card-expiry">•• / ••</output></div>
<div class="field"><label>CVV</label><output id="card-cvv">•••</output></div>
{{if .Decision}}<div class="decision" id="decision">Payment decision: {{.Decision}}</div>
{{else}}<div class="status" id="status">waiting for the customer to key on the phone</div>
{{end}}<div class="session">Session <span id="session-id">{{.SessionID}}</span>{{if .VCCSessionGUID}} · VCC session <span id="vcc-session-guid">{{.VCCSessionGUID}}</span>{{end}}</div>
<script>
(function () {
  // Keep the login alive while the page is open; a lost login goes to the sign-in page.
  setInterval(function () {
    fetch("/refreshlogon", {method: "POST", credentials: "same-origin"}).then(function (r) {
      if (r.status === 401) window.location.replace("/");
    }, function () {});
  }, {{.RefreshMs}});
{{- if .PostMessage}}
  // The flow's PostMessage step.
  window.addEventListener("load", function () {
    window.parent.postMessage({{.PostMessage.Data}}, {{.PostMessage.TargetOrigin}});
  });
{{- end}}
})();
</script>
</body>
</html>
`))
