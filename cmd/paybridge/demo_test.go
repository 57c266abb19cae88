package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/bridgetest"
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

// startDemoRun runs `paybridge demo` in-process on a free port and returns what it wrote to
// --info, its banner, and a stop that waits for it to end (also run when the test ends).
func startDemoRun(t *testing.T, args ...string) (info demoInfo, banner string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	infoPath := filepath.Join(t.TempDir(), "info.json")
	stdout, stderr := &bridgetest.LogSink{}, &bridgetest.LogSink{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"paybridge", "demo", "--addr", "127.0.0.1:0", "--info", infoPath}, args...), os.Getenv, stdout, stderr)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Error("the demo did not stop")
			}
			for _, secret := range []string{info.SecretKey, info.PublishableKey} {
				assert.NotContains(t, stderr.String(), secret, "no key in the demo's logs")
			}
		})
	}
	t.Cleanup(stop)
	info = waitInfo(t, infoPath, stderr)
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "Press Ctrl-C") }, 10*time.Second, 10*time.Millisecond)
	return info, stdout.String(), stop
}

// demoKeyIDs lists the ids and types of the demo merchant's test keys, over the API.
func demoKeyIDs(t *testing.T, info demoInfo) map[string]string {
	t.Helper()
	list := getJSON(t, info.BaseURL+"/api/merchants/api-keys", info.SecretKey)
	out := map[string]string{}
	for _, k := range list["data"].([]any) {
		k := k.(map[string]any)
		out[k["id"].(string)] = k["type"].(string)
	}
	return out
}

// TestDemoDataReusesKeys runs the demo twice on one --data: the second run reuses the first's
// keys (no key added) and finds its session, the keys are sealed at rest, and each banner says
// what is kept and what is not. A key revoked meanwhile is replaced, the other one kept.
func TestDemoDataReusesKeys(t *testing.T) {
	dir := t.TempDir()

	first, banner, stop := startDemoRun(t, "--data", dir)
	assert.False(t, first.KeysReused)
	assert.Equal(t, dir, first.DataDir)
	assert.Contains(t, banner, "New keys, kept in "+dir)
	assert.Contains(t, banner, "Not kept: the stub VCC's and PCI Pal's sessions")
	keys := demoKeyIDs(t, first)
	require.Len(t, keys, 2, "a secret and a publishable key")
	created := postJSON(t, first.BaseURL+"/v1/sessions", first.SecretKey, `{"agentId":"`+first.AgentID+`","amount":700,"currency":"EUR"}`)
	stop()

	sealed, err := os.ReadFile(filepath.Join(dir, demoStateFile))
	require.NoError(t, err)
	for _, secret := range []string{first.SecretKey, first.PublishableKey, "whsec_"} {
		assert.NotContains(t, string(sealed), secret, "nothing secret in clear at rest")
	}

	second, banner, stop := startDemoRun(t, "--data", dir)
	assert.True(t, second.KeysReused)
	assert.Equal(t, first.SecretKey, second.SecretKey)
	assert.Equal(t, first.PublishableKey, second.PublishableKey)
	assert.Equal(t, keys, demoKeyIDs(t, second), "no key added by the second run")
	assert.Contains(t, banner, "Keys reused from an earlier run, kept in "+dir)
	assert.Contains(t, banner, "Not kept: the stub VCC's and PCI Pal's sessions")
	assert.Equal(t, created["id"], getJSON(t, second.BaseURL+"/v1/sessions/"+created["id"].(string), second.SecretKey)["id"], "paybridge's sessions are kept")
	// Revoke the publishable key: the next run makes a new one and keeps the secret key.
	for id, typ := range keys {
		if typ == "publishable" {
			req, err := http.NewRequest(http.MethodDelete, second.BaseURL+"/api/merchants/api-keys/"+id, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+second.SecretKey)
			doJSON(t, req)
		}
	}
	stop()

	third, banner, _ := startDemoRun(t, "--data", dir)
	assert.False(t, third.KeysReused)
	assert.Equal(t, first.SecretKey, third.SecretKey)
	assert.NotEqual(t, first.PublishableKey, third.PublishableKey)
	assert.Len(t, demoKeyIDs(t, third), 3, "one key added, for the revoked one")
	assert.Contains(t, banner, "New keys, kept in "+dir)
}

