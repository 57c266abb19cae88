package bridge

import (
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
)

// ErrSlowConsumer is why the hub drops a subscription whose buffer is full: one slow socket must
// never hold up the others.
var ErrSlowConsumer = errors.New("slow consumer: too many undelivered events")

// DefaultSubscriptionBuffer is how many encoded events a subscription may hold undelivered.
const DefaultSubscriptionBuffer = 64

// Hub fans agent events out to every subscription (socket) of that agent, on one node. Each event
// is encoded once, whatever the number of sockets, and handed over without blocking.
type Hub struct {
	logger *slog.Logger
	buffer int

	mu    sync.RWMutex
	rooms map[AgentRef]*room

	subscribers atomic.Int64
	dropped     atomic.Int64
}

// room is one agent's sockets and event counter.
type room struct {
	mu   sync.Mutex
	seq  int64
	subs map[*Subscription]struct{}
}

// NewHub returns a hub whose subscriptions buffer up to buffer events (0 means the default).
func NewHub(logger *slog.Logger, buffer int) *Hub {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if buffer <= 0 {
		buffer = DefaultSubscriptionBuffer
	}
	return &Hub{logger: logger, buffer: buffer, rooms: make(map[AgentRef]*room)}
}

// Subscription is one socket's feed of an agent's events, already encoded as JSON messages. It
// delivers either on a channel (Subscribe, Messages) or to a Sink (SubscribeSink), whose writer
// runs only while there is something to write: an idle socket then holds no queue, no channel and
// no writer goroutine.
type Subscription struct {
	Agent AgentRef

	hub  *Hub
	ch   chan []byte   // channel delivery; nil for a sink
	done chan struct{} // channel delivery only
	sink Sink
	once sync.Once
	err  error // set before done closes and before Ended is called

	// Sink delivery: what waits, whether a writer has the turn, whether it ended.
	mu      sync.Mutex
	queue   [][]byte
	writing bool
	ended   bool
}

// Sink is where a subscription made with SubscribeSink delivers: a socket writing its own
// messages, with no goroutine waiting while there is nothing to write.
type Sink interface {
	// Wake says messages wait and no writer has the turn: the sink starts one, which takes them
	// with Next until Next reports false. It is called with the hub's locks held: it must not
	// block (start a goroutine).
	Wake()
	// Ended says the subscription ended, once: err is nil when its owner closed it,
	// ErrSlowConsumer when the hub dropped it, or the error End was given. Nothing queued is
	// delivered after it. It must not block.
	Ended(err error)
}

// Messages delivers the encoded events, in publication order (channel subscriptions only).
func (s *Subscription) Messages() <-chan []byte { return s.ch }

// Done is closed when the subscription ends, by Close or by the hub dropping it (channel
// subscriptions only; a sink hears of it through Ended).
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err says why the hub ended the subscription (ErrSlowConsumer, or End's error), or nil. Valid
// once Done is closed or Ended called.
func (s *Subscription) Err() error { return s.err }

// Close ends the subscription. It is safe to call more than once and concurrently with Publish.
func (s *Subscription) Close() { s.hub.remove(s, nil) }

// End ends the subscription because of err (a credential that ended, say), at once: no event
// published after End returns reaches it, and for a sink nothing still queued is delivered.
func (s *Subscription) End(err error) { s.hub.remove(s, err) }

// Next hands a sink's writer the next queued message. When there is none, or the subscription
// has ended, it reports false and the writer's turn is over: the next message queued wakes the
// sink again. The caller of SubscribeSink holds the first turn.
func (s *Subscription) Next() ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || len(s.queue) == 0 {
		s.writing = false
		s.queue = nil // an idle subscription keeps no backing array
		return nil, false
	}
	msg := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	return msg, true
}

// offer hands msg over without blocking; false means the subscription is full.
func (s *Subscription) offer(msg []byte) bool {
	if s.ch != nil {
		select {
		case s.ch <- msg:
			return true
		default:
			return false
		}
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return true // gone: nothing to deliver, and not slow
	}
	if len(s.queue) >= s.hub.buffer {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, msg)
	wake := !s.writing
	s.writing = true
	s.mu.Unlock()
	if wake {
		s.sink.Wake()
	}
	return true
}

// Subscribe starts a feed of agent's events on a channel (Messages).
func (h *Hub) Subscribe(agent AgentRef) *Subscription {
	s := &Subscription{Agent: agent, hub: h, ch: make(chan []byte, h.buffer), done: make(chan struct{})}
	h.add(s)
	return s
}

