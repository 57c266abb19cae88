package web_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/web"
)

// edgeServer starts another paybridge server over the harness's services, served the way the
// binary serves it: by the *http.Server that web.Server.HTTPServer returns (timeouts, header
// limit, TLS when the options name a certificate), on a loopback port. It returns the base URL.
func (h *harness) edgeServer(configure func(*web.Options)) string {
	h.t.Helper()
	opts := h.serverOptions(configure)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(h.t, err)
	base := "http://" + ln.Addr().String()
	if opts.TLSCertFile != "" {
		base = "https://" + ln.Addr().String()
	}
	opts.PublicBaseURL = base
	server, err := web.NewServer(opts)
	require.NoError(h.t, err)
	srv := server.HTTPServer()
	served := make(chan struct{})
	go func() {
		defer close(served)
		if srv.TLSConfig != nil {
			_ = srv.ServeTLS(ln, "", "")
		} else {
			_ = srv.Serve(ln)
		}
	}()
	h.t.Cleanup(func() {
		_ = server.Shutdown(context.Background())
		_ = srv.Close()
		<-served
	})
	return base
}

// countingWriter counts what a logger writes and remembers the longest line, keeping nothing.
type countingWriter struct {
	bytes, lines, longest atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.bytes.Add(int64(len(p)))
	w.lines.Add(1)
	for {
		old := w.longest.Load()
		if int64(len(p)) <= old || w.longest.CompareAndSwap(old, int64(len(p))) {
			break
		}
	}
	return len(p), nil
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// randomToken is n random letters: a valid HTTP method of any length.
func randomToken(r *mrand.Rand, n int) string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}

// TestFloodWithoutAKeyIsBounded (issue 10 item 1): 10,000 requests with random methods (up to
// 1 KiB) and paths, no key, from one address. The metrics stay a fixed set of series, the heap
// and every log line stay small, and the per-IP limit, which comes before routing, answers 429
// to unknown routes too.
func TestFloodWithoutAKeyIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 requests")
	}
	h := newHarness(t)
	logs := &countingWriter{}
	const limit = 5000
	base := h.edgeServer(func(o *web.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.PerIPLimit = web.RateLimit{Limit: limit, Window: time.Hour} // the clock does not move: 5,000 pass
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	// The operator scrapes /metrics from another address (127.0.0.2 is loopback too), whose
	// bucket the flood does not empty.
	scraper := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	t.Cleanup(scraper.CloseIdleConnections)
	metricsSize := func() int {
		resp, err := scraper.Get(base + "/metrics")
		require.NoError(t, err)
		body := readAll(resp)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return len(body)
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"}
	send := func(r *mrand.Rand) (int, []byte) {
		method := methods[r.IntN(len(methods))]
		if r.IntN(2) == 0 {
			method = randomToken(r, 1+r.IntN(1024))
		}
		path := "/" + randomToken(r, 1+r.IntN(512)) + "/" + url.PathEscape(randomToken(r, r.IntN(512)))
		if r.IntN(4) == 0 {
			path = "/v1/sessions/" + randomToken(r, 1+r.IntN(512))
		}
		req, err := http.NewRequest(method, base+path, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		return resp.StatusCode, readAll(resp)
	}

	// Warm up (connections, buffers, the first series of each label), then measure.
	warm := mrand.New(mrand.NewPCG(1, 1))
	for range 200 {
		send(warm)
	}
	heapBefore, metricsBefore := heapInUse(), metricsSize()

	const requests, workers = 10000, 8
	var limited atomic.Int64
	var limitedBody atomic.Value
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(w+2), 7))
			for range requests / workers {
				status, body := send(r)
				if status == http.StatusTooManyRequests {
					limited.Add(1)
					limitedBody.Store(body)
				}
			}
		})
	}
	wg.Wait()

	heapAfter, metricsAfter := heapInUse(), metricsSize()
	t.Logf("heap %d KiB -> %d KiB; /metrics %d -> %d bytes; logs %d lines, %d KiB, longest %d bytes; %d limited",
		heapBefore>>10, heapAfter>>10, metricsBefore, metricsAfter, logs.lines.Load(), logs.bytes.Load()>>10, logs.longest.Load(), limited.Load())

	// Generous bounds, an order of magnitude under what the unbounded labels and logs cost
	// (issue 10: 20,000 such requests grew the heap by 56 MB and /metrics to 21.5 MB).
	assert.Less(t, heapAfter, heapBefore+16<<20, "heap growth")
	assert.Less(t, metricsAfter, 256<<10, "/metrics size")
	assert.Less(t, metricsAfter, metricsBefore+64<<10, "/metrics growth")
	assert.Less(t, logs.longest.Load(), int64(2<<10), "longest log line")
	assert.Less(t, logs.bytes.Load()/logs.lines.Load(), int64(1<<10), "average log line")

	// Past the limit, every request is refused before routing, unknown routes included.
	assert.Greater(t, limited.Load(), int64(requests-limit-200-10), "requests past the per-IP limit")
	body, _ := limitedBody.Load().([]byte)
	var e struct{ Code string }
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	assert.Equal(t, string(bridge.CodeRateLimitExceeded), e.Code)

	resp, err := scraper.Get(base + "/metrics")
	require.NoError(t, err)
	metrics := string(readAll(resp))
	series := 0
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "paybridge_http_requests_total{") {
			series++
			assert.Regexp(t, `method="(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|other)"`, line)
		}
	}
	assert.Less(t, series, 40, "request series: fixed methods x matched routes x status codes")
	assert.Contains(t, metrics, `method="other",route="unmatched"`)
}