// TestDemoBannerWithoutData: without --data the banner says nothing is kept.
func TestDemoBannerWithoutData(t *testing.T) {
	info, banner, _ := startDemoRun(t)
	assert.Empty(t, info.DataDir)
	assert.Contains(t, banner, "Nothing is kept")
}

// bannerCommands returns the shell commands the banner prints (curl lines, continuations joined).
func bannerCommands(banner string) []string {
	var cmds []string
	var cur strings.Builder
	for line := range strings.SplitSeq(banner, "\n") {
		line = strings.TrimSpace(line)
		if cur.Len() == 0 && !strings.HasPrefix(line, "curl ") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont)
			continue
		}
		cur.WriteString(line)
		cmds = append(cmds, cur.String())
		cur.Reset()
	}
	return cmds
}

// TestDemoBannerCommands runs the banner's curl lines as printed, in a shell: each answer ends
// with a newline, so the next prompt starts on its own line.
func TestDemoBannerCommands(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	_, err = exec.LookPath("sh")
	require.NoError(t, err)
	info, banner, _ := startDemoRun(t)
	cmds := bannerCommands(banner)
	require.Len(t, cmds, 3, "create, complete (CyberSource), complete (any gateway)")
	sh := func(cmd string) string {
		t.Helper()
		out, err := exec.Command("sh", "-c", cmd).Output()
		require.NoError(t, err, "%s", cmd)
		return string(out)
	}
	out := sh(cmds[0])
	assert.True(t, strings.HasSuffix(out, "}\n") && !strings.HasSuffix(out, "\n\n"), "the create's answer ends with one newline: %q", out)
	var created bridge.SessionView
	require.NoError(t, json.Unmarshal([]byte(out), &created), "curl %s", curl)
	require.NotNil(t, created.VCC)
	assert.Equal(t, info.AgentID, created.AgentID)
	for _, cmd := range cmds[1:] {
		require.Contains(t, cmd, "<vcc.sessionGuid>")
		out := sh(strings.ReplaceAll(cmd, "<vcc.sessionGuid>", created.VCC.SessionGUID))
		assert.True(t, strings.HasSuffix(out, "}\n") && !strings.HasSuffix(out, "\n\n"), "the control API's answer ends with one newline: %q", out)
	}
}

// demoFlags are every flag of `paybridge demo`.
var demoFlags = []string{"addr", "data", "info", "verbose", "stub-addr", "poll-interval", "store", "vcc-webhook", "announce", "provider-lifetime"}

// TestDemoHelp: `demo --help` exits 0 and lists every flag, and the README's "Try it" names each.
func TestDemoHelp(t *testing.T) {
	var stdout, stderr strings.Builder
	err := run(context.Background(), []string{"paybridge", "demo", "--help"}, os.Getenv, &stdout, &stderr)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, 0, exitCode(err))
	help := stdout.String() + stderr.String()
	listed := regexp.MustCompile(`(?m)^\s+-([a-z-]+)`).FindAllStringSubmatch(help, -1)
	var names []string
	for _, m := range listed {
		names = append(names, m[1])
	}
	assert.ElementsMatch(t, demoFlags, names, "demo --help:\n%s", help)

	readme, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	require.NoError(t, err)
	_, tryIt, ok := strings.Cut(string(readme), "### Try it")
	require.True(t, ok)
	tryIt, _, _ = strings.Cut(tryIt, "\n### ")
	for _, name := range demoFlags {
		assert.Contains(t, tryIt, "`--"+name, "README's Try it names --%s", name)
	}
}
