package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// EventType names a merchant event.
type EventType string

// The merchant events: a session reached a final status.
const (
	EventSessionSucceeded EventType = "session.succeeded"
	EventSessionFailed    EventType = "session.failed"
	EventSessionExpired   EventType = "session.expired"
	EventSessionCancelled EventType = "session.cancelled"
)

// DeliveryStatus is where an event's webhook delivery stands.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending    DeliveryStatus = "pending"     // being delivered, retried with backoff
	DeliveryDelivered  DeliveryStatus = "delivered"   // a 2xx came
	DeliveryAbandoned  DeliveryStatus = "abandoned"   // the retry window passed, or a 410
	DeliveryNoEndpoint DeliveryStatus = "no_endpoint" // the merchant had no webhook URL
)

// Event is a merchant event, kept for paybridge's events retention (30 days by default).
type Event struct {
	APIResource
	ID        string    `json:"id"`     // vp_evt_...; also the webhook body's id
	Object    string    `json:"object"` // "event"
	Type      EventType `json:"type"`
	Livemode  bool      `json:"livemode"`
	SessionID string    `json:"sessionId"`
	CreatedAt time.Time `json:"createdAt"`
	// Data is the webhook body, byte for byte what paybridge signs and POSTs:
	// {id, type, created, livemode, data: <session>}.
	Data          json.RawMessage    `json:"data"`
	Delivery      DeliveryStatus     `json:"delivery"`
	NextAttemptAt *time.Time         `json:"nextAttemptAt,omitempty"` // when a pending delivery is tried next
	DeliveredAt   *time.Time         `json:"deliveredAt,omitempty"`
	AbandonedAt   *time.Time         `json:"abandonedAt,omitempty"`
	Attempts      []*DeliveryAttempt `json:"attempts"`     // the last 20, oldest first
	AttemptCount  int                `json:"attemptCount"` // every attempt made
	LastError     string             `json:"lastError,omitempty"`
}

// Session decodes the session the event carries (Data's data).
func (e *Event) Session() (*Session, error) {
	var body struct {
		Data *Session `json:"data"`
	}
	if err := json.Unmarshal(e.Data, &body); err != nil {
		return nil, err
	}
	return body.Data, nil
}

// DeliveryAttempt is one webhook delivery attempt of an event.
type DeliveryAttempt struct {
	At         time.Time `json:"at"`
	Status     int       `json:"status"` // the receiver's HTTP status; 0 when none came
	Error      string    `json:"error,omitempty"`
	DurationMs int64     `json:"durationMs"`
}

// EventListParams filters and pages GET /v1/events. The zero value lists the newest 10.
type EventListParams struct {
	Type          EventType // only events of this type
	SessionID     string    // only this session's events
	Limit         int       // page size, 1..100; 0: 10
	StartingAfter string    // the last id of the previous page
}

func (p *EventListParams) query() url.Values {
	q := url.Values{}
	if p == nil {
		return q
	}
	if p.Type != "" {
		q.Set("type", string(p.Type))
	}
	if p.SessionID != "" {
		q.Set("sessionId", p.SessionID)
	}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.StartingAfter != "" {
		q.Set("starting_after", p.StartingAfter)
	}
	return q
}

// EventList is one page of events, newest first.
type EventList struct {
	APIResource
	Object  string   `json:"object"` // "list"
	Data    []*Event `json:"data"`
	HasMore bool     `json:"hasMore"` // another page follows
}

// EventService lists, reads and resends the merchant's events (of the key's mode).
type EventService struct{ c *Client }

// Get returns the event with id.
func (s *EventService) Get(ctx context.Context, id string) (*Event, error) {
	path, err := pathID("event", id)
	if err != nil {
		return nil, err
	}
	return do[Event](ctx, s.c, request{method: http.MethodGet, path: "/v1/events/" + path})
}

// ListPage returns one page of events.
func (s *EventService) ListPage(ctx context.Context, p *EventListParams) (*EventList, error) {
	return do[EventList](ctx, s.c, request{method: http.MethodGet, path: "/v1/events", query: p.query()})
}

// List iterates over every event matching p, newest first, fetching pages as it goes. An error
// ends the iteration after it is yielded.
func (s *EventService) List(ctx context.Context, p *EventListParams) iter.Seq2[*Event, error] {
	return pages(ctx, s.c, "/v1/events", p.query(), func(ev *Event) string { return ev.ID })
}

// Resend queues one more webhook delivery of event id now, with a fresh retry window, and
// returns the event (its delivery pending). The merchant needs a webhook URL and secret.
func (s *EventService) Resend(ctx context.Context, id string, opts ...CallOption) (*Event, error) {
	path, err := pathID("event", id)
	if err != nil {
		return nil, err
	}
	return do[Event](ctx, s.c, request{method: http.MethodPost, path: "/v1/events/" + path + "/resend", opts: opts})
}
