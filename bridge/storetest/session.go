package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

var sessionTests = []storeTest{
	{"CreateAndGetRoundTrip", testSessionRoundTrip},
	{"ValuesArePrivateCopies", testSessionPrivateCopies},
	{"CreateDuplicateConflicts", testSessionDuplicate},
	{"MissingIsNotFound", testSessionMissing},
	{"AttemptGUIDBelongsToOneSession", testSessionGUIDConflict},
	{"SessionByGUIDFindsEveryAttempt", testSessionByGUID},
	{"UpdateBumpsVersionAndWritesOutbox", testUpdateSession},
	{"UpdateMovesIndexes", testUpdateSessionMovesIndexes},
	{"UpdateErrorWritesNothing", testUpdateSessionError},
	{"UpdateNeverStoresTokens", testUpdateSessionTokens},
	{"UpdateDuplicateOutboxWritesNothing", testUpdateSessionOutboxConflict},
	{"ConcurrentUpdatesAllLand", testUpdateSessionConcurrent},
	{"OpenSessions", testOpenSessions},
}

func testSessionRoundTrip(t *testing.T, s bridge.Store) {
	want := fullSession()
	require.NotEmpty(t, want.Attempts[0].BearerToken, "the fixture must carry tokens for this test to mean anything")
	mustCreate(t, s, want)

	got := mustGet(t, s, want.ID)
	assertSession(t, stored(want), got)
	for _, a := range got.Attempts {
		assert.Empty(t, a.BearerToken, "attempt %d: bearer token reached storage", a.Number)
		assert.Empty(t, a.RefreshToken, "attempt %d: refresh token reached storage", a.Number)
	}
	for _, a := range want.Attempts {
		byGUID, err := s.SessionByGUID(t.Context(), a.SessionGUID)
		require.NoError(t, err, "SessionByGUID of attempt %d", a.Number)
		assertSession(t, stored(want), byGUID)
	}
}

func testSessionPrivateCopies(t *testing.T, s bridge.Store) {
	sess := fullSession()
	want := sess.Clone()
	mustCreate(t, s, sess)
	assert.Equal(t, want, sess, "CreateSession changed the caller's session")

	// The caller changes its value after the create: the store must not see it.
	sess.Status = bridge.StatusCancelled
	sess.Metadata["crm"] = "changed"
	sess.Attempts[0].IframeURL = "https://changed.example"
	sess.Attempts[0].SealedTokens[0] = 9
	sess.LineItems[0].Quantity = 7
	got := mustGet(t, s, want.ID)
	assertSession(t, stored(want), got)

	// A reader changes what it got: the store must not see that either.
	got.Status = bridge.StatusSucceeded
	got.Metadata["crm"] = "changed again"
	got.Attempts[1].SealedTokens[0] = 'X'
	got.Result.Decision = bridge.DecisionAccept
	assertSession(t, stored(want), mustGet(t, s, want.ID))
}

func testSessionDuplicate(t *testing.T, s bridge.Store) {
	first := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	mustCreate(t, s, first)

	dup := newSession("globex", bridge.ModeTest, "agent-2", epoch.Add(time.Hour))
	dup.ID = first.ID
	err := s.CreateSession(t.Context(), dup)
	assert.ErrorIs(t, err, bridge.ErrConflict)
	assertSession(t, first, mustGet(t, s, first.ID))
	_, err = s.SessionByGUID(t.Context(), dup.Attempts[0].SessionGUID)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "a refused create left its attempt guid behind")
}

func testSessionMissing(t *testing.T, s bridge.Store) {
	mustCreate(t, s, newSession("acme", bridge.ModeTest, "agent-1", epoch))
	missing := bridge.NewSessionID(bridge.ModeTest)

	_, err := s.Session(t.Context(), missing)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "Session")
	_, err = s.SessionByGUID(t.Context(), newGUID())
	assert.ErrorIs(t, err, bridge.ErrNotFound, "SessionByGUID")
	called := false
	_, err = s.UpdateSession(t.Context(), missing, func(*bridge.Session, *bridge.Outbox) error {
		called = true
		return nil
	})
	assert.ErrorIs(t, err, bridge.ErrNotFound, "UpdateSession")
	assert.False(t, called, "UpdateSession called fn for a missing session")
	_, err = s.Session(t.Context(), missing)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "UpdateSession of a missing session created it")
}

