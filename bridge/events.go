package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// EventService answers the events API (GET /v1/events, GET /v1/events/{id},
// POST /v1/events/{id}/resend) over the outbox, which is the merchant's event record. Every
// method is scoped to one merchant and mode: a test key never sees a live event.
type EventService struct {
	Store     OutboxStore
	Merchants MerchantDirectory
	Clock     Clock // nil: SystemClock
}

// List returns the events matching f, newest first; a StartingAfter that is not one of the
// merchant's events of that mode is a validation error on starting_after.
func (e *EventService) List(ctx context.Context, f EventFilter) ([]*OutboxMessage, error) {
	list, err := e.Store.ListEvents(ctx, f)
	if errors.Is(err, ErrNotFound) {
		return nil, invalid("starting_after", "starting_after %q is not an event of yours", f.StartingAfter)
	}
	return list, err
}

// Get returns event id of scope's merchant and mode. Another merchant's or mode's event is as
// unknown as a made-up id (session_not_found, the API's one code for an unknown id).
func (e *EventService) Get(ctx context.Context, scope AgentRef, id string) (*OutboxMessage, error) {
	m, err := e.Store.OutboxMessage(ctx, id)
	if err == nil && (m.MerchantID != scope.MerchantID || m.Mode != scope.Mode) {
		err = ErrNotFound
	}
	if errors.Is(err, ErrNotFound) {
		return nil, eventNotFound(id)
	}
	return m, err
}

// Resend queues one more delivery of event id now, whatever became of the earlier ones
// (delivered, abandoned, or never sent for want of an endpoint), with a fresh retry window and
// backoff. The merchant must have a webhook URL and secret now.
func (e *EventService) Resend(ctx context.Context, scope AgentRef, id string) (*OutboxMessage, error) {
	if _, err := e.Get(ctx, scope, id); err != nil {
		return nil, err
	}
	merchant, err := e.Merchants.Merchant(ctx, scope.MerchantID)
	if err != nil {
		return nil, fmt.Errorf("look up merchant %s: %w", scope.MerchantID, err)
	}
	switch {
	case merchant.Webhook.URL == "":
		return nil, Errorf(CodeValidationError, "Merchant %s has no webhook.url configured: there is nowhere to send event %s.", merchant.ID, id).
			WithFix("Set webhook.url and webhook.secret for this merchant in paybridge's configuration and restart it, then resend; or read the event with GET /v1/events/{id}.")
	case merchant.Webhook.Secret == "":
		return nil, Errorf(CodeValidationError, "Merchant %s has no webhook.secret configured: event %s cannot be signed.", merchant.ID, id).
			WithFix("Set webhook.secret (whsec_...) for this merchant in paybridge's configuration and restart it, then resend.")
	}
	clock := e.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	now := clock.Now()
	m, err := e.Store.UpdateOutbox(ctx, id, func(m *OutboxMessage) error {
		m.NoEndpoint = false
		m.DeliveredAt, m.AbandonedAt = time.Time{}, time.Time{}
		m.NextAttemptAt, m.RetryFrom, m.RetryBase = now, now, m.Attempts
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, eventNotFound(id) // purged meanwhile
	}
	return m, err
}

func eventNotFound(id string) *Error {
	return Errorf(CodeSessionNotFound, "No event %q for this merchant and mode.", id).
		WithFix("Use an event id (vp_evt_...) from GET /v1/events with a key of the same mode; events are kept for events.retention (30 days).")
}
