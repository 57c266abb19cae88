package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

var outboxTests = []storeTest{
	{"RoundTrip", testOutboxRoundTrip},
	{"DueEarliestFirst", testOutboxDue},
	{"UpdateReschedulesAndRetires", testOutboxUpdate},
	{"UpdateErrorWritesNothing", testOutboxUpdateError},
	{"MissingIsNotFound", testOutboxMissing},
	{"EventFieldsRoundTrip", testEventFieldsRoundTrip},
	{"NoEndpointIsNeverDue", testEventNoEndpoint},
	{"ListEventsNewestFirst", testListEvents},
	{"ListEventsUnknownCursorIsNotFound", testListEventsUnknownCursor},
	{"ModeFromLegacyPayload", testEventLegacyMode},
	{"PurgeEvents", testPurgeEvents},
	{"OutboxPending", testOutboxPending},
}

func testOutboxRoundTrip(t *testing.T, s bridge.Store) {
	pending := newMessage("acme", epoch.In(elsewhere))
	pending.Type = bridge.EventFailed
	pending.Attempts = 3
	pending.LastError = "receiver answered 503"
	retired := newMessage("globex", epoch)
	retired.Type = bridge.EventExpired
	retired.DeliveredAt = epoch.Add(time.Minute)
	retired.AbandonedAt = epoch.Add(24 * time.Hour)
	retired.Payload = []byte{0, 1, 2, 0xfe, 0xff} // the exact body: bytes, not necessarily text
	want := []*bridge.OutboxMessage{normalizeMessage(pending), normalizeMessage(retired)}
	writeOutbox(t, s, pending, retired)

	for i, m := range []*bridge.OutboxMessage{pending, retired} {
		got, err := s.OutboxMessage(t.Context(), m.ID)
		require.NoError(t, err)
		assert.Equal(t, want[i], normalizeMessage(got))
	}
}

func testOutboxDue(t *testing.T, s bridge.Store) {
	now := epoch
	twoAgo := newMessage("acme", now.Add(-2*time.Minute))
	oneAgo := newMessage("globex", now.Add(-time.Minute).In(elsewhere))
	exactlyNow := newMessage("acme", now)
	justAfter := newMessage("acme", now.Add(time.Nanosecond))
	later := newMessage("acme", now.Add(time.Hour))
	retired := newMessage("acme", now.Add(-time.Hour))
	retired.DeliveredAt = now.Add(-time.Minute)
	// Written out of order, in two updates.
	writeOutbox(t, s, later, exactlyNow, retired)
	writeOutbox(t, s, oneAgo, justAfter, twoAgo)

	tests := []struct {
		name  string
		now   time.Time
		limit int
		want  []*bridge.OutboxMessage
	}{
		{"not after now", now, 10, []*bridge.OutboxMessage{twoAgo, oneAgo, exactlyNow}},
		{"limit", now, 2, []*bridge.OutboxMessage{twoAgo, oneAgo}},
		{"limit one", now, 1, []*bridge.OutboxMessage{twoAgo}},
		{"earlier", now.Add(-90 * time.Second), 10, []*bridge.OutboxMessage{twoAgo}},
		{"before any", now.Add(-3 * time.Minute), 10, nil},
		{"everything pending", now.Add(2 * time.Hour), 10, []*bridge.OutboxMessage{twoAgo, oneAgo, exactlyNow, justAfter, later}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.DueOutbox(t.Context(), tc.now, tc.limit)
			require.NoError(t, err)
			assert.Equal(t, messageIDs(tc.want), messageIDs(got))
			for i := range min(len(got), len(tc.want)) {
				assert.Equal(t, normalizeMessage(tc.want[i]), normalizeMessage(got[i]))
			}
		})
	}
}

