package main

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var metricsAddr = regexp.MustCompile(`"msg":"metrics listening"[^\n]*"addr":"(127\.0\.0\.1:\d+)"`)

// TestServeVCCMetricsOnOwnAddress runs `paybridge serve` with metrics.listen against the stub
// VCC: /metrics is served on its own address only (the API answers it as an unknown path), and
// counts every attempt to VCC by endpoint and outcome: a create, a create the stub holds until
// the request timeout, and a create answered 503 once and retried. Both listeners stop with serve.
func TestServeVCCMetricsOnOwnAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	w := newWorld(t, "metrics: {listen: 127.0.0.1:0}\nvcc: {requestTimeout: 1s, maxRetries: 3}\n", "")
	srv, base := w.serve(t)
	metrics := "http://" + srv.waitFor(t, metricsAddr) + "/metrics"

	// The API answers /metrics exactly as it answers any path it does not have.
	unknown := get(t, base+"/no-such-path")
	onAPI := get(t, base+"/metrics")
	assert.Equal(t, unknown.status, onAPI.status)
	assert.Equal(t, errorCode(t, unknown.body), errorCode(t, onAPI.body))
	assert.NotContains(t, onAPI.body, "paybridge_")
	before := get(t, metrics)
	require.Equal(t, http.StatusOK, before.status)
	assert.Equal(t, 0.0, sample(t, before.body, `paybridge_vcc_requests_total{endpoint="create",outcome="timeout"}`), "every series exists from the start")

	create := func() int {
		req, err := http.NewRequest("POST", base+"/v1/sessions", strings.NewReader(`{"agentId":"agent-1","amount":1240,"currency":"GBP"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+w.secretKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	stub := &stubControl{t: t, base: w.stubBase}
	assert.Equal(t, http.StatusCreated, create())
	stub.put("/_control/faults", `{"create":"timeout","times":1}`)
	assert.GreaterOrEqual(t, create(), 500, "a create VCC never answers fails, and is not retried")
	stub.put("/_control/faults", `{"create":"http_503","times":1}`)
	assert.Equal(t, http.StatusCreated, create(), "a 503 is retried")

	after := get(t, metrics).body
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{`paybridge_vcc_requests_total{endpoint="create",outcome="ok"}`, 2},
		{`paybridge_vcc_requests_total{endpoint="create",outcome="timeout"}`, 1},
		{`paybridge_vcc_requests_total{endpoint="create",outcome="5xx"}`, 1},
		{`paybridge_vcc_requests_total{endpoint="create",outcome="error"}`, 0},
		{`paybridge_vcc_requests_total{endpoint="token",outcome="ok"}`, 1},
		{`paybridge_vcc_request_duration_seconds_count{endpoint="create"}`, 4},
	} {
		assert.Equal(t, tt.want, sample(t, after, tt.series), tt.series)
	}
	// The poller asks VCC about the open sessions meanwhile.
	assert.Eventually(t, func() bool {
		return sample(t, get(t, metrics).body, `paybridge_vcc_requests_total{endpoint="status",outcome="ok"}`) > 0
	}, 10*time.Second, 50*time.Millisecond)

	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.cmd.Wait(), "serve exits 0 on SIGTERM\n%s", srv.stderr)
	for _, u := range []string{base, metrics} {
		host := strings.Split(strings.TrimPrefix(u, "http://"), "/")[0]
		_, err := net.DialTimeout("tcp", host, time.Second)
		assert.Error(t, err, "%s still accepts connections after serve stopped", host)
	}
	assert.NotContains(t, srv.stderr.String(), "sandbox-secret")
}

type answer struct {
	status int
	body   string
}

func get(t *testing.T, u string) answer {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{resp.StatusCode, string(body)}
}

// sample reads one series' value from a Prometheus text exposition; absent fails the test.
func sample(t *testing.T, exposition, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(exposition, "\n") {
		if value, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			require.NoError(t, err, line)
			return v
		}
	}
	require.FailNow(t, "series not exported", "%s", series)
	return 0
}
