package bridge_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/bridgetest"
)

// waitLimit bounds every wait for something asynchronous; nothing here should come near it.
const waitLimit = 5 * time.Second

var (
	agentA      = bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1"}
	agentALive  = bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeLive, AgentID: "agent-1"}
	agentB      = bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-2"}
	agentAOther = bridge.AgentRef{MerchantID: "globex", Mode: bridge.ModeTest, AgentID: "agent-1"}
)

// wire is what a browser decodes from one hub message.
type wire struct {
	Type      bridge.EventType `json:"type"`
	ID        string           `json:"id"`
	Seq       int64            `json:"seq"`
	SessionID string           `json:"sessionId"`
	Data      map[string]any   `json:"data"`
}

func decode(t *testing.T, msg []byte) wire {
	t.Helper()
	var w wire
	require.NoError(t, json.Unmarshal(msg, &w), "message %s", msg)
	return w
}

func event(agent bridge.AgentRef, n int) *bridge.Event {
	return &bridge.Event{
		Agent:     agent,
		Type:      bridge.EventHandoff,
		ID:        fmt.Sprintf("vp_evt_%d", n),
		SessionID: "vp_cs_test_0123456789abcdef",
		Data:      map[string]any{"n": n},
	}
}

// receive takes the next message of s or fails after waitLimit.
func receive(t *testing.T, s *bridge.Subscription) []byte {
	t.Helper()
	select {
	case msg := <-s.Messages():
		return msg
	case <-time.After(waitLimit):
		t.Fatal("no message within the wait limit")
		return nil
	}
}

// assertNothingQueued fails if s holds an undelivered message. Publish and Send hand messages
// over synchronously, so an empty channel right after them means nothing was sent.
func assertNothingQueued(t *testing.T, s *bridge.Subscription) {
	t.Helper()
	select {
	case msg := <-s.Messages():
		t.Errorf("unexpected message %s", msg)
	default:
	}
}

func isDone(s *bridge.Subscription) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

func TestHubEverySubscriptionGetsEveryEventInOrder(t *testing.T) {
	h := bridge.NewHub(nil, 0)
	subs := []*bridge.Subscription{h.Subscribe(agentA), h.Subscribe(agentA), h.Subscribe(agentA)}
	others := []*bridge.Subscription{h.Subscribe(agentB), h.Subscribe(agentALive), h.Subscribe(agentAOther)}
	require.EqualValues(t, 6, h.Subscribers())

	const n = 20 // below the default buffer, so nobody needs to read concurrently
	for i := 1; i <= n; i++ {
		h.Publish(event(agentA, i))
	}
	for si, s := range subs {
		var lastSeq int64
		for i := 1; i <= n; i++ {
			w := decode(t, receive(t, s))
			assert.Equal(t, bridge.EventHandoff, w.Type)
			assert.Equal(t, fmt.Sprintf("vp_evt_%d", i), w.ID, "subscription %d: events out of order", si)
			assert.Equal(t, "vp_cs_test_0123456789abcdef", w.SessionID)
			assert.EqualValues(t, i, w.Data["n"])
			assert.Greater(t, w.Seq, lastSeq, "seq must increase")
			lastSeq = w.Seq
		}
		assertNothingQueued(t, s)
	}
	for _, s := range others {
		assertNothingQueued(t, s)
	}
	assert.Zero(t, h.Dropped())
}

func TestHubSeqIsPerAgent(t *testing.T) {
	h := bridge.NewHub(nil, 0)
	a, b := h.Subscribe(agentA), h.Subscribe(agentB)
	h.Publish(event(agentA, 1))
	h.Publish(event(agentA, 2))
	h.Publish(event(agentB, 1))
	assert.EqualValues(t, 1, decode(t, receive(t, a)).Seq)
	assert.EqualValues(t, 2, decode(t, receive(t, a)).Seq)
	assert.EqualValues(t, 1, decode(t, receive(t, b)).Seq, "another agent's events must not use up this agent's sequence")
}

func TestHubPublishWithoutSubscribers(t *testing.T) {
	h := bridge.NewHub(nil, 0)
	h.Publish(event(agentA, 1)) // must neither panic nor block
	s := h.Subscribe(agentA)
	assertNothingQueued(t, s) // events are not kept for later subscribers
}

