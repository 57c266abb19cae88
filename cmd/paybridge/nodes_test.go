package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge/pgstore/pgtest"
)

// receiver is a merchant's webhook endpoint: it keeps every delivery's event id and type.
type receiver struct {
	mu     sync.Mutex
	events []receivedEvent
}

type receivedEvent struct {
	ID, Type, Session string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	r.mu.Lock()
	r.events = append(r.events, receivedEvent{ev.ID, ev.Type, ev.Data.ID})
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// of returns the distinct event ids received for session, by type.
func (r *receiver) of(session string) map[string]map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[string]bool{}
	for _, ev := range r.events {
		if ev.Session != session {
			continue
		}
		if out[ev.Type] == nil {
			out[ev.Type] = map[string]bool{}
		}
		out[ev.Type][ev.ID] = true
	}
	return out
}

// cluster is three `paybridge serve` processes on one PostgreSQL database, the stubs in another
// process, and a merchant webhook receiver.
type cluster struct {
	*world
	nodes []*command
	bases []string
	hooks *receiver
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes")
	}
	dbURL := pgtest.NewDatabase(t)
	hooks := &receiver{}
	srv := httptest.NewServer(hooks)
	t.Cleanup(srv.Close)
	master := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("n", 32)))
	w := newWorld(t, fmt.Sprintf("masterKey: %s\nstore: {url: %q, leaseTtl: 3s}\n", master, dbURL),
		fmt.Sprintf("    webhook: {url: %s, secret: whsec_nodes_test_secret}\n", srv.URL))
	c := &cluster{world: w, hooks: hooks}
	for range n {
		cmd, base := w.serve(t)
		c.nodes = append(c.nodes, cmd)
		c.bases = append(c.bases, base)
	}
	return c
}

// agentConn is an agent's socket on one node.
type agentConn struct {
	t    *testing.T
	conn *websocket.Conn
	evs  chan map[string]any
}

type wsEvent = map[string]any

func (c *cluster) connect(t *testing.T, base, token string) *agentConn {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/ws?key="+url.QueryEscape(c.publishable), http.Header{"Origin": {c.origin}})
	require.NoError(t, err)
	resp.Body.Close()
	a := &agentConn{t: t, conn: conn, evs: make(chan map[string]any, 64)}
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.WriteJSON(map[string]string{"type": "auth", "agentToken": token}))
	go func() {
		defer close(a.evs)
		for {
			var ev map[string]any
			if err := conn.ReadJSON(&ev); err != nil {
				return
			}
			a.evs <- ev
		}
	}()
	return a
}

// next returns the next event of one of types, skipping others.
func (a *agentConn) next(types ...string) wsEvent {
	a.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-a.evs:
			require.True(a.t, ok, "socket closed while waiting for %v", types)
			for _, typ := range types {
				if ev["type"] == typ {
					return ev
				}
			}
		case <-deadline:
			a.t.Fatalf("no %v event", types)
		}
	}
}

func attemptOf(ev wsEvent) float64 { return ev["data"].(map[string]any)["attempt"].(float64) }

