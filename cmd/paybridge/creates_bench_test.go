package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/paybridge/paybridge/bridge/bridgetest"
)

// Flags of BenchmarkCreates.
var (
	createsBins = flag.String("creates-bins", "",
		"BenchmarkCreates: comma-separated name=path of paybridge binaries to serve, run side by side level by level (default: this test binary as paybridge)")
	createsClients = flag.String("creates-clients", "1,8,32,64", "BenchmarkCreates: concurrent clients, comma-separated")
	createsProfile = flag.String("creates-cpuprofile", "",
		"BenchmarkCreates: write a CPU profile of each server under the largest level to PREFIX-<name>.pprof (test binaries built from this file only)")
)

// profileEnv, in a paybridge process run from a test binary, makes SIGUSR1 start a CPU profile
// into the file it names and a second SIGUSR1 stop it; then the file <name>.done appears.
const profileEnv = "PAYBRIDGE_BENCH_CPUPROFILE"

func init() {
	path := os.Getenv(profileEnv)
	if path == "" || os.Getenv("PAYBRIDGE_AS_COMMAND") != "1" {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		<-sig
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cpu profile:", err)
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "cpu profile:", err)
			return
		}
		<-sig
		pprof.StopCPUProfile()
		_ = f.Close()
		_ = os.WriteFile(path+".done", nil, 0o600)
	}()
}

// createsServer is one paybridge under test: a world of its own (stubs process, config, keys)
// served by one binary.
type createsServer struct {
	name, bin string
	world     *world
	serve     *command
	stubsPID  int // the world's stubs process, to read its CPU time
	base      string
	profile   string // where its CPU profile goes, if asked for
}

// BenchmarkCreates measures durable session creates per second, and their latency, through the
// whole stack of a real paybridge process: HTTP, key check, validation, the pending commit, the
// VCC stub's token and create calls (another process), sealing, the active commit, the answer.
// Each level's b.N creates are shared by that many concurrent clients, each with its own
// keep-alive connection and its own agent, whose socket is open: besides the create's own
// latency (until its 201), each create's handoff latency is measured, from sending the create
// until its session.handoff comes off that agent's socket. With -creates-bins, several binaries (say the previous commit's and this
// one's) are measured one after the other at each level, in the same run. Rate limits are raised
// by config so that they do not count, and polling is slowed so that the sessions piling up do
// not load the machine. Run:
//
//	go test ./cmd/paybridge -run '^$' -bench Creates -benchtime 3000x
//	scripts/bench-creates   # this commit against another, side by side, with benchstat
func BenchmarkCreates(b *testing.B) {
	levels, err := parseInts(*createsClients)
	if err != nil || len(levels) == 0 {
		b.Fatalf("-creates-clients %q: %v", *createsClients, err)
	}
	servers := createsServers(b)
	for _, clients := range levels {
		for _, srv := range servers {
			b.Run(fmt.Sprintf("clients=%d/bin=%s", clients, srv.name), func(b *testing.B) {
				creates(b, srv, clients, srv.profile != "" && clients == slices.Max(levels) && b.N > 1)
			})
		}
	}
}

// createsServers starts every binary of -creates-bins, each in a world of its own.
func createsServers(b *testing.B) []*createsServer {
	specs := []string{"this=" + os.Args[0]}
	if *createsBins != "" {
		specs = strings.Split(*createsBins, ",")
	}
	var servers []*createsServer
	for _, spec := range specs {
		name, bin, ok := strings.Cut(spec, "=")
		if !ok || name == "" || bin == "" {
			b.Fatalf("-creates-bins: %q is not name=path", spec)
		}
		srv := &createsServer{name: name, bin: bin}
		before := children(b)
		srv.world = newWorld(b, "rateLimits: {sessionCreatesPerKey: 1000000000, perIP: 1000000000}\n", "")
		for _, pid := range children(b) {
			if !slices.Contains(before, pid) && strings.Contains(cmdline(pid), "stubs") {
				srv.stubsPID = pid
			}
		}
		// newWorld polls every 100ms for its tests; a benchmark piling up thousands of active
		// sessions would measure the poller. Once an hour: none during the run.
		cfg, err := os.ReadFile(srv.world.cfgPath)
		if err != nil {
			b.Fatal(err)
		}
		if !strings.Contains(string(cfg), "pollInterval: 100ms") {
			b.Fatal("newWorld's config no longer sets pollInterval: 100ms; update BenchmarkCreates")
		}
		cfg = []byte(strings.Replace(string(cfg), "pollInterval: 100ms", "pollInterval: 1h", 1))
		if err := os.WriteFile(srv.world.cfgPath, cfg, 0o600); err != nil {
			b.Fatal(err)
		}
		var env []string
		if *createsProfile != "" {
			srv.profile, err = filepath.Abs(*createsProfile + "-" + name + ".pprof")
			if err != nil {
				b.Fatal(err)
			}
			env = append(env, profileEnv+"="+srv.profile)
		}
		srv.serve = startBinary(b, bin, env, "serve", "--config", srv.world.cfgPath)
		srv.base = srv.serve.waitFor(b, listeningURL)
		servers = append(servers, srv)
	}
	return servers
}

