package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/config"
	"github.com/paybridge/paybridge/vcc/vccstub"
)

// TestCheck: `paybridge check` validates a file and tries each merchant's VCC credentials
// against the (stub) token endpoint, telling the operator what to fix, never the secret.
func TestCheck(t *testing.T) {
	w := newWorld(t, "", "")
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"paybridge", "check", "--config", w.cfgPath}, os.Getenv, &out, &errOut))
	assert.Contains(t, out.String(), "valid, 1 merchant(s)")
	assert.Contains(t, out.String(), "merchant acme: VCC credentials ok")

	t.Setenv("ACME_VCC_SECRET", "not-the-secret")
	out.Reset()
	err := run(context.Background(), []string{"paybridge", "check", "--config", w.cfgPath}, os.Getenv, &out, &errOut)
	require.ErrorContains(t, err, "1 merchant(s) failed")
	assert.Contains(t, out.String(), "merchant_not_configured")
	assert.Contains(t, out.String(), "API Admin", "the fix names where the credentials come from")
	assert.NotContains(t, out.String(), "not-the-secret")

	out.Reset()
	require.NoError(t, run(context.Background(), []string{"paybridge", "check", "--offline", "--config", w.cfgPath}, os.Getenv, &out, &errOut))
	assert.NotContains(t, out.String(), "VCC credentials")
}

// TestCheckNamesTheBadKey: a broken file is refused with the exact key path.
func TestCheckNamesTheBadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte("provider: {maxAttempts: 0}\nmerchants:\n  - id: acme\n    vcc: {tokenUrl: not-a-url}\n"), 0o600))
	err := run(context.Background(), []string{"paybridge", "check", "--offline", "--config", path}, os.Getenv, &bytes.Buffer{}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "provider.maxAttempts")
	assert.Contains(t, err.Error(), "merchants[0].vcc.tokenUrl")
}

// TestExampleConfigChecks: the documented example passes check --offline once its variables are
// set, so the README's pointer to it is true.
func TestExampleConfigChecks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "example.yaml")
	require.NoError(t, os.WriteFile(path, []byte(config.Example()), 0o600))
	env := map[string]string{"ACME_VCC_SECRET": "s", "ACME_WEBHOOK_SECRET": "whsec_x", "ACME_VCC_WEBHOOK_SECRET": "v"}
	var out bytes.Buffer
	err := run(context.Background(), []string{"paybridge", "check", "--offline", "--config", path},
		func(k string) string { return env[k] }, &out, &bytes.Buffer{})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out.String(), path+": valid"))
}

