package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge/bridgetest"
)

// TestMain lets the test binary act as the paybridge command, so process-level tests (kill -9)
// need no separate build.
func TestMain(m *testing.M) {
	if os.Getenv("PAYBRIDGE_AS_COMMAND") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestVersionAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"paybridge", "version"}, os.Getenv, &out, &errOut))
	assert.True(t, strings.HasPrefix(out.String(), "paybridge "))
	err := run(context.Background(), []string{"paybridge", "frobnicate"}, os.Getenv, &out, &errOut)
	assert.ErrorContains(t, err, `unknown command "frobnicate"`)
	assert.Contains(t, errOut.String(), "Usage:")
	assert.Error(t, run(context.Background(), []string{"paybridge", "serve"}, os.Getenv, &out, &errOut), "serve needs --config")
}

// TestDemo runs `paybridge demo` in-process, as a new user would, and takes a session through
// the printed curl line's request and an agent socket.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	infoPath := filepath.Join(t.TempDir(), "info.json")
	stdout, stderr := &bridgetest.LogSink{}, &bridgetest.LogSink{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"paybridge", "demo", "--addr", "127.0.0.1:0", "--info", infoPath}, os.Getenv, stdout, stderr)
	}()
	var info demoInfo
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(infoPath)
		return err == nil && json.Unmarshal(data, &info) == nil
	}, 20*time.Second, 20*time.Millisecond, "demo wrote its info file; stderr: %s", stderr)

	assert.Regexp(t, `^vp_sk_test_[0-9A-Za-z]{24,}$`, info.SecretKey)
	assert.Regexp(t, `^vp_pk_test_[0-9A-Za-z]{24,}$`, info.PublishableKey)
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "Press Ctrl-C") }, 10*time.Second, 10*time.Millisecond)
	banner := stdout.String()
	for _, want := range []string{info.BaseURL, info.SecretKey, info.PublishableKey, "curl -s -X POST " + info.BaseURL + "/v1/sessions"} {
		assert.Contains(t, banner, want)
	}

	// An agent socket from the demo's own origin, then the banner's create request.
	conn, token := demoAgentSocket(t, info)
	var ev struct{ Type string }
	require.NoError(t, conn.ReadJSON(&ev))
	require.Equal(t, "ready", ev.Type)

	created := postJSON(t, info.BaseURL+"/v1/sessions", info.SecretKey, `{"agentId":"`+info.AgentID+`","amount":1240,"currency":"GBP","reference":"INV-1001"}`)
	assert.Equal(t, "active", created["status"])
	require.NoError(t, conn.ReadJSON(&ev))
	assert.Equal(t, "session.handoff", ev.Type)

	// The stub PCI Pal starts silent, as live PCI Pal without a PostMessage flow step, and the
	// stub VCC's webhook reaches paybridge with an OAuth bearer token, as VCC's does.
	pci := getJSON(t, info.VCCStubURL+"/_control/pcipal", "")
	assert.Equal(t, map[string]any{"postMessage": nil}, pci)
	guid := created["vcc"].(map[string]any)["sessionGuid"].(string)
	postJSON(t, info.VCCStubURL+"/_control/sessions/"+guid+"/complete", "", `{"decision":"ACCEPT"}`)
	require.Eventually(t, func() bool {
		return getJSON(t, info.VCCStubURL+"/_control/stats", "")["webhooksSent"] == float64(1)
	}, 10*time.Second, 10*time.Millisecond, "paybridge took the stub VCC's webhook")
	assert.Equal(t, float64(0), getJSON(t, info.VCCStubURL+"/_control/stats", "")["webhooksFailed"])
	require.NoError(t, conn.ReadJSON(&ev))
	assert.Equal(t, "session.succeeded", ev.Type)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop")
	}
	for _, secret := range []string{info.SecretKey, info.PublishableKey, token} {
		assert.NotContains(t, stderr.String(), secret, "no key or token in the demo's logs")
	}
}

// postJSON posts body with key (and header name/value pairs) and returns the decoded 2xx answer.
func postJSON(t testing.TB, u, key, body string, headers ...string) map[string]any {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return doJSON(t, req)
}

