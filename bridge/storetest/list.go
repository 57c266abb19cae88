package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

var listTests = []storeTest{
	{"Filters", testListFilters},
	{"StatusChangesAreReflected", testListStatusChanges},
	{"NewestFirstTiesByIDDescending", testListOrder},
	{"Limit", testListLimit},
	{"PagesWalkEverythingOnce", testListPages},
	{"UnknownStartingAfterIsNotFound", testListUnknownCursor},
	{"MerchantAndModeRequired", testListRequired},
}

func testListFilters(t *testing.T, s bridge.Store) {
	at := func(i int) time.Time { return epoch.Add(time.Duration(i) * time.Second) }
	acme1 := newSession("acme", bridge.ModeTest, "agent-1", at(0))
	acme2 := newSession("acme", bridge.ModeTest, "agent-2", at(1))
	acme2.Status = bridge.StatusPending
	acme3 := newSession("acme", bridge.ModeTest, "agent-1", at(2))
	acme3.Status = bridge.StatusSucceeded
	acmeLive := newSession("acme", bridge.ModeLive, "agent-1", at(3))
	acmeTwo := newSession("acme2", bridge.ModeTest, "agent-1", at(4)) // "acme" is a prefix of it
	globex := newSession("globex", bridge.ModeTest, "agent-1", at(5))
	mustCreate(t, s, acme1, acme2, acme3, acmeLive, acmeTwo, globex)

	tests := []struct {
		name   string
		filter bridge.SessionFilter
		want   []*bridge.Session
	}{
		{"merchant and mode", bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest}, []*bridge.Session{acme3, acme2, acme1}},
		{"other mode", bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeLive}, []*bridge.Session{acmeLive}},
		{"merchant whose id extends another", bridge.SessionFilter{MerchantID: "acme2", Mode: bridge.ModeTest}, []*bridge.Session{acmeTwo}},
		{"other merchant", bridge.SessionFilter{MerchantID: "globex", Mode: bridge.ModeTest}, []*bridge.Session{globex}},
		{"agent", bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1"}, []*bridge.Session{acme3, acme1}},
		{"status", bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, Status: bridge.StatusPending}, []*bridge.Session{acme2}},
		{"agent and status", bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-1", Status: bridge.StatusSucceeded}, []*bridge.Session{acme3}},
		{"unknown agent", bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, AgentID: "agent-9"}, nil},
		{"unknown merchant", bridge.SessionFilter{MerchantID: "nobody", Mode: bridge.ModeTest}, nil},
		{"merchant with no live sessions", bridge.SessionFilter{MerchantID: "globex", Mode: bridge.ModeLive}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListSessions(t.Context(), tc.filter)
			require.NoError(t, err)
			assert.Equal(t, ids(tc.want), ids(got))
			for i := range min(len(got), len(tc.want)) {
				assertSession(t, tc.want[i], got[i])
			}
		})
	}
}

func testListStatusChanges(t *testing.T, s bridge.Store) {
	first := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	second := newSession("acme", bridge.ModeTest, "agent-1", epoch.Add(time.Second))
	mustCreate(t, s, first, second)
	_, err := s.UpdateSession(t.Context(), first.ID, func(c *bridge.Session, _ *bridge.Outbox) error {
		return c.SetStatus(bridge.StatusSucceeded, epoch.Add(time.Minute))
	})
	require.NoError(t, err)

	for status, want := range map[bridge.Status][]string{
		bridge.StatusActive:    {second.ID},
		bridge.StatusSucceeded: {first.ID},
		"":                     {second.ID, first.ID},
	} {
		got, err := s.ListSessions(t.Context(), bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, Status: status})
		require.NoError(t, err)
		assert.Equal(t, want, ids(got), "status %q", status)
	}
}

func testListOrder(t *testing.T, s bridge.Store) {
	var all []*bridge.Session
	for i := range 12 {
		// Three distinct instants, four sessions each: ties are the point.
		created := epoch.Add(time.Duration(i%3) * time.Second)
		if i%4 == 0 {
			created = created.In(elsewhere) // the same instant in another zone sorts the same
		}
		all = append(all, newSession("acme", bridge.ModeTest, "agent-1", created))
	}
	// One from before 1970 sorts last.
	all = append(all, newSession("acme", bridge.ModeTest, "agent-1", time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)))
	mustCreate(t, s, all...)

	got, err := s.ListSessions(t.Context(), bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, Limit: 100})
	require.NoError(t, err)
	assert.Equal(t, newestFirst(all), ids(got))
}

