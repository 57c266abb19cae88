package pcipalstub_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/pcipal/pcipalstub"
)

func TestPostMessageStep(t *testing.T) {
	const id = "cccccccc-0000-4000-8000-000000000001"
	tests := []struct {
		name       string
		step       *pcipalstub.PostMessage
		wantScript string // "" for no postMessage at all
	}{
		{"off by default, as live PCI Pal", nil, ""},
		{"exactly the configured data and origin",
			&pcipalstub.PostMessage{Data: json.RawMessage(`{"event":"paymentPageReady","n":1.50,"deep":{"a":[1,"x"]}}`), TargetOrigin: "https://desk.acme.test"},
			`window.parent.postMessage({"event":"paymentPageReady","n":1.50,"deep":{"a":[1,"x"]}}, "https://desk.acme.test");`},
		{"a string", &pcipalstub.PostMessage{Data: json.RawMessage(`"ready"`), TargetOrigin: "*"},
			`window.parent.postMessage("ready", "*");`},
		{"the session id placeholder", &pcipalstub.PostMessage{Data: json.RawMessage(`{"id":"{{sessionId}}","list":["{{sessionId}}","a {{sessionId}}"],"n":10000000000000001}`), TargetOrigin: "*"},
			`window.parent.postMessage({"id":"` + id + `","list":["` + id + `","a {{sessionId}}"],"n":10000000000000001}, "*");`},
		{"markup in the data stays data", &pcipalstub.PostMessage{Data: json.RawMessage(`{"x":"</script><script>alert(1)</script>"}`), TargetOrigin: "*"},
			`window.parent.postMessage({"x":"\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e"}, "*");`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, pcipalstub.Options{PostMessage: tt.step})
			s := sample(id)
			r := openForm(t, f.stub.Register(s), tokensForm(s))
			assertCapturePage(t, r, s)
			if tt.wantScript == "" {
				assert.NotContains(t, r.body, "postMessage")
				assert.Nil(t, f.stub.PostMessage())
				return
			}
			assert.Equal(t, 1, strings.Count(r.body, "postMessage("), r.body)
			assert.Contains(t, r.body, `window.addEventListener("load", function () {`+"\n    "+tt.wantScript, "posted once the page has loaded")
		})
	}
}

func TestSetPostMessage(t *testing.T) {
	f := newFixture(t, pcipalstub.Options{})
	s := sample("dddddddd-0000-4000-8000-000000000001")
	iframeURL := f.stub.Register(s)
	assert.NotContains(t, openForm(t, iframeURL, tokensForm(s)).body, "postMessage")

	step := &pcipalstub.PostMessage{Data: json.RawMessage(` {"ready":true} `), TargetOrigin: "http://127.0.0.1:8080"}
	require.NoError(t, f.stub.SetPostMessage(step))
	step.Data[2] = 'X' // the stub holds its own copy
	assert.Equal(t, &pcipalstub.PostMessage{Data: json.RawMessage(`{"ready":true}`), TargetOrigin: "http://127.0.0.1:8080"}, f.stub.PostMessage())
	assert.Contains(t, openForm(t, iframeURL, tokensForm(s)).body, `window.parent.postMessage({"ready":true}, "http://127.0.0.1:8080");`)

	require.NoError(t, f.stub.SetPostMessage(nil))
	assert.Nil(t, f.stub.PostMessage())
	assert.NotContains(t, openForm(t, iframeURL, tokensForm(s)).body, "postMessage")
}

func TestPostMessageValidation(t *testing.T) {
	tests := []struct {
		name   string
		step   pcipalstub.PostMessage
		wantOK bool
	}{
		{"object to any origin", pcipalstub.PostMessage{Data: json.RawMessage(`{}`), TargetOrigin: "*"}, true},
		{"https origin with port", pcipalstub.PostMessage{Data: json.RawMessage(`[1]`), TargetOrigin: "https://desk.example.com:8443"}, true},
		{"number", pcipalstub.PostMessage{Data: json.RawMessage(`0`), TargetOrigin: "*"}, true},
		{"no data", pcipalstub.PostMessage{TargetOrigin: "*"}, false},
		{"null data", pcipalstub.PostMessage{Data: json.RawMessage(` null `), TargetOrigin: "*"}, false},
		{"invalid JSON", pcipalstub.PostMessage{Data: json.RawMessage(`{`), TargetOrigin: "*"}, false},
		{"no origin", pcipalstub.PostMessage{Data: json.RawMessage(`{}`)}, false},
		{"origin with a path", pcipalstub.PostMessage{Data: json.RawMessage(`{}`), TargetOrigin: "https://desk.example.com/agent"}, false},
		{"origin with a trailing slash", pcipalstub.PostMessage{Data: json.RawMessage(`{}`), TargetOrigin: "https://desk.example.com/"}, false},
		{"not http", pcipalstub.PostMessage{Data: json.RawMessage(`{}`), TargetOrigin: "javascript:alert(1)"}, false},
		{"bare host", pcipalstub.PostMessage{Data: json.RawMessage(`{}`), TargetOrigin: "desk.example.com"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, pcipalstub.Options{})
			err := f.stub.SetPostMessage(&tt.step)
			if tt.wantOK {
				assert.NoError(t, err)
				assert.NotNil(t, f.stub.PostMessage())
				return
			}
			assert.Error(t, err)
			assert.Nil(t, f.stub.PostMessage(), "a refused step changes nothing")
		})
	}
	assert.Panics(t, func() {
		pcipalstub.New(pcipalstub.Options{PostMessage: &pcipalstub.PostMessage{TargetOrigin: "*"}})
	}, "an invalid step in Options is a programming error")
}
