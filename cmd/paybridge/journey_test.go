package main

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// TestNewcomerWebhookJourney is issue 13's acceptance, as a newcomer would walk it from a fresh
// clone: run the demo, take a payment, see its signed webhook in /demo/webhooks, list it and
// resend it with the API (the resend arrives, verified, as a duplicate of the same event), and
// get the same event from `paybridge listen` forwarding to a local URL.
func TestNewcomerWebhookJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the demo")
	}
	info, _, _ := startDemoRun(t)

	fwd := &forwardReceiver{}
	receiver := httptest.NewServer(fwd)
	defer receiver.Close()
	out, stopListen := startListen(t, info.BaseURL, info.SecretKey, fwd, receiver.URL)

	// Take a payment: the customer pays on the stub's page.
	created := postJSON(t, info.BaseURL+"/v1/sessions", info.SecretKey, `{"agentId":"`+info.AgentID+`","amount":1240,"currency":"GBP"}`)
	id := created["id"].(string)
	postJSON(t, info.VCCStubURL+"/_control/sessions/"+created["vcc"].(map[string]any)["sessionGuid"].(string)+"/complete", "", `{"decision":"ACCEPT"}`)

	// Its signed webhook in /demo/webhooks.
	deliveries := func() []demoDelivery {
		var mine []demoDelivery
		for _, d := range demoDeliveries(t, info).Data {
			if d.SessionID == id {
				mine = append(mine, d)
			}
		}
		return mine
	}
	require.Eventually(t, func() bool { return len(deliveries()) == 1 }, 20*time.Second, 50*time.Millisecond)
	first := deliveries()[0]
	assert.True(t, first.SignatureValid, first.SignatureError)
	assert.Equal(t, string(bridge.EventSucceeded), first.Type)

	// The same event through the API: listed for the session, with its delivery attempt.
	list := getJSON(t, info.BaseURL+"/v1/events?sessionId="+id, info.SecretKey)
	data := list["data"].([]any)
	require.Len(t, data, 1)
	assert.Equal(t, first.EventID, data[0].(map[string]any)["id"])
	require.Eventually(t, func() bool {
		ev := getJSON(t, info.BaseURL+"/v1/events/"+first.EventID, info.SecretKey)
		attempts, _ := ev["attempts"].([]any)
		return ev["delivery"] == "delivered" && len(attempts) == 1
	}, 20*time.Second, 50*time.Millisecond, "the event records its delivery")

	// Resent: a second verified delivery of the same event id, marked as a duplicate.
	resent := postJSON(t, info.BaseURL+"/v1/events/"+first.EventID+"/resend", info.SecretKey, "")
	assert.Equal(t, first.EventID, resent["id"])
	require.Eventually(t, func() bool { return len(deliveries()) == 2 }, 20*time.Second, 50*time.Millisecond)
	again := deliveries()[0] // newest first
	assert.Equal(t, first.EventID, again.EventID)
	assert.True(t, again.SignatureValid, again.SignatureError)
	assert.True(t, again.Duplicate)

	// And `paybridge listen` forwarded the same event, signed with the secret it printed.
	require.Eventually(t, func() bool { got, _, _ := fwd.snapshot(); return len(got) >= 1 }, 20*time.Second, 10*time.Millisecond, "%s", out)
	stopListen()
	got, ids, bad := fwd.snapshot()
	assert.Zero(t, bad, "every forward verifies")
	assert.Equal(t, []string{"session.succeeded " + id}, got)
	assert.Equal(t, []string{first.EventID}, ids)
}
