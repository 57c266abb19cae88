package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemoAnnounceAndLifetime runs the demo with --announce and --provider-lifetime: the stub
// PCI Pal's PostMessage step is on, each handoff carries the matching announcement (its origin
// the stub's, from the iframe URL), and the handoff's expiry follows the lifetime.
func TestDemoAnnounceAndLifetime(t *testing.T) {
	info := startDemo(t, "--announce", "--provider-lifetime", "2m")

	step := getJSON(t, info.VCCStubURL+"/_control/pcipal", "")
	assert.Equal(t, map[string]any{"postMessage": map[string]any{
		"data": map[string]any{"type": demoAnnouncementType, "sessionId": "{{sessionId}}"}, "targetOrigin": "*"}}, step)

	conn, _ := demoAgentSocket(t, info)
	var ev struct {
		Type string
		Data struct {
			IframeURL    string    `json:"iframeUrl"`
			ExpiresAt    time.Time `json:"expiresAt"`
			Announcement *struct {
				Origin string         `json:"origin"`
				Data   map[string]any `json:"data"`
			} `json:"announcement"`
		}
	}
	require.NoError(t, conn.ReadJSON(&ev))
	require.Equal(t, "ready", ev.Type)

	before := time.Now()
	postJSON(t, info.BaseURL+"/v1/sessions", info.SecretKey, `{"agentId":"`+info.AgentID+`","amount":1240,"currency":"GBP"}`)
	require.NoError(t, conn.ReadJSON(&ev))
	require.Equal(t, "session.handoff", ev.Type)
	require.NotNil(t, ev.Data.Announcement, "the demo merchant has a frameAnnouncement")
	assert.Equal(t, originOf(info.PCIPalStubURL), ev.Data.Announcement.Origin)
	assert.Equal(t, originOf(ev.Data.IframeURL), ev.Data.Announcement.Origin)
	assert.Equal(t, map[string]any{"type": demoAnnouncementType}, ev.Data.Announcement.Data)
	assert.WithinRange(t, ev.Data.ExpiresAt, before.Add(2*time.Minute-time.Second), time.Now().Add(2*time.Minute+time.Second),
		"the attempt lasts the provider lifetime")
}

// TestDemoSilentByDefault: without --announce, handoffs carry no announcement (the widget then
// never counts a frame as refused for want of one).
func TestDemoSilentByDefault(t *testing.T) {
	info := startDemo(t)
	conn, _ := demoAgentSocket(t, info)
	var ev struct {
		Type string
		Data map[string]json.RawMessage
	}
	require.NoError(t, conn.ReadJSON(&ev))
	require.Equal(t, "ready", ev.Type)
	postJSON(t, info.BaseURL+"/v1/sessions", info.SecretKey, `{"agentId":"`+info.AgentID+`","amount":1240,"currency":"GBP"}`)
	require.NoError(t, conn.ReadJSON(&ev))
	require.Equal(t, "session.handoff", ev.Type)
	assert.Contains(t, ev.Data, "iframeUrl")
	assert.NotContains(t, ev.Data, "announcement")
}

func TestDemoFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--provider-lifetime", "10ms"}, "--provider-lifetime must be at least 1s"},
		{[]string{"--provider-lifetime", "-1m"}, "--provider-lifetime must be at least 1s"},
		{[]string{"--poll-interval", "1ms"}, "--poll-interval must be at least 100ms"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := run(context.Background(), append([]string{"paybridge", "demo", "--addr", "127.0.0.1:0"}, tt.args...), os.Getenv, io.Discard, io.Discard)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}