// TestNodes runs the acceptance of several nodes on one database, with real processes.
func TestNodes(t *testing.T) {
	c := newCluster(t, 3)
	a, b, cc := c.bases[0], c.bases[1], c.bases[2]
	token := postJSON(t, a+"/v1/agent_tokens", c.secretKey, `{"agentId":"agent-1","ttlSeconds":3600}`)["token"].(string)

	// An agent on node A gets the handoff of a session created through node B.
	onA := c.connect(t, a, token)
	require.Equal(t, "ready", onA.next("ready")["type"])
	onC := c.connect(t, cc, token)
	onC.next("ready")
	sess := postJSON(t, b+"/v1/sessions", c.secretKey, `{"agentId":"agent-1","amount":1240,"currency":"GBP"}`)
	id := sess["id"].(string)
	h := onA.next("session.handoff")
	assert.Equal(t, id, h["sessionId"])
	assert.Equal(t, float64(1), attemptOf(h))
	assert.Equal(t, float64(1), attemptOf(onC.next("session.handoff")), "every node's sockets of the agent get it")

	// frame.refused sent to A and C at once makes exactly one new attempt (once the attempt is
	// older than the browser's restart ration, 5 s).
	time.Sleep(5500 * time.Millisecond)
	var wg sync.WaitGroup
	for _, s := range []*agentConn{onA, onC} {
		wg.Go(func() {
			assert.NoError(t, s.conn.WriteJSON(map[string]any{"type": "frame.refused", "sessionId": id, "attempt": 1}))
		})
	}
	wg.Wait()
	for _, s := range []*agentConn{onA, onC} {
		assert.Equal(t, float64(2), attemptOf(s.next("session.handoff")))
	}
	require.Eventually(t, func() bool {
		got := getJSON(t, a+"/v1/sessions/"+id, c.secretKey)
		return got["attempt"] == float64(2)
	}, 5*time.Second, 20*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // a second restart, were there one, would be stored by now
	got := getJSON(t, cc+"/v1/sessions/"+id, c.secretKey)
	assert.Equal(t, float64(2), got["attempt"], "exactly one new attempt")
	guid := got["vcc"].(map[string]any)["sessionGuid"].(string)

	// A late report about attempt 1, to node C: ignored cluster-wide; that socket is sent the
	// current handoff it must have missed.
	require.NoError(t, onC.conn.WriteJSON(map[string]any{"type": "frame.refused", "sessionId": id, "attempt": 1}))
	assert.Equal(t, float64(2), attemptOf(onC.next("session.handoff")))
	assert.Equal(t, float64(2), getJSON(t, b+"/v1/sessions/"+id, c.secretKey)["attempt"], "an older attempt's report restarts nothing")

	// kill -9 of node A, which holds a socket mid-payment: the agent reconnects to B and gets the
	// current handoff; the ACCEPT is detected (by whichever node takes the session over) and
	// verified; the merchant gets the terminal event, one event id for the transition.
	c.nodes[0].kill9(t)
	snap := agentSnapshot(t, b, c.publishable, token, c.origin)
	require.Contains(t, snap, id)
	var handoff struct{ Attempt float64 }
	require.NoError(t, json.Unmarshal(snap[id], &handoff))
	assert.Equal(t, float64(2), handoff.Attempt, "the reconnecting agent gets the current handoff")
	onB := c.connect(t, b, token)
	onB.next("ready")
	c.complete(t, guid, "ACCEPT")
	done := onB.next("session.succeeded", "session.failed")
	assert.Equal(t, "session.succeeded", done["type"])
	require.Eventually(t, func() bool { return len(c.hooks.of(id)["session.succeeded"]) > 0 }, 20*time.Second, 50*time.Millisecond)
	time.Sleep(time.Second) // a second delivery under another id would arrive by now
	assert.Equal(t, map[string]map[string]bool{"session.succeeded": c.hooks.of(id)["session.succeeded"]}, c.hooks.of(id))
	assert.Len(t, c.hooks.of(id)["session.succeeded"], 1, "one event id per transition")

	// An idempotent create sent to B and C at once makes one VCC session.
	before := getJSON(t, c.stubBase+"/_control/stats", "")["createSession"].(float64)
	ids := make([]string, 2)
	for i, base := range []string{b, cc} {
		wg.Go(func() {
			ids[i] = postJSON(t, base+"/v1/sessions", c.secretKey, `{"agentId":"agent-2","amount":700,"currency":"GBP"}`, "Idempotency-Key", "order-nodes-1")["id"].(string)
		})
	}
	wg.Wait()
	assert.Equal(t, ids[0], ids[1])
	assert.Equal(t, before+1, getJSON(t, c.stubBase+"/_control/stats", "")["createSession"].(float64), "one VCC session")

	for _, n := range c.nodes {
		for _, secret := range []string{c.secretKey, c.publishable, token, "whsec_nodes_test_secret"} {
			assert.NotContains(t, n.stderr.String(), secret)
		}
	}
}

// TestNodesCreateLimit: 40 creates from one key spread over two nodes: exactly 30 pass.
func TestNodesCreateLimit(t *testing.T) {
	c := newCluster(t, 2)
	key := c.keysCreate(t, "secret") // a fresh bucket
	codes := make(chan int, 40)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			req, err := http.NewRequest("POST", c.bases[i%2]+"/v1/sessions", strings.NewReader(`{"agentId":"agent-9","amount":100,"currency":"GBP"}`))
			if !assert.NoError(t, err) {
				return
			}
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if !assert.NoError(t, err) {
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for code := range codes {
		count[code]++
	}
	assert.Equal(t, map[int]int{http.StatusCreated: 30, http.StatusTooManyRequests: 10}, count)
}

// tcpProxy forwards 127.0.0.1 connections to target until cut: a database outage on demand.
type tcpProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func newProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

// cut refuses new connections and breaks the open ones.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *tcpProxy) restore(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(t, err)
	p.serve(ln)
}

// TestNodeDatabaseOutage: while the database is unreachable /readyz fails and the API answers
// auth_service_unavailable or internal_error; when it returns, the node serves again and what
// was stored before is intact.
func TestNodeDatabaseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dbURL, err := url.Parse(pgtest.NewDatabase(t))
	require.NoError(t, err)
	proxy := newProxy(t, dbURL.Host)
	dbURL.Host = proxy.addr
	master := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("o", 32)))
	w := newWorld(t, fmt.Sprintf("masterKey: %s\nstore: {url: %q, leaseTtl: 3s}\n", master, dbURL.String()), "")
	_, base := w.serve(t)
	before := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":1240,"currency":"GBP"}`)

	status := func(method, path, body string) (int, string) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+w.secretKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var e struct{ Code string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Code
	}
	proxy.cut()
	code, errCode := status("GET", "/readyz", "")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "auth_service_unavailable", errCode)
	_, errCode = status("POST", "/v1/sessions", `{"agentId":"agent-1","amount":500,"currency":"GBP"}`)
	assert.Contains(t, []string{"auth_service_unavailable", "internal_error"}, errCode)

	proxy.restore(t)
	require.Eventually(t, func() bool { code, _ := status("GET", "/readyz", ""); return code == http.StatusOK }, 20*time.Second, 100*time.Millisecond)
	got := getJSON(t, base+"/v1/sessions/"+before["id"].(string), w.secretKey)
	assert.Equal(t, "active", got["status"])
	after := postJSON(t, base+"/v1/sessions", w.secretKey, `{"agentId":"agent-1","amount":500,"currency":"GBP"}`)
	assert.Equal(t, "active", after["status"])
}

