package client_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/client"
)

// cancelSessions creates and cancels n sessions, a second apart, and returns their ids, oldest
// first: each makes one session.cancelled event.
func cancelSessions(t *testing.T, w *world, pb *client.Client, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		sess, err := pb.Sessions.Create(context.Background(), &client.SessionCreateParams{AgentID: "agent-42", Amount: 1240, Currency: "GBP"})
		require.NoError(t, err)
		_, err = pb.Sessions.Cancel(context.Background(), sess.ID)
		require.NoError(t, err)
		ids = append(ids, sess.ID)
		w.clock.Advance(time.Second)
	}
	return ids
}

func TestEventsListGet(t *testing.T) {
	w := newWorld(t)
	pb := newClient(w, w.secretKey, &recorder{}, &sleeper{})
	ctx := context.Background()
	ids := cancelSessions(t, w, pb, 3)

	var got []string
	var events []*client.Event
	for ev, err := range pb.Events.List(ctx, &client.EventListParams{Limit: 2}) {
		require.NoError(t, err)
		got = append(got, ev.SessionID)
		events = append(events, ev)
	}
	assert.Equal(t, []string{ids[2], ids[1], ids[0]}, got, "newest first, over two pages")

	page, err := pb.Events.ListPage(ctx, &client.EventListParams{SessionID: ids[1], Type: client.EventSessionCancelled})
	require.NoError(t, err)
	require.Len(t, page.Data, 1)
	assert.False(t, page.HasMore)

	ev, err := pb.Events.Get(ctx, events[0].ID)
	require.NoError(t, err)
	assert.Equal(t, "event", ev.Object)
	assert.Equal(t, client.EventSessionCancelled, ev.Type)
	assert.Equal(t, client.DeliveryNoEndpoint, ev.Delivery)
	assert.Empty(t, ev.Attempts)
	assert.NotEmpty(t, ev.LastResponse.RequestID)
	sess, err := ev.Session()
	require.NoError(t, err)
	assert.Equal(t, ids[2], sess.ID)
	assert.Equal(t, client.StatusCancelled, sess.Status)

	_, err = pb.Events.Resend(ctx, ev.ID)
	apiErr := asAPIError(err)
	require.NotNil(t, apiErr, "%v", err)
	assert.Equal(t, client.CodeValidationError, apiErr.Code)
	assert.Contains(t, apiErr.Message, "webhook.url")

	_, err = pb.Events.Get(ctx, bridge.NewEventID())
	apiErr = asAPIError(err)
	require.NotNil(t, apiErr, "%v", err)
	assert.Equal(t, client.CodeSessionNotFound, apiErr.Code)
	assert.Equal(t, http.StatusNotFound, apiErr.HTTPStatus)
	_, err = pb.Events.Get(ctx, "")
	assert.Error(t, err, "an empty id")
}

func TestEventsResend(t *testing.T) {
	w := newWorld(t, func(c *worldConfig) {
		// Nothing delivers in this world (no dispatcher): the event stays pending, as it is
		// after a resend.
		c.webhook = bridge.MerchantWebhook{URL: "http://127.0.0.1:9/hooks", Secret: "whsec_clientEventsTest0123456"}
	})
	pb := newClient(w, w.secretKey, &recorder{}, &sleeper{})
	ctx := context.Background()
	cancelSessions(t, w, pb, 1)
	page, err := pb.Events.ListPage(ctx, nil)
	require.NoError(t, err)
	require.Len(t, page.Data, 1)
	id := page.Data[0].ID
	assert.Equal(t, client.DeliveryPending, page.Data[0].Delivery)

	w.clock.Advance(time.Minute)
	ev, err := pb.Events.Resend(ctx, id, client.IdempotencyKey("resend-"+id))
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, ev.LastResponse.StatusCode)
	assert.Equal(t, client.DeliveryPending, ev.Delivery)
	require.NotNil(t, ev.NextAttemptAt)
	assert.True(t, ev.NextAttemptAt.Equal(w.clock.Now()), "due now: %s", ev.NextAttemptAt)
	again, err := pb.Events.Resend(ctx, id, client.IdempotencyKey("resend-"+id))
	require.NoError(t, err)
	assert.True(t, again.LastResponse.Replayed)
	assert.Equal(t, ev.ID, again.ID)
}