func TestHubEncodesOnce(t *testing.T) {
	h := bridge.NewHub(nil, 0)
	subs := []*bridge.Subscription{h.Subscribe(agentA), h.Subscribe(agentA), h.Subscribe(agentA)}
	h.Publish(event(agentA, 1))

	msgs := make([][]byte, len(subs))
	for i, s := range subs {
		msgs[i] = receive(t, s)
		require.NotEmpty(t, msgs[i])
	}
	for i := 1; i < len(msgs); i++ {
		assert.Same(t, &msgs[0][0], &msgs[i][0], "subscription %d got its own encoding of the event", i)
	}
}

func TestHubDropsStuckSubscription(t *testing.T) {
	const buffer = 4
	logs := &bridgetest.LogSink{}
	h := bridge.NewHub(logs.Logger(), buffer)
	stuck := h.Subscribe(agentA)

	for i := 1; i <= buffer; i++ {
		h.Publish(event(agentA, i))
		require.False(t, isDone(stuck), "dropped after %d events with a buffer of %d", i, buffer)
	}
	h.Publish(event(agentA, buffer+1))
	require.True(t, isDone(stuck), "a full subscription must be dropped by the publish that finds it full")
	assert.ErrorIs(t, stuck.Err(), bridge.ErrSlowConsumer)
	assert.EqualValues(t, 1, h.Dropped())
	assert.EqualValues(t, 0, h.Subscribers())
	assert.Contains(t, logs.String(), "slow")

	// What was buffered before the drop is still readable, in order; nothing after it arrives.
	for i := 1; i <= buffer; i++ {
		assert.Equal(t, fmt.Sprintf("vp_evt_%d", i), decode(t, receive(t, stuck)).ID)
	}
	h.Publish(event(agentA, buffer+2))
	assertNothingQueued(t, stuck)

	// Closing a dropped subscription changes nothing.
	stuck.Close()
	assert.ErrorIs(t, stuck.Err(), bridge.ErrSlowConsumer)
	assert.EqualValues(t, 1, h.Dropped())
	assert.EqualValues(t, 0, h.Subscribers())
}

func TestHubDefaultBuffer(t *testing.T) {
	h := bridge.NewHub(nil, 0)
	s := h.Subscribe(agentA)
	for i := 1; i <= bridge.DefaultSubscriptionBuffer; i++ {
		h.Publish(event(agentA, i))
	}
	assert.False(t, isDone(s), "a buffer of %d must hold %d events", bridge.DefaultSubscriptionBuffer, bridge.DefaultSubscriptionBuffer)
	h.Publish(event(agentA, 0))
	assert.True(t, isDone(s))
	assert.ErrorIs(t, s.Err(), bridge.ErrSlowConsumer)
}

func TestHubStuckSubscriptionNeverBlocksPublish(t *testing.T) {
	const buffer = 8
	const n = 100 * buffer
	h := bridge.NewHub(nil, buffer)
	stuck := []*bridge.Subscription{h.Subscribe(agentA), h.Subscribe(agentA)}
	healthy := h.Subscribe(agentA)

	// The healthy reader acknowledges each message, and the publisher waits for the
	// acknowledgement, so the healthy subscription never holds more than one message while the
	// stuck ones fill up. If Publish ever blocked on a stuck subscription, the publisher would
	// not finish.
	acks := make(chan wire)
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		defer close(acks)
		for {
			select {
			case msg := <-healthy.Messages():
				var w wire
				_ = json.Unmarshal(msg, &w) // a bad message shows up as a wrong ID below
				select {
				case acks <- w:
				case <-finished:
					return
				}
			case <-healthy.Done():
				return
			case <-finished:
				return
			}
		}
	}()

	published := make(chan []wire, 1)
	go func() {
		got := make([]wire, 0, n)
		for i := 1; i <= n; i++ {
			h.Publish(event(agentA, i))
			select {
			case w, ok := <-acks:
				if !ok {
					published <- got
					return
				}
				got = append(got, w)
			case <-time.After(waitLimit):
				published <- got
				return
			}
		}
		published <- got
	}()

	var got []wire
	select {
	case got = <-published:
	case <-time.After(2 * waitLimit):
		t.Fatal("publishing to a hub with a stuck subscriber did not finish")
	}
	healthy.Close()

	require.Len(t, got, n, "the healthy subscription must receive every event")
	for i, w := range got {
		assert.Equal(t, fmt.Sprintf("vp_evt_%d", i+1), w.ID)
		if i > 0 {
			assert.Greater(t, w.Seq, got[i-1].Seq)
		}
	}
	for _, s := range stuck {
		assert.True(t, isDone(s))
		assert.ErrorIs(t, s.Err(), bridge.ErrSlowConsumer)
	}
	assert.EqualValues(t, 2, h.Dropped())
	assert.NoError(t, healthy.Err(), "a subscription its owner closed has no error")
}