// trickle opens a raw connection to base, sends head (request line and headers) and then one
// body byte every gap until the connection fails. It returns the connection.
func trickle(t *testing.T, base, head string, gap time.Duration) net.Conn {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = io.WriteString(conn, head)
	require.NoError(t, err)
	go func() {
		for {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(gap)
		}
	}()
	return conn
}

// waitClosed reads conn until the server closes it and returns what it sent; it fails the test
// if the connection is still open after within (a generous multiple of the timeout under test).
func waitClosed(t *testing.T, conn net.Conn, within time.Duration) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(within)))
	var got bytes.Buffer
	_, err := io.Copy(&got, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after %s; got %q", within, got.String())
	}
	return got.String()
}

// TestSlowBodiesAreCut (issue 10 item 2): connections that trickle their body a byte at a time
// are closed once the body timeout passes, whether the request authenticated (and reads its
// body), carries credentials that fail, or has none; headers that trickle are cut too.
func TestSlowBodiesAreCut(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) {
		c.merchant.VCCWebhook = bridge.VCCWebhookAuth{ClientID: vccHookClient, ClientSecret: vccHookSecret, SigningSecret: vccHookSign}
	})
	const timeout = 300 * time.Millisecond
	base := h.edgeServer(func(o *web.Options) {
		o.BodyTimeout, o.HeaderTimeout = timeout, timeout
	})
	post := func(path string, headers ...string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: paybridge.test\r\nContent-Length: 100000\r\n" + strings.Join(headers, "") + "\r\n"
	}
	tests := []struct {
		name   string
		head   string
		status string // the answer's status line, before the close
	}{
		{"authenticated create", post("/v1/sessions", "Authorization: Bearer "+h.secretKey+"\r\n", "Content-Type: application/json\r\n"), "HTTP/1.1 400"},
		{"no credentials", post("/v1/sessions", "Content-Type: application/json\r\n"), "HTTP/1.1 401"},
		{"a wrong key", post("/v1/sessions", "Authorization: Bearer vp_sk_test_"+strings.Repeat("0", 30)+"\r\n"), "HTTP/1.1 401"},
		{"VCC webhook with a signature", post("/v1/webhooks/vcc", "X-VonPay-Signature: t=1,v1=00\r\n", "Content-Type: application/json\r\n"), "HTTP/1.1 400"},
		{"OAuth token with form credentials", post("/oauth/token", "Content-Type: application/x-www-form-urlencoded\r\n"), "HTTP/1.1 400"},
		{"headers", "POST /v1/sessions HTTP/1.1\r\nHost: paybridge.test\r\nX-Slow: ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := trickle(t, base, tt.head, timeout/10)
			got := waitClosed(t, conn, 30*timeout)
			if tt.status != "" {
				assert.True(t, strings.HasPrefix(got, tt.status), "answer: %q", got)
			}
		})
	}
	// The server is fine afterwards.
	assert.Equal(t, http.StatusOK, doAt(t, base, "GET", "/v1/sessions", h.secretKey, nil).Status)

	// The deadline is for the body only: a create whose body has arrived may take longer (VCC
	// answers slowly here) without its context being cancelled.
	h.control("PUT", "/_control/faults", map[string]any{"latencyMs": (3 * timeout).Milliseconds()})
	slow := doAt(t, base, "POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"})
	assert.Equal(t, http.StatusCreated, slow.Status, "%s", slow.Body)
}

