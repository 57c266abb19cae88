package main

import (
	"bufio"
	"flag"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// benchSockets is how many sockets BenchmarkIdleAgentSockets opens.
var benchSockets = flag.Int("sockets", 1000, "agent sockets BenchmarkIdleAgentSockets opens")

// BenchmarkIdleAgentSockets measures DESIGN's socket budgets on a real paybridge process (the
// demo, as a child process): the resident memory each idle agent socket costs the server, and how
// long one event takes to reach every socket. All sockets belong to one agent, so one session's
// handoff goes to all of them. Run:
//
//	go test ./cmd/paybridge -run '^$' -bench IdleAgentSockets -benchtime 1x -sockets 10000
func BenchmarkIdleAgentSockets(b *testing.B) {
	n := *benchSockets
	// Every socket comes from one address, as agents behind a contact centre's NAT do: lift the
	// per-IP limit so the measurement is of sockets, not of the limiter.
	w := newWorld(b, "rateLimits: {perIP: 1000000}\n", "")
	child, base := w.serve(b)
	token := postJSON(b, base+"/v1/agent_tokens", w.secretKey, `{"agentId":"agent-1"}`)["token"].(string)
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/v1/ws?key=" + url.QueryEscape(w.publishable)
	header := http.Header{"Origin": {w.origin}}

	before, heapBefore := rssKiB(b, child.cmd.Process.Pid), goMemKiB(b, base)
	conns := make([]*websocket.Conn, 0, n)
	dialer := websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 1024}
	for i := 0; i < n; i++ {
		c, resp, err := dialer.Dial(wsURL, header)
		if err != nil {
			b.Fatalf("socket %d: %v", i, err)
		}
		resp.Body.Close()
		if err := c.WriteJSON(map[string]string{"type": "auth", "agentToken": token}); err != nil {
			b.Fatal(err)
		}
		var ready struct{ Type string }
		if err := c.ReadJSON(&ready); err != nil || ready.Type != "ready" {
			b.Fatalf("socket %d: %v %s", i, err, ready.Type)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(2 * time.Second) // let the server settle (GC, lazily grown buffers) before reading RSS
	after, heapAfter := rssKiB(b, child.cmd.Process.Pid), goMemKiB(b, base)

	// One session created for the agent: its handoff must reach every socket.
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range conns {
		wg.Go(func() {
			var ev struct{ Type string }
			for ev.Type != "session.handoff" {
				if err := c.ReadJSON(&ev); err != nil {
					return
				}
			}
		})
	}
	postJSON(b, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":1240,"currency":"GBP"}`)
	wg.Wait()
	fanout := time.Since(start)

	b.ReportMetric(float64(n), "sockets")
	b.ReportMetric(float64(after-before)/float64(n), "server-RSS-KiB/socket")
	b.ReportMetric(float64(heapAfter-heapBefore)/float64(n), "server-heap+stacks-KiB/socket")
	b.ReportMetric(float64(fanout.Milliseconds()), "create→all-handoffs-ms")
}

// goMemKiB reads the server's in-use heap and goroutine stacks from its /metrics.
func goMemKiB(b *testing.B, base string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	total := 0.0
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		for _, name := range []string{"go_memstats_heap_inuse_bytes ", "go_memstats_stack_inuse_bytes "} {
			if rest, ok := strings.CutPrefix(s.Text(), name); ok {
				v, _ := strconv.ParseFloat(rest, 64)
				total += v / 1024
			}
		}
	}
	return total
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(b *testing.B, pid int) int {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kib, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kib
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
