package bridge

// EventType names an event pushed to agents and, for terminal ones, to merchant webhooks.
type EventType string

// Events from paybridge to the agent's browser (and, the terminal ones, to merchant webhooks).
const (
	EventReady      EventType = "ready"
	EventHandoff    EventType = "session.handoff"
	EventRestarting EventType = "session.restarting"
	EventSucceeded  EventType = "session.succeeded"
	EventFailed     EventType = "session.failed"
	EventExpired    EventType = "session.expired"
	EventCancelled  EventType = "session.cancelled"
	EventError      EventType = "error"
)

// TerminalEvent returns the event that reports a session reaching status.
func TerminalEvent(status Status) EventType {
	switch status {
	case StatusSucceeded:
		return EventSucceeded
	case StatusFailed:
		return EventFailed
	case StatusExpired:
		return EventExpired
	case StatusCancelled:
		return EventCancelled
	}
	return ""
}

// AgentRef names one agent of one merchant in one mode: the audience of agent events, and the
// reach of a caller. With AgentID empty it stands for every agent of the merchant in that mode:
// what a secret key may see; a browser caller holding an agent token sees its one agent.
type AgentRef struct {
	MerchantID string `json:"merchantId"`
	Mode       Mode   `json:"mode"`
	AgentID    string `json:"agentId"`
}

// Event is something to tell every socket of one agent.
type Event struct {
	Agent     AgentRef
	Type      EventType
	ID        string // vp_evt_...
	SessionID string
	Data      any // marshalled to JSON once, by the hub
}

// NewEventID returns a fresh event id.
func NewEventID() string { return "vp_evt_" + RandomBase62(24) }

// Publisher delivers events to agents. The Hub implements it for one node.
type Publisher interface {
	Publish(ev *Event)
}

// SessionEventData is the data of restarting and terminal events: the public session, and for
// failures the public error.
type SessionEventData struct {
	Session *SessionView `json:"session"`
	Code    Code         `json:"code,omitempty"`
	Error   string       `json:"error,omitempty"`
	Fix     string       `json:"fix,omitempty"`
	Reason  string       `json:"reason,omitempty"` // why a restart happens
}