// TestUnauthenticatedRequestsPerIPAreCapped (issue 10 item 2): requests without credentials in
// their headers that are still in progress take a slot of their client's; past the cap the next
// is refused at once, while calls with a key go on, and the slots come back when those requests
// end.
func TestUnauthenticatedRequestsPerIPAreCapped(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) {
		c.merchant.VCCWebhook = bridge.VCCWebhookAuth{ClientID: vccHookClient, ClientSecret: vccHookSecret}
	})
	base := h.edgeServer(func(o *web.Options) {
		o.MaxUnauthenticatedPerIP = 2
		o.BodyTimeout = 2 * time.Second
	})
	// Two token requests whose form body (the credentials) never finishes hold both slots.
	head := "POST /oauth/token HTTP/1.1\r\nHost: paybridge.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
	slow := []net.Conn{trickle(t, base, head, 100*time.Millisecond), trickle(t, base, head, 100*time.Millisecond)}

	// healthz is a request without credentials.
	healthz := func() *response {
		resp, err := http.Get(base + "/healthz")
		require.NoError(t, err)
		return &response{Status: resp.StatusCode, Header: resp.Header, Body: readAll(resp)}
	}
	var refused *response
	require.Eventually(t, func() bool {
		refused = healthz()
		return refused.Status == http.StatusTooManyRequests
	}, 5*time.Second, 20*time.Millisecond, "a third request without credentials is refused while two are in progress")
	m := assertErrorEnvelope(t, refused, http.StatusTooManyRequests, bridge.CodeRateLimitExceeded)
	assert.Contains(t, m["error"], "without credentials")
	assert.Equal(t, http.StatusOK, doAt(t, base, "GET", "/v1/sessions", h.secretKey, nil).Status, "a call with a key is not held up")

	for _, c := range slow {
		waitClosed(t, c, 30*time.Second)
	}
	require.Eventually(t, func() bool { return healthz().Status == http.StatusOK },
		5*time.Second, 20*time.Millisecond, "the slots are given back")
}

// TestTrustedProxies (issue 10 item 4): behind a trusted proxy, clients are told apart by the
// forwarding headers, read from the right; without trusted proxies, those headers change nothing.
func TestTrustedProxies(t *testing.T) {
	h := newHarness(t)
	limit := web.RateLimit{Limit: 2, Window: time.Hour}
	behindProxy := h.extraServer(func(o *web.Options) {
		o.PerIPLimit = limit
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	})
	direct := h.extraServer(func(o *web.Options) { o.PerIPLimit = limit })
	get := func(base string, headers ...string) int {
		return doAt(t, base, "GET", "/healthz", "", nil, headers...).Status
	}

	t.Run("two clients behind one proxy have their own buckets", func(t *testing.T) {
		alice := []string{"X-Forwarded-For", "203.0.113.1"}
		bob := []string{"X-Forwarded-For", "203.0.113.2"}
		assert.Equal(t, 200, get(behindProxy, alice...))
		assert.Equal(t, 200, get(behindProxy, alice...))
		assert.Equal(t, 429, get(behindProxy, alice...), "alice's bucket is empty")
		assert.Equal(t, 200, get(behindProxy, bob...), "bob has his own")
		// What alice writes herself lies left of what the proxies appended: still alice.
		assert.Equal(t, 429, get(behindProxy, "X-Forwarded-For", "198.51.100.7, 203.0.113.1"))
		// Two proxies (both trusted) before paybridge: the rightmost untrusted hop is the client.
		assert.Equal(t, 429, get(behindProxy, "X-Forwarded-For", "203.0.113.1, 10.1.2.3"))
		// RFC 7239 Forwarded, when X-Forwarded-For is absent.
		carol := []string{"Forwarded", `for="[2001:db8::7]:4711";proto=https, for=10.0.0.9`}
		assert.Equal(t, 200, get(behindProxy, carol...))
		assert.Equal(t, 200, get(behindProxy, carol...))
		assert.Equal(t, 429, get(behindProxy, carol...))
		// An unreadable hop is not a bucket: the walk stops at the proxy that wrote it.
		assert.Equal(t, 200, get(behindProxy, "X-Forwarded-For", "not-an-address"))
	})

	t.Run("without trusted proxies spoofed headers change nothing", func(t *testing.T) {
		assert.Equal(t, 200, get(direct, "X-Forwarded-For", "203.0.113.1"))
		assert.Equal(t, 200, get(direct, "Forwarded", "for=203.0.113.2"))
		for _, spoof := range [][]string{{"X-Forwarded-For", "203.0.113.3"}, {"Forwarded", "for=203.0.113.4"}, {"X-Real-Ip", "203.0.113.5"}, nil} {
			assert.Equal(t, 429, get(direct, spoof...), "spoofed %v", spoof)
		}
	})
}

