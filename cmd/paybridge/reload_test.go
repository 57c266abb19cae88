package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeReloadOnSIGHUP runs `paybridge serve`, rewrites its configuration file and sends
// SIGHUP, as `systemctl reload` does: a new rate limit, origin and merchant take effect; a
// removed merchant's open session still settles (its outcome webhook is delivered) while its key
// is refused; a file that does not load is logged with its file and line and changes nothing; a
// change that needs a restart is logged and ignored. Each change is one log line, and no secret
// of the old or new file appears in the log.
func TestServeReloadOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	hooks := &receiver{}
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)
	const acmeHookSecret = "whsec_reload_acme_secret"
	w := newWorld(t, "rateLimits: {perIP: 600}\n", fmt.Sprintf("    webhook: {url: %s, secret: %s}\n", hookSrv.URL, acmeHookSecret))
	orig, err := os.ReadFile(w.cfgPath)
	require.NoError(t, err)
	head, acme, ok := strings.Cut(string(orig), "merchants:\n")
	require.True(t, ok)
	globexSecrets := []string{"globex-vcc-secret-first", "globex-vcc-secret-second", "whsec_globex_hook_secret"}
	globex := func(vccSecret string) string {
		return fmt.Sprintf(`  - id: globex
    name: Globex
    vcc: {tokenUrl: %[1]s/Auth/connect/token, apiBaseUrl: %[1]s/paymentapi, clientId: globex-bridge, clientSecret: %[2]s}
    allowedOrigins: [https://desk.globex.test]
    webhook: {url: %[3]s, secret: %[4]s}
`, w.stubBase, vccSecret, hookSrv.URL, globexSecrets[2])
	}
	const desk2 = "https://desk2.acme.test"
	acmeDesk2 := strings.Replace(acme, "allowedOrigins: [https://desk.acme.test]", "allowedOrigins: [https://desk.acme.test, "+desk2+"]", 1)
	require.NotEqual(t, acme, acmeDesk2)
	head50 := strings.Replace(head, "rateLimits: {perIP: 600}", "rateLimits: {perIP: 50}", 1)
	require.NotEqual(t, head, head50)

	srv, base := w.serve(t)
	reloads := 0
	reload := func(content, wantMsg string) {
		t.Helper()
		require.NoError(t, os.WriteFile(w.cfgPath, []byte(content), 0o600))
		reloads++
		require.NoError(t, srv.cmd.Process.Signal(syscall.SIGHUP))
		require.Eventually(t, func() bool {
			return strings.Count(srv.stderr.String(), `"msg":"configuration reload`) >= reloads &&
				strings.Contains(srv.stderr.String(), wantMsg)
		}, 10*time.Second, 10*time.Millisecond, "reload %d; stderr:\n%s", reloads, srv.stderr)
	}
	perIPLimit := func() string {
		resp, err := http.Get(base + "/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "serve keeps serving")
		return resp.Header.Get("X-RateLimit-Limit")
	}
	allowsOrigin := func(origin string) bool {
		req, err := http.NewRequest(http.MethodOptions, base+"/v1/sessions", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.Header.Get("Access-Control-Allow-Origin") == origin
	}
	sessionStatus := func(id string) int {
		req, err := http.NewRequest(http.MethodGet, base+"/v1/sessions/"+id, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+w.secretKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	logLine := func(pattern string) {
		t.Helper()
		assert.Regexp(t, regexp.MustCompile(pattern), srv.stderr.String())
	}

	require.Equal(t, "600", perIPLimit())
	require.False(t, allowsOrigin(desk2))
	open := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":1240,"currency":"GBP"}`)
	openID := open["id"].(string)

	// A lower rate limit, a new origin and a new merchant.
	reload(head50+"merchants:\n"+acmeDesk2+globex(globexSecrets[0]), `"msg":"configuration reloaded"`)
	assert.Equal(t, "50", perIPLimit())
	assert.True(t, allowsOrigin(desk2))
	assert.True(t, allowsOrigin("https://desk.globex.test"))
	logLine(`"msg":"configuration reload: rate limit changed","key":"rateLimits.perIP","from":"600","to":"50"`)
	logLine(`"msg":"configuration reload: merchant added","merchant":"globex"`)
	logLine(`"msg":"configuration reload: merchant changed","merchant":"acme","fields":"allowedOrigins","originsAdded":"` + desk2 + `","originsRemoved":""`)

	// globex's VCC secret rotated, acme removed: its key stops working, but the session it has
	// open settles with its last configuration, outcome webhook included.
	reload(head50+"merchants:\n"+globex(globexSecrets[1]), `"msg":"configuration reload: merchant removed`)
	logLine(`"msg":"configuration reload: merchant changed","merchant":"globex","fields":"vcc.clientSecret"}`)
	logLine(`"msg":"configuration reload: merchant removed; its open sessions settle with its last configuration","merchant":"acme"`)
	assert.GreaterOrEqual(t, sessionStatus(openID), 400, "a removed merchant's key is refused")
	assert.False(t, allowsOrigin(desk2))
	w.complete(t, vccGUID(open), "ACCEPT")
	require.Eventually(t, func() bool { return len(hooks.of(openID)["session.succeeded"]) == 1 }, 20*time.Second, 20*time.Millisecond,
		"the removed merchant's open session settled and its webhook was delivered\n%s", srv.stderr)

	// A file that does not load changes nothing and says where it is wrong.
	broken := head50 + "merchants:\n" + globex(globexSecrets[1]) + "rateLimitz: {perIP: 5}\n"
	line := strings.Count(broken[:strings.Index(broken, "rateLimitz")], "\n") + 1
	reload(broken, `"msg":"configuration reload failed`)
	logLine(fmt.Sprintf(`"msg":"configuration reload failed: still running the previous configuration","file":%q,"err":"[^"]*:%d: rateLimitz: unknown key; did you mean`, w.cfgPath, line))
	assert.Equal(t, "50", perIPLimit())

	// Nor does one that serve would refuse to start with: an active merchant without its VCC
	// client secret.
	reload(head+"merchants:\n"+globex(""), `vcc.clientSecret: required for an active merchant`)
	logLine(`"msg":"configuration reload failed: still running the previous configuration","file":"[^"]+","err":"[^"]*merchants\[0\]\.vcc\.clientSecret: required for an active merchant`)
	assert.Equal(t, "50", perIPLimit())

	// acme back (its session reads as settled), and a listen change, which needs a restart.
	moved := strings.Replace(head50, "listen: 127.0.0.1:0", "listen: 127.0.0.1:1", 1)
	require.NotEqual(t, head50, moved)
	reload(moved+"merchants:\n"+acmeDesk2+globex(globexSecrets[1]), `"key":"listen"`)
	logLine(`"msg":"configuration reload: this change needs a restart; ignored","file":"[^"]+","key":"listen"`)
	assert.Equal(t, http.StatusOK, sessionStatus(openID))
	assert.Equal(t, "succeeded", getJSON(t, base+"/v1/sessions/"+openID, w.secretKey)["status"])
	assert.Equal(t, "50", perIPLimit(), "still serving on the address it started on")

	assert.Equal(t, 5, strings.Count(srv.stderr.String(), `"msg":"configuration reload`+`ed"`)+
		strings.Count(srv.stderr.String(), `"msg":"configuration reload failed`), "one outcome line per SIGHUP")
	for _, secret := range append(globexSecrets, acmeHookSecret, "sandbox-secret", w.secretKey, w.publishable) {
		assert.NotContains(t, srv.stderr.String(), secret)
	}
}