// TestDemoOnPostgreSQL: `paybridge demo --store URL` keeps its state in PostgreSQL and takes a
// session to its handoff.
func TestDemoOnPostgreSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dbURL := pgtest.NewDatabase(t)
	info := filepath.Join(t.TempDir(), "info.json")
	demo := startCommand(t, "demo", "--addr", "127.0.0.1:0", "--store", dbURL, "--info", info)
	var d demoInfo
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(info)
		return err == nil && json.Unmarshal(data, &d) == nil
	}, 30*time.Second, 20*time.Millisecond, "stderr: %s", demo.stderr)
	created := postJSON(t, d.BaseURL+"/v1/sessions", d.SecretKey, `{"agentId":"`+d.AgentID+`","amount":1240,"currency":"GBP"}`)
	assert.Equal(t, "active", created["status"])

	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT count(*) FROM sessions WHERE id = $1`, created["id"]).Scan(&n))
	assert.Equal(t, 1, n, "the session is in PostgreSQL")
}

// tryCreate creates a session through base with an Idempotency-Key; an error when the node did
// not answer 201 (it may have died mid-request).
func tryCreate(base, key, idem, body string) (map[string]any, error) {
	req, err := http.NewRequest("POST", base+"/v1/sessions", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idem)
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("%s: %d %s", base, resp.StatusCode, data)
	}
	var m map[string]any
	return m, json.Unmarshal(data, &m)
}

// TestNodesChaos kills a node with SIGKILL every second (20 rounds, each node in turn, replaced
// by a new process) while two clients create sessions (idempotently, retried on another node
// when theirs dies) and pay them: no session, outcome or webhook event is lost, and the merchant
// gets exactly one event id for each session's transition.
func TestNodesChaos(t *testing.T) {
	c := newCluster(t, 3)
	const rounds = 20
	var (
		mu          sync.Mutex // guards c.bases while nodes are replaced
		sessions    []map[string]any
		interrupted []string // sessions answered pending: their create's node died mid-create
		stop        = make(chan struct{})
		wg          sync.WaitGroup
	)
	base := func(n int) string {
		mu.Lock()
		defer mu.Unlock()
		return c.bases[n%len(c.bases)]
	}
	// Two clients create and pay sessions all along, so kills land mid-create, mid-poll and
	// mid-delivery.
	for client := range 2 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				idem := fmt.Sprintf("chaos-%d-%d", client, n)
				body := fmt.Sprintf(`{"agentId":"agent-%d","amount":%d,"currency":"GBP"}`, client, 100+n)
				var created map[string]any
				var errs []error
				for try := 0; created == nil; try++ {
					if !assert.Less(t, try, 120, "create %s never answered: %v", idem, errs) {
						return
					}
					var err error
					if created, err = tryCreate(base(client+n+try), c.secretKey, idem, body); err != nil {
						errs = append(errs, err)
						time.Sleep(250 * time.Millisecond)
					}
				}
				mu.Lock()
				if created["vcc"] == nil {
					// Its first run died mid-create and the retry answered the session as that
					// run stored it, pending (DESIGN: a retry after a crash answers the session
					// the dead run made): no page to pay on; it fails once abandoned.
					interrupted = append(interrupted, created["id"].(string))
					mu.Unlock()
					continue
				}
				sessions = append(sessions, created)
				mu.Unlock()
				resp, err := http.Post(c.stubBase+"/_control/sessions/"+created["vcc"].(map[string]any)["sessionGuid"].(string)+"/complete",
					"application/json", strings.NewReader(`{"decision":"ACCEPT"}`))
				if assert.NoError(t, err) {
					resp.Body.Close()
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	for round := range rounds {
		time.Sleep(time.Second)
		// kill -9 a node and start a new one in its place (on another port).
		victim := round % len(c.nodes)
		c.nodes[victim].kill9(t)
		node, b := c.serve(t)
		mu.Lock()
		c.nodes[victim], c.bases[victim] = node, b
		mu.Unlock()
	}
	close(stop)
	wg.Wait()

	ids := map[string]bool{}
	for _, s := range sessions {
		ids[s["id"].(string)] = true
	}
	require.Len(t, ids, len(sessions), "one session per idempotent create")
	require.Greater(t, len(ids), rounds, "sessions were created throughout")
	t.Logf("%d sessions paid, %d answered pending, over %d kills", len(ids), len(interrupted), rounds)
	for _, id := range interrupted {
		got, err := tryGet(c.bases[0]+"/v1/sessions/"+id, c.secretKey)
		require.NoError(t, err, "session %s lost", id)
		assert.Contains(t, []string{"pending", "failed"}, got["status"], id)
	}
	for id := range ids {
		require.Eventually(t, func() bool {
			got, err := tryGet(c.bases[0]+"/v1/sessions/"+id, c.secretKey)
			return err == nil && got["status"] == "succeeded"
		}, 60*time.Second, 100*time.Millisecond, "session %s lost its outcome", id)
	}
	for id := range ids {
		require.Eventually(t, func() bool { return len(c.hooks.of(id)["session.succeeded"]) > 0 }, 60*time.Second, 50*time.Millisecond,
			"session %s: no webhook", id)
	}
	time.Sleep(time.Second) // a duplicate transition's event would arrive by now
	for id := range ids {
		assert.Equal(t, map[string]map[string]bool{"session.succeeded": c.hooks.of(id)["session.succeeded"]}, c.hooks.of(id), id)
		assert.Len(t, c.hooks.of(id)["session.succeeded"], 1, "session %s: one event id per transition", id)
	}
}

// tryGet reads u with key; an error unless 200.
func tryGet(u, key string) (map[string]any, error) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%d", resp.StatusCode)
	}
	var m map[string]any
	return m, json.NewDecoder(resp.Body).Decode(&m)
}