func testOutboxUpdate(t *testing.T, s bridge.Store) {
	now := epoch
	first := newMessage("acme", now.Add(-3*time.Minute))
	second := newMessage("acme", now.Add(-2*time.Minute))
	third := newMessage("acme", now.Add(-time.Minute))
	writeOutbox(t, s, first, second, third)
	due := func(at time.Time) []string {
		t.Helper()
		msgs, err := s.DueOutbox(t.Context(), at, 100)
		require.NoError(t, err)
		return messageIDs(msgs)
	}
	farFuture := now.Add(1000 * time.Hour)

	// A failed delivery: try again in 30 minutes.
	retryAt := now.Add(30 * time.Minute)
	updated, err := s.UpdateOutbox(t.Context(), first.ID, func(m *bridge.OutboxMessage) error {
		m.Attempts++
		m.LastError = "receiver answered 500"
		m.NextAttemptAt = retryAt
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1, updated.Attempts)
	assert.Equal(t, []string{second.ID, third.ID}, due(now), "a rescheduled message is not due before its time")
	assert.Equal(t, []string{second.ID, third.ID, first.ID}, due(retryAt), "and is due at it")
	got, err := s.OutboxMessage(t.Context(), first.ID)
	require.NoError(t, err)
	assert.Equal(t, normalizeMessage(updated), normalizeMessage(got))

	// Delivered and abandoned messages never come back, however late.
	_, err = s.UpdateOutbox(t.Context(), second.ID, func(m *bridge.OutboxMessage) error {
		m.Attempts++
		m.DeliveredAt = now
		return nil
	})
	require.NoError(t, err)
	_, err = s.UpdateOutbox(t.Context(), third.ID, func(m *bridge.OutboxMessage) error {
		m.AbandonedAt = now
		m.LastError = "gave up after 24h"
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{first.ID}, due(farFuture))

	// They stay readable, for audit.
	got, err = s.OutboxMessage(t.Context(), second.ID)
	require.NoError(t, err)
	assert.True(t, got.DeliveredAt.Equal(now))
	assert.False(t, got.Pending())
	got, err = s.OutboxMessage(t.Context(), third.ID)
	require.NoError(t, err)
	assert.True(t, got.AbandonedAt.Equal(now))
	assert.Equal(t, "gave up after 24h", got.LastError)

	// Updating a retired message keeps it retired.
	_, err = s.UpdateOutbox(t.Context(), second.ID, func(m *bridge.OutboxMessage) error {
		m.NextAttemptAt = now
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{first.ID}, due(farFuture))
}

func testOutboxUpdateError(t *testing.T, s bridge.Store) {
	msg := newMessage("acme", epoch)
	writeOutbox(t, s, msg)
	errRefused := errors.New("refused by fn")

	updated, err := s.UpdateOutbox(t.Context(), msg.ID, func(m *bridge.OutboxMessage) error {
		m.DeliveredAt = epoch
		m.NextAttemptAt = epoch.Add(time.Hour)
		m.Attempts = 7
		return errRefused
	})
	assert.ErrorIs(t, err, errRefused)
	assert.Nil(t, updated)
	got, err := s.OutboxMessage(t.Context(), msg.ID)
	require.NoError(t, err)
	assert.Equal(t, normalizeMessage(msg), normalizeMessage(got))
	due, err := s.DueOutbox(t.Context(), epoch, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{msg.ID}, messageIDs(due))
}

func testOutboxMissing(t *testing.T, s bridge.Store) {
	writeOutbox(t, s, newMessage("acme", epoch))
	missing := bridge.NewEventID()

	_, err := s.OutboxMessage(t.Context(), missing)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "OutboxMessage")
	called := false
	_, err = s.UpdateOutbox(t.Context(), missing, func(*bridge.OutboxMessage) error { called = true; return nil })
	assert.ErrorIs(t, err, bridge.ErrNotFound, "UpdateOutbox")
	assert.False(t, called, "UpdateOutbox called fn for a missing message")
	_, err = s.OutboxMessage(t.Context(), missing)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "UpdateOutbox of a missing message created it")
}

// newEvent is newMessage as the service writes it: with mode, session and a creation time.
func newEvent(merchantID string, mode bridge.Mode, sessionID string, typ bridge.EventType, created time.Time) *bridge.OutboxMessage {
	m := newMessage(merchantID, created)
	m.Mode, m.SessionID, m.Type, m.CreatedAt = mode, sessionID, typ, created
	return m
}

func testEventFieldsRoundTrip(t *testing.T, s bridge.Store) {
	m := newEvent("acme", bridge.ModeLive, "vp_cs_live_1", bridge.EventCancelled, epoch.In(elsewhere))
	m.RetryFrom, m.RetryBase = epoch.Add(time.Hour), 2
	for i := range bridge.MaxDeliveryLog + 3 {
		m.RecordDelivery(bridge.DeliveryAttempt{At: epoch.Add(time.Duration(i) * time.Minute), Status: 500 + i%4,
			Error: fmt.Sprintf("receiver answered %d", 500+i%4), Duration: time.Duration(i) * time.Millisecond})
	}
	require.Len(t, m.Deliveries, bridge.MaxDeliveryLog, "RecordDelivery keeps the last 20")
	assert.Equal(t, 3*time.Millisecond, m.Deliveries[0].Duration, "the oldest dropped first")
	writeOutbox(t, s, m)

	got, err := s.OutboxMessage(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, normalizeMessage(m), normalizeMessage(got))

	// An update keeps them, and RecordDelivery on the stored copy still trims.
	updated, err := s.UpdateOutbox(t.Context(), m.ID, func(x *bridge.OutboxMessage) error {
		x.RecordDelivery(bridge.DeliveryAttempt{At: epoch.Add(time.Hour), Status: 204, Duration: time.Second})
		return nil
	})
	require.NoError(t, err)
	require.Len(t, updated.Deliveries, bridge.MaxDeliveryLog)
	assert.Equal(t, 204, updated.Deliveries[bridge.MaxDeliveryLog-1].Status)
	got, err = s.OutboxMessage(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, normalizeMessage(updated), normalizeMessage(got))
}

func testEventNoEndpoint(t *testing.T, s bridge.Store) {
	quiet := newEvent("acme", bridge.ModeTest, "vp_cs_test_1", bridge.EventExpired, epoch)
	quiet.NoEndpoint = true
	loud := newEvent("acme", bridge.ModeTest, "vp_cs_test_2", bridge.EventExpired, epoch)
	writeOutbox(t, s, quiet, loud)

	due, err := s.DueOutbox(t.Context(), epoch.Add(time.Hour), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{loud.ID}, messageIDs(due))
	got, err := s.OutboxMessage(t.Context(), quiet.ID)
	require.NoError(t, err)
	assert.Equal(t, bridge.DeliveryNoEndpoint, got.DeliveryStatus())
	assert.False(t, got.Pending())
	list, err := s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeTest})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{quiet.ID, loud.ID}, messageIDs(list), "both are events")

	// A resend with an endpoint configured since makes it pending.
	_, err = s.UpdateOutbox(t.Context(), quiet.ID, func(m *bridge.OutboxMessage) error {
		m.NoEndpoint, m.NextAttemptAt = false, epoch.Add(time.Minute)
		return nil
	})
	require.NoError(t, err)
	due, err = s.DueOutbox(t.Context(), epoch.Add(time.Hour), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{loud.ID, quiet.ID}, messageIDs(due))
}