func testListLimit(t *testing.T, s bridge.Store) {
	var all []*bridge.Session
	for i := range 105 {
		all = append(all, newSession("acme", bridge.ModeTest, "agent-1", epoch.Add(time.Duration(i)*time.Millisecond)))
	}
	mustCreate(t, s, all...)
	order := newestFirst(all)

	tests := []struct {
		limit, want int
	}{
		{limit: 0, want: 10},
		{limit: 1, want: 1},
		{limit: 37, want: 37},
		{limit: 100, want: 100},
		{limit: 101, want: 100},
		{limit: 1000, want: 100},
	}
	for _, tc := range tests {
		got, err := s.ListSessions(t.Context(), bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, Limit: tc.limit})
		require.NoError(t, err)
		assert.Equal(t, order[:tc.want], ids(got), "limit %d", tc.limit)
	}
}

func testListPages(t *testing.T, s bridge.Store) {
	var all, agentOne []*bridge.Session
	for i := range 23 {
		agent := "agent-2"
		if i%3 != 0 {
			agent = "agent-1"
		}
		sess := newSession("acme", bridge.ModeTest, agent, epoch.Add(time.Duration(i%5)*time.Second))
		all = append(all, sess)
		if agent == "agent-1" {
			agentOne = append(agentOne, sess)
		}
	}
	// Other merchants and modes interleave in time and must not leak into the pages.
	mustCreate(t, s, newSession("acme", bridge.ModeLive, "agent-1", epoch.Add(2*time.Second)))
	mustCreate(t, s, newSession("acme2", bridge.ModeTest, "agent-1", epoch.Add(2*time.Second)))
	mustCreate(t, s, all...)

	tests := []struct {
		name  string
		agent string
		limit int
		want  []*bridge.Session
	}{
		{"pages of 4", "", 4, all},
		{"pages of 1", "", 1, all},
		{"one page exactly", "", 23, all},
		{"filtered pages of 3", "agent-1", 3, agentOne},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var walked []string
			cursor := ""
			for range len(tc.want) + 2 { // a bound, so a broken cursor cannot loop forever
				page, err := s.ListSessions(t.Context(), bridge.SessionFilter{
					MerchantID: "acme", Mode: bridge.ModeTest, AgentID: tc.agent, Limit: tc.limit, StartingAfter: cursor,
				})
				require.NoError(t, err)
				require.LessOrEqual(t, len(page), tc.limit)
				walked = append(walked, ids(page)...)
				if len(page) < tc.limit {
					break
				}
				cursor = page[len(page)-1].ID
			}
			assert.Equal(t, newestFirst(tc.want), walked, "no duplicates, no gaps, in order")
		})
	}
}

func testListUnknownCursor(t *testing.T, s bridge.Store) {
	mine := newSession("acme", bridge.ModeTest, "agent-1", epoch)
	live := newSession("acme", bridge.ModeLive, "agent-1", epoch)
	theirs := newSession("globex", bridge.ModeTest, "agent-1", epoch)
	mustCreate(t, s, mine, live, theirs)

	for name, cursor := range map[string]string{
		"never existed":      bridge.NewSessionID(bridge.ModeTest),
		"another merchant's": theirs.ID,
		"the other mode's":   live.ID,
		"malformed":          "vp_cs_test_",
	} {
		_, err := s.ListSessions(t.Context(), bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, StartingAfter: cursor})
		assert.ErrorIs(t, err, bridge.ErrNotFound, "StartingAfter %s", name)
	}
	page, err := s.ListSessions(t.Context(), bridge.SessionFilter{MerchantID: "acme", Mode: bridge.ModeTest, StartingAfter: mine.ID})
	require.NoError(t, err)
	assert.Empty(t, page, "nothing is older than the only session")
}

func testListRequired(t *testing.T, s bridge.Store) {
	mustCreate(t, s, newSession("acme", bridge.ModeTest, "agent-1", epoch))
	for _, f := range []bridge.SessionFilter{
		{Mode: bridge.ModeTest},
		{MerchantID: "acme"},
		{},
	} {
		got, err := s.ListSessions(t.Context(), f)
		assert.Error(t, err, "filter %+v", f)
		assert.Empty(t, got, "filter %+v", f)
	}
}