// writeCert writes a fresh self-signed certificate for 127.0.0.1 named cn, and its key, over
// certFile and keyFile, and returns the certificate.
func writeCert(t *testing.T, certFile, keyFile, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}

// TestTLS (issue 10 item 4): the server answers HTTPS with the configured certificate, an agent
// socket works over it, and a certificate replaced on disk is served from the next handshake on.
func TestTLS(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeCert(t, certFile, keyFile, "paybridge first")
	base := h.edgeServer(func(o *web.Options) { o.TLSCertFile, o.TLSKeyFile = certFile, keyFile })
	require.True(t, strings.HasPrefix(base, "https://"))

	trusting := func(certs ...*x509.Certificate) *tls.Config {
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		return &tls.Config{RootCAs: pool}
	}
	// served returns the certificate a fresh connection is given, and the answer to /healthz.
	served := func(cfg *tls.Config) (*x509.Certificate, int) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 10 * time.Second}
		resp, err := client.Get(base + "/healthz")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.NotNil(t, resp.TLS)
		return resp.TLS.PeerCertificates[0], resp.StatusCode
	}
	cert, status := served(trusting(first))
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "paybridge first", cert.Subject.CommonName)
	_, err := (&http.Client{Timeout: 10 * time.Second}).Get(base + "/healthz")
	require.Error(t, err, "an untrusted certificate is refused by a default client")

	// An agent socket over TLS: the publishable key in the URL, the token in the first message.
	dialer := websocket.Dialer{TLSClientConfig: trusting(first), HandshakeTimeout: 10 * time.Second}
	conn, resp, err := dialer.Dial("wss"+strings.TrimPrefix(base, "https")+"/v1/ws?key="+url.QueryEscape(h.publishableKey),
		http.Header{"Origin": {testOrigin}})
	require.NoError(t, err)
	resp.Body.Close()
	defer conn.Close()
	require.NoError(t, conn.WriteJSON(map[string]any{"type": "auth", "agentToken": h.agentToken("agent-1")}))
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(eventWait)))
	var ready event
	require.NoError(t, conn.ReadJSON(&ready))
	assert.Equal(t, "ready", ready.Type)
	s := h.createSession("agent-1", nil)
	var handoff event
	require.NoError(t, conn.ReadJSON(&handoff))
	assert.Equal(t, "session.handoff", handoff.Type)
	assert.Equal(t, s.ID, handoff.SessionID)

	// Renewal: new files, picked up by the next handshake without a restart.
	second := writeCert(t, certFile, keyFile, "paybridge second")
	later := time.Now().Add(time.Minute) // a distinct mtime, however coarse the file system's clock
	require.NoError(t, os.Chtimes(certFile, later, later))
	require.NoError(t, os.Chtimes(keyFile, later, later))
	cert, status = served(trusting(first, second))
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "paybridge second", cert.Subject.CommonName)

	// A half-written renewal keeps the current certificate in service.
	require.NoError(t, os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600))
	cert, _ = served(trusting(first, second))
	assert.Equal(t, "paybridge second", cert.Subject.CommonName)
	assert.Contains(t, h.logs.String(), "keeping the previous certificate")
}

