package bridge_test

import (
	"fmt"
	"testing"

	"github.com/paybridge/paybridge/bridge"
)

// BenchmarkHubPublish measures one event published to every subscription of an agent, draining
// as sockets would: the cost is one JSON encoding plus a channel send per socket. Run:
//
//	go test ./bridge -run '^$' -bench HubPublish
func BenchmarkHubPublish(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			hub := bridge.NewHub(nil, 0)
			agent := bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1"}
			subs := make([]*bridge.Subscription, n)
			for i := range subs {
				subs[i] = hub.Subscribe(agent)
			}
			ev := &bridge.Event{Agent: agent, Type: bridge.EventHandoff, ID: "vp_evt_bench", SessionID: "vp_cs_test_AAAAAAAAAAAAAAAA",
				Data: &bridge.Handoff{SessionID: "vp_cs_test_AAAAAAAAAAAAAAAA", Attempt: 1, IframeURL: "https://pcipal.example/session/t/view/s/framed",
					FormFields: map[string]string{bridge.FieldBearerToken: "b", bridge.FieldRefreshToken: "r"}}}
			b.ResetTimer()
			for b.Loop() {
				hub.Publish(ev)
				for _, s := range subs {
					<-s.Messages()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
		})
	}
}
