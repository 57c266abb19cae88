package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/config"
)

// TestServeTLS: with tls in the configuration the binary's server answers HTTPS with that
// certificate (and nothing in clear), its public URL is https, and a pasted credential in a path
// reaches neither the process log nor the answer.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, der := writeLoopbackCert(t, dir, "paybridge serve")

	cfg, err := config.Parse([]byte(`
listen: 127.0.0.1:0
dataDir: `+filepath.Join(dir, "data")+`
masterKey: `+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))+`
tls: {certFile: "`+certFile+`", keyFile: "`+keyFile+`"}
merchants: [{id: acme}]
`), nil)
	require.NoError(t, err)
	logs := &bridgetest.LogSink{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a, err := newApp(cfg, appOptions{logger: newLogger(logs, "json", cfg.Log.SlogLevel()), listener: ln})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(a.baseURL(), "https://127.0.0.1:"), a.baseURL())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get(a.baseURL() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "paybridge serve", resp.TLS.PeerCertificates[0].Subject.CommonName)

	pasted := "vp_sk_live_" + strings.Repeat("Q", 30)
	resp, err = client.Get(a.baseURL() + "/v1/" + pasted)
	require.NoError(t, err)
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.NotContains(t, body.String(), pasted)
	assert.Contains(t, logs.String(), "vp_sk_[redacted]", "the access log has the path, redacted")
	logs.AssertNoSecrets(t, pasted)

	plain, err := (&http.Client{Timeout: 10 * time.Second}).Get("http" + strings.TrimPrefix(a.baseURL(), "https") + "/healthz")
	if err == nil {
		plain.Body.Close()
		assert.Equal(t, http.StatusBadRequest, plain.StatusCode, "plain HTTP to the TLS port is refused")
	}
}

// TestWidgetOverTLS: with tls configured, the widget served by paybridge over HTTPS runs in
// Chromium, opens its socket over wss and gets its ready snapshot (issue 10: TLS in the binary;
// the test's own certificate is accepted with Chromium's ignore-certificate-errors).
func TestWidgetOverTLS(t *testing.T) {
	browser := bridgetest.Browser(t, chromedp.Flag("ignore-certificate-errors", true))
	dir := t.TempDir()
	certFile, keyFile, _ := writeLoopbackCert(t, dir, "paybridge widget")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	origin := "https://" + ln.Addr().String()
	cfg, err := config.Parse([]byte(`
listen: 127.0.0.1:0
dataDir: `+filepath.Join(dir, "data")+`
masterKey: `+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{4}, 32))+`
tls: {certFile: "`+certFile+`", keyFile: "`+keyFile+`"}
merchants: [{id: acme, allowedOrigins: ["`+origin+`"]}]
`), nil)
	require.NoError(t, err)
	a, err := newApp(cfg, appOptions{logger: newLogger(&bridgetest.LogSink{}, "json", cfg.Log.SlogLevel()), listener: ln})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	pk, _, err := a.keys.CreateKey(t.Context(), "acme", bridge.KeyPublishable, bridge.ModeTest)
	require.NoError(t, err)
	sk, _, err := a.keys.CreateKey(t.Context(), "acme", bridge.KeySecret, bridge.ModeTest)
	require.NoError(t, err)
	p, err := a.keys.Authenticate(t.Context(), sk)
	require.NoError(t, err)
	token, _, err := a.keys.IssueAgentToken(t.Context(), p, "agent-1", time.Hour)
	require.NoError(t, err)

	_, err = chromedp.Run(browser, chromedp.Navigate(origin+"/healthz"))
	require.NoError(t, err)
	agent, err := chromedp.Run(browser, chromedp.Evaluate[string](fmt.Sprintf(`new Promise((resolve, reject) => {
  const s = document.createElement("script");
  s.src = "/static/paybridge.js";
  s.onerror = () => reject(new Error("the widget did not load over https"));
  s.onload = () => {
    const el = document.createElement("div");
    document.body.appendChild(el);
    const w = PayBridge.mount(el, {baseUrl: location.origin, publishableKey: %q, getAgentToken: () => %q});
    w.on("ready", (d) => resolve(location.protocol + " " + d.agentId));
    setTimeout(() => reject(new Error("no ready over wss")), 20000);
  };
  document.head.appendChild(s);
})`, pk, token), chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, "https: agent-1", agent)
}

// writeLoopbackCert writes a self-signed certificate for 127.0.0.1 and its key into dir and
// returns their paths and the certificate's DER.
func writeLoopbackCert(t *testing.T, dir, commonName string) (certFile, keyFile string, der []byte) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: commonName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile, der
}
