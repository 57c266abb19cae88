package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/paybridge/paybridge/bridge/pgstore/pgtest"
)

// benchCluster starts n `paybridge serve` processes on one store: bbolt (n must be 1) or a fresh
// PostgreSQL database. Rate limits are raised and polling slowed so that neither is measured.
func benchCluster(b *testing.B, store string, n int) (*world, []string) {
	b.Helper()
	top := "rateLimits: {sessionCreatesPerKey: 1000000000, perIP: 1000000000}\n"
	if store == "pg" {
		// pool_max_conns: the default (4) would measure the pool, not the database.
		db := pgtest.NewDatabase(b) + "&pool_max_conns=16"
		top += fmt.Sprintf("masterKey: %s\nstore: {url: %q}\n", base64.StdEncoding.EncodeToString([]byte(strings.Repeat("b", 32))), db)
	}
	w := newWorld(b, top, "")
	cfg, err := os.ReadFile(w.cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(w.cfgPath, []byte(strings.Replace(string(cfg), "pollInterval: 100ms", "pollInterval: 1h", 1)), 0o600); err != nil {
		b.Fatal(err)
	}
	var bases []string
	for range n {
		_, base := w.serve(b)
		bases = append(bases, base)
	}
	return w, bases
}

// BenchmarkNodesCreates measures durable session creates per second through real processes:
// bbolt on one node beside PostgreSQL on one and on three nodes (clients spread evenly over the
// nodes), at 1, 8 and 64 concurrent clients. Run:
//
//	PAYBRIDGE_PG_DURABLE=1 ./scripts/pg-up   # durable commits, as bbolt's
//	go test ./cmd/paybridge -run '^$' -bench NodesCreates -benchtime 1000x
func BenchmarkNodesCreates(b *testing.B) {
	for _, setup := range []struct {
		store string
		nodes int
	}{{"bbolt", 1}, {"pg", 1}, {"pg", 3}} {
		w, bases := benchCluster(b, setup.store, setup.nodes)
		for _, clients := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("store=%s/nodes=%d/clients=%d", setup.store, setup.nodes, clients), func(b *testing.B) {
				transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
				defer transport.CloseIdleConnections()
				client := &http.Client{Transport: transport, Timeout: time.Minute}
				create := func(base string) error {
					req, _ := http.NewRequest("POST", base+"/v1/sessions", strings.NewReader(`{"agentId":"agent-1","amount":1240,"currency":"GBP"}`))
					req.Header.Set("Authorization", "Bearer "+w.secretKey)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						return err
					}
					data, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						return fmt.Errorf("status %d: %s", resp.StatusCode, data)
					}
					return nil
				}
				// Warm up, untimed: each client's connection, and the nodes' database connections
				// (opened on demand: on two cores, a burst of new PostgreSQL backends takes
				// seconds, a one-off cost that would otherwise be the p99).
				var warm sync.WaitGroup
				for i := range clients {
					warm.Go(func() {
						if err := create(bases[i%len(bases)]); err != nil {
							b.Error(err)
						}
					})
				}
				warm.Wait()
				var next atomic.Int64
				var failed atomic.Value
				latencies := make([][]time.Duration, clients)
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for i := range clients {
					wg.Go(func() {
						base := bases[i%len(bases)]
						for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
							t0 := time.Now()
							if err := create(base); err != nil {
								failed.CompareAndSwap(nil, err)
								return
							}
							latencies[i] = append(latencies[i], time.Since(t0))
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				if err, _ := failed.Load().(error); err != nil {
					b.Fatalf("create: %v", err)
				}
				all := slices.Concat(latencies...)
				slices.Sort(all)
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "creates/s")
				b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
				b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
			})
		}
	}
}

// BenchmarkNodesHandoff measures how long after a create is sent through node B the handoff
// reaches the agent's socket, on B itself (same node) and on node A (through PostgreSQL's
// NOTIFY), one create at a time.
func BenchmarkNodesHandoff(b *testing.B) {
	w, bases := benchCluster(b, "pg", 2)
	token := postJSON(b, bases[0]+"/v1/agent_tokens", w.secretKey, `{"agentId":"agent-1","ttlSeconds":3600}`)["token"].(string)
	for _, tc := range []struct {
		name   string
		socket string
	}{{"same-node", bases[1]}, {"cross-node", bases[0]}} {
		b.Run(tc.name, func(b *testing.B) {
			conn := dialAgent(b, tc.socket, w.publishable, token, w.origin)
			defer conn.Close()
			// Arrival times, taken as each handoff comes off the socket: a handoff may arrive
			// before the create's answer does.
			arrived := make(chan time.Time, 1)
			go func() {
				for {
					var ev struct{ Type string }
					if err := conn.ReadJSON(&ev); err != nil {
						close(arrived)
						return
					}
					if ev.Type == "session.handoff" {
						arrived <- time.Now()
					}
				}
			}()
			var all []time.Duration
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				postJSON(b, bases[1]+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":1240,"currency":"GBP"}`)
				at, ok := <-arrived
				if !ok {
					b.Fatal("agent socket closed")
				}
				all = append(all, at.Sub(t0))
			}
			b.StopTimer()
			slices.Sort(all)
			b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
		})
	}
}

// dialAgent connects an agent socket to base and reads its ready event.
func dialAgent(b *testing.B, base, pk, token, origin string) *websocket.Conn {
	b.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/ws?key="+url.QueryEscape(pk), http.Header{"Origin": {origin}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if err := conn.WriteJSON(map[string]string{"type": "auth", "agentToken": token}); err != nil {
		b.Fatal(err)
	}
	var ready struct{ Type string }
	if err := conn.ReadJSON(&ready); err != nil || ready.Type != "ready" {
		b.Fatalf("ready: %v %s", err, ready.Type)
	}
	return conn
}