func testSessionGUIDConflict(t *testing.T, s bridge.Store) {
	owner := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	mustCreate(t, s, owner)
	guid := owner.Attempts[0].SessionGUID

	thief := newSession("acme", bridge.ModeTest, "agent-2", epoch)
	thief.Attempts[0].SessionGUID = guid
	assert.ErrorIs(t, s.CreateSession(t.Context(), thief), bridge.ErrConflict, "create with another session's guid")
	_, err := s.Session(t.Context(), thief.ID)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "the refused session was stored")

	other := newSession("acme", bridge.ModeTest, "agent-2", epoch)
	mustCreate(t, s, other)
	_, err = s.UpdateSession(t.Context(), other.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
		c.Attempts = append(c.Attempts, bridge.Attempt{Number: 2, SessionGUID: guid, StartedAt: epoch})
		return nil
	})
	assert.ErrorIs(t, err, bridge.ErrConflict, "update adding another session's guid")
	assertSession(t, other, mustGet(t, s, other.ID))

	got, err := s.SessionByGUID(t.Context(), guid)
	require.NoError(t, err)
	assert.Equal(t, owner.ID, got.ID, "the guid changed owner")
}

func testSessionByGUID(t *testing.T, s bridge.Store) {
	sess := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	mustCreate(t, s, sess)
	bystander := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	mustCreate(t, s, bystander)

	// Attempts added later must be found too.
	added := []string{newGUID(), newGUID()}
	for i, guid := range added {
		_, err := s.UpdateSession(t.Context(), sess.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
			c.Current().EndedAt, c.Current().EndReason = epoch.Add(time.Minute), bridge.EndFrameRefused
			c.Attempts = append(c.Attempts, bridge.Attempt{Number: i + 2, SessionGUID: guid, StartedAt: epoch.Add(time.Minute)})
			return nil
		})
		require.NoError(t, err)
	}
	latest := mustGet(t, s, sess.ID)
	require.Len(t, latest.Attempts, 3)
	for _, guid := range append([]string{sess.Attempts[0].SessionGUID}, added...) {
		got, err := s.SessionByGUID(t.Context(), guid)
		if assert.NoError(t, err, "SessionByGUID(%s)", guid) {
			assertSession(t, latest, got)
		}
	}

	// A session whose create failed before VCC answered has an attempt without a guid; the
	// empty guid finds nothing.
	noGUID := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	noGUID.Attempts[0].SessionGUID = ""
	noGUID.Status = bridge.StatusFailed
	mustCreate(t, s, noGUID)
	for _, guid := range []string{"", newGUID(), sess.ID} {
		_, err := s.SessionByGUID(t.Context(), guid)
		assert.ErrorIs(t, err, bridge.ErrNotFound, "SessionByGUID(%q)", guid)
	}
}