func TestHubFloodWithOnlyStuckSubscribers(t *testing.T) {
	h := bridge.NewHub(nil, 2)
	for range 10 {
		h.Subscribe(agentA)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10_000 {
			h.Publish(event(agentA, i))
		}
	}()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("Publish blocked on stuck subscribers")
	}
	assert.EqualValues(t, 10, h.Dropped())
	assert.EqualValues(t, 0, h.Subscribers())
}

func TestSubscriptionClose(t *testing.T) {
	h := bridge.NewHub(nil, 0)
	s := h.Subscribe(agentA)
	other := h.Subscribe(agentA)
	require.EqualValues(t, 2, h.Subscribers())

	s.Close()
	assert.True(t, isDone(s))
	assert.NoError(t, s.Err())
	assert.EqualValues(t, 1, h.Subscribers())
	s.Close()
	s.Close()
	assert.EqualValues(t, 1, h.Subscribers(), "closing twice must count once")
	assert.Zero(t, h.Dropped(), "a closed subscription is not a dropped one")

	h.Publish(event(agentA, 1))
	assertNothingQueued(t, s)
	assert.Equal(t, "vp_evt_1", decode(t, receive(t, other)).ID)
}

func TestSubscriptionCloseConcurrent(t *testing.T) {
	h := bridge.NewHub(nil, 1)
	subs := make([]*bridge.Subscription, 20)
	for i := range subs {
		subs[i] = h.Subscribe(agentA)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { // a publisher racing the closes
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				h.Publish(event(agentA, i))
			}
		}
	})
	var closers sync.WaitGroup
	for _, s := range subs {
		for range 5 {
			closers.Go(s.Close)
		}
	}
	closers.Wait()
	close(stop)
	wg.Wait()

	for _, s := range subs {
		assert.True(t, isDone(s))
	}
	assert.EqualValues(t, 0, h.Subscribers())
	assert.LessOrEqual(t, h.Dropped(), int64(len(subs)))
}

