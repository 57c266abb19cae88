package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/webhook"
)

// TestDemoWebhooksReceiver checks the receiver's verdicts on signed, stale, forged and unsigned
// deliveries, the duplicate mark, and that it keeps only the last maxDemoDeliveries.
func TestDemoWebhooksReceiver(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := bridgetest.NewManualClock(now)
	const secret = "whsec_demoSecret0123456789"
	body := []byte(`{"id":"vp_evt_1","type":"session.succeeded","data":{"id":"vp_cs_test_1","metadata":{"note":"vp_sk_test_abcdefghijkl"}}}`)
	tests := []struct {
		name      string
		header    string
		eventID   string
		wantValid bool
		wantErr   string
	}{
		{"signed now", webhook.Sign(body, now, secret), "vp_evt_1", true, ""},
		{"signed 10 minutes ago", webhook.Sign(body, now.Add(-10*time.Minute), secret), "", false, "timestamp outside the tolerance"},
		{"another secret", webhook.Sign(body, now, "whsec_other"), "", false, "does not match"},
		{"no signature", "", "", false, "no signature header"},
		{"garbage", "t=x,v1=y", "", false, "malformed"},
	}
	h := newDemoWebhooks(secret, clock)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{}
			if tt.header != "" {
				hdr.Set(webhook.Header, tt.header)
			}
			if tt.eventID != "" {
				hdr.Set(webhook.EventIDHeader, tt.eventID)
			}
			got := h.receive(hdr, body)
			assert.Equal(t, tt.wantValid, got.SignatureValid)
			if tt.wantErr == "" {
				assert.Empty(t, got.SignatureError)
			} else {
				assert.Contains(t, got.SignatureError, tt.wantErr)
			}
			assert.Equal(t, "vp_evt_1", got.EventID, "from the header, else the body")
			assert.Equal(t, "session.succeeded", got.Type)
			assert.Equal(t, "vp_cs_test_1", got.SessionID)
			assert.Equal(t, i > 0, got.Duplicate, "the same event id again")
			assert.NotContains(t, string(got.Body), "vp_sk_test_abcdefghijkl", "credential-shaped text is redacted")
			assert.True(t, json.Valid(got.Body))
		})
	}

	// Not JSON: kept as a JSON string.
	got := h.receive(http.Header{}, []byte("not json"))
	assert.Equal(t, `"not json"`, string(got.Body))

	for i := range maxDemoDeliveries + 5 {
		hdr := http.Header{}
		hdr.Set(webhook.EventIDHeader, fmt.Sprintf("vp_evt_n%d", i))
		h.receive(hdr, []byte(`{}`))
	}
	list := h.deliveries()
	require.Len(t, list, maxDemoDeliveries)
	assert.Equal(t, fmt.Sprintf("vp_evt_n%d", maxDemoDeliveries+4), list[0].EventID, "newest first")
	assert.Equal(t, "vp_evt_n5", list[len(list)-1].EventID, "the oldest ones dropped")
}

// demoDeliveries reads GET /demo/webhooks as JSON.
func demoDeliveries(t *testing.T, info demoInfo) demoDeliveryList {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, info.WebhooksURL, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var list demoDeliveryList
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	return list
}

// TestDemoWebhooks takes a payment in the demo: its terminal event reaches the demo merchant's
// own receiver once, signed and verified, and /demo/webhooks lists it (JSON and a page). A forged
// delivery is refused and listed as invalid.
func TestDemoWebhooks(t *testing.T) {
	info, banner, _ := startDemoRun(t)
	require.Equal(t, info.BaseURL+"/demo/webhooks", info.WebhooksURL)
	assert.Contains(t, banner, "webhooks received: "+info.WebhooksURL)
	assert.Empty(t, demoDeliveries(t, info).Data, "nothing before a payment")

	created := postJSON(t, info.BaseURL+"/v1/sessions", info.SecretKey, `{"agentId":"`+info.AgentID+`","amount":1240,"currency":"GBP"}`)
	id := created["id"].(string)
	guid := created["vcc"].(map[string]any)["sessionGuid"].(string)
	postJSON(t, info.VCCStubURL+"/_control/sessions/"+guid+"/complete", "", `{"decision":"ACCEPT"}`)

	var mine []demoDelivery
	require.Eventually(t, func() bool {
		mine = nil
		for _, d := range demoDeliveries(t, info).Data {
			if d.SessionID == id {
				mine = append(mine, d)
			}
		}
		return len(mine) > 0
	}, 20*time.Second, 50*time.Millisecond, "the terminal event reached /demo/webhooks")
	require.Len(t, mine, 1, "one delivery of the session's terminal event")
	got := mine[0]
	assert.True(t, got.SignatureValid, got.SignatureError)
	assert.Equal(t, string(bridge.EventSucceeded), got.Type)
	assert.True(t, strings.HasPrefix(got.EventID, "vp_evt_"), got.EventID)
	assert.False(t, got.Duplicate)
	var body struct {
		ID   string
		Type string
		Data bridge.SessionView
	}
	require.NoError(t, json.Unmarshal(got.Body, &body))
	assert.Equal(t, got.EventID, body.ID)
	assert.Equal(t, bridge.StatusSucceeded, body.Data.Status)
	assert.Equal(t, int64(1240), body.Data.Amount)

	// The page shows it too, escaped and without scripts.
	status, h, page := demoCall(t, http.MethodGet, info.WebhooksURL, "", "", "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, h.Get("Content-Type"), "text/html")
	assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Contains(t, page, `data-event-id="`+got.EventID+`" data-valid="true"`)
	assert.Contains(t, page, id)

	// A delivery signed with another secret, and one unsigned: refused, and listed as invalid.
	forged := []byte(`{"id":"vp_evt_forged","type":"session.succeeded","data":{"id":"` + id + `"}}`)
	for _, tc := range []struct {
		header, code, why string
	}{
		{webhook.Sign(forged, time.Now(), "whsec_notTheMerchants"), "webhook_invalid_signature", "signature does not match"},
		{"", "webhook_missing_signature", "no signature header"},
	} {
		req, err := http.NewRequest(http.MethodPost, info.WebhooksURL, strings.NewReader(string(forged)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if tc.header != "" {
			req.Header.Set(webhook.Header, tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, tc.code, errorCode(t, string(data)))
		latest := demoDeliveries(t, info).Data[0]
		assert.Equal(t, "vp_evt_forged", latest.EventID)
		assert.False(t, latest.SignatureValid)
		assert.Contains(t, latest.SignatureError, tc.why)
	}
}