// TestTLSOptionsChecked: a certificate that does not load is an error at start.
func TestTLSOptionsChecked(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile, "paybridge")
	for _, tt := range []struct{ name, cert, key string }{
		{"cert without key", certFile, ""},
		{"missing files", filepath.Join(dir, "nope.crt"), filepath.Join(dir, "nope.key")},
		{"swapped", keyFile, certFile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := web.NewServer(web.Options{Sessions: h.sessions, Keys: h.keys, Hub: h.hub, Store: h.store,
				Merchants: bridge.StaticMerchants{h.merchant}, Keyring: mustKeyring(t), TLSCertFile: tt.cert, TLSKeyFile: tt.key})
			assert.Error(t, err)
		})
	}
}

func mustKeyring(t *testing.T) *bridge.Keyring {
	k, err := bridge.NewKeyring(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	return k
}

// TestSocketFirstMessageNotJSON (issue 10 item 9): a first message that is not JSON closes the
// socket as a protocol error (4400), distinct from silence (4408).
func TestSocketFirstMessageNotJSON(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.server.AuthTimeout = 200 * time.Millisecond })
	for _, tt := range []struct {
		name string
		send func(c *websocket.Conn) error
		code int
	}{
		{"text that is not JSON", func(c *websocket.Conn) error { return c.WriteMessage(websocket.TextMessage, []byte("hello")) }, web.CloseProtocolError},
		{"binary garbage", func(c *websocket.Conn) error { return c.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0x00}) }, web.CloseProtocolError},
		{"JSON of the wrong kind", func(c *websocket.Conn) error { return c.WriteMessage(websocket.TextMessage, []byte(`[1,2]`)) }, web.CloseProtocolError},
		{"silence", func(*websocket.Conn) error { return nil }, web.CloseAuthTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := h.dial(h.publishableKey, testOrigin)
			s.wmu.Lock()
			err := tt.send(s.conn)
			s.wmu.Unlock()
			require.NoError(t, err)
			assert.Equal(t, tt.code, s.waitClosed().Code)
		})
	}
}

// pastedSecrets are one credential-shaped value of each kind paybridge redacts. They are not
// real credentials: what matters is that nothing of their shape is ever written out.
var pastedSecrets = map[string]string{
	"secret key":      "vp_sk_test_" + strings.Repeat("S", 28),
	"publishable key": "vp_pk_live_" + strings.Repeat("P", 28),
	"agent token":     "vp_at_test_eyJtIjoiYWNtZSJ9" + ".c2lnbmF0dXJl",
	"webhook secret":  "whsec_" + strings.Repeat("W", 32),
}

