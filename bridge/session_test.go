package bridge_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

var allStatuses = []bridge.Status{
	bridge.StatusPending, bridge.StatusActive, bridge.StatusSucceeded,
	bridge.StatusFailed, bridge.StatusExpired, bridge.StatusCancelled,
}

// allowedTransitions is DESIGN section 2's state machine, written out by hand.
var allowedTransitions = map[[2]bridge.Status]bool{
	{bridge.StatusPending, bridge.StatusActive}:    true,
	{bridge.StatusPending, bridge.StatusFailed}:    true,
	{bridge.StatusPending, bridge.StatusExpired}:   true,
	{bridge.StatusPending, bridge.StatusCancelled}: true,
	{bridge.StatusActive, bridge.StatusSucceeded}:  true,
	{bridge.StatusActive, bridge.StatusFailed}:     true,
	{bridge.StatusActive, bridge.StatusExpired}:    true,
	{bridge.StatusActive, bridge.StatusCancelled}:  true,
}

func TestStatusTerminalAndValid(t *testing.T) {
	tests := []struct {
		status   bridge.Status
		terminal bool
		valid    bool
	}{
		{bridge.StatusPending, false, true},
		{bridge.StatusActive, false, true},
		{bridge.StatusSucceeded, true, true},
		{bridge.StatusFailed, true, true},
		{bridge.StatusExpired, true, true},
		{bridge.StatusCancelled, true, true},
		{"", false, false},
		{"ACTIVE", false, false},
		{"refunded", false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			assert.Equal(t, tt.terminal, tt.status.Terminal(), "Terminal")
			assert.Equal(t, tt.valid, tt.status.Valid(), "Valid")
		})
	}
}

func TestStatusCanBecomeEveryPair(t *testing.T) {
	for _, from := range append(allStatuses, "", "bogus") {
		for _, to := range append(allStatuses, "", "bogus") {
			want := allowedTransitions[[2]bridge.Status{from, to}]
			assert.Equal(t, want, from.CanBecome(to), "%q → %q", from, to)
		}
	}
	for _, s := range allStatuses {
		if s.Terminal() {
			for _, to := range allStatuses {
				assert.False(t, s.CanBecome(to), "terminal %s must never change (→ %s)", s, to)
			}
		}
	}
}

func TestTerminalEvent(t *testing.T) {
	want := map[bridge.Status]bridge.EventType{
		bridge.StatusSucceeded: bridge.EventSucceeded,
		bridge.StatusFailed:    bridge.EventFailed,
		bridge.StatusExpired:   bridge.EventExpired,
		bridge.StatusCancelled: bridge.EventCancelled,
		bridge.StatusPending:   "",
		bridge.StatusActive:    "",
	}
	for s, ev := range want {
		assert.Equal(t, ev, bridge.TerminalEvent(s), "%s", s)
	}
}

func activeSession(now time.Time) *bridge.Session {
	return &bridge.Session{
		ID:         "vp_cs_test_0123456789abcdef",
		MerchantID: "acme",
		Mode:       bridge.ModeTest,
		AgentID:    "agent-1",
		Channel:    bridge.ChannelAgentAssist,
		Amount:     1240,
		Currency:   "GBP",
		Status:     bridge.StatusActive,
		CreatedAt:  now,
		UpdatedAt:  now,
		ExpiresAt:  now.Add(30 * time.Minute),
		Attempts: []bridge.Attempt{{
			Number:              1,
			SessionGUID:         "guid-1",
			ProviderSessionGUID: "pguid-1",
			IframeURL:           "https://pcipal.example/frame/1",
			BearerToken:         "bearer-secret-1",
			RefreshToken:        "refresh-secret-1",
			SealedTokens:        []byte{1, 2, 3},
			StartedAt:           now,
		}},
		Metadata: map[string]string{"order": "42"},
	}
}

func TestSetStatusEndsCurrentAttempt(t *testing.T) {
	tests := []struct {
		from       bridge.Status
		to         bridge.Status
		wantReason bridge.EndReason // "" means the attempt stays open
	}{
		{bridge.StatusActive, bridge.StatusSucceeded, bridge.EndCompleted},
		{bridge.StatusActive, bridge.StatusFailed, bridge.EndCompleted},
		{bridge.StatusActive, bridge.StatusExpired, bridge.EndSessionClosed},
		{bridge.StatusActive, bridge.StatusCancelled, bridge.EndSessionClosed},
		{bridge.StatusPending, bridge.StatusActive, ""},
		{bridge.StatusPending, bridge.StatusFailed, bridge.EndCompleted},
		{bridge.StatusPending, bridge.StatusExpired, bridge.EndSessionClosed},
		{bridge.StatusPending, bridge.StatusCancelled, bridge.EndSessionClosed},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"→"+string(tt.to), func(t *testing.T) {
			s := activeSession(t0)
			s.Status = tt.from
			later := t0.Add(5 * time.Minute)

			require.NoError(t, s.SetStatus(tt.to, later))
			assert.Equal(t, tt.to, s.Status)
			assert.True(t, s.UpdatedAt.Equal(later), "UpdatedAt")
			a := s.Current()
			require.NotNil(t, a)
			assert.Equal(t, tt.wantReason, a.EndReason)
			if tt.wantReason == "" {
				assert.True(t, a.EndedAt.IsZero(), "the attempt must stay open")
			} else {
				assert.True(t, a.EndedAt.Equal(later), "EndedAt")
			}
		})
	}
}

