package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
)

// keysConfig writes a configuration with an active and a pending merchant (no upstream is
// contacted by the key commands) and returns its path.
func keysConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "paybridge.yaml")
	vcc := "vcc: {tokenUrl: http://127.0.0.1:9/token, apiBaseUrl: http://127.0.0.1:9/globalpci, clientId: c, clientSecret: s, accountConfigurationIds: [1]}"
	require.NoError(t, os.WriteFile(path, []byte("dataDir: "+filepath.Join(dir, "data")+"\n"+extra+
		"merchants:\n  - {id: acme, "+vcc+"}\n  - {id: review, status: pending_approval, "+vcc+"}\n"), 0o600))
	return path
}

// cli runs paybridge in-process and returns its stdout, stderr and error.
func cli(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"paybridge"}, args...), os.Getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

// listKeys runs keys list --json.
func listKeys(t *testing.T, cfgPath string, extra ...string) []adminKey {
	t.Helper()
	out, errOut, err := cli(t, append([]string{"keys", "list", "--config", cfgPath, "--json"}, extra...)...)
	require.NoError(t, err, "%s", errOut)
	var keys []adminKey
	require.NoError(t, json.Unmarshal([]byte(out), &keys), "%s", out)
	return keys
}

func keyByID(keys []adminKey, id string) *adminKey {
	for i := range keys {
		if keys[i].ID == id {
			return &keys[i]
		}
	}
	return nil
}

// createdID is the key id keys create reports on stderr.
func createdID(t *testing.T, stderr string) string {
	t.Helper()
	for f := range strings.FieldsSeq(stderr) {
		if strings.HasPrefix(f, "key_") {
			return f
		}
	}
	t.Fatalf("no key id in %q", stderr)
	return ""
}

// TestKeysCommands (issue 13 item 2): keys create, list (table and JSON, never a secret) and
// revoke on the store directly, with the key service's rules: the last active secret key of a
// merchant and mode is not revoked, a pending merchant gets no live key.
func TestKeysCommands(t *testing.T) {
	cfg := keysConfig(t, "")
	secret, errOut, err := cli(t, "keys", "create", "--config", cfg, "--merchant", "acme", "--type", "secret", "--mode", "test")
	require.NoError(t, err, errOut)
	secret = strings.TrimSpace(secret)
	require.Regexp(t, `^vp_sk_test_[0-9A-Za-z]{24,}$`, secret)
	secretID := createdID(t, errOut)
	pub, errOut, err := cli(t, "keys", "create", "--config", cfg, "--merchant", "acme", "--type", "publishable", "--mode", "test")
	require.NoError(t, err, errOut)
	pub = strings.TrimSpace(pub)

	table, errOut, err := cli(t, "keys", "list", "--config", cfg)
	require.NoError(t, err)
	for _, want := range []string{"MERCHANT", "STATUS", "LAST USED", secretID, "vp_sk_test_…" + secret[len(secret)-4:], "active"} {
		assert.Contains(t, table, want)
	}
	assert.Contains(t, errOut, "last use is known only while serve runs")
	keys := listKeys(t, cfg)
	require.Len(t, keys, 2)
	for _, k := range keys {
		assert.Equal(t, "acme", k.Merchant)
		assert.Equal(t, bridge.KeyActive, k.Status)
		assert.Nil(t, k.LastUsedAt, "the store does not know")
		assert.Empty(t, k.Plaintext)
	}
	assert.Len(t, listKeys(t, cfg, "--mode", "live"), 0)
	assert.Len(t, listKeys(t, cfg, "--merchant", "review"), 0)
	_, _, err = cli(t, "keys", "list", "--config", cfg, "--merchant", "nobody")
	assert.Equal(t, bridge.CodeMerchantNotConfigured, bridge.ErrorCode(err))

	// The last active secret key stays; once another exists, it goes (flags after the id too).
	_, _, err = cli(t, "keys", "revoke", "--config", cfg, secretID)
	require.Error(t, err)
	assert.Equal(t, bridge.CodeValidationError, bridge.ErrorCode(err))
	assert.Contains(t, err.Error(), "last active test secret key")
	assert.Contains(t, err.Error(), "fix: Roll it instead")
	_, errOut, err = cli(t, "keys", "create", "--config", cfg, "--merchant", "acme")
	require.NoError(t, err, errOut)
	out, _, err := cli(t, "keys", "revoke", secretID, "--config", cfg)
	require.NoError(t, err)
	assert.Contains(t, out, "revoked secret key "+secretID)
	revoked := keyByID(listKeys(t, cfg), secretID)
	require.NotNil(t, revoked)
	assert.Equal(t, bridge.KeyRevoked, revoked.Status)
	assert.NotNil(t, revoked.RevokedAt)
	table, _, err = cli(t, "keys", "list", "--config", cfg)
	require.NoError(t, err)
	assert.Contains(t, table, "revoked "+revoked.RevokedAt.Format(time.RFC3339))

	_, _, err = cli(t, "keys", "revoke", "--config", cfg, "key_doesnotexist0000")
	assert.ErrorContains(t, err, "No API key")
	_, _, err = cli(t, "keys", "create", "--config", cfg, "--merchant", "review", "--mode", "live")
	assert.Equal(t, bridge.CodeMerchantNotOnboarded, bridge.ErrorCode(err))
	_, _, err = cli(t, "keys", "frobnicate")
	assert.ErrorContains(t, err, `unknown subcommand "frobnicate"`)

	// Nothing printed after creation shows a key.
	all, _, _ := cli(t, "keys", "list", "--config", cfg, "--json")
	table, _, _ = cli(t, "keys", "list", "--config", cfg)
	for _, k := range []string{secret, pub} {
		assert.NotContains(t, all+table, k)
	}
}

