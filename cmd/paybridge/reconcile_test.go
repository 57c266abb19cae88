package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/config"
)

// reconcile runs `paybridge reconcile --config <w's> args...` as a process and returns its
// stdout, stderr and exit status.
func (w *world) reconcile(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"reconcile", "--config", w.cfgPath}, args...)...)
	cmd.Env = append(os.Environ(), "PAYBRIDGE_AS_COMMAND=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// stop ends a paybridge process gracefully (SIGINT) and waits for it.
func (c *command) stop(t testing.TB) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(os.Interrupt))
	_ = c.cmd.Wait()
}

// TestReconcileCommand: `paybridge reconcile` refuses to share the store with a running serve,
// reports nothing for a clean store, lists a payment VCC took while paybridge was down on a
// session cancelled here (paid_not_recorded, exit status 3, as lines and as JSON), and reports
// nothing again once serve has recorded that late payment.
func TestReconcileCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	w := newWorld(t, "", "")
	srv, base := w.serve(t)
	paid := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":1240,"currency":"GBP","reference":"INV-7"}`)
	open := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":500,"currency":"GBP"}`)
	cancelled := postJSON(t, base+"/v1/sessions/"+paid["id"].(string)+"/cancel", w.secretKey, ``)
	require.Equal(t, "cancelled", cancelled["status"])
	guid := paid["vcc"].(map[string]any)["sessionGuid"].(string)

	out, errOut, code := w.reconcile(t)
	assert.Equal(t, exitReconcileError, code, "stdout: %s", out)
	assert.Contains(t, errOut, "in use by a running paybridge")
	assert.Contains(t, errOut, "paybridge_reconcile_discrepancies", "it says where to look instead")

	srv.stop(t)
	out, errOut, code = w.reconcile(t)
	assert.Equal(t, exitReconcileClean, code, "stderr: %s", errOut)
	assert.Equal(t, "no discrepancies\n", out)

	// The customer pays on the cancelled session's page while paybridge is down.
	w.complete(t, guid, "ACCEPT")
	out, errOut, code = w.reconcile(t)
	assert.Equal(t, exitReconcileFound, code, "stderr: %s", errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1, out)
	assert.Regexp(t, `^paid_not_recorded session=`+regexp.QuoteMeta(paid["id"].(string))+
		` merchant=acme mode=test status=cancelled attempt=1 vccSessionGuid=`+regexp.QuoteMeta(guid)+
		` decision=ACCEPT amount=1240 currency=GBP created=\S+$`, lines[0])
	assert.Contains(t, errOut, "1 discrepancies")

	out, _, code = w.reconcile(t, "--json", "--since", "1h")
	assert.Equal(t, exitReconcileFound, code)
	var found []bridge.Discrepancy
	require.NoError(t, json.Unmarshal([]byte(out), &found), out)
	require.Len(t, found, 1)
	assert.Equal(t, bridge.Discrepancy{Kind: bridge.DiscrepancyPaidNotRecorded, SessionID: paid["id"].(string), MerchantID: "acme",
		Mode: bridge.ModeTest, Status: bridge.StatusCancelled, Attempt: 1, SessionGUID: guid, Decision: "ACCEPT",
		Amount: 1240, Currency: "GBP", CreatedAt: found[0].CreatedAt}, found[0])
	assert.NotContains(t, out, open["id"], "the open session is the lifecycle's business")

	// serve records the late payment; then the report is empty.
	srv, base = w.serve(t)
	require.Eventually(t, func() bool {
		s := getJSON(t, base+"/v1/sessions/"+paid["id"].(string), w.secretKey)
		return s["status"] == "succeeded"
	}, 20*time.Second, 50*time.Millisecond)
	srv.stop(t)
	out, errOut, code = w.reconcile(t, "--json")
	assert.Equal(t, exitReconcileClean, code, "stderr: %s", errOut)
	assert.JSONEq(t, `[]`, out)

	master, err := os.ReadFile(filepath.Join(w.dir, "data", "master.key"))
	require.NoError(t, err)
	for _, secret := range []string{w.secretKey, w.publishable, "sandbox-secret", strings.TrimSpace(string(master))} {
		assert.NotContains(t, out+errOut, secret)
	}
}