func TestSetStatusOnlyTouchesCurrentOpenAttempt(t *testing.T) {
	s := activeSession(t0)
	ended := t0.Add(time.Minute)
	s.Attempts[0].EndedAt = ended
	s.Attempts[0].EndReason = bridge.EndFrameRefused
	s.Attempts = append(s.Attempts, bridge.Attempt{Number: 2, SessionGUID: "guid-2", StartedAt: ended})

	require.NoError(t, s.SetStatus(bridge.StatusCancelled, t0.Add(2*time.Minute)))
	assert.Equal(t, bridge.EndFrameRefused, s.Attempts[0].EndReason, "an earlier attempt keeps its reason")
	assert.True(t, s.Attempts[0].EndedAt.Equal(ended))
	assert.Equal(t, bridge.EndSessionClosed, s.Attempts[1].EndReason)

	// A current attempt that already ended keeps its reason.
	s = activeSession(t0)
	s.Attempts[0].EndedAt = ended
	s.Attempts[0].EndReason = bridge.EndProviderExpired
	require.NoError(t, s.SetStatus(bridge.StatusExpired, t0.Add(2*time.Minute)))
	assert.Equal(t, bridge.EndProviderExpired, s.Attempts[0].EndReason)
	assert.True(t, s.Attempts[0].EndedAt.Equal(ended))

	// No attempt at all.
	s = activeSession(t0)
	s.Status = bridge.StatusPending
	s.Attempts = nil
	require.NoError(t, s.SetStatus(bridge.StatusFailed, t0))
	assert.Nil(t, s.Current())
}

func TestSetStatusForbidden(t *testing.T) {
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			if allowedTransitions[[2]bridge.Status{from, to}] {
				continue
			}
			s := activeSession(t0)
			s.Status = from
			before := s.Clone()

			err := s.SetStatus(to, t0.Add(time.Minute))
			require.Error(t, err, "%s → %s", from, to)
			assert.Equal(t, bridge.CodeSessionWrongState, bridge.ErrorCode(err), "%s → %s", from, to)
			assert.Equal(t, before, s, "a refused transition must change nothing (%s → %s)", from, to)
		}
	}
}

func TestWrongStateFixNamesAllowedTransitions(t *testing.T) {
	tests := []struct {
		status  bridge.Status
		allowed []bridge.Status
	}{
		{bridge.StatusPending, []bridge.Status{bridge.StatusActive, bridge.StatusFailed, bridge.StatusExpired, bridge.StatusCancelled}},
		{bridge.StatusActive, []bridge.Status{bridge.StatusSucceeded, bridge.StatusFailed, bridge.StatusExpired, bridge.StatusCancelled}},
		{bridge.StatusSucceeded, nil},
		{bridge.StatusFailed, nil},
		{bridge.StatusExpired, nil},
		{bridge.StatusCancelled, nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			e := bridge.WrongState(tt.status, "cancel")
			require.NotNil(t, e)
			assert.Equal(t, bridge.CodeSessionWrongState, e.Code)
			assert.Contains(t, e.Message, string(tt.status))
			assert.Contains(t, e.Message, "cancel")
			require.NotEmpty(t, e.Fix)
			assert.Equal(t, e.Fix, e.PublicFix())
			for _, s := range allStatuses {
				if s == tt.status {
					continue
				}
				want := false
				for _, a := range tt.allowed {
					want = want || a == s
				}
				assert.Equal(t, want, strings.Contains(e.Fix, string(s)), "fix %q mentioning %s", e.Fix, s)
			}
			if tt.allowed == nil {
				assert.Contains(t, e.Fix, "final")
			}
		})
	}
}