func testListEvents(t *testing.T, s bridge.Store) {
	at := func(i int) time.Time { return epoch.Add(time.Duration(i) * time.Second) }
	var (
		all      []*bridge.OutboxMessage // acme test, oldest first
		sessA    []*bridge.OutboxMessage
		failed   []*bridge.OutboxMessage
		sameTime []*bridge.OutboxMessage
	)
	for i := range 14 {
		typ, session := bridge.EventSucceeded, "vp_cs_test_B"
		if i%3 == 0 {
			typ = bridge.EventFailed
		}
		if i%2 == 0 {
			session = "vp_cs_test_A"
		}
		m := newEvent("acme", bridge.ModeTest, session, typ, at(i))
		if i == 13 {
			m.CreatedAt = at(12) // a tie on CreatedAt: the id decides
		}
		all = append(all, m)
		if session == "vp_cs_test_A" {
			sessA = append(sessA, m)
		}
		if typ == bridge.EventFailed {
			failed = append(failed, m)
		}
		if i >= 12 {
			sameTime = append(sameTime, m)
		}
	}
	// Ties break by id descending, newest first: oldest first, the smaller id comes first.
	if sameTime[0].ID > sameTime[1].ID {
		all[12], all[13] = all[13], all[12]
	}
	live := newEvent("acme", bridge.ModeLive, "vp_cs_live_A", bridge.EventSucceeded, at(5))
	other := newEvent("globex", bridge.ModeTest, "vp_cs_test_A", bridge.EventSucceeded, at(6))
	// Written out of order, over several updates, with the other merchant and mode between.
	writeOutbox(t, s, all[7:]...)
	writeOutbox(t, s, live, other)
	writeOutbox(t, s, all[:7]...)

	newest := func(list []*bridge.OutboxMessage) []string {
		ids := messageIDs(list)
		slices.Reverse(ids)
		return ids
	}
	sortNewest := func(list []*bridge.OutboxMessage) []*bridge.OutboxMessage {
		out := slices.Clone(list)
		slices.SortStableFunc(out, func(a, b *bridge.OutboxMessage) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		})
		return out
	}
	allNewest := newest(all)
	assert.Equal(t, messageIDs(sortNewest(all)), allNewest, "the test's own order")

	list := func(f bridge.EventFilter) []string {
		t.Helper()
		if f.MerchantID == "" {
			f.MerchantID, f.Mode = "acme", bridge.ModeTest
		}
		got, err := s.ListEvents(t.Context(), f)
		require.NoError(t, err)
		return messageIDs(got)
	}
	tests := []struct {
		name string
		f    bridge.EventFilter
		want []string
	}{
		{"default limit 10", bridge.EventFilter{}, allNewest[:10]},
		{"limit", bridge.EventFilter{Limit: 3}, allNewest[:3]},
		{"limit over 100 is 100", bridge.EventFilter{Limit: 1000}, allNewest},
		{"after", bridge.EventFilter{Limit: 4, StartingAfter: allNewest[3]}, allNewest[4:8]},
		{"after the tie", bridge.EventFilter{Limit: 2, StartingAfter: allNewest[0]}, allNewest[1:3]},
		{"after the last", bridge.EventFilter{StartingAfter: allNewest[13]}, []string{}},
		{"type", bridge.EventFilter{Type: bridge.EventFailed, Limit: 100}, messageIDs(sortNewest(failed))},
		{"type after", bridge.EventFilter{Type: bridge.EventFailed, StartingAfter: messageIDs(sortNewest(failed))[1]},
			messageIDs(sortNewest(failed))[2:]},
		{"session", bridge.EventFilter{SessionID: "vp_cs_test_A", Limit: 100}, messageIDs(sortNewest(sessA))},
		{"type and session", bridge.EventFilter{SessionID: "vp_cs_test_A", Type: bridge.EventFailed, Limit: 100},
			messageIDs(sortNewest(slices.DeleteFunc(slices.Clone(sessA), func(m *bridge.OutboxMessage) bool { return m.Type != bridge.EventFailed })))},
		{"unknown session", bridge.EventFilter{SessionID: "vp_cs_test_none"}, []string{}},
		{"live mode", bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeLive}, []string{live.ID}},
		{"other merchant", bridge.EventFilter{MerchantID: "globex", Mode: bridge.ModeTest}, []string{other.ID}},
		{"merchant without events", bridge.EventFilter{MerchantID: "initech", Mode: bridge.ModeTest}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := list(tc.f)
			if len(tc.want) == 0 {
				assert.Empty(t, got)
				return
			}
			assert.Equal(t, tc.want, got)
		})
	}

	// Paging by hand walks everything once.
	var walked []string
	cursor := ""
	for range 10 {
		page := list(bridge.EventFilter{Limit: 4, StartingAfter: cursor})
		if len(page) == 0 {
			break
		}
		walked = append(walked, page...)
		cursor = page[len(page)-1]
	}
	assert.Equal(t, allNewest, walked)

	// Listed messages are whole, and an update (a delivery) keeps a message's place.
	_, err := s.UpdateOutbox(t.Context(), all[0].ID, func(m *bridge.OutboxMessage) error {
		m.DeliveredAt, m.Attempts = epoch.Add(time.Hour), 1
		return nil
	})
	require.NoError(t, err)
	got, err := s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeTest, Limit: 100})
	require.NoError(t, err)
	require.Equal(t, allNewest, messageIDs(got))
	last := got[len(got)-1]
	assert.Equal(t, bridge.DeliveryDelivered, last.DeliveryStatus())
	assert.Equal(t, "vp_cs_test_A", last.SessionID)
	assert.Equal(t, bridge.ModeTest, last.Mode)
	assert.Equal(t, all[0].Payload, last.Payload)
}