// TestPastedSecretsAreRedacted (issue 10 item 6): each kind of secret pasted into a path, a
// query, a header and a body key reaches neither a log line nor a response body.
func TestPastedSecretsAreRedacted(t *testing.T) {
	h := newHarness(t)
	sess := h.createSession("agent-1", nil)
	for kind, secret := range pastedSecrets {
		t.Run(kind, func(t *testing.T) {
			q := url.QueryEscape(secret)
			p := url.PathEscape(secret)
			calls := []struct {
				where         string
				method, path  string
				key           string
				body          any
				headers       []string
				status        int
				wantInMessage string // a part of the error that shows the input was quoted, redacted
			}{
				{"path, unknown route", "POST", "/v1/" + p, h.secretKey, nil, nil, 400, "[redacted]"},
				{"path, session id", "GET", "/v1/sessions/" + p, h.secretKey, nil, nil, 404, ""},
				{"path, api key id", "DELETE", "/api/merchants/api-keys/" + p, h.secretKey, nil, nil, 0, ""},
				{"query, status", "GET", "/v1/sessions?status=" + q, h.secretKey, nil, nil, 400, "[redacted]"},
				{"query, limit", "GET", "/v1/sessions?limit=" + q, h.secretKey, nil, nil, 400, "[redacted]"},
				{"query, starting_after", "GET", "/v1/sessions?starting_after=" + q, h.secretKey, nil, nil, 0, ""},
				{"query, socket key", "GET", "/v1/ws?key=" + q, "", nil, []string{"Origin", testOrigin}, 401, ""},
				{"header, request id", "GET", "/v1/sessions/" + sess.ID, h.secretKey, nil, []string{"X-Request-Id", secret}, 200, ""},
				{"header, origin", "POST", "/v1/sessions", h.publishableKey, map[string]any{"amount": 1, "currency": "GBP"},
					[]string{"Origin", "https://" + secret + ".example", "X-Agent-Token", h.agentToken("agent-1")}, 403, "[redacted]"},
				{"header, agent token", "POST", "/v1/sessions", h.publishableKey, map[string]any{"amount": 1, "currency": "GBP"},
					[]string{"Origin", testOrigin, "X-Agent-Token", secret}, 401, ""},
				{"header, idempotency key", "POST", "/v1/sessions/" + sess.ID + "/restart", h.secretKey, nil, []string{"Idempotency-Key", secret}, 0, ""},
				{"body key", "POST", "/v1/sessions", h.secretKey, `{"agentId":"agent-1","amount":1,"currency":"GBP","` + secret + `":1}`, nil, 400, "[redacted]"},
				{"body key, metadata", "POST", "/v1/sessions", h.secretKey, `{"agentId":"agent-1","amount":1,"currency":"GBP","metadata":{"` + secret + `":5}}`, nil, 400, "[redacted]"},
				{"body key, nested", "POST", "/v1/sessions", h.secretKey, `{"agentId":"agent-1","amount":1,"currency":"GBP","customer":{"` + secret + `":"x"}}`, nil, 400, "[redacted]"},
				{"body value, agentId", "POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": secret, "amount": 1, "currency": "GBP"}, nil, 400, ""},
				{"body value, agent token's agent", "POST", "/v1/agent_tokens", h.secretKey, map[string]any{"agentId": secret}, nil, 400, ""},
			}
			for _, c := range calls {
				r := h.do(c.method, c.path, c.key, c.body, c.headers...)
				if c.status != 0 {
					assert.Equal(t, c.status, r.Status, "%s: %s", c.where, r.Body)
				}
				assert.NotContains(t, string(r.Body), secret, c.where)
				for _, v := range r.Header {
					assert.NotContains(t, strings.Join(v, " "), secret, c.where)
				}
				if c.wantInMessage != "" {
					assert.Contains(t, string(r.Body), c.wantInMessage, c.where)
				}
			}
		})
	}
	h.logs.AssertNoSecrets(t, append(mapValues(pastedSecrets), h.secretKey, h.publishableKey)...)
	assert.Contains(t, h.logs.String(), "[redacted]", "the pasted values were logged, redacted")
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestStrictJSON (issue 10 item 7): every way encoding/json would read a body differently from
// its sender is a validation_error naming the field.
func TestStrictJSON(t *testing.T) {
	h := newHarness(t)
	const base = `"agentId":"agent-1","amount":1240,"currency":"GBP"`
	tests := []struct {
		name  string
		path  string
		body  string
		param string // "" when the body is accepted
	}{
		{"accepted", "/v1/sessions?dry_run=true", `{` + base + `}`, ""},
		{"tab and line breaks in a metadata value", "/v1/sessions?dry_run=true", `{` + base + `,"metadata":{"note":"line 1\nline 2\r\n\tindented"}}`, ""},
		{"U+FFFD written by the sender", "/v1/sessions?dry_run=true", `{` + base + `,"reference":"a\ufffdb","metadata":{"m":"` + "\uFFFD" + `"}}`, ""},
		{"field name in another case", "/v1/sessions", `{"AgentId":"agent-1","amount":1240,"currency":"GBP"}`, "AgentId"},
		{"nested field name in another case", "/v1/sessions", `{` + base + `,"customer":{"Email":"a@example.com"}}`, "customer.Email"},
		{"line item field in another case", "/v1/sessions", `{` + base + `,"lineItems":[{"name":"x","quantity":1,"unitAmount":1},{"NAME":"y","quantity":1,"unitAmount":1}]}`, "lineItems[1].NAME"},
		{"duplicate key", "/v1/sessions", `{` + base + `,"amount":1}`, "amount"},
		{"duplicate nested key", "/v1/sessions", `{` + base + `,"customer":{"email":"a@example.com","email":"b@example.com"}}`, "customer.email"},
		{"duplicate metadata key", "/v1/sessions", `{` + base + `,"metadata":{"k":"1","k":"2"}}`, "metadata.k"},
		{"escaped control character", "/v1/sessions", `{` + base + `,"reference":"INV\u0001"}`, "reference"},
		{"raw control character", "/v1/sessions", `{` + base + `,"reference":"INV` + "\x01" + `"}`, "reference"},
		{"tab outside free text", "/v1/sessions", `{` + base + `,"reference":"INV\t1"}`, "reference"},
		{"line break in a customer field", "/v1/sessions", `{` + base + `,"customer":{"street1":"1 Main St\nFlat 2"}}`, "customer.street1"},
		{"DEL", "/v1/sessions", `{` + base + `,"customer":{"surname":"X\u007f"}}`, "customer.surname"},
		{"C1 control", "/v1/sessions", `{` + base + `,"lineItems":[{"name":"x\u0085","quantity":1,"unitAmount":1}]}`, "lineItems[0].name"},
		{"NUL in a metadata value", "/v1/sessions", `{` + base + `,"metadata":{"note":"a\u0000b"}}`, "metadata.note"},
		{"control character in a metadata key", "/v1/sessions", `{` + base + `,"metadata":{"a\nb":"x"}}`, "metadata.a\nb"},
		{"invalid UTF-8 in a value", "/v1/sessions", `{` + base + `,"reference":"INV` + "\xff" + `"}`, "reference"},
		{"invalid UTF-8 in a metadata value", "/v1/sessions", `{` + base + `,"metadata":{"m":"` + "\xc3\x28" + `"}}`, "metadata.m"},
		{"invalid UTF-8 in a key", "/v1/sessions", `{` + base + `,"metadata":{"` + "\xe2\x82" + `":"x"}}`, "metadata.\ufffd\ufffd"},
		{"lone surrogate", "/v1/sessions", `{` + base + `,"customer":{"firstName":"\ud800"}}`, "customer.firstName"},
		{"agent token body", "/v1/agent_tokens", `{"agentId":"agent-1","agentId":"agent-2"}`, "agentId"},
		{"agent token field case", "/v1/agent_tokens", `{"agentID":"agent-1"}`, "agentID"},
		{"api key body", "/api/merchants/api-keys", `{"type":"secret","Mode":"test"}`, "Mode"},
		{"roll body", "/api/merchants/api-keys/key_x/roll", `{"graceSeconds":1,"graceSeconds":2}`, "graceSeconds"},
		{"cancel body", "/v1/sessions/vp_cs_test_0000000000000000/cancel", `{"a":1,"a":2}`, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("POST", tt.path, h.secretKey, tt.body)
			if tt.param == "" {
				assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
				return
			}
			m := assertErrorEnvelope(t, r, http.StatusBadRequest, bridge.CodeValidationError)
			assert.Equal(t, tt.param, m["param"], "%s", r.Body)
		})
	}
	// What VCC's webhook sends is read leniently (unknown fields are VCC's business), but not the
	// field paybridge reads.
	hooked := newHarness(t, func(c *harnessConfig) {
		c.merchant.VCCWebhook = bridge.VCCWebhookAuth{ClientID: vccHookClient, ClientSecret: vccHookSecret}
	})
	token := vccToken(t, hooked)
	for _, tt := range []struct{ name, body, param string }{
		{"duplicate sessionGuid", `{"sessionGuid":"a","sessionGuid":"b"}`, "sessionGuid"},
		{"sessionGuid in another case", `{"SessionGuid":"a"}`, "SessionGuid"},
		{"invalid UTF-8 in an unknown field", `{"sessionGuid":"a","note":"` + "\xff" + `"}`, "note"},
	} {
		t.Run("VCC webhook: "+tt.name, func(t *testing.T) {
			m := assertErrorEnvelope(t, hooked.do("POST", "/v1/webhooks/vcc", token, tt.body), http.StatusBadRequest, bridge.CodeValidationError)
			assert.Equal(t, tt.param, m["param"])
		})
	}
}