// TestKeysRoll: keys roll on the store directly prints the replacement once; the old key keeps
// working for --grace (24 h by default), is listed as rolled, and may no longer be rolled again.
func TestKeysRoll(t *testing.T) {
	cfg := keysConfig(t, "")
	_, errOut, err := cli(t, "keys", "create", "--config", cfg, "--merchant", "acme")
	require.NoError(t, err, errOut)
	first := createdID(t, errOut)

	next, errOut, err := cli(t, "keys", "roll", first, "--config", cfg)
	require.NoError(t, err, errOut)
	require.Regexp(t, `^vp_sk_test_[0-9A-Za-z]{24,}\n$`, next)
	assert.Contains(t, errOut, "keeps working until "+time.Now().Add(24*time.Hour).UTC().Format("2006-01-02T15"), "24 hours, the config's keys.rollGrace")
	second := createdIDAfter(t, errOut, first)
	old, replacement := keyByID(listKeys(t, cfg), first), keyByID(listKeys(t, cfg), second)
	require.NotNil(t, old)
	require.NotNil(t, replacement)
	assert.Equal(t, bridge.KeyRolled, old.Status)
	assert.Equal(t, second, old.RolledTo)
	require.NotNil(t, old.ActiveUntil)
	assert.WithinDuration(t, time.Now().Add(24*time.Hour), *old.ActiveUntil, time.Minute)
	assert.Equal(t, bridge.KeyActive, replacement.Status)
	assert.Equal(t, bridge.KeySecret, replacement.Type)

	_, errOut, err = cli(t, "keys", "roll", "--config", cfg, "--grace", "0s", second)
	require.NoError(t, err, errOut)
	assert.NotEqual(t, bridge.KeyActive, keyByID(listKeys(t, cfg), second).Status, "ended at once")
	_, _, err = cli(t, "keys", "roll", "--config", cfg, "--grace", "-1s", second)
	assert.ErrorContains(t, err, "cannot be negative")
	_, _, err = cli(t, "keys", "roll", "--config", cfg, "--grace", "soon", second)
	assert.ErrorContains(t, err, "not a duration")
	_, _, err = cli(t, "keys", "roll", "--config", cfg, "key_doesnotexist0000")
	assert.ErrorContains(t, err, "No API key")
}

// createdIDAfter is the key id other than prev that a roll reports on stderr.
func createdIDAfter(t *testing.T, stderr, prev string) string {
	t.Helper()
	for f := range strings.FieldsSeq(stderr) {
		if strings.HasPrefix(f, "key_") && f != prev {
			return f
		}
	}
	t.Fatalf("no new key id in %q", stderr)
	return ""
}

// TestKeysAndBackupHelp: --help of every subcommand exits 0 and lists its flags.
func TestKeysAndBackupHelp(t *testing.T) {
	tests := []struct {
		args  []string
		flags []string
	}{
		{[]string{"keys", "create", "--help"}, []string{"-config", "-merchant", "-type", "-mode"}},
		{[]string{"keys", "list", "--help"}, []string{"-config", "-merchant", "-mode", "-json"}},
		{[]string{"keys", "revoke", "--help"}, []string{"-config", "revoke --config F ID"}},
		{[]string{"keys", "roll", "--help"}, []string{"-config", "-grace", "roll --config F [--grace 24h] ID"}},
		{[]string{"backup", "--help"}, []string{"-config", "-out", "-force", "master key"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, errOut, err := cli(t, tt.args...)
			assert.Equal(t, 0, exitCode(err))
			for _, f := range tt.flags {
				assert.Contains(t, errOut, f)
			}
		})
	}
	out, _, err := cli(t, "keys", "--help")
	assert.NoError(t, err)
	assert.Contains(t, out, "keys revoke")
	out, _, err = cli(t, "help")
	require.NoError(t, err)
	assert.Contains(t, out, "paybridge backup --config F --out FILE")
	assert.Contains(t, out, "paybridge keys list")
}