func testListEventsUnknownCursor(t *testing.T, s bridge.Store) {
	mine := newEvent("acme", bridge.ModeTest, "vp_cs_test_1", bridge.EventSucceeded, epoch)
	live := newEvent("acme", bridge.ModeLive, "vp_cs_live_1", bridge.EventSucceeded, epoch)
	theirs := newEvent("globex", bridge.ModeTest, "vp_cs_test_2", bridge.EventSucceeded, epoch)
	writeOutbox(t, s, mine, live, theirs)
	for name, cursor := range map[string]string{"made up": bridge.NewEventID(), "other mode": live.ID, "other merchant": theirs.ID} {
		_, err := s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeTest, StartingAfter: cursor})
		assert.ErrorIs(t, err, bridge.ErrNotFound, "StartingAfter %s", name)
	}
	page, err := s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeTest, StartingAfter: mine.ID})
	require.NoError(t, err)
	assert.Empty(t, page)
	_, err = s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme"})
	assert.Error(t, err, "a list without a mode")
}

// testEventLegacyMode: a message that does not name its mode and session (as those written
// before events were listed) takes them from its payload, and is listed in that mode.
func testEventLegacyMode(t *testing.T, s bridge.Store) {
	m := newMessage("acme", epoch)
	m.Payload = fmt.Appendf(nil, `{"id":%q,"type":"session.succeeded","created":1,"livemode":true,"data":{"id":"vp_cs_live_old"}}`, m.ID)
	writeOutbox(t, s, m)
	got, err := s.OutboxMessage(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, bridge.ModeLive, got.Mode)
	assert.Equal(t, "vp_cs_live_old", got.SessionID)
	list, err := s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeLive})
	require.NoError(t, err)
	assert.Equal(t, []string{m.ID}, messageIDs(list))
	list, err = s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeTest})
	require.NoError(t, err)
	assert.Empty(t, list, "a live event is never a test key's")
}