// startBinary starts bin with args as a paybridge process (a test binary acts as one) and kills
// it when the benchmark ends.
func startBinary(b *testing.B, bin string, env []string, args ...string) *command {
	c := &command{stdout: &bridgetest.LogSink{}, stderr: &bridgetest.LogSink{}}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = append(append(os.Environ(), "PAYBRIDGE_AS_COMMAND=1"), env...)
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
	return c
}

// creates runs b.N creates against srv from clients concurrent clients and reports creates/s
// and the latency percentiles; with profile, srv's CPU profile covers the creates alone (not the
// agents' sockets opening, whose snapshots hold every session of earlier levels).
func creates(b *testing.B, srv *createsServer, clients int, profile bool) {
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Minute}
	createURL := srv.base + "/v1/sessions"
	// One agent per client, its socket open before the clock starts; arrivals are timed as the
	// handoffs come off it (one may arrive before its create's answer does).
	arrivals := make([]chan time.Time, clients)
	for i := range clients {
		arrivals[i] = handoffArrivals(b, srv, fmt.Sprintf("agent-%d", i))
	}

	if profile {
		srv.startProfile(b)
		defer srv.stopProfile(b)
	}

	var next atomic.Int64
	var failed atomic.Value
	latencies := make([][]time.Duration, clients)
	handoffs := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := srv.cpu(b)
	start := time.Now()
	for i := range clients {
		body := fmt.Sprintf(`{"agentId":"agent-%d","amount":1240,"currency":"GBP","reference":"INV-1001"}`, i)
		wg.Go(func() {
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				req, _ := http.NewRequest("POST", createURL, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+srv.world.secretKey)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					var data []byte
					data, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusCreated {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, data)
					}
				}
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				latencies[i] = append(latencies[i], time.Since(t0))
				at, ok := <-arrivals[i]
				if !ok {
					failed.CompareAndSwap(nil, errors.New("an agent socket closed"))
					return
				}
				handoffs[i] = append(handoffs[i], at.Sub(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := srv.cpu(b).since(cpu0)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("create: %v", err)
	}
	// Where the machine's time went: the server, the stubs (the other side of every VCC call),
	// this load generator, and how busy the whole machine was (other processes included).
	perCreate := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	b.ReportMetric(perCreate(cpu.server), "server-cpu-µs/create")
	b.ReportMetric(perCreate(cpu.stubs), "stubs-cpu-µs/create")
	b.ReportMetric(perCreate(cpu.client), "client-cpu-µs/create")
	if cpu.machineTotal > 0 {
		b.ReportMetric(100*float64(cpu.machineBusy)/float64(cpu.machineTotal), "machine-busy-%")
	}
	all := slices.Concat(latencies...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "creates/s")
	b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
	all = slices.Concat(handoffs...)
	slices.Sort(all)
	b.ReportMetric(ms(percentile(all, 0.50)), "handoff-p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "handoff-p99-ms")
}

// handoffArrivals opens a socket for agent on srv and returns the times at which handoffs come
// off it, in order; the channel closes with the socket, which closes when the benchmark ends.
// (Self-contained, so that scripts/bench-creates can build this file into an older tree.)
func handoffArrivals(b *testing.B, srv *createsServer, agent string) chan time.Time {
	b.Helper()
	token, _ := postJSON(b, srv.base+"/v1/agent_tokens", srv.world.secretKey, `{"agentId":"`+agent+`"}`)["token"].(string)
	if token == "" {
		b.Fatalf("no agent token for %s", agent)
	}
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.base, "http")+"/v1/ws?key="+url.QueryEscape(srv.world.publishable),
		http.Header{"Origin": {srv.world.origin}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	b.Cleanup(func() { conn.Close() })
	var ready struct{ Type string }
	if err := conn.WriteJSON(map[string]string{"type": "auth", "agentToken": token}); err != nil {
		b.Fatal(err)
	}
	if err := conn.ReadJSON(&ready); err != nil || ready.Type != "ready" {
		b.Fatalf("%s's socket: %v %q", agent, err, ready.Type)
	}
	arrived := make(chan time.Time, 1024)
	go func() {
		defer close(arrived)
		for {
			var ev struct{ Type string }
			if err := conn.ReadJSON(&ev); err != nil {
				return
			}
			if ev.Type == "session.handoff" {
				arrived <- time.Now()
			}
		}
	}()
	return arrived
}

// cpuTimes are CPU times of the processes of one measurement, and the machine's busy and total
// time (all cores), all in clock ticks turned into durations.
type cpuTimes struct {
	server, stubs, client     time.Duration
	machineBusy, machineTotal time.Duration
}

// cpu reads the CPU times the server, its stubs and this process have used so far, and the
// machine's.
func (srv *createsServer) cpu(b *testing.B) cpuTimes {
	t := cpuTimes{server: procCPU(b, strconv.Itoa(srv.serve.cmd.Process.Pid)), client: procCPU(b, "self")}
	if srv.stubsPID != 0 {
		t.stubs = procCPU(b, strconv.Itoa(srv.stubsPID))
	}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	for i, f := range fields[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		if i < 8 {
			t.machineTotal += ticks(v)
			if i != 3 && i != 4 { // idle and iowait
				t.machineBusy += ticks(v)
			}
		}
	}
	return t
}

// since returns the times used between before and t.
func (t cpuTimes) since(before cpuTimes) cpuTimes {
	return cpuTimes{server: t.server - before.server, stubs: t.stubs - before.stubs, client: t.client - before.client,
		machineBusy: t.machineBusy - before.machineBusy, machineTotal: t.machineTotal - before.machineTotal}
}

// ticks turns clock ticks of /proc into a duration. USER_HZ is 100 on every Linux paybridge
// targets (it is fixed by the kernel ABI, whatever CONFIG_HZ is).
func ticks(n int64) time.Duration { return time.Duration(n) * 10 * time.Millisecond }

// procCPU returns the user and system CPU time process pid ("self" for this one) has used.
func procCPU(b *testing.B, pid string) time.Duration {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: count after it.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64) // field 14 of the whole line
	stime, _ := strconv.ParseInt(fields[12], 10, 64) // field 15
	return ticks(utime + stime)
}

// children returns the pids of this process's child processes.
func children(b *testing.B) []int {
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		b.Fatal(err)
	}
	var pids []int
	for _, task := range tasks {
		data, err := os.ReadFile(task)
		if err != nil {
			continue // the thread has exited
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// cmdline returns process pid's command line, arguments separated by spaces.
func cmdline(pid int) string {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(string(data), "\x00", " ")
}

// startProfile asks srv's process to start its CPU profile.
func (srv *createsServer) startProfile(b *testing.B) {
	for _, f := range []string{srv.profile, srv.profile + ".done"} { // an earlier run's
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.Fatal(err)
		}
	}
	if err := srv.serve.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		b.Fatal(err)
	}
	// The profile starts in the process's own time; wait until its file exists.
	waitFile(b, srv.profile)
}

// stopProfile asks srv's process to stop its CPU profile and waits until it is written.
func (srv *createsServer) stopProfile(b *testing.B) {
	if err := srv.serve.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		b.Fatal(err)
	}
	waitFile(b, srv.profile+".done")
	b.Logf("CPU profile of %s: %s", srv.name, srv.profile)
}

// waitFile waits (bounded) until path exists.
func waitFile(b *testing.B, path string) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		} else if !errors.Is(err, os.ErrNotExist) {
			b.Fatal(err)
		}
	}
	b.Fatalf("%s did not appear: is the server a test binary built with creates_bench_test.go?", path)
}

// percentile returns the p-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// parseInts parses a comma-separated list of positive integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}