func TestHandoff(t *testing.T) {
	const lifetime = 15 * time.Minute
	t.Run("lifetime after start", func(t *testing.T) {
		s := activeSession(t0)
		s.Attempts[0].StartedAt = t0.Add(time.Minute)
		h := s.Handoff(lifetime)
		require.NotNil(t, h)
		assert.Equal(t, s.ID, h.SessionID)
		assert.Equal(t, 1, h.Attempt)
		assert.Equal(t, "https://pcipal.example/frame/1", h.IframeURL)
		assert.True(t, h.ExpiresAt.Equal(t0.Add(16*time.Minute)), "ExpiresAt %v", h.ExpiresAt)
		assert.Equal(t, map[string]string{
			"X-BEARER-TOKEN":  "bearer-secret-1",
			"X-REFRESH-TOKEN": "refresh-secret-1",
		}, h.FormFields, "form fields must be exactly the two the provider expects")
	})
	t.Run("capped by session expiry", func(t *testing.T) {
		s := activeSession(t0)
		s.ExpiresAt = t0.Add(5 * time.Minute)
		h := s.Handoff(lifetime)
		require.NotNil(t, h)
		assert.True(t, h.ExpiresAt.Equal(s.ExpiresAt), "ExpiresAt %v, want session's %v", h.ExpiresAt, s.ExpiresAt)
	})
	t.Run("current attempt only", func(t *testing.T) {
		s := activeSession(t0)
		s.Attempts[0].EndedAt = t0.Add(time.Minute)
		s.Attempts = append(s.Attempts, bridge.Attempt{
			Number: 2, SessionGUID: "guid-2", IframeURL: "https://pcipal.example/frame/2",
			BearerToken: "bearer-2", RefreshToken: "refresh-2", StartedAt: t0.Add(2 * time.Minute),
		})
		h := s.Handoff(lifetime)
		require.NotNil(t, h)
		assert.Equal(t, 2, h.Attempt)
		assert.Equal(t, "https://pcipal.example/frame/2", h.IframeURL)
		assert.Equal(t, "bearer-2", h.FormFields[bridge.FieldBearerToken])
		assert.Equal(t, "refresh-2", h.FormFields[bridge.FieldRefreshToken])
	})
	t.Run("digital channel without tokens", func(t *testing.T) {
		s := activeSession(t0)
		s.Channel = bridge.ChannelDigital
		s.Attempts[0].BearerToken, s.Attempts[0].RefreshToken, s.Attempts[0].IframeURL = "", "", ""
		s.Attempts[0].CustomerURL = "https://pay.example/c/1"
		h := s.Handoff(lifetime)
		require.NotNil(t, h)
		assert.Nil(t, h.FormFields)
		assert.Equal(t, "https://pay.example/c/1", h.CustomerURL)
	})
	t.Run("no attempt", func(t *testing.T) {
		s := activeSession(t0)
		s.Attempts = nil
		assert.Nil(t, s.Handoff(lifetime))
	})
	t.Run("current attempt ended", func(t *testing.T) {
		s := activeSession(t0)
		s.Attempts[0].EndedAt = t0.Add(time.Minute)
		assert.Nil(t, s.Handoff(lifetime))
	})
	assert.Equal(t, "X-BEARER-TOKEN", bridge.FieldBearerToken)
	assert.Equal(t, "X-REFRESH-TOKEN", bridge.FieldRefreshToken)
}

func TestCurrentAndAttemptByGUID(t *testing.T) {
	s := activeSession(t0)
	s.Attempts = append(s.Attempts, bridge.Attempt{Number: 2, SessionGUID: "guid-2"})
	require.NotNil(t, s.Current())
	assert.Equal(t, 2, s.Current().Number)
	s.Current().EndReason = bridge.EndCompleted
	assert.Equal(t, bridge.EndCompleted, s.Attempts[1].EndReason, "Current must point into the session")

	require.NotNil(t, s.AttemptByGUID("guid-1"))
	assert.Equal(t, 1, s.AttemptByGUID("guid-1").Number)
	assert.Equal(t, 2, s.AttemptByGUID("guid-2").Number)
	assert.Nil(t, s.AttemptByGUID("guid-3"))
	assert.Nil(t, s.AttemptByGUID(""))
	s.AttemptByGUID("guid-1").ProviderSessionGUID = "changed"
	assert.Equal(t, "changed", s.Attempts[0].ProviderSessionGUID, "AttemptByGUID must point into the session")
}