func testPurgeEvents(t *testing.T, s bridge.Store) {
	day := 24 * time.Hour
	oldDelivered := newEvent("acme", bridge.ModeTest, "vp_cs_test_1", bridge.EventSucceeded, epoch.Add(-40*day))
	oldDelivered.DeliveredAt = epoch.Add(-40 * day)
	oldAbandoned := newEvent("acme", bridge.ModeTest, "vp_cs_test_2", bridge.EventFailed, epoch.Add(-31*day))
	oldAbandoned.AbandonedAt = epoch.Add(-30 * day)
	oldQuiet := newEvent("globex", bridge.ModeLive, "vp_cs_live_3", bridge.EventExpired, epoch.Add(-31*day))
	oldQuiet.NoEndpoint = true
	oldPending := newEvent("acme", bridge.ModeTest, "vp_cs_test_4", bridge.EventSucceeded, epoch.Add(-35*day))
	oldPending.RetryFrom = epoch.Add(-time.Hour) // resent lately: still being delivered
	recent := newEvent("acme", bridge.ModeTest, "vp_cs_test_5", bridge.EventSucceeded, epoch.Add(-29*day))
	recent.DeliveredAt = epoch.Add(-29 * day)
	writeOutbox(t, s, oldDelivered, oldAbandoned, oldQuiet, oldPending, recent)

	cutoff := epoch.Add(-30 * day)
	n, err := s.PurgeEvents(t.Context(), cutoff)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	for _, m := range []*bridge.OutboxMessage{oldDelivered, oldAbandoned, oldQuiet} {
		_, err := s.OutboxMessage(t.Context(), m.ID)
		assert.ErrorIs(t, err, bridge.ErrNotFound, "purged %s", m.SessionID)
	}
	for _, m := range []*bridge.OutboxMessage{oldPending, recent} {
		_, err := s.OutboxMessage(t.Context(), m.ID)
		assert.NoError(t, err, "kept %s", m.SessionID)
	}
	list, err := s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "acme", Mode: bridge.ModeTest, Limit: 100})
	require.NoError(t, err)
	assert.Equal(t, []string{recent.ID, oldPending.ID}, messageIDs(list), "purged events are not listed")
	list, err = s.ListEvents(t.Context(), bridge.EventFilter{MerchantID: "globex", Mode: bridge.ModeLive})
	require.NoError(t, err)
	assert.Empty(t, list)
	due, err := s.DueOutbox(t.Context(), epoch, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{oldPending.ID}, messageIDs(due), "a pending message stays due")

	n, err = s.PurgeEvents(t.Context(), cutoff)
	require.NoError(t, err)
	assert.Zero(t, n, "a second purge finds nothing")
}