func testUpdateSession(t *testing.T, s bridge.Store) {
	sess := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	mustCreate(t, s, sess)
	msg := newMessage("acme", epoch.Add(time.Minute))

	updated, err := s.UpdateSession(t.Context(), sess.ID, func(c *bridge.Session, out *bridge.Outbox) error {
		if err := c.SetStatus(bridge.StatusSucceeded, epoch.Add(time.Minute)); err != nil {
			return err
		}
		c.Result = &bridge.Result{Decision: bridge.DecisionAccept, ReasonCode: "100", TransactionID: "tx-9"}
		out.Add(msg)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, sess.Version+1, updated.Version, "returned version")
	assert.Equal(t, bridge.StatusSucceeded, updated.Status)

	got := mustGet(t, s, sess.ID)
	assertSession(t, updated, got)
	assert.Equal(t, sess.Version+1, got.Version, "stored version")
	assert.Equal(t, "tx-9", got.Result.TransactionID)
	assert.Equal(t, bridge.EndCompleted, got.Attempts[0].EndReason)

	gotMsg, err := s.OutboxMessage(t.Context(), msg.ID)
	require.NoError(t, err, "the outbox message written with the update")
	assert.Equal(t, normalizeMessage(msg), normalizeMessage(gotMsg))

	// A second update bumps again; an update that adds nothing to the outbox writes none.
	again, err := s.UpdateSession(t.Context(), sess.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
		c.Metadata = map[string]string{"reconciled": "yes"}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, sess.Version+2, again.Version)
	assert.Equal(t, map[string]string{"reconciled": "yes"}, mustGet(t, s, sess.ID).Metadata)
	due, err := s.DueOutbox(t.Context(), epoch.Add(time.Hour), 100)
	require.NoError(t, err)
	assert.Equal(t, []string{msg.ID}, messageIDs(due))
}

// testUpdateSessionMovesIndexes changes, in one update, every field a store may index on, and
// checks every way of finding the session follows.
func testUpdateSessionMovesIndexes(t *testing.T, s bridge.Store) {
	older := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	moved := newSession("acme", bridge.ModeTest, "agent-1", epoch.Add(time.Second))
	newer := newSession("acme", bridge.ModeTest, "agent-1", epoch.Add(2*time.Second))
	mustCreate(t, s, older, moved, newer)
	oldGUID, newGUID := moved.Attempts[0].SessionGUID, newGUID()

	_, err := s.UpdateSession(t.Context(), moved.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
		c.CreatedAt = epoch.Add(time.Hour)
		c.AgentID = "agent-2"
		c.Attempts[0].SessionGUID = newGUID // a corrected guid: the old one must stop finding it
		return c.SetStatus(bridge.StatusCancelled, epoch.Add(time.Hour))
	})
	require.NoError(t, err)

	list, err := s.ListSessions(t.Context(), bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest})
	require.NoError(t, err)
	assert.Equal(t, []string{moved.ID, newer.ID, older.ID}, ids(list), "listed once, at its new place")
	list, err = s.ListSessions(t.Context(), bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-2"})
	require.NoError(t, err)
	assert.Equal(t, []string{moved.ID}, ids(list))
	list, err = s.ListSessions(t.Context(), bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, StartingAfter: moved.ID})
	require.NoError(t, err)
	assert.Equal(t, []string{newer.ID, older.ID}, ids(list), "the cursor follows the new place")

	got, err := s.SessionByGUID(t.Context(), newGUID)
	require.NoError(t, err)
	assert.Equal(t, moved.ID, got.ID)
	_, err = s.SessionByGUID(t.Context(), oldGUID)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "the replaced guid still finds the session")

	open, err := s.OpenSessions(t.Context())
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{older.ID, newer.ID}, ids(open))
}

