package main

import (
	"bytes"
	"encoding/json"
	"html/template"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/web"
	"github.com/paybridge/paybridge/webhook"
)

// demoWebhookPath is where the demo merchant's webhooks are delivered (POST) and listed (GET).
const demoWebhookPath = "/demo/webhooks"

// maxDemoDeliveries is how many deliveries the demo's receiver keeps; older ones are dropped.
const maxDemoDeliveries = 100

// maxDemoWebhookBody bounds what the receiver reads of one delivery: paybridge's are a few KiB.
const maxDemoWebhookBody = 64 << 10

// demoDelivery is one webhook delivery as the demo's receiver saw it.
type demoDelivery struct {
	ReceivedAt time.Time `json:"receivedAt"`
	EventID    string    `json:"eventId"`
	Type       string    `json:"type"`
	SessionID  string    `json:"sessionId"`
	// SignatureValid is what webhook.Verify said of the X-VonPay-Signature header with the demo
	// merchant's secret; SignatureError says why not.
	SignatureValid bool   `json:"signatureValid"`
	SignatureError string `json:"signatureError,omitempty"`
	// Duplicate marks an event id received before: delivery is at least once, so a receiver
	// deduplicates on it.
	Duplicate bool `json:"duplicate"`
	// Body is the body as received (a JSON string if it was not JSON), credential-shaped text
	// redacted.
	Body json.RawMessage `json:"body"`
}

// demoDeliveryList is what GET /demo/webhooks answers a client asking for JSON.
type demoDeliveryList struct {
	Object string         `json:"object"`
	URL    string         `json:"url"`
	Data   []demoDelivery `json:"data"` // newest first
}

// demoWebhooks is the demo merchant's webhook receiver: what a merchant's backend does with
// paybridge's webhooks, in miniature. It checks each delivery's signature with the webhook
// package, as an integrator would, and keeps the last maxDemoDeliveries in memory to show them.
type demoWebhooks struct {
	secret string
	// clock is paybridge's: the signatures are made on it, and a test may move it.
	clock bridge.Clock

	mu   sync.Mutex
	list []demoDelivery // oldest first
}

// newDemoWebhooks returns a receiver that verifies with secret (the merchant's whsec_...).
func newDemoWebhooks(secret string, clock bridge.Clock) *demoWebhooks {
	if clock == nil {
		clock = bridge.SystemClock{}
	}
	return &demoWebhooks{secret: secret, clock: clock}
}

// receive records one delivery and says whether its signature holds.
func (h *demoWebhooks) receive(header http.Header, body []byte) demoDelivery {
	d := demoDelivery{ReceivedAt: h.clock.Now().UTC(), EventID: header.Get(webhook.EventIDHeader)}
	if err := webhook.Verify(body, header.Get(webhook.Header), h.secret, h.clock.Now(), 0); err != nil {
		// The webhook package's errors quote neither the header, nor the body, nor the secret.
		d.SignatureError = strings.TrimPrefix(err.Error(), "webhook: ")
	} else {
		d.SignatureValid = true
	}
	var payload struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	redacted := web.Redact(string(body))
	if json.Unmarshal(body, &payload) == nil && json.Valid([]byte(redacted)) {
		d.Type, d.SessionID, d.Body = payload.Type, payload.Data.ID, json.RawMessage(redacted)
		if d.EventID == "" {
			d.EventID = payload.ID
		}
	} else {
		d.Body, _ = json.Marshal(redacted)
	}
	d.EventID, d.Type, d.SessionID = capShown(d.EventID), capShown(d.Type), capShown(d.SessionID)

	h.mu.Lock()
	defer h.mu.Unlock()
	d.Duplicate = d.EventID != "" && slices.ContainsFunc(h.list, func(o demoDelivery) bool { return o.EventID == d.EventID })
	if len(h.list) == maxDemoDeliveries {
		h.list = slices.Delete(h.list, 0, 1)
	}
	h.list = append(h.list, d)
	return d
}

// deliveries returns the kept deliveries, newest first.
func (h *demoWebhooks) deliveries() []demoDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.list)
	slices.Reverse(out)
	return out
}

// capShown cuts a value shown on the list: the header and body are the sender's to choose.
func capShown(s string) string {
	if len(s) > 100 {
		return strings.ToValidUTF8(s[:100], "") + "…"
	}
	return s
}