// TestBackupOffline: with no server running, backup copies the file itself; it never replaces a
// file without --force; on PostgreSQL it says to use pg_dump.
func TestBackupOffline(t *testing.T) {
	cfg := keysConfig(t, "")
	_, _, err := cli(t, "keys", "create", "--config", cfg, "--merchant", "acme")
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "copy.db")
	stdout, _, err := cli(t, "backup", "--config", cfg, "--out", out)
	require.NoError(t, err)
	assert.Contains(t, stdout, "from the store file")
	fi, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the copy holds sealed data")

	_, _, err = cli(t, "backup", "--config", cfg, "--out", out)
	assert.ErrorContains(t, err, "pass --force")
	_, _, err = cli(t, "backup", "--config", cfg, "--out", out, "--force")
	require.NoError(t, err)
	copied, err := boltstore.Open(out, boltstore.Options{})
	require.NoError(t, err)
	keys, err := copied.ListAPIKeys(context.Background(), "acme")
	require.NoError(t, err)
	assert.Len(t, keys, 1)
	require.NoError(t, copied.Close())
	left, err := filepath.Glob(filepath.Join(filepath.Dir(out), ".copy.db.tmp-*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary file is left")

	pg := keysConfig(t, "store: {url: postgres://paybridge@127.0.0.1:9/paybridge}\nmasterKey: "+strings.Repeat("A", 44)+"\n")
	_, _, err = cli(t, "backup", "--config", pg, "--out", filepath.Join(t.TempDir(), "x"))
	assert.ErrorContains(t, err, "pg_dump")
}

// TestKeysAndBackupWhileServing (issue 13 items 2 and 4): while a real `paybridge serve` holds
// the bbolt file, keys create, list and revoke and backup work through its admin socket (0600,
// removed on stop); a revoked key fails at once; the backup, taken while creates run, opens and
// holds every session acknowledged before it began. A socket left by a kill -9 does not stop the
// next serve.
func TestKeysAndBackupWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	w := newWorld(t, "", "")
	srv, base := w.serve(t)
	sock := filepath.Join(w.dir, "data", "paybridge.db.admin.sock")
	fi, err := os.Lstat(sock)
	require.NoError(t, err, "serve made its admin socket; stderr: %s", srv.stderr)
	assert.Equal(t, os.ModeSocket, fi.Mode().Type())
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// The first key of a running server: no restart, no key needed.
	plain, errOut, err := cli(t, "keys", "create", "--config", w.cfgPath, "--merchant", "acme")
	require.NoError(t, err, "%s", errOut)
	plain = strings.TrimSpace(plain)
	id := createdID(t, errOut)
	require.Equal(t, http.StatusOK, status(t, "GET", base+"/v1/sessions", plain), "the server knows the new key at once")
	k := keyByID(listKeys(t, w.cfgPath), id)
	require.NotNil(t, k)
	require.NotNil(t, k.LastUsedAt, "the server knows when the key was last used")
	assert.WithinDuration(t, time.Now(), *k.LastUsedAt, time.Minute)
	table, errOut, err := cli(t, "keys", "list", "--config", w.cfgPath)
	require.NoError(t, err)
	assert.NotContains(t, errOut, "last use is known only", "the server answered")
	assert.NotContains(t, table, plain)
	// Rolled through the socket, with no grace: the new key works at once, the old one no more.
	rolled, errOut, err := cli(t, "keys", "roll", "--config", w.cfgPath, "--grace", "0s", id)
	require.NoError(t, err, "%s", errOut)
	rolled = strings.TrimSpace(rolled)
	require.Regexp(t, `^vp_sk_test_[0-9A-Za-z]{24,}$`, rolled)
	assert.Equal(t, http.StatusOK, status(t, "GET", base+"/v1/sessions", rolled), "the replacement works at once")
	assert.Equal(t, http.StatusUnauthorized, status(t, "GET", base+"/v1/sessions", plain), "the rolled key ended at once")
	assert.NotContains(t, srv.stderr.String(), rolled, "no key in serve's log")
	id, plain = createdIDAfter(t, errOut, id), rolled
	_, _, err = cli(t, "keys", "revoke", "--config", w.cfgPath, id)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status(t, "GET", base+"/v1/sessions", plain), "revoked at once")
	// The rules hold through the socket: the world's own secret key is the last active one.
	for _, k := range listKeys(t, w.cfgPath) {
		if k.Type == bridge.KeySecret && k.Status == bridge.KeyActive {
			_, _, err = cli(t, "keys", "revoke", "--config", w.cfgPath, k.ID)
			assert.Equal(t, bridge.CodeValidationError, bridge.ErrorCode(err))
			assert.ErrorContains(t, err, "last active test secret key")
		}
	}

	// A backup while creates run.
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 25; i++ { // under the per-key create limit
			select {
			case <-stop:
				return
			default:
			}
			id, err := createSession(base, w.secretKey)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
		}
	})
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 3 }, 30*time.Second, 5*time.Millisecond)
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	out := filepath.Join(t.TempDir(), "hot.db")
	stdout, errOut, err := cli(t, "backup", "--config", w.cfgPath, "--out", out)
	close(stop)
	wg.Wait()
	require.NoError(t, err, "%s", errOut)
	assert.Contains(t, stdout, "through the running server's admin socket")
	copied, err := boltstore.Open(out, boltstore.Options{})
	require.NoError(t, err, "the copy opens")
	for _, sid := range before {
		_, err := copied.Session(context.Background(), sid)
		assert.NoError(t, err, "session %s was acknowledged before the backup began", sid)
	}
	require.NoError(t, copied.Close())

	// A clean stop removes the socket.
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.cmd.Wait())
	assert.NoFileExists(t, sock)

	// kill -9 leaves it behind; the next serve replaces it and answers on it.
	killed, _ := w.serve(t)
	killed.kill9(t)
	_, err = os.Lstat(sock)
	require.NoError(t, err, "kill -9 left the socket file")
	again, _ := w.serve(t)
	assert.Contains(t, again.stderr.String(), "removed a stale admin socket")
	_, errOut, err = cli(t, "keys", "list", "--config", w.cfgPath)
	require.NoError(t, err, "%s", errOut)
	assert.NotContains(t, errOut, "last use is known only", "the new server answered on the socket")
	for _, secret := range []string{w.secretKey, w.publishable, plain} {
		assert.NotContains(t, srv.stderr.String()+again.stderr.String(), secret)
	}
}

