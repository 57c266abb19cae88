package web

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

// eventView is the public event object (GET /v1/events/{id}): the webhook body it carries in
// data, exactly as delivered, and where its delivery stands.
type eventView struct {
	ID        string           `json:"id"`
	Object    string           `json:"object"` // "event"
	Type      bridge.EventType `json:"type"`
	Livemode  bool             `json:"livemode"`
	SessionID string           `json:"sessionId"`
	CreatedAt time.Time        `json:"createdAt"`
	// Data is the webhook body, byte for byte what is signed and POSTed.
	Data     json.RawMessage       `json:"data"`
	Delivery bridge.DeliveryStatus `json:"delivery"`
	// NextAttemptAt is when a pending delivery is tried next.
	NextAttemptAt *time.Time    `json:"nextAttemptAt,omitempty"`
	DeliveredAt   *time.Time    `json:"deliveredAt,omitempty"`
	AbandonedAt   *time.Time    `json:"abandonedAt,omitempty"`
	Attempts      []attemptView `json:"attempts"`
	// AttemptCount counts every attempt; Attempts lists the last 20, oldest first.
	AttemptCount int    `json:"attemptCount"`
	LastError    string `json:"lastError,omitempty"`
}

// attemptView is one delivery attempt of an event.
type attemptView struct {
	At         time.Time `json:"at"`
	Status     int       `json:"status"` // 0: no HTTP response
	Error      string    `json:"error,omitempty"`
	DurationMs int64     `json:"durationMs"`
}

// viewEvent returns the public form of m.
func viewEvent(m *bridge.OutboxMessage) *eventView {
	v := &eventView{ID: m.ID, Object: "event", Type: m.Type, Livemode: m.Mode == bridge.ModeLive,
		SessionID: m.SessionID, CreatedAt: m.CreatedAt.UTC(), Data: m.Payload, Delivery: m.DeliveryStatus(),
		Attempts: make([]attemptView, 0, len(m.Deliveries)), AttemptCount: m.Attempts, LastError: m.LastError}
	if !json.Valid(v.Data) {
		v.Data = json.RawMessage("null") // never the case for what the service writes
	}
	at := func(t time.Time) *time.Time { u := t.UTC(); return &u }
	switch v.Delivery {
	case bridge.DeliveryPending:
		v.NextAttemptAt = at(m.NextAttemptAt)
	case bridge.DeliveryDelivered:
		v.DeliveredAt = at(m.DeliveredAt)
	case bridge.DeliveryAbandoned:
		v.AbandonedAt = at(m.AbandonedAt)
	}
	for _, a := range m.Deliveries {
		v.Attempts = append(v.Attempts, attemptView{At: a.At.UTC(), Status: a.Status, Error: a.Error, DurationMs: a.Duration.Milliseconds()})
	}
	return v
}

// events is the events API's service over this server's store.
func (s *Server) events() *bridge.EventService {
	return &bridge.EventService{Store: s.store, Merchants: s.merchants, Clock: s.clock}
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := bridge.EventFilter{MerchantID: p.Merchant.ID, Mode: p.Key.Mode, Type: bridge.EventType(q.Get("type")),
		SessionID: q.Get("sessionId"), StartingAfter: q.Get("starting_after")}
	if f.Type != "" && bridge.TerminalEvent(terminalStatus(f.Type)) != f.Type {
		return bridge.Errorf(bridge.CodeValidationError, "type must be one of session.succeeded, session.failed, session.expired, session.cancelled; got %q",
			capText(string(f.Type), capInputText)).WithParam("type")
	}
	limit, err := pageLimit(q)
	if err != nil {
		return err
	}
	f.Limit = limit + 1 // one more tells whether there is another page
	list, err := s.events().List(r.Context(), f)
	if err != nil {
		return err
	}
	writePage(w, list, limit, viewEvent)
	return nil
}

// terminalStatus is TerminalEvent's inverse ("" for other types).
func terminalStatus(t bridge.EventType) bridge.Status {
	for _, st := range []bridge.Status{bridge.StatusSucceeded, bridge.StatusFailed, bridge.StatusExpired, bridge.StatusCancelled} {
		if bridge.TerminalEvent(st) == t {
			return st
		}
	}
	return ""
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	m, err := s.events().Get(r.Context(), p.Scope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewEvent(m))
	return nil
}

func (s *Server) resendEvent(w http.ResponseWriter, r *http.Request) error {
	p, err := principalOf(r)
	if err != nil {
		return err
	}
	if err := s.jsonBody(w, r, &struct{}{}, true); err != nil {
		return err
	}
	m, err := s.events().Resend(r.Context(), p.Scope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.logger.InfoContext(r.Context(), "event resend queued", "event", m.ID, "merchant", m.MerchantID, "type", m.Type)
	writeJSON(w, http.StatusAccepted, viewEvent(m))
	return nil
}
