package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/pcipal"
)

// The crash test's shape: enough creates and kills to hit every step of a create, bounded so the
// whole test stays well under two minutes.
const (
	integrityCreates   = 36                     // creates, each with its own Idempotency-Key
	integrityWorkers   = 3                      // creates in flight at once
	integrityAgents    = 3                      // agents, each on a socket kept open across restarts
	integrityKills     = 12                     // kill -9s of serve, at most
	integrityLatencyMs = 150                    // the stub VCC's injected latency per request
	integrityDeadline  = 100 * time.Second      // the whole test
	integritySeedEnv   = "PAYBRIDGE_CRASH_SEED" // replays a run: the seed is in the test log
)

// TestPaymentIntegrityUnderKill9 is issue 9's crash test, with real processes: `paybridge serve`
// is killed with SIGKILL at random points of 36 idempotent creates while VCC answers slowly (so
// a kill lands while VCC is asked, just after it answered, and around the record and the
// handoff) and agents are connected. Each create is retried after every crash until it answers.
// Afterwards:
//   - every page any agent received, paid at the stub, ends in exactly one succeeded session, and
//     no two sessions share a VCC session;
//   - every answer to an Idempotency-Key names the same session, and there are exactly as many
//     sessions as keys;
//   - `paybridge reconcile` reports nothing.
//
// Half the kills wait for the stub to have made a VCC session and strike within milliseconds of
// its answer; the other half strike at a random time. The seed of those choices is logged;
// PAYBRIDGE_CRASH_SEED=<seed> replays them.
func TestPaymentIntegrityUnderKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	started := time.Now()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(integritySeedEnv); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, integritySeedEnv)
	}
	t.Logf("seed %d (replay: %s=%d go test -run TestPaymentIntegrityUnderKill9 ./cmd/paybridge)", seed, integritySeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ctx, cancel := context.WithTimeout(context.Background(), integrityDeadline)
	defer cancel()

	// The per-key create limit (30 a minute) would turn creates into 429s: lift it and the per-IP one.
	w := newWorld(t, "rateLimits: {sessionCreatesPerKey: 100000, perIP: 100000}\n", "")
	stub := &stubControl{t: t, base: w.stubBase}
	var (
		base    atomic.Value // the running serve's base URL; it changes with every restart
		servers []*command   // every serve started, for their logs
	)
	startServe := func() {
		c, u := w.serve(t)
		servers = append(servers, c)
		base.Store(u)
	}
	startServe()
	current := func() string { return base.Load().(string) }

	// Agents: one socket each, reconnected after every crash, noting every handoff.
	pages := &pageLog{byIframe: map[string]shownPage{}}
	agents := make([]*crashAgent, integrityAgents)
	var agentsDone sync.WaitGroup
	for i := range agents {
		id := fmt.Sprintf("agent-%d", i+1)
		token := postJSON(t, current()+"/v1/agent_tokens", w.secretKey, `{"agentId":"`+id+`","ttlSeconds":3600}`)["token"].(string)
		agents[i] = &crashAgent{id: id, token: token, readyFrom: map[string]bool{}}
		agentsDone.Add(1)
		go func() {
			defer agentsDone.Done()
			agents[i].run(ctx, current, w.publishable, w.origin, pages)
		}()
	}
	defer func() { cancel(); agentsDone.Wait() }()
	for _, a := range agents {
		require.Eventually(t, func() bool { return a.hadReadyFrom(current()) }, 20*time.Second, 10*time.Millisecond, "%s connected", a.id)
	}

	stub.put("/_control/faults", fmt.Sprintf(`{"latencyMs": %d}`, integrityLatencyMs))

	// Creates: every one with its own Idempotency-Key, retried until it answers.
	keys := make([]string, integrityCreates)
	bodies := make([]string, integrityCreates)
	for i := range keys {
		keys[i] = fmt.Sprintf("integrity-%d-%02d", seed, i)
		bodies[i] = fmt.Sprintf(`{"agentId":"agent-%d","amount":%d,"currency":"GBP","reference":"ORDER-%02d"}`, i%integrityAgents+1, 1000+i, i)
	}
	answers := &answerLog{ids: map[string][]string{}}
	var interrupted atomic.Int64 // create requests that got no answer (the process died under them)
	work := make(chan int)
	var creates sync.WaitGroup
	for range integrityWorkers {
		creates.Add(1)
		go func() {
			defer creates.Done()
			for i := range work {
				id, failures, err := createUntilAnswered(ctx, current, w.secretKey, keys[i], bodies[i])
				interrupted.Add(int64(failures))
				answers.add(keys[i], id, err)
			}
		}()
	}
	go func() {
		for i := range keys {
			work <- i
		}
		close(work)
	}()
	createsDone := make(chan struct{})
	go func() { creates.Wait(); close(createsDone) }()

	// The crash driver: kill -9, start again, until the creates are done or the kills are spent.
	var kills []string
	for len(kills) < integrityKills {
		select {
		case <-createsDone:
		default:
			var how string
			if rng.IntN(2) == 0 {
				d := time.Duration(rng.IntN(400)) * time.Millisecond
				time.Sleep(d)
				how = "after " + d.String()
			} else {
				// Strike just after VCC answered: between its answer and the record, the record and
				// the handoff, the handoff and the idempotent response.
				n := stub.sessionCount()
				delay := time.Duration(rng.IntN(4000)) * time.Microsecond
				deadline := time.Now().Add(2 * time.Second)
				for stub.sessionCount() == n && time.Now().Before(deadline) {
					time.Sleep(2 * time.Millisecond)
				}
				time.Sleep(delay)
				how = "VCC answer +" + delay.String()
			}
			servers[len(servers)-1].kill9(t)
			kills = append(kills, how)
			startServe()
			continue
		}
		break
	}
	select {
	case <-createsDone:
	case <-ctx.Done():
		t.Fatalf("creates did not finish (seed %d): %v", seed, ctx.Err())
	}
	stub.del("/_control/faults") // the crashes are over: the rest need not wait on VCC
	t.Logf("%d kills (%s); %d create requests sent and never answered (retried)", len(kills), strings.Join(kills, ", "), interrupted.Load())
	require.GreaterOrEqual(t, len(kills), 5, "the creates outran the crash driver")
	require.Positive(t, interrupted.Load(), "no create was in flight at a kill")

	// Every idempotent retry of a crashed create returned the first session id, and a replay now
	// returns it again.
	require.Empty(t, answers.errs, "every create answered 2xx in the end (seed %d)", seed)
	for i, key := range keys {
		id, _, err := createUntilAnswered(ctx, current, w.secretKey, key, bodies[i])
		require.NoError(t, err)
		answers.add(key, id, nil)
	}
	firstIDs := map[string]bool{}
	for _, key := range keys {
		ids := answers.ids[key]
		require.NotEmpty(t, ids, key)
		for _, id := range ids[1:] {
			assert.Equal(t, ids[0], id, "Idempotency-Key %s answered two sessions (seed %d)", key, seed)
		}
		firstIDs[ids[0]] = true
	}
	assert.Len(t, firstIDs, integrityCreates, "each key has its own session")
	sessions := listAllSessions(t, current(), w.secretKey)
	assert.Len(t, sessions, integrityCreates, "as many sessions as Idempotency-Keys: no retry made a second (seed %d)", seed)
	for id := range sessions {
		assert.True(t, firstIDs[id], "session %s was answered to no create (seed %d)", id, seed)
	}

	// Every agent reconnected to the last serve and had its snapshot (the handoffs of every open
	// session), so pages shown only after the last crash are counted too.
	for _, a := range agents {
		require.Eventually(t, func() bool { return a.hadReadyFrom(current()) }, 20*time.Second, 10*time.Millisecond, "%s reconnected", a.id)
	}

	// Every page an agent received is paid at the stub: the VCC session is the one the iframe
	// URL opens (the stub's record), and it is the one paybridge named.
	byProvider := map[string]stubSession{}
	for _, s := range stub.sessions() {
		byProvider[s.ProviderSessionGUID] = s
	}
	received := pages.all()
	require.NotEmpty(t, received)
	paid := map[string]shownPage{} // by VCC session GUID
	for _, p := range received {
		_, providerID, ok := pcipal.ParseFramedURL(p.iframeURL)
		require.True(t, ok, "iframe URL %s", p.iframeURL)
		vs, ok := byProvider[providerID]
		require.True(t, ok, "the stub knows the page's provider session %s", providerID)
		assert.Equal(t, p.claimedGUID, vs.SessionGUID, "the handoff of %s names the VCC session its page opens", p.sessionID)
		if prev, dup := paid[vs.SessionGUID]; dup {
			assert.Equal(t, prev.sessionID, p.sessionID, "one VCC session handed off for two sessions (seed %d)", seed)
			continue
		}
		p.guid = vs.SessionGUID
		paid[vs.SessionGUID] = p
		stub.post("/_control/sessions/"+vs.SessionGUID+"/complete", `{"decision":"ACCEPT"}`)
	}
	t.Logf("%d pages received by agents, %d VCC sessions at the stub, %d sessions", len(paid), len(byProvider), len(sessions))

	// Each ends in exactly one succeeded session, with that VCC session and the amount asked for.
	for guid, p := range paid {
		var s map[string]any
		require.Eventually(t, func() bool {
			s = getJSON(t, current()+"/v1/sessions/"+p.sessionID, w.secretKey)
			return s["status"] != "active"
		}, 30*time.Second, 50*time.Millisecond, "session %s settles", p.sessionID)
		assert.Equal(t, "succeeded", s["status"], "the page of %s was paid at VCC (%s; seed %d): %v", p.sessionID, guid, seed, s)
		assert.Equal(t, guid, vccGUID(s), p.sessionID)
	}
	sessions = listAllSessions(t, current(), w.secretKey)
	byGUID := map[string][]string{}
	succeeded := 0
	for id, s := range sessions {
		if g := vccGUID(s); g != "" {
			byGUID[g] = append(byGUID[g], id)
		}
		if s["status"] == "succeeded" {
			succeeded++
			assert.Contains(t, paid, vccGUID(s), "session %s succeeded on a page no agent received", id)
		}
	}
	for g, ids := range byGUID {
		assert.Len(t, ids, 1, "VCC session %s is shared by %v (seed %d)", g, ids, seed)
	}
	assert.Equal(t, len(paid), succeeded, "exactly one succeeded session per paid page (seed %d)", seed)
	orphans := 0
	for _, s := range byProvider {
		if len(byGUID[s.SessionGUID]) == 0 {
			orphans++ // VCC answered, the process died before the record: no agent ever had it
		}
	}
	// How the crashes fell, from the outside (VCC sessions paybridge has no record of: the process
	// died before VCC's answer arrived or before it was recorded; no agent ever saw one) and from
	// serve's log (retries answered with what their dead first run had stored).
	var logs strings.Builder
	for _, c := range servers {
		logs.WriteString(c.stderr.String())
	}
	adopted := map[string]int{}
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec struct{ Msg, Status string }
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "idempotent retry answered with the session its dead first run made") {
			adopted[rec.Status]++
		}
	}
	t.Logf("%d VCC sessions without a paybridge record; retries answered with their dead first run's session, by its status: %v", orphans, adopted)

	// The report agrees once serve has stopped.
	servers[len(servers)-1].stop(t)
	out, errOut, code := w.reconcile(t)
	assert.Equal(t, exitReconcileClean, code, "reconcile (seed %d): %s%s", seed, out, errOut)
	assert.Equal(t, "no discrepancies\n", out)

	for _, secret := range []string{w.secretKey, w.publishable, "sandbox-secret", agents[0].token} {
		assert.NotContains(t, logs.String()+out+errOut, secret)
	}
	t.Logf("took %s", time.Since(started).Round(time.Millisecond))
}