func getJSON(t *testing.T, u, key string) map[string]any {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	return doJSON(t, req)
}

func doJSON(t testing.TB, req *http.Request) map[string]any {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	require.Less(t, resp.StatusCode, 300, "%s %s: %s", req.Method, req.URL, data)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

// command is a paybridge child process (the test binary acting as the command).
type command struct {
	cmd    *exec.Cmd
	stdout *bridgetest.LogSink
	stderr *bridgetest.LogSink
}

func startCommand(t testing.TB, args ...string) *command {
	t.Helper()
	c := &command{stdout: &bridgetest.LogSink{}, stderr: &bridgetest.LogSink{}}
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append(os.Environ(), "PAYBRIDGE_AS_COMMAND=1")
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	require.NoError(t, c.cmd.Start())
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	return c
}

// waitFor waits until the process has printed a match of re (on stdout or stderr) and returns
// the first group.
func (c *command) waitFor(t testing.TB, re *regexp.Regexp) string {
	t.Helper()
	var got string
	require.Eventually(t, func() bool {
		for _, out := range []string{c.stdout.String(), c.stderr.String()} {
			if m := re.FindStringSubmatch(out); m != nil {
				got = m[1]
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "stdout: %s\nstderr: %s", c.stdout, c.stderr)
	return got
}

func (c *command) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	_ = c.cmd.Wait()
}

var (
	stubsURL     = regexp.MustCompile(`stubs on (http://127\.0\.0\.1:\d+)`)
	listeningURL = regexp.MustCompile(`"msg":"paybridge listening"[^\n]*"baseUrl":"(http://127\.0\.0\.1:\d+)"`)
)

// world is paybridge run as real processes: both stubs, a config file, keys, and serve.
type world struct {
	dir, cfgPath, stubBase string
	secretKey, publishable string
	origin                 string
}

// newWorld starts the stubs, writes a config (topExtra is added at the top level, merchantExtra
// to the merchant) and creates a secret and a publishable test key with `paybridge keys create`.
func newWorld(t testing.TB, topExtra, merchantExtra string) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), origin: "https://desk.acme.test"}
	stubs := startCommand(t, "stubs", "--addr", "127.0.0.1:0")
	w.stubBase = stubs.waitFor(t, stubsURL)
	w.cfgPath = filepath.Join(w.dir, "paybridge.yaml")
	require.NoError(t, os.WriteFile(w.cfgPath, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
dataDir: %s
provider: {pollInterval: 100ms}
webhooks: {initialBackoff: 100ms, maxBackoff: 200ms}
%[5]smerchants:
  - id: acme
    name: Acme Energy
    vcc:
      tokenUrl: %[2]s/Auth/connect/token
      apiBaseUrl: %[2]s/paymentapi
      clientId: paybridge-sandbox
      clientSecret: ${ACME_VCC_SECRET}
      accountConfigurationIds: [1, 2]
    allowedOrigins: [%[3]s]
%[4]s`, filepath.Join(w.dir, "data"), w.stubBase, w.origin, merchantExtra, topExtra)), 0o600))
	t.Setenv("ACME_VCC_SECRET", "sandbox-secret")
	w.secretKey = w.keysCreate(t, "secret")
	w.publishable = w.keysCreate(t, "publishable")
	return w
}

func (w *world) keysCreate(t testing.TB, typ string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "keys", "create", "--config", w.cfgPath, "--merchant", "acme", "--type", typ, "--mode", "test")
	cmd.Env = append(os.Environ(), "PAYBRIDGE_AS_COMMAND=1")
	out, err := cmd.Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

// serve starts `paybridge serve` and returns it with its base URL.
func (w *world) serve(t testing.TB) (*command, string) {
	t.Helper()
	c := startCommand(t, "serve", "--config", w.cfgPath)
	return c, c.waitFor(t, listeningURL)
}

// complete finishes a VCC session at the stub.
func (w *world) complete(t *testing.T, guid, decision string) {
	t.Helper()
	resp, err := http.Post(w.stubBase+"/_control/sessions/"+guid+"/complete", "application/json", strings.NewReader(`{"decision":"`+decision+`"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestKill9 kills paybridge with SIGKILL mid-session and starts it again on the same data
// directory: the sessions, their attempts (tokens included), idempotent answers and outcome
// detection are intact, including an outcome that happened while paybridge was down.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	w := newWorld(t, "", "")
	first, base := w.serve(t)
	token := postJSON(t, base+"/v1/agent_tokens", w.secretKey, `{"agentId":"agent-1","ttlSeconds":3600}`)["token"].(string)
	paidWhileDown := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":1240,"currency":"GBP"}`)
	stillOpen := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":500,"currency":"GBP"}`, "Idempotency-Key", "order-77")
	before := agentSnapshot(t, base, w.publishable, token, w.origin)
	require.Contains(t, before, stillOpen["id"])

	first.kill9(t)
	w.complete(t, paidWhileDown["vcc"].(map[string]any)["sessionGuid"].(string), "ACCEPT")
	second, base := w.serve(t)

	// The open session, its attempt and its sealed tokens survived: the reconnecting agent gets
	// the same handoff it had before the crash.
	open := getJSON(t, base+"/v1/sessions/"+stillOpen["id"].(string), w.secretKey)
	assert.Equal(t, "active", open["status"])
	assert.Equal(t, float64(1), open["attempt"])
	// The same VCC session (polling may since have learned its providerSessionGuid too).
	assert.Equal(t, stillOpen["vcc"].(map[string]any)["sessionGuid"], open["vcc"].(map[string]any)["sessionGuid"])
	after := agentSnapshot(t, base, w.publishable, token, w.origin)
	assert.Equal(t, before[stillOpen["id"].(string)], after[stillOpen["id"].(string)])
	// The idempotent create is replayed, not repeated, after the crash.
	replay := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":500,"currency":"GBP"}`, "Idempotency-Key", "order-77")
	assert.Equal(t, stillOpen["id"], replay["id"])

	// Polling resumed and found the outcome that happened while paybridge was down.
	require.Eventually(t, func() bool {
		s := getJSON(t, base+"/v1/sessions/"+paidWhileDown["id"].(string), w.secretKey)
		return s["status"] == "succeeded"
	}, 20*time.Second, 50*time.Millisecond)
	for _, secret := range []string{w.secretKey, w.publishable, token, "sandbox-secret"} {
		assert.NotContains(t, first.stderr.String()+second.stderr.String(), secret)
	}
}

// agentSnapshot connects an agent socket and returns its ready snapshot's handoffs by session id.
func agentSnapshot(t *testing.T, base, pk, token, origin string) map[string]json.RawMessage {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/ws?key="+url.QueryEscape(pk), http.Header{"Origin": {origin}})
	require.NoError(t, err)
	resp.Body.Close()
	defer conn.Close()
	require.NoError(t, conn.WriteJSON(map[string]string{"type": "auth", "agentToken": token}))
	var ready struct {
		Type string
		Data struct {
			Sessions []struct {
				Session struct{ ID string }
				Handoff json.RawMessage
			}
		}
	}
	require.NoError(t, conn.ReadJSON(&ready))
	require.Equal(t, "ready", ready.Type)
	out := map[string]json.RawMessage{}
	for _, s := range ready.Data.Sessions {
		out[s.Session.ID] = s.Handoff
	}
	return out
}

// demoAgentSocket opens the demo agent's socket from the demo's own origin and authenticates it
// with a fresh agent token; it closes when the test ends.
func demoAgentSocket(t *testing.T, info demoInfo) (conn *websocket.Conn, token string) {
	t.Helper()
	token = postJSON(t, info.BaseURL+"/v1/agent_tokens", info.SecretKey, `{"agentId":"`+info.AgentID+`"}`)["token"].(string)
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(info.BaseURL, "http")+"/v1/ws?key="+url.QueryEscape(info.PublishableKey),
		http.Header{"Origin": {info.BaseURL}})
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.WriteJSON(map[string]string{"type": "auth", "agentToken": token}))
	return conn, token
}
