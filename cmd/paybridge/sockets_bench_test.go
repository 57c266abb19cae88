package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var (
	// benchSockets is how many sockets BenchmarkIdleAgentSockets opens.
	benchSockets = flag.Int("sockets", 1000, "agent sockets BenchmarkIdleAgentSockets opens")
	// benchPing, if set, is written to the server's configuration as sockets.pingInterval; unset,
	// the server keeps its default (25s), which is also what a paybridge without that key does.
	benchPing = flag.Duration("ping-interval", 0, "sockets.pingInterval for BenchmarkIdleAgentSockets (0: the server's default, 25s)")
)

// defaultPingInterval is the server's keepalive when the configuration does not set one.
const defaultPingInterval = 25 * time.Second

// BenchmarkIdleAgentSockets measures DESIGN's socket budgets on a real paybridge process (`serve`,
// as a child process): the resident memory and goroutines each idle agent socket costs the
// server, read right after the sockets opened and again after two keepalive intervals (every
// socket pinged twice and answering), and how long one event takes to reach every socket. All
// sockets belong to one agent, so one session's handoff goes to all of them. Bounded (-sockets),
// loopback only. Run:
//
//	go test ./cmd/paybridge -run '^$' -bench IdleAgentSockets -benchtime 1x -sockets 10000 [-ping-interval 5s]
func BenchmarkIdleAgentSockets(b *testing.B) {
	n := *benchSockets
	interval := defaultPingInterval
	top := "rateLimits: {perIP: 1000000}\n"
	if *benchPing > 0 {
		interval = *benchPing
		top += fmt.Sprintf("sockets: {pingInterval: %s}\n", interval)
	}
	// Every socket comes from one address, as agents behind a contact centre's NAT do: the per-IP
	// limit is lifted so the measurement is of sockets, not of the limiter.
	w := newWorld(b, top, "")
	child, base := w.serve(b)
	pid := child.cmd.Process.Pid
	token := postJSON(b, base+"/v1/agent_tokens", w.secretKey, `{"agentId":"agent-1"}`)["token"].(string)
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/v1/ws?key=" + url.QueryEscape(w.publishable)
	header := http.Header{"Origin": {w.origin}}

	before := readServer(b, pid, base)
	// Each client socket has a reader, which answers the server's pings (gorilla does, while
	// reading) and reports the handoff.
	var handoffs sync.WaitGroup
	handoffs.Add(n)
	var lost atomic.Int64 // sockets that ended before the handoff
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
		go func() {
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					lost.Add(1)
					handoffs.Done()
					return
				}
				if bytes.Contains(msg, []byte(`"type":"session.handoff"`)) {
					handoffs.Done()
					for { // keep answering pings until the benchmark closes the socket
						if _, _, err := c.ReadMessage(); err != nil {
							return
						}
					}
				}
			}
		}()
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	opened := time.Now()
	time.Sleep(2 * time.Second) // settle (lazily grown buffers) before the first reading
	fresh := readServer(b, pid, base)

	// Two keepalive intervals after the last socket opened, and a margin: every socket has been
	// pinged twice and has answered.
	time.Sleep(time.Until(opened.Add(2*interval + 3*time.Second)))
	if l := lost.Load(); l > 0 {
		b.Fatalf("%d sockets closed while idle (pings unanswered?)", l)
	}
	idle := readServer(b, pid, base)

	// One session created for the agent: its handoff must reach every socket.
	start := time.Now()
	postJSON(b, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":1240,"currency":"GBP"}`)
	done := make(chan struct{})
	go func() { handoffs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatal("the handoff did not reach every socket within a minute")
	}
	fanout := time.Since(start)
	if l := lost.Load(); l > 0 {
		b.Fatalf("%d sockets closed before the handoff", l)
	}

	time.Sleep(time.Second) // the writers the handoff started have ended
	after := readServer(b, pid, base)

	per := func(after, before float64) float64 { return (after - before) / float64(n) }
	b.ReportMetric(float64(n), "sockets")
	b.ReportMetric(interval.Seconds(), "ping-interval-s")
	b.ReportMetric(per(fresh.rssKiB, before.rssKiB), "RSS-KiB/socket-fresh")
	b.ReportMetric(per(idle.rssKiB, before.rssKiB), "RSS-KiB/socket-2pings")
	b.ReportMetric(per(idle.heapKiB, before.heapKiB), "heap-KiB/socket-2pings")
	b.ReportMetric(per(idle.stackKiB, before.stackKiB), "stacks-KiB/socket-2pings")
	b.ReportMetric(per(idle.goroutines, before.goroutines), "goroutines/socket")
	b.ReportMetric(per(after.rssKiB, before.rssKiB), "RSS-KiB/socket-after-fanout")
	b.ReportMetric(float64(fanout.Microseconds())/1000, "create→all-handoffs-ms")
}

// serverReading is what the benchmark reads of the server process at one moment.
type serverReading struct {
	rssKiB     float64 // resident set, from /proc
	heapKiB    float64 // in-use heap, from its /metrics
	stackKiB   float64 // goroutine stacks, from its /metrics
	goroutines float64 // from its /metrics
}

func readServer(b *testing.B, pid int, base string) serverReading {
	b.Helper()
	r := goMem(b, base)
	r.rssKiB = float64(rssKiB(b, pid))
	return r
}

// goMem reads the server's in-use heap and goroutine stacks (KiB) and its goroutine count from
// its /metrics.
func goMem(b *testing.B, base string) (r serverReading) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			r.heapKiB = v / 1024
		case "go_memstats_stack_inuse_bytes":
			r.stackKiB = v / 1024
		case "go_goroutines":
			r.goroutines = v
		}
	}
	return r
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