// SubscribeSink starts a feed of agent's events delivered to sink. The caller holds the writer's
// turn until its first Next reports false, so it can write something of its own first (the
// ready snapshot) ahead of whatever is queued meanwhile.
func (h *Hub) SubscribeSink(agent AgentRef, sink Sink) *Subscription {
	s := &Subscription{Agent: agent, hub: h, sink: sink, writing: true}
	h.add(s)
	return s
}

func (h *Hub) add(s *Subscription) {
	h.mu.Lock()
	r := h.rooms[s.Agent]
	if r == nil {
		r = &room{subs: make(map[*Subscription]struct{})}
		h.rooms[s.Agent] = r
	}
	r.mu.Lock()
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	h.mu.Unlock()
	h.subscribers.Add(1)
}

func (h *Hub) remove(s *Subscription, why error) {
	s.once.Do(func() {
		h.mu.Lock()
		if r := h.rooms[s.Agent]; r != nil {
			r.mu.Lock()
			delete(r.subs, s)
			if len(r.subs) == 0 {
				delete(h.rooms, s.Agent)
			}
			r.mu.Unlock()
		}
		h.mu.Unlock()
		s.err = why
		h.subscribers.Add(-1)
		if errors.Is(why, ErrSlowConsumer) {
			h.dropped.Add(1)
		}
		if s.sink == nil {
			close(s.done)
			return
		}
		s.mu.Lock()
		s.ended, s.queue = true, nil
		s.mu.Unlock()
		s.sink.Ended(why)
	})
}

// Publish implements Publisher: every socket of ev.Agent gets ev. An agent with no sockets costs
// a map lookup. A socket whose buffer is full is dropped, never waited for.
func (h *Hub) Publish(ev *Event) {
	h.mu.RLock()
	r := h.rooms[ev.Agent]
	h.mu.RUnlock()
	if r == nil {
		return
	}
	var slow []*Subscription
	r.mu.Lock()
	r.seq++
	msg, err := encodeEvent(ev, r.seq)
	if err != nil {
		r.mu.Unlock()
		h.logger.Error("encode agent event", "type", ev.Type, "session", ev.SessionID, "err", err)
		return
	}
	for s := range r.subs {
		if !s.offer(msg) {
			slow = append(slow, s)
		}
	}
	r.mu.Unlock()
	for _, s := range slow {
		h.logger.Warn("dropping slow agent socket", "merchant", s.Agent.MerchantID, "agent", s.Agent.AgentID)
		h.remove(s, ErrSlowConsumer)
	}
}

// Send delivers ev to one subscription only (a reply to that socket), numbered in its agent's
// sequence. It reports false if the subscription is full or closed.
func (h *Hub) Send(s *Subscription, ev *Event) bool {
	msg, ok := h.Encode(s, ev)
	if !ok {
		return false
	}
	return s.offer(msg)
}

// Encode numbers ev in the agent's sequence and encodes it for s's socket to write itself: the
// ready snapshot goes on the wire before anything queued while it was being read.
func (h *Hub) Encode(s *Subscription, ev *Event) ([]byte, bool) {
	h.mu.RLock()
	r := h.rooms[s.Agent]
	h.mu.RUnlock()
	if r == nil {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.subs[s]; !ok {
		return nil, false
	}
	r.seq++
	msg, err := encodeEvent(ev, r.seq)
	if err != nil {
		h.logger.Error("encode agent event", "type", ev.Type, "err", err)
		return nil, false
	}
	return msg, true
}

// Subscribers returns how many subscriptions are open.
func (h *Hub) Subscribers() int64 { return h.subscribers.Load() }

// Dropped returns how many subscriptions the hub closed for being slow (not those ended by End).
func (h *Hub) Dropped() int64 { return h.dropped.Load() }

// wireEvent is the JSON an agent's browser receives (DESIGN section 6).
type wireEvent struct {
	Type      EventType `json:"type"`
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"`
	SessionID string    `json:"sessionId,omitempty"`
	Data      any       `json:"data"`
}

func encodeEvent(ev *Event, seq int64) ([]byte, error) {
	return json.Marshal(wireEvent{Type: ev.Type, ID: ev.ID, Seq: seq, SessionID: ev.SessionID, Data: ev.Data})
}