func testUpdateSessionError(t *testing.T, s bridge.Store) {
	sess := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	sess.Metadata = map[string]string{"a": "1"}
	mustCreate(t, s, sess)
	before := mustGet(t, s, sess.ID)
	msg := newMessage("acme", epoch)
	newAttempt := newGUID()
	errRefused := errors.New("refused by fn")

	updated, err := s.UpdateSession(t.Context(), sess.ID, func(c *bridge.Session, out *bridge.Outbox) error {
		// Change everything on the copy, then fail: none of it may be stored.
		c.Status = bridge.StatusCancelled
		c.Amount = 1
		c.AgentID = "agent-2"
		c.CreatedAt = epoch.Add(-time.Hour)
		c.Metadata["a"] = "2"
		c.Metadata["b"] = "3"
		c.Attempts[0].EndReason = bridge.EndRestartRequested
		c.Attempts = append(c.Attempts, bridge.Attempt{Number: 2, SessionGUID: newAttempt, StartedAt: epoch})
		c.Version = 99
		out.Add(msg)
		return fmt.Errorf("transition: %w", errRefused)
	})
	assert.ErrorIs(t, err, errRefused, "UpdateSession must return fn's error")
	assert.Nil(t, updated)

	assertSession(t, before, mustGet(t, s, sess.ID))
	_, err = s.OutboxMessage(t.Context(), msg.ID)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "the outbox message of a failed update was stored")
	due, err := s.DueOutbox(t.Context(), epoch.Add(time.Hour), 100)
	require.NoError(t, err)
	assert.Empty(t, due, "DueOutbox after a failed update")
	_, err = s.SessionByGUID(t.Context(), newAttempt)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "the attempt of a failed update is findable")
	open, err := s.OpenSessions(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{sess.ID}, ids(open), "a failed cancel changed the open set")
	cancelledList, err := s.ListSessions(t.Context(), bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, Status: bridge.StatusCancelled})
	require.NoError(t, err)
	assert.Empty(t, cancelledList, "a failed cancel shows in a status listing")
	list, err := s.ListSessions(t.Context(), bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest})
	require.NoError(t, err)
	assert.Equal(t, []string{sess.ID}, ids(list))
}

func testUpdateSessionTokens(t *testing.T, s bridge.Store) {
	sess := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	sess.Attempts[0].BearerToken, sess.Attempts[0].RefreshToken = "bearer-1", "refresh-1"
	mustCreate(t, s, sess)
	guid := newGUID()

	_, err := s.UpdateSession(t.Context(), sess.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
		c.Attempts = append(c.Attempts, bridge.Attempt{
			Number: 2, SessionGUID: guid, IframeURL: "https://pcipal.example/session/2",
			BearerToken: "bearer-2", RefreshToken: "refresh-2", SealedTokens: []byte("sealed-2"),
			StartedAt: epoch.Add(time.Minute),
		})
		return nil
	})
	require.NoError(t, err)

	for _, get := range []func() (*bridge.Session, error){
		func() (*bridge.Session, error) { return s.Session(t.Context(), sess.ID) },
		func() (*bridge.Session, error) { return s.SessionByGUID(t.Context(), guid) },
	} {
		got, err := get()
		require.NoError(t, err)
		require.Len(t, got.Attempts, 2)
		for _, a := range got.Attempts {
			assert.Empty(t, a.BearerToken, "attempt %d: bearer token reached storage", a.Number)
			assert.Empty(t, a.RefreshToken, "attempt %d: refresh token reached storage", a.Number)
		}
		assert.Equal(t, []byte("sealed-2"), got.Attempts[1].SealedTokens, "sealed tokens are kept")
	}
}

func testUpdateSessionOutboxConflict(t *testing.T, s bridge.Store) {
	first := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	second := newSession("acme", bridge.ModeTest, "agent-2", epoch)
	mustCreate(t, s, first, second)
	msg := newMessage("acme", epoch)
	_, err := s.UpdateSession(t.Context(), first.ID, func(_ *bridge.Session, out *bridge.Outbox) error {
		out.Add(msg)
		return nil
	})
	require.NoError(t, err)

	// Receivers deduplicate on the event id, so a second message with it must not be stored, and
	// the transition that came with it must not be either.
	before := mustGet(t, s, second.ID)
	dup := newMessage("globex", epoch.Add(-time.Hour))
	dup.ID = msg.ID
	_, err = s.UpdateSession(t.Context(), second.ID, func(c *bridge.Session, out *bridge.Outbox) error {
		out.Add(dup)
		return c.SetStatus(bridge.StatusCancelled, epoch)
	})
	assert.ErrorIs(t, err, bridge.ErrConflict)
	assertSession(t, before, mustGet(t, s, second.ID))
	got, err := s.OutboxMessage(t.Context(), msg.ID)
	require.NoError(t, err)
	assert.Equal(t, normalizeMessage(msg), normalizeMessage(got), "the first message was overwritten")
}