func testOutboxPending(t *testing.T, s bridge.Store) {
	count, oldest, err := s.OutboxPending(t.Context())
	require.NoError(t, err)
	assert.Zero(t, count)
	assert.True(t, oldest.IsZero(), "no oldest when none is pending")

	a := newEvent("acme", bridge.ModeTest, "vp_cs_test_1", bridge.EventSucceeded, epoch.Add(-time.Hour))
	a.NextAttemptAt = epoch.Add(time.Hour) // pending, not due: still counted
	b := newEvent("acme", bridge.ModeTest, "vp_cs_test_2", bridge.EventSucceeded, epoch.Add(-2*time.Hour).In(elsewhere))
	delivered := newEvent("acme", bridge.ModeTest, "vp_cs_test_3", bridge.EventSucceeded, epoch.Add(-3*time.Hour))
	delivered.DeliveredAt = epoch
	quiet := newEvent("acme", bridge.ModeTest, "vp_cs_test_4", bridge.EventSucceeded, epoch.Add(-4*time.Hour))
	quiet.NoEndpoint = true
	writeOutbox(t, s, a, b, delivered, quiet)

	count, oldest, err = s.OutboxPending(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, count)
	assert.True(t, oldest.Equal(b.CreatedAt), "oldest %s, want %s", oldest, b.CreatedAt)

	_, err = s.UpdateOutbox(t.Context(), b.ID, func(m *bridge.OutboxMessage) error { m.AbandonedAt = epoch; return nil })
	require.NoError(t, err)
	count, oldest, err = s.OutboxPending(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, count)
	assert.True(t, oldest.Equal(a.CreatedAt), "oldest %s, want %s", oldest, a.CreatedAt)
}