// vccToken gets a webhook bearer token from h's /oauth/token with HTTP Basic credentials.
func vccToken(t *testing.T, h *harness) string {
	t.Helper()
	req, err := http.NewRequest("POST", h.srv.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(vccHookClient, vccHookSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal(readAll(resp), &tok))
	require.NotEmpty(t, tok.AccessToken)
	return tok.AccessToken
}

// TestCredentialsBeforeBody (issue 10 item 2): where the credentials are in headers, they are
// checked before the body is read: a request with wrong ones is answered while its body has not
// even been sent.
func TestCredentialsBeforeBody(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) {
		c.merchant.VCCWebhook = bridge.VCCWebhookAuth{ClientID: vccHookClient, ClientSecret: vccHookSecret}
	})
	for _, tt := range []struct {
		name, head, status string
	}{
		{"VCC webhook, wrong bearer", "POST /v1/webhooks/vcc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Type: application/json\r\n", "HTTP/1.1 401"},
		{"OAuth token, wrong Basic credentials", "POST /oauth/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " +
			"dmNjLWFjbWU6d3Jvbmc=\r\nContent-Type: application/x-www-form-urlencoded\r\n", "HTTP/1.1 401"},
		{"API, wrong key", "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer vp_sk_test_" + strings.Repeat("0", 30) + "\r\nContent-Type: application/json\r\n", "HTTP/1.1 401"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := url.Parse(h.srv.URL)
			conn, err := net.Dial("tcp", u.Host)
			require.NoError(t, err)
			defer conn.Close()
			// The body is announced and never sent: only an answer before reading it arrives.
			_, err = fmt.Fprintf(conn, "%sContent-Length: 500000\r\n\r\n", tt.head)
			require.NoError(t, err)
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
			line, err := bufio.NewReader(conn).ReadString('\n')
			require.NoError(t, err, "no answer while the body is outstanding")
			assert.True(t, strings.HasPrefix(line, tt.status), "status line %q", line)
		})
	}
}