func testUpdateSessionConcurrent(t *testing.T, s bridge.Store) {
	const writers = 20
	sess := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	sess.Attempts = nil
	sess.Status = bridge.StatusPending
	mustCreate(t, s, sess)

	guids := make([]string, writers)
	for i := range guids {
		guids[i] = newGUID()
	}
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for _, guid := range guids {
		wg.Go(func() {
			_, err := s.UpdateSession(t.Context(), sess.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
				c.Attempts = append(c.Attempts, bridge.Attempt{Number: len(c.Attempts) + 1, SessionGUID: guid, StartedAt: epoch})
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}

	got := mustGet(t, s, sess.ID)
	assert.Equal(t, sess.Version+writers, got.Version, "every update bumps the version once")
	require.Len(t, got.Attempts, writers, "an update was lost")
	var numbers []int
	var gotGUIDs []string
	for _, a := range got.Attempts {
		numbers = append(numbers, a.Number)
		gotGUIDs = append(gotGUIDs, a.SessionGUID)
	}
	for i, n := range numbers {
		assert.Equal(t, i+1, n, "attempt numbers: each update must see the one before")
	}
	assert.ElementsMatch(t, guids, gotGUIDs)
	for _, guid := range guids {
		byGUID, err := s.SessionByGUID(t.Context(), guid)
		if assert.NoError(t, err) {
			assert.Equal(t, sess.ID, byGUID.ID)
		}
	}
}

func testOpenSessions(t *testing.T, s bridge.Store) {
	byStatus := map[bridge.Status]*bridge.Session{}
	for _, st := range []bridge.Status{
		bridge.StatusPending, bridge.StatusActive, bridge.StatusSucceeded,
		bridge.StatusFailed, bridge.StatusExpired, bridge.StatusCancelled,
	} {
		sess := newSession("acme", bridge.ModeTest, "agent-1", epoch)
		sess.Status = st
		byStatus[st] = sess
		mustCreate(t, s, sess)
	}
	// Open sessions of every merchant and mode count.
	live := newSession("globex", bridge.ModeLive, "agent-9", epoch)
	mustCreate(t, s, live)

	openIDs := func() []string {
		t.Helper()
		open, err := s.OpenSessions(t.Context())
		require.NoError(t, err)
		return ids(open)
	}
	pending, active := byStatus[bridge.StatusPending], byStatus[bridge.StatusActive]
	assert.ElementsMatch(t, []string{pending.ID, active.ID, live.ID}, openIDs())

	_, err := s.UpdateSession(t.Context(), pending.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
		return c.SetStatus(bridge.StatusActive, epoch)
	})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{pending.ID, active.ID, live.ID}, openIDs(), "pending to active stays open")

	for _, id := range []string{active.ID, live.ID} {
		_, err := s.UpdateSession(t.Context(), id, func(c *bridge.Session, _ *bridge.Outbox) error {
			return c.SetStatus(bridge.StatusExpired, epoch.Add(time.Hour))
		})
		require.NoError(t, err)
	}
	assert.Equal(t, []string{pending.ID}, openIDs(), "terminal sessions are dropped")

	open, err := s.OpenSessions(t.Context())
	require.NoError(t, err)
	require.Len(t, open, 1)
	assert.Equal(t, bridge.StatusActive, open[0].Status, "OpenSessions returns the current session")
	assert.True(t, slices.ContainsFunc(open[0].Attempts, func(a bridge.Attempt) bool {
		return a.SessionGUID == pending.Attempts[0].SessionGUID
	}))

	// A closed session still watched for a late payment is open until the watch ends.
	_, err = s.UpdateSession(t.Context(), active.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
		c.WatchUntil = epoch.Add(2 * time.Hour)
		return nil
	})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{pending.ID, active.ID}, openIDs(), "a watched closed session is open")
	_, err = s.UpdateSession(t.Context(), active.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
		c.WatchUntil = time.Time{}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{pending.ID}, openIDs(), "the watch over, it is closed")
}