func TestHubConcurrentSubscribePublish(t *testing.T) {
	h := bridge.NewHub(nil, 1024)
	var wg sync.WaitGroup
	for g := range 8 {
		agent := bridge.AgentRef{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: fmt.Sprint("agent-", g%3)}
		wg.Go(func() {
			for i := range 50 {
				s := h.Subscribe(agent)
				h.Publish(event(agent, i))
				h.Send(s, event(agent, i))
				_, _ = h.Encode(s, event(agent, i))
				s.Close()
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, 0, h.Subscribers())
	assert.Zero(t, h.Dropped())
}

func TestHubSendAndEncodeShareTheAgentSequence(t *testing.T) {
	h := bridge.NewHub(nil, 0)
	a, b := h.Subscribe(agentA), h.Subscribe(agentA)

	h.Publish(event(agentA, 1)) // seq 1 to both
	require.True(t, h.Send(a, event(agentA, 2)), "Send to an open subscription")
	h.Publish(event(agentA, 3)) // seq 3 to both
	msg, ok := h.Encode(b, event(agentA, 4))
	require.True(t, ok)
	h.Publish(event(agentA, 5)) // seq 5 to both

	assert.Equal(t, int64(4), decode(t, msg).Seq, "Encode numbers in the agent's sequence")
	assert.Equal(t, "vp_evt_4", decode(t, msg).ID)

	wantA := []struct {
		id  string
		seq int64
	}{{"vp_evt_1", 1}, {"vp_evt_2", 2}, {"vp_evt_3", 3}, {"vp_evt_5", 5}}
	for _, want := range wantA {
		w := decode(t, receive(t, a))
		assert.Equal(t, want.id, w.ID)
		assert.Equal(t, want.seq, w.Seq)
	}
	assertNothingQueued(t, a)

	wantB := []struct {
		id  string
		seq int64
	}{{"vp_evt_1", 1}, {"vp_evt_3", 3}, {"vp_evt_5", 5}}
	for _, want := range wantB {
		w := decode(t, receive(t, b))
		assert.Equal(t, want.id, w.ID)
		assert.Equal(t, want.seq, w.Seq)
	}
	assertNothingQueued(t, b) // Send went to a only, and Encode queues nothing
}

func TestHubSendAndEncodeFailForClosedSubscriptions(t *testing.T) {
	h := bridge.NewHub(nil, 2)

	t.Run("closed, agent has other subscriptions", func(t *testing.T) {
		s, keep := h.Subscribe(agentA), h.Subscribe(agentA)
		defer keep.Close()
		s.Close()
		assert.False(t, h.Send(s, event(agentA, 1)))
		msg, ok := h.Encode(s, event(agentA, 1))
		assert.False(t, ok)
		assert.Nil(t, msg)
		assertNothingQueued(t, s)
	})
	t.Run("closed, agent has no subscriptions left", func(t *testing.T) {
		s := h.Subscribe(agentB)
		s.Close()
		assert.False(t, h.Send(s, event(agentB, 1)))
		_, ok := h.Encode(s, event(agentB, 1))
		assert.False(t, ok)
	})
	t.Run("dropped as slow", func(t *testing.T) {
		s := h.Subscribe(agentAOther)
		for i := range 3 {
			h.Publish(event(agentAOther, i))
		}
		require.True(t, isDone(s))
		assert.False(t, h.Send(s, event(agentAOther, 9)))
		_, ok := h.Encode(s, event(agentAOther, 9))
		assert.False(t, ok)
	})
	t.Run("full", func(t *testing.T) {
		s := h.Subscribe(agentALive)
		defer s.Close()
		assert.True(t, h.Send(s, event(agentALive, 1)))
		assert.True(t, h.Send(s, event(agentALive, 2)))
		assert.False(t, h.Send(s, event(agentALive, 3)), "Send reports a full subscription")
		assert.False(t, isDone(s), "Send does not drop; only Publish does")
	})
}

func TestHubUnencodableEvent(t *testing.T) {
	logs := &bridgetest.LogSink{}
	h := bridge.NewHub(logs.Logger(), 0)
	s := h.Subscribe(agentA)
	bad := &bridge.Event{Agent: agentA, Type: bridge.EventHandoff, ID: "vp_evt_bad", Data: func() {}}

	h.Publish(bad)
	assertNothingQueued(t, s)
	assert.False(t, h.Send(s, bad))
	_, ok := h.Encode(s, bad)
	assert.False(t, ok)
	assert.Contains(t, logs.String(), "encode agent event")
	assert.False(t, isDone(s), "a bad event must not cost the subscription")

	h.Publish(event(agentA, 1))
	assert.Equal(t, "vp_evt_1", decode(t, receive(t, s)).ID)
}

// testSink is a Sink whose writer the test runs by hand: Wake only counts, and the test drains
// with Next, as a socket's writer goroutine would.
type testSink struct {
	mu    sync.Mutex
	wakes int
	ended []error
}

func (s *testSink) Wake() { s.mu.Lock(); s.wakes++; s.mu.Unlock() }

func (s *testSink) Ended(err error) {
	s.mu.Lock()
	s.ended = append(s.ended, err)
	s.mu.Unlock()
}

func (s *testSink) counts() (wakes, ended int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wakes, len(s.ended)
}

// drainSink takes everything sub holds, as a writer's turn does.
func drainSink(sub *bridge.Subscription) []wire {
	var out []wire
	for {
		msg, ok := sub.Next()
		if !ok {
			return out
		}
		var w wire
		_ = json.Unmarshal(msg, &w)
		out = append(out, w)
	}
}

// TestHubSinkDelivery (issue 12 item 3): a sink subscription wakes its writer only when messages
// wait and no writer has the turn; the subscriber holds the first turn (for its ready message);
// order and sequence are the channel subscriptions'.
func TestHubSinkDelivery(t *testing.T) {
	h := bridge.NewHub(nil, 0)
	sink := &testSink{}
	s := h.SubscribeSink(agentA, sink)
	ch := h.Subscribe(agentA)

	h.Publish(event(agentA, 1))
	wakes, _ := sink.counts()
	assert.Zero(t, wakes, "the subscriber holds the first turn: no wake")
	ready, ok := h.Encode(s, event(agentA, 0))
	require.True(t, ok)
	assert.EqualValues(t, 2, decode(t, ready).Seq)
	h.Publish(event(agentA, 2))
	got := drainSink(s) // the first turn ends here
	require.Len(t, got, 2)
	assert.Equal(t, []string{"vp_evt_1", "vp_evt_2"}, []string{got[0].ID, got[1].ID})
	assert.Equal(t, []int64{1, 3}, []int64{got[0].Seq, got[1].Seq})

	for i := 3; i <= 5; i++ {
		h.Publish(event(agentA, i))
	}
	wakes, _ = sink.counts()
	assert.Equal(t, 1, wakes, "one wake for a burst: the writer has the turn until it drains")
	require.True(t, h.Send(s, event(agentA, 6)))
	got = drainSink(s)
	require.Len(t, got, 4)
	for i, w := range got {
		assert.Equal(t, fmt.Sprintf("vp_evt_%d", i+3), w.ID)
	}
	h.Publish(event(agentA, 7))
	wakes, _ = sink.counts()
	assert.Equal(t, 2, wakes, "an idle writer is woken again")
	assert.Equal(t, "vp_evt_7", drainSink(s)[0].ID)

	// The channel subscription of the same agent saw the same publications.
	for _, want := range []string{"vp_evt_1", "vp_evt_2", "vp_evt_3", "vp_evt_4", "vp_evt_5", "vp_evt_7"} {
		assert.Equal(t, want, decode(t, receive(t, ch)).ID)
	}
	s.Close()
	_, ended := sink.counts()
	assert.Equal(t, 1, ended)
	assert.Nil(t, sink.ended[0], "closed by its owner: no error")
}

// TestHubSinkEnd (issue 10 item 5): End ends a subscription at once: what was queued and not yet
// taken is not delivered, nothing published afterwards is, and the sink hears why, once.
func TestHubSinkEnd(t *testing.T) {
	h := bridge.NewHub(nil, 0)
	sink := &testSink{}
	s := h.SubscribeSink(agentA, sink)
	other := h.Subscribe(agentA)
	drainSink(s)
	h.Publish(event(agentA, 1))
	h.Publish(event(agentA, 2))
	msg, ok := s.Next() // a writer took one message before the end
	require.True(t, ok)
	assert.Equal(t, "vp_evt_1", decode(t, msg).ID)

	revoked := bridge.Errorf(bridge.CodeAuthKeyExpired, "revoked")
	s.End(revoked)
	h.Publish(event(agentA, 3))
	assert.Empty(t, drainSink(s), "nothing after the end, and nothing queued before it")
	s.End(errors.New("again"))
	s.Close()
	_, ended := sink.counts()
	assert.Equal(t, 1, ended)
	assert.Same(t, revoked, sink.ended[0])
	assert.Same(t, revoked, s.Err())
	assert.Zero(t, h.Dropped(), "an ended subscription is not a slow one")
	assert.EqualValues(t, 1, h.Subscribers())
	assert.Len(t, []string{decode(t, receive(t, other)).ID, decode(t, receive(t, other)).ID, decode(t, receive(t, other)).ID}, 3)
}

// TestHubSinkSlow: a sink whose writer does not keep up is dropped by the publish that finds its
// queue full, as a channel subscription is, and never blocks the publisher.
func TestHubSinkSlow(t *testing.T) {
	const buffer = 4
	h := bridge.NewHub(nil, buffer)
	sink := &testSink{}
	s := h.SubscribeSink(agentA, sink)
	drainSink(s)
	for i := 1; i <= buffer; i++ {
		h.Publish(event(agentA, i))
	}
	_, ended := sink.counts()
	require.Zero(t, ended)
	h.Publish(event(agentA, buffer+1))
	_, ended = sink.counts()
	require.Equal(t, 1, ended)
	assert.ErrorIs(t, sink.ended[0], bridge.ErrSlowConsumer)
	assert.EqualValues(t, 1, h.Dropped())
	assert.Empty(t, drainSink(s))
}