// receiveWebhook is POST /demo/webhooks: the demo merchant's webhook endpoint. A delivery whose
// signature holds is answered 200; any other is refused (and listed, to show why), as a
// merchant's backend must.
func (d *demoDesk) receiveWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDemoWebhookBody))
	if err != nil {
		d.fail(w, r, bridge.Errorf(bridge.CodeValidationError, "The webhook body could not be read (at most %d KiB).", maxDemoWebhookBody>>10))
		return
	}
	got := d.webhooks.receive(r.Header, body)
	if !got.SignatureValid {
		code := bridge.CodeWebhookInvalidSignature
		if r.Header.Get(webhook.Header) == "" {
			code = bridge.CodeWebhookMissingSignature
		}
		d.fail(w, r, bridge.Errorf(code, "The demo merchant's receiver refused this delivery: %s.", got.SignatureError).
			WithFix("Sign the raw body with the demo merchant's webhook secret (X-VonPay-Signature: t=...,v1=...); see the webhook package."))
		return
	}
	web.WriteJSON(w, http.StatusOK, map[string]bool{"received": true})
}

// listWebhooks is GET /demo/webhooks: the deliveries received, newest first; JSON for a client
// that asks for it (Accept: application/json), a page for a browser.
func (d *demoDesk) listWebhooks(w http.ResponseWriter, r *http.Request) {
	list := demoDeliveryList{Object: "list", URL: d.info.BaseURL + demoWebhookPath, Data: d.webhooks.deliveries()}
	if wantsJSON(r.Header.Get("Accept")) {
		web.WriteJSON(w, http.StatusOK, list)
		return
	}
	var page bytes.Buffer
	if err := demoWebhooksPage.Execute(&page, list); err != nil {
		d.logger.ErrorContext(r.Context(), "render the demo webhooks page", "err", err)
		d.fail(w, r, bridge.Errorf(bridge.CodeInternalError, "The webhooks page could not be rendered."))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	_, _ = w.Write(page.Bytes())
}

// wantsJSON reports whether an Accept header asks for JSON rather than a page: application/json
// listed, text/html not.
func wantsJSON(accept string) bool {
	var js, html bool
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		js = js || mt == "application/json"
		html = html || mt == "text/html"
	}
	return js && !html
}

// indentJSON is the page's view of a body.
func indentJSON(raw json.RawMessage) string {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return string(raw)
	}
	return out.String()
}

var demoWebhooksPage = template.Must(template.New("webhooks").Funcs(template.FuncMap{"indent": indentJSON}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>paybridge demo — webhooks received</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="stylesheet" href="/demo/assets/agent.css">
</head>
<body>
<main class="webhooks">
<h1>Webhooks received <span class="badge">test mode</span></h1>
<p class="lede">The demo merchant's webhook endpoint is <code>{{.URL}}</code>: paybridge posts every session's final event
there, signed with <code>X-VonPay-Signature</code>, and the demo checks each signature with the <code>webhook</code> package's
<code>Verify</code>, as your backend would. The last 100 deliveries, newest first (<a href="">refresh</a>;
<code>curl -H 'Accept: application/json' {{.URL}}</code> for JSON). Back to the <a href="/demo/agent">agent desktop</a>.</p>
{{if .Data}}
<table class="codes deliveries">
<thead><tr><th>Received</th><th>Event</th><th>Session</th><th>Signature</th><th>Body</th></tr></thead>
<tbody>
{{range .Data}}<tr data-event-id="{{.EventID}}" data-valid="{{.SignatureValid}}">
<td><time datetime="{{.ReceivedAt.Format "2006-01-02T15:04:05Z07:00"}}">{{.ReceivedAt.Format "15:04:05"}}</time></td>
<td><strong>{{.Type}}</strong><br><code>{{.EventID}}</code>{{if .Duplicate}}<br><em>again (at least once: deduplicate on the id)</em>{{end}}</td>
<td><code>{{.SessionID}}</code></td>
<td>{{if .SignatureValid}}<span class="sig-ok">valid</span>{{else}}<span class="sig-bad">invalid</span>: {{.SignatureError}}{{end}}</td>
<td><details><summary>body</summary><pre>{{indent .Body}}</pre></details></td>
</tr>
{{end}}</tbody>
</table>
{{else}}
<p class="empty">Nothing yet. Take a payment on the <a href="/demo/agent">agent desktop</a> and finish it: its final event arrives here within a second or two.</p>
{{end}}
</main>
</body>
</html>
`))