// createUntilAnswered posts a create with its Idempotency-Key to whichever serve is running
// until one answers, as a merchant's backend retries after a timeout or a dropped connection.
// It returns the session id, how many requests were sent and got no answer (a refused connection
// does not count: serve was down), and an error for a 4xx.
func createUntilAnswered(ctx context.Context, base func() string, key, idemKey, body string) (string, int, error) {
	client := &http.Client{Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	failures := 0
	for {
		if err := ctx.Err(); err != nil {
			return "", failures, err
		}
		req, err := http.NewRequestWithContext(ctx, "POST", base()+"/v1/sessions", strings.NewReader(body))
		if err != nil {
			return "", failures, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", idemKey)
		resp, err := client.Do(req)
		if err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				failures++ // sent, and the process died under it
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		data, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
			failures++ // died mid-answer
		case resp.StatusCode == http.StatusCreated:
			var s struct{ ID string }
			if err := json.Unmarshal(data, &s); err != nil || s.ID == "" {
				return "", failures, fmt.Errorf("create %s answered %s", idemKey, data)
			}
			return s.ID, failures, nil
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			// Not stored by the idempotency layer: a retry runs again, as a client would.
		default:
			return "", failures, fmt.Errorf("create %s answered %d: %s", idemKey, resp.StatusCode, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answerLog is every answer each Idempotency-Key got, in order.
type answerLog struct {
	mu   sync.Mutex
	ids  map[string][]string
	errs []error
}

func (l *answerLog) add(key, id string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs = append(l.errs, err)
		return
	}
	l.ids[key] = append(l.ids[key], id)
}

// shownPage is one handoff an agent received: the iframe it would open, and what paybridge said of it.
type shownPage struct {
	agent, sessionID, iframeURL string
	attempt                     int
	claimedGUID                 string // the session's vcc.sessionGuid in the handoff
	guid                        string // the VCC session the iframe opens, from the stub
}

// pageLog collects the pages every agent received, by iframe URL.
type pageLog struct {
	mu       sync.Mutex
	byIframe map[string]shownPage
}

func (l *pageLog) add(p shownPage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.byIframe[p.iframeURL]; ok && prev.sessionID != p.sessionID {
		// Kept under a distinct key so the check on GUIDs sees both.
		l.byIframe[p.iframeURL+"#"+p.sessionID] = p
		return
	}
	l.byIframe[p.iframeURL] = p
}

func (l *pageLog) all() []shownPage {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]shownPage, 0, len(l.byIframe))
	for _, p := range l.byIframe {
		out = append(out, p)
	}
	return out
}

// crashAgent is an agent desktop whose socket reconnects to whichever serve runs.
type crashAgent struct {
	id, token string
	mu        sync.Mutex
	readyFrom map[string]bool // base URLs it had a ready snapshot from
}

func (a *crashAgent) hadReadyFrom(base string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.readyFrom[base]
}

// handoffData is what a handoff carries that the test reads: from a session.handoff event, or a
// ready snapshot's entry.
type handoffData struct {
	SessionID string `json:"sessionId"`
	Attempt   int    `json:"attempt"`
	IframeURL string `json:"iframeUrl"`
}

type sessionRef struct {
	ID  string `json:"id"`
	VCC *struct {
		SessionGUID string `json:"sessionGuid"`
	} `json:"vcc"`
}

func (s sessionRef) guid() string {
	if s.VCC == nil {
		return ""
	}
	return s.VCC.SessionGUID
}

// run keeps the agent's socket open until ctx ends, noting every handoff into pages.
func (a *crashAgent) run(ctx context.Context, base func() string, pk, origin string, pages *pageLog) {
	dialer := &websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	for ctx.Err() == nil {
		u := base()
		conn, resp, err := dialer.DialContext(ctx, "ws"+strings.TrimPrefix(u, "http")+"/v1/ws?key="+url.QueryEscape(pk), http.Header{"Origin": {origin}})
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		if conn.WriteJSON(map[string]string{"type": "auth", "agentToken": a.token}) == nil {
			a.read(conn, u, pages)
		}
		stop()
		conn.Close()
	}
}

func (a *crashAgent) read(conn *websocket.Conn, base string, pages *pageLog) {
	for {
		var msg struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if conn.ReadJSON(&msg) != nil {
			return
		}
		switch msg.Type {
		case "ready":
			var ready struct {
				Sessions []struct {
					Session sessionRef   `json:"session"`
					Handoff *handoffData `json:"handoff"`
				} `json:"sessions"`
			}
			if json.Unmarshal(msg.Data, &ready) != nil {
				return
			}
			for _, s := range ready.Sessions {
				if s.Handoff != nil {
					pages.add(shownPage{agent: a.id, sessionID: s.Handoff.SessionID, iframeURL: s.Handoff.IframeURL, attempt: s.Handoff.Attempt, claimedGUID: s.Session.guid()})
				}
			}
			a.mu.Lock()
			a.readyFrom[base] = true
			a.mu.Unlock()
		case "session.handoff":
			var h struct {
				handoffData
				Session sessionRef `json:"session"`
			}
			if json.Unmarshal(msg.Data, &h) != nil {
				return
			}
			pages.add(shownPage{agent: a.id, sessionID: h.SessionID, iframeURL: h.IframeURL, attempt: h.Attempt, claimedGUID: h.Session.guid()})
		}
	}
}

// listAllSessions pages through GET /v1/sessions and returns every session by id.
func listAllSessions(t *testing.T, base, key string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	after := ""
	for {
		u := base + "/v1/sessions?limit=100"
		if after != "" {
			u += "&starting_after=" + url.QueryEscape(after)
		}
		resp := getJSON(t, u, key)
		data, _ := resp["data"].([]any)
		for _, item := range data {
			s := item.(map[string]any)
			out[s["id"].(string)] = s
			after = s["id"].(string)
		}
		if more, _ := resp["hasMore"].(bool); !more || len(data) == 0 {
			return out
		}
	}
}

// vccGUID is a session object's vcc.sessionGuid, or "".
func vccGUID(s map[string]any) string {
	v, _ := s["vcc"].(map[string]any)
	g, _ := v["sessionGuid"].(string)
	return g
}

// stubControl drives the stub VCC's control API.
type stubControl struct {
	t    *testing.T
	base string
}

// stubSession is the part of the stub's session summary the test reads.
type stubSession struct {
	SessionGUID         string `json:"sessionGuid"`
	ProviderSessionGUID string `json:"providerSessionGuid"`
}

func (c *stubControl) do(method, path, body string) []byte {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	require.Less(c.t, resp.StatusCode, 300, "%s %s: %s", method, path, data)
	return data
}

func (c *stubControl) put(path, body string)  { c.do("PUT", path, body) }
func (c *stubControl) post(path, body string) { c.do("POST", path, body) }
func (c *stubControl) del(path string)        { c.do("DELETE", path, "") }

func (c *stubControl) sessions() []stubSession {
	var out []stubSession
	require.NoError(c.t, json.Unmarshal(c.do("GET", "/_control/sessions", ""), &out))
	return out
}

func (c *stubControl) sessionCount() int { return len(c.sessions()) }