// TestKeysWhileServingWithoutSocket: with admin.socket off, the key commands say why they cannot
// reach the store while serve runs, and how to fix it.
func TestKeysWhileServingWithoutSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	w := newWorld(t, "admin: {socket: \"off\"}\n", "")
	w.serve(t)
	assert.NoFileExists(t, filepath.Join(w.dir, "data", "paybridge.db.admin.sock"))
	_, _, err := cli(t, "keys", "list", "--config", w.cfgPath)
	assert.ErrorIs(t, err, boltstore.ErrLocked)
	assert.ErrorContains(t, err, "admin.socket is off")
}

// createSession creates a session and returns its id once paybridge has answered 201; it does
// not stop the test, so goroutines may call it.
func createSession(base, key string) (string, error) {
	req, err := http.NewRequest("POST", base+"/v1/sessions", strings.NewReader(`{"agentId":"agent-1","amount":1240,"currency":"GBP"}`))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var s struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create answered %s (%v)", resp.Status, err)
	}
	return s.ID, nil
}

// status sends an authenticated request and returns the answer's status.
func status(t *testing.T, method, u, key string) int {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestKeysRevokeOnPostgreSQL: on a shared database the key commands use it directly, beside
// running nodes, and a key revoked there closes the agent sockets it opened on a node at once
// (4401), as a revocation through the API does.
func TestKeysRevokeOnPostgreSQL(t *testing.T) {
	c := newCluster(t, 1)
	var pubID string
	for _, k := range listKeys(t, c.cfgPath) {
		if k.Type == bridge.KeyPublishable {
			pubID = k.ID
		}
	}
	require.NotEmpty(t, pubID)
	token := postJSON(t, c.bases[0]+"/v1/agent_tokens", c.secretKey, `{"agentId":"agent-1"}`)["token"].(string)
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(c.bases[0], "http")+"/v1/ws?key="+url.QueryEscape(c.publishable),
		http.Header{"Origin": {c.origin}})
	require.NoError(t, err)
	resp.Body.Close()
	defer conn.Close()
	require.NoError(t, conn.WriteJSON(map[string]string{"type": "auth", "agentToken": token}))
	var ev struct{ Type string }
	require.NoError(t, conn.ReadJSON(&ev))
	require.Equal(t, "ready", ev.Type)

	_, errOut, err := cli(t, "keys", "revoke", "--config", c.cfgPath, pubID)
	require.NoError(t, err, "%s", errOut)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	for {
		if err = conn.ReadJSON(&ev); err != nil {
			break
		}
	}
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce, "the socket was closed, not timed out")
	assert.Equal(t, 4401, ce.Code)
	assert.Contains(t, ce.Text, "auth_key_expired")
}