// TestCheckNamesURLAndCause: each merchant's token request gets one line naming the URL tried
// and why it failed: DNS, a refused connection, TLS, an HTTP status with VCC's error code, bad
// credentials. Nothing paybridge sent (the client secret) is quoted.
func TestCheckNamesURLAndCause(t *testing.T) {
	stub := vccstub.New(vccstub.Options{})
	t.Cleanup(stub.Close)
	stubSrv := httptest.NewServer(stub)
	t.Cleanup(stubSrv.Close)
	stub.SetBaseURL(stubSrv.URL)

	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	tlsSrv.StartTLS()                                   // with a certificate nobody trusts
	t.Cleanup(tlsSrv.Close)
	missing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not_found"}`))
	}))
	t.Cleanup(missing.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	refusedURL := closed.URL + "/Auth/connect/token"
	closed.Close() // nothing listens there any more

	acct := vccstub.DefaultAccount()
	merchant := func(id, tokenURL, secret string) string {
		return fmt.Sprintf("  - id: %s\n    vcc: {tokenUrl: '%s', apiBaseUrl: '%s', clientId: %s, clientSecret: %s}\n",
			id, tokenURL, stub.PaymentAPIURL(), acct.ClientID, secret)
	}
	doc := "vcc: {maxRetries: 0, requestTimeout: 5s}\nmerchants:\n" +
		merchant("good", stub.TokenURL(), acct.ClientSecret) +
		merchant("wrongsecret", stub.TokenURL(), "not-the-secret") +
		merchant("nodns", "https://no-such-host.invalid/Auth/connect/token", acct.ClientSecret) +
		merchant("refused", refusedURL, acct.ClientSecret) +
		merchant("selfsigned", tlsSrv.URL+"/Auth/connect/token", acct.ClientSecret) +
		merchant("wrongpath", missing.URL+"/Auth/token", acct.ClientSecret)
	path := filepath.Join(t.TempDir(), "paybridge.yaml")
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))

	var out bytes.Buffer
	err := run(context.Background(), []string{"paybridge", "check", "--config", path}, func(string) string { return "" }, &out, &bytes.Buffer{})
	require.ErrorContains(t, err, "5 merchant(s) failed the VCC credential check")

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 7, "the file's line and one per merchant:\n%s", out.String())
	assert.Equal(t, path+": valid, 6 merchant(s)", lines[0])
	for i, want := range []string{
		"merchant good: VCC credentials ok (POST " + stub.TokenURL() + ")",
		"merchant wrongsecret: FAILED: POST " + stub.TokenURL() + `: bad credentials: VCC answered HTTP 400 invalid_client (merchant_not_configured). Fix: `,
		"merchant nodns: FAILED: POST https://no-such-host.invalid/Auth/connect/token: DNS: ",
		"merchant refused: FAILED: POST " + refusedURL + ": connection refused: nothing listens there (provider_unavailable). Fix: ",
		"merchant selfsigned: FAILED: POST " + tlsSrv.URL + "/Auth/connect/token: TLS: the server's certificate is not trusted: ",
		"merchant wrongpath: FAILED: POST " + missing.URL + "/Auth/token: VCC answered HTTP 404 not_found (",
	} {
		assert.True(t, strings.HasPrefix(lines[i+1], want), "line %d\n got: %s\nwant: %s...", i+1, lines[i+1], want)
	}
	assert.Contains(t, lines[2], "API Admin", "the fix says where the credentials come from")
	assert.Contains(t, lines[5], "certificate signed by unknown authority")
	for i, fix := range map[int]string{3: "host of merchants[].vcc.tokenUrl", 4: "host and port", 5: "SSL_CERT_FILE", 6: "/Auth/connect/token"} {
		assert.Contains(t, lines[i], "Fix: Check ", "line %d", i)
		assert.Contains(t, lines[i], fix, "line %d: the fix is about the URL, not VCC", i)
	}
	assert.NotContains(t, out.String(), "not-the-secret")
	assert.NotContains(t, out.String(), acct.ClientSecret)
}

// TestCheckAndServeRefuseWhatCannotServe: a file without merchants, or with an active merchant
// whose client secret is missing, is an error for check (offline too) and serve, at its line.
func TestCheckAndServeRefuseWhatCannotServe(t *testing.T) {
	for _, tt := range []struct {
		name, doc, want string
	}{
		{"no merchants", "listen: 127.0.0.1:0\n",
			": merchants: none configured"},
		{"secret variable not set", "listen: 127.0.0.1:0\nmerchants:\n  - id: acme\n    vcc:\n      region: emea\n      clientId: acme\n      clientSecret: ''\n",
			":7: merchants[0].vcc.clientSecret: required for an active merchant: set it (or PAYBRIDGE_MERCHANT_ACME_VCC_CLIENT_SECRET)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "paybridge.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.doc+"dataDir: "+filepath.Join(dir, "data")+"\n"), 0o600))
			noEnv := func(string) string { return "" }
			for _, args := range [][]string{{"check", "--offline"}, {"check"}, {"serve"}} {
				var out bytes.Buffer
				err := run(context.Background(), append(append([]string{"paybridge"}, args...), "--config", path), noEnv, &out, &out)
				require.Error(t, err, "%v", args)
				assert.Contains(t, err.Error(), path+tt.want, "%v", args)
				assert.NotContains(t, out.String(), "valid,", "%v", args)
			}
		})
	}
}