// countingKeys is the harness's store counting key lookups by hash: one per authentication.
type countingKeys struct {
	bridge.Store
	lookups atomic.Int64
}

func (s *countingKeys) APIKeyByHash(ctx context.Context, hash string) (*bridge.APIKey, error) {
	s.lookups.Add(1)
	return s.Store.APIKeyByHash(ctx, hash)
}

// TestAuthenticatedOncePerRequest (issue 7 item 4): the key of a request is checked once, however
// many layers (the idempotency layer, the handler) need the caller.
func TestAuthenticatedOncePerRequest(t *testing.T) {
	h := newHarness(t)
	counted := &countingKeys{Store: h.store}
	keys := bridge.NewKeyService(bridge.KeyServiceOptions{Store: counted, Merchants: bridge.StaticMerchants{h.merchant},
		Keyring: mustKeyring(t), Clock: h.clock})
	base := h.extraServer(func(o *web.Options) { o.Keys = keys })
	token := h.agentToken("agent-1")
	body := map[string]any{"amount": 1240, "currency": "GBP"}
	for _, tt := range []struct {
		name    string
		method  string
		path    string
		key     string
		body    any
		headers []string
		status  int
	}{
		{"secret key, idempotent create", "POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"},
			[]string{"Idempotency-Key", "once-1"}, http.StatusCreated},
		{"its replay", "POST", "/v1/sessions", h.secretKey, map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"},
			[]string{"Idempotency-Key", "once-1"}, http.StatusCreated},
		{"browser, idempotent create", "POST", "/v1/sessions", h.publishableKey, body,
			[]string{"Idempotency-Key", "once-2", "Origin", testOrigin, "X-Agent-Token", token}, http.StatusCreated},
		{"idempotent agent token", "POST", "/v1/agent_tokens", h.secretKey, map[string]any{"agentId": "agent-2"},
			[]string{"Idempotency-Key", "once-3"}, http.StatusCreated},
		{"a read", "GET", "/v1/sessions", h.secretKey, nil, nil, http.StatusOK},
		{"refused: publishable key on a secret endpoint", "POST", "/v1/agent_tokens", h.publishableKey, map[string]any{"agentId": "agent-2"},
			[]string{"Idempotency-Key", "once-4"}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := counted.lookups.Load()
			r := doAt(t, base, tt.method, tt.path, tt.key, tt.body, tt.headers...)
			require.Equal(t, tt.status, r.Status, "%s", r.Body)
			assert.Equal(t, int64(1), counted.lookups.Load()-before, "key lookups")
		})
	}
}
