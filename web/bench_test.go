package web_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/paybridge/paybridge/web"
)

// BenchmarkCreateToHandoff measures, with the stubs answering at once, how long an agent waits
// for the handoff on its socket: from the create request leaving the merchant's backend
// (create→handoff), from VCC's answer to the create (vcc→handoff, which since issue 9 includes
// the commit that makes the attempt durable) and from that commit (durable→handoff: what DESIGN
// section 9 budgets at 1 ms p99, "after the attempt is durable"), split into vcc→commit (until
// that write is asked for) and commit (the write, group commit and fsync included); and how many
// VCC token requests the creates cost. Run:
//
//	go test ./web -run '^$' -bench CreateToHandoff -benchtime 2000x
func BenchmarkCreateToHandoff(b *testing.B) {
	// Production's sweep cadence (PollInterval/8) and log level, not the tests'.
	h := newHarness(b, func(c *harnessConfig) {
		c.service.SweepInterval = 250 * time.Millisecond
		c.infoLogs = true
		c.timeActiveCommit = true
		c.server.PerKeyLimit = web.RateLimit{Limit: 1 << 30, Window: time.Minute}
		c.server.PerIPLimit = web.RateLimit{Limit: 1 << 30, Window: time.Minute}
	})
	agent := h.rawAgent("agent-1")
	body := map[string]any{"agentId": "agent-1", "amount": 1240, "currency": "GBP"}
	h.vcc.ResetStats()
	var total, afterVCC, afterDurable, toCommit, commit []time.Duration
	for b.Loop() {
		start := time.Now()
		created := make(chan *response, 1)
		go func() { created <- h.do("POST", "/v1/sessions", h.secretKey, body) }()
		var ev event
		if err := agent.ReadJSON(&ev); err != nil || ev.Type != "session.handoff" {
			b.Fatalf("handoff: %v %s", err, ev.Type)
		}
		arrived := time.Now()
		total = append(total, arrived.Sub(start))
		afterVCC = append(afterVCC, arrived.Sub(time.Unix(0, h.vccAnswered.Load())))
		afterDurable = append(afterDurable, arrived.Sub(time.Unix(0, h.activeDurable.Load())))
		toCommit = append(toCommit, time.Duration(h.activeStarted.Load()-h.vccAnswered.Load()))
		commit = append(commit, time.Duration(h.activeDurable.Load()-h.activeStarted.Load()))
		if r := <-created; r.Status != http.StatusCreated {
			b.Fatalf("create: %d %s", r.Status, r.Body)
		}
	}
	b.StopTimer()
	report := func(d []time.Duration, name string) {
		slices.Sort(d)
		at := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Microseconds()) }
		b.ReportMetric(at(0.50), name+"-p50-µs")
		b.ReportMetric(at(0.99), name+"-p99-µs")
	}
	report(total, "create→handoff")
	report(afterVCC, "vcc→handoff")
	report(afterDurable, "durable→handoff")
	report(toCommit, "vcc→commit")
	report(commit, "commit")
	b.ReportMetric(float64(h.vcc.Stats().TokenRequests)*1000/float64(len(total)), "tokens/1000creates")
}