// TestReconcileCommandUsage: --help lists the flags and exits 0; a missing store and a bad
// --since are explained, not created or ignored.
func TestReconcileCommandUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"paybridge", "reconcile", "--help"}, os.Getenv, &out, &errOut)
	assert.Equal(t, 0, exitCode(err))
	for _, want := range []string{"-config", "-since", "-json", "Exit status: 0 no discrepancies, 3 discrepancies found, 1"} {
		assert.Contains(t, errOut.String(), want)
	}

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "paybridge.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("dataDir: "+filepath.Join(dir, "data")+"\nmerchants: [{id: acme}]\n"), 0o600))
	err = run(context.Background(), []string{"paybridge", "reconcile", "--config", cfgPath}, os.Getenv, &out, &errOut)
	assert.ErrorContains(t, err, "no store at")
	assert.Equal(t, exitReconcileError, exitCode(err))
	assert.NoDirExists(t, filepath.Join(dir, "data"), "reconcile creates nothing")

	err = run(context.Background(), []string{"paybridge", "reconcile", "--config", cfgPath, "--since", "-1h"}, os.Getenv, &out, &errOut)
	assert.ErrorContains(t, err, "--since must be positive")
}

// TestReconcileMetric: serve reconciles in the background (here every 50 ms) and exports what it
// finds as paybridge_reconcile_discrepancies{kind}, every kind from the start; each discrepancy
// is logged at error level once, however many runs find it again, with nothing secret.
func TestReconcileMetric(t *testing.T) {
	logs := &bridgetest.LogSink{}
	logger := newLogger(logs, "json", slog.LevelInfo)
	stubs, err := startStubs("127.0.0.1:0", bridge.SystemClock{}, logger)
	require.NoError(t, err)
	t.Cleanup(stubs.close)
	dir := t.TempDir()
	master := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	cfg, err := config.Parse([]byte(`
listen: 127.0.0.1:0
dataDir: `+filepath.Join(dir, "data")+`
masterKey: `+master+`
provider: {pollInterval: 100ms}
merchants:
  - id: acme
    vcc:
      tokenUrl: `+stubs.baseURL()+`/Auth/connect/token
      apiBaseUrl: `+stubs.baseURL()+`/globalpci
      clientId: paybridge-sandbox
      clientSecret: sandbox-secret
      accountConfigurationIds: [1]
`), nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a, err := newApp(cfg, appOptions{logger: logger, listener: ln, reconcileEvery: 50 * time.Millisecond})
	require.NoError(t, err)
	secret, _, err := a.keys.CreateKey(context.Background(), "acme", bridge.KeySecret, bridge.ModeTest)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	base := a.baseURL()

	gauge := func(kind string) string {
		resp, err := http.Get(base + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^paybridge_reconcile_discrepancies\{kind="` + kind + `"\} (\S+)$`).FindSubmatch(body)
		if m == nil {
			return "absent"
		}
		return string(m[1])
	}
	for _, kind := range []string{"paid_not_recorded", "recorded_not_paid", "paid_twice", "unverified"} {
		assert.Equal(t, "0", gauge(kind), kind)
	}

	// A result that does not match the session fails it unverified: a discrepancy that stays.
	mismatch := func(amount int) string {
		s := postJSON(t, base+"/v1/sessions", secret, `{"agentId":"agent-1","amount":`+strconv.Itoa(amount)+`,"currency":"GBP"}`)
		_, err := stubs.vcc.Complete(s["vcc"].(map[string]any)["sessionGuid"].(string), "ACCEPT", "1")
		require.NoError(t, err)
		return s["id"].(string)
	}
	first := mismatch(1240)
	require.Eventually(t, func() bool { return gauge("unverified") == "1" }, 20*time.Second, 20*time.Millisecond)
	second := mismatch(2500)
	require.Eventually(t, func() bool { return gauge("unverified") == "2" }, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, "0", gauge("paid_not_recorded"))

	// Runs after the first found it again (the gauge went to 2 in a later run): logged once.
	var lines []map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(fmtString(rec["msg"]), "reconciliation: VCC disagrees") {
			lines = append(lines, rec)
		}
	}
	require.Len(t, lines, 2, logs.String())
	for i, id := range []string{first, second} {
		assert.Equal(t, "ERROR", lines[i]["level"])
		assert.Equal(t, id, lines[i]["session"])
		assert.Equal(t, "unverified", lines[i]["kind"])
	}
	logs.AssertNoSecrets(t, secret, "sandbox-secret", master)
}

// fmtString is v if it is a string, else "".
func fmtString(v any) string {
	s, _ := v.(string)
	return s
}