func TestCloneIsDeep(t *testing.T) {
	s := activeSession(t0)
	s.LineItems = []bridge.LineItem{{Name: "Gas", Quantity: 1, UnitAmount: 1240}}
	s.Result = &bridge.Result{Decision: "ACCEPT", TransactionID: "tx-1"}
	s.Failure = &bridge.Failure{Code: bridge.CodeProviderChargeFailed, Error: "declined"}
	s.Customer = bridge.Customer{FirstName: "Ada"}

	c := s.Clone()
	require.Equal(t, s, c, "a clone starts equal")
	require.NotSame(t, s, c)

	c.Status = bridge.StatusFailed
	c.Attempts[0].IframeURL = "changed"
	c.Attempts[0].SealedTokens[0] = 99
	c.Attempts = append(c.Attempts, bridge.Attempt{Number: 2})
	c.LineItems[0].Name = "changed"
	c.Metadata["order"] = "changed"
	c.Metadata["new"] = "x"
	c.Result.Decision = "REJECT"
	c.Failure.Error = "changed"
	c.Customer.FirstName = "changed"

	assert.Equal(t, bridge.StatusActive, s.Status)
	assert.Len(t, s.Attempts, 1)
	assert.Equal(t, "https://pcipal.example/frame/1", s.Attempts[0].IframeURL)
	assert.Equal(t, []byte{1, 2, 3}, s.Attempts[0].SealedTokens)
	assert.Equal(t, "Gas", s.LineItems[0].Name)
	assert.Equal(t, map[string]string{"order": "42"}, s.Metadata)
	assert.Equal(t, "ACCEPT", s.Result.Decision)
	assert.Equal(t, "declined", s.Failure.Error)
	assert.Equal(t, "Ada", s.Customer.FirstName)

	// And the other way round.
	s2 := activeSession(t0)
	c2 := s2.Clone()
	s2.Attempts[0].SealedTokens[1] = 42
	s2.Metadata["order"] = "changed"
	assert.Equal(t, []byte{1, 2, 3}, c2.Attempts[0].SealedTokens)
	assert.Equal(t, "42", c2.Metadata["order"])
}

func TestCloneKeepsNilFields(t *testing.T) {
	s := &bridge.Session{ID: "vp_cs_test_0123456789abcdef"}
	c := s.Clone()
	assert.Nil(t, c.Metadata)
	assert.Nil(t, c.Result)
	assert.Nil(t, c.Failure)
	assert.Empty(t, c.Attempts)
	assert.Empty(t, c.LineItems)
}

func TestSessionIDs(t *testing.T) {
	for _, m := range []bridge.Mode{bridge.ModeTest, bridge.ModeLive} {
		id := bridge.NewSessionID(m)
		assert.Regexp(t, `^vp_cs_`+string(m)+`_[0-9A-Za-z]{16}$`, id)
		assert.Equal(t, m, bridge.ModeOfSessionID(id))
	}
	assert.NotEqual(t, bridge.NewSessionID(bridge.ModeTest), bridge.NewSessionID(bridge.ModeTest))

	tests := []struct {
		id   string
		want bridge.Mode
	}{
		{"vp_cs_test_0123456789abcdef", bridge.ModeTest},
		{"vp_cs_live_ABCDEFGHIJKLMNOP", bridge.ModeLive},
		{"", ""},
		{"vp_cs_test_", ""},
		{"vp_cs_test_0123456789abcde", ""},   // 15
		{"vp_cs_test_0123456789abcdef0", ""}, // 17
		{"vp_cs_prod_0123456789abcdef", ""},
		{"vp_cs_TEST_0123456789abcdef", ""},
		{"vp_cx_test_0123456789abcdef", ""},
		{"cs_test_0123456789abcdef", ""},
		{"vp_cs_test_0123456789abcde-", ""},
		{"vp_cs_test_0123456789abcd/.", ""},
		{" vp_cs_test_0123456789abcdef", ""},
		{"vp_cs_test_0123456789abcdef ", ""},
		{"vp_cs_test_" + strings.Repeat("a", 60), ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, bridge.ModeOfSessionID(tt.id), "%q", tt.id)
	}
}

func TestSessionJSONAndViewHoldNoTokens(t *testing.T) {
	s := activeSession(t0)
	s.Mode = bridge.ModeLive

	stored, err := json.Marshal(s)
	require.NoError(t, err)
	assert.NotContains(t, string(stored), "bearer-secret-1", "stored form must not hold the bearer token")
	assert.NotContains(t, string(stored), "refresh-secret-1", "stored form must not hold the refresh token")

	v := s.View()
	assert.Equal(t, s.ID, v.ID)
	assert.Equal(t, "session", v.Object)
	assert.True(t, v.Livemode)
	assert.Equal(t, 1, v.Attempt)
	require.NotNil(t, v.VCC)
	assert.Equal(t, "guid-1", v.VCC.SessionGUID)
	assert.Equal(t, "pguid-1", v.VCC.ProviderSessionGUID)
	public, err := json.Marshal(v)
	require.NoError(t, err)
	for _, secret := range []string{"bearer-secret-1", "refresh-secret-1", "iframe", "pcipal.example"} {
		assert.NotContains(t, string(public), secret)
	}

	// No attempt and no metadata: no vcc ref, and metadata is an object, not null.
	s.Attempts, s.Metadata, s.Mode = nil, nil, bridge.ModeTest
	v = s.View()
	assert.False(t, v.Livemode)
	assert.Nil(t, v.VCC)
	assert.Equal(t, 0, v.Attempt)
	public, err = json.Marshal(v)
	require.NoError(t, err)
	assert.Contains(t, string(public), `"metadata":{}`)
}
