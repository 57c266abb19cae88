package client_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/client"
)

// TestSessionLifecycle creates a session with every create field, reads, restarts and cancels
// it, all through the real server.
func TestSessionLifecycle(t *testing.T) {
	w := newWorld(t)
	rec, sl := &recorder{}, &sleeper{}
	pb := newClient(w, w.secretKey, rec, sl)
	ctx := context.Background()

	params := &client.SessionCreateParams{
		AgentID: "agent-42", Amount: 1240, Currency: "gbp", Country: "gb", Channel: client.ChannelAgentAssist,
		AccountConfigurationID: new(2), Reference: "INV-1001",
		Customer: &client.Customer{FirstName: "Ada", Surname: "Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0000",
			Street1: "1 St Martin's Le Grand", City: "London", Postcode: "EC1A 1BB"},
		SuccessURL: "https://acme.test/paid", CancelURL: "https://acme.test/cancelled",
		LineItems: []client.LineItem{{Name: "Gas", Quantity: 2, UnitAmount: 500}, {Name: "Free leaflet", Quantity: 1, UnitAmount: 0}},
		Metadata:  map[string]string{"crmCase": "CASE-20931"},
		ExpiresIn: 600,
	}
	sess, err := pb.Sessions.Create(ctx, params)
	require.NoError(t, err)
	assert.Regexp(t, `^vp_cs_test_[0-9A-Za-z]{16}$`, sess.ID)
	assert.Equal(t, "session", sess.Object)
	assert.Equal(t, client.StatusActive, sess.Status)
	assert.False(t, sess.Livemode)
	assert.Equal(t, "agent-42", sess.AgentID)
	assert.Equal(t, int64(1240), sess.Amount)
	assert.Equal(t, "GBP", sess.Currency)
	assert.Equal(t, "GB", sess.Country)
	assert.Equal(t, client.ChannelAgentAssist, sess.Channel)
	require.NotNil(t, sess.AccountConfigurationID)
	assert.Equal(t, 2, *sess.AccountConfigurationID)
	assert.Equal(t, "INV-1001", sess.Reference)
	assert.Equal(t, 1, sess.Attempt)
	assert.Equal(t, map[string]string{"crmCase": "CASE-20931"}, sess.Metadata)
	assert.Equal(t, 600*time.Second, sess.ExpiresAt.Sub(sess.CreatedAt))
	require.NotNil(t, sess.VCC)
	assert.NotEmpty(t, sess.VCC.SessionGUID)
	assert.Nil(t, sess.Result)
	assert.Nil(t, sess.Failure)
	require.NotNil(t, sess.LastResponse)
	assert.Equal(t, http.StatusCreated, sess.LastResponse.StatusCode)
	assert.NotEmpty(t, sess.LastResponse.IdempotencyKey, "every POST carries a key")
	assert.False(t, sess.LastResponse.Replayed)
	assert.Equal(t, 1, sess.LastResponse.Attempts)
	stub := w.vcc.Sessions()
	require.Len(t, stub, 1)
	assert.Equal(t, 2, stub[0].AccountConfigurationID, "the configuration reached VCC")

	got, err := pb.Sessions.Get(ctx, sess.ID)
	require.NoError(t, err)
	assert.Equal(t, sess.ID, got.ID)
	assert.Equal(t, sess.VCC, got.VCC)
	assert.Equal(t, http.StatusOK, got.LastResponse.StatusCode)
	assert.Empty(t, got.LastResponse.IdempotencyKey, "a GET carries none")

	restarted, err := pb.Sessions.Restart(ctx, sess.ID)
	require.NoError(t, err)
	assert.Equal(t, client.StatusActive, restarted.Status)
	assert.Equal(t, 2, restarted.Attempt)
	assert.NotEqual(t, sess.VCC.SessionGUID, restarted.VCC.SessionGUID, "a new provider session")

	cancelled, err := pb.Sessions.Cancel(ctx, sess.ID)
	require.NoError(t, err)
	assert.Equal(t, client.StatusCancelled, cancelled.Status)

	_, err = pb.Sessions.Cancel(ctx, sess.ID)
	assert.Equal(t, client.CodeSessionWrongState, client.CodeOf(err), "a final session cannot be cancelled: %v", err)

	keys := map[string]bool{}
	for _, a := range rec.seen() {
		if a.Method == http.MethodPost {
			assert.NotEmpty(t, a.IdempotencyKey, "%s %s", a.Method, a.Path)
			keys[a.IdempotencyKey] = true
		}
	}
	assert.Len(t, keys, 4, "one key per logical call")
}

// TestAccountConfigurationZero: 0 is sent as an id, not dropped as "unset", so paybridge judges
// it (this merchant allows 1 and 2); nil takes the merchant's default.
func TestAccountConfigurationZero(t *testing.T) {
	w := newWorld(t)
	pb := newClient(w, w.secretKey, &recorder{}, &sleeper{})
	ctx := context.Background()

	_, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "a", Amount: 100, Currency: "GBP", AccountConfigurationID: new(0)})
	apiErr := asAPIError(err)
	require.NotNil(t, apiErr, "err: %v", err)
	assert.Equal(t, client.CodeValidationError, apiErr.Code)
	assert.Equal(t, "accountConfigurationId", apiErr.Param)

	sess, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "a", Amount: 100, Currency: "GBP"})
	require.NoError(t, err)
	require.NotNil(t, sess.AccountConfigurationID)
	assert.Equal(t, 1, *sess.AccountConfigurationID, "the merchant's default")
}

// TestDryRun validates without creating anything.
func TestDryRun(t *testing.T) {
	w := newWorld(t)
	pb := newClient(w, w.secretKey, &recorder{}, &sleeper{})
	ctx := context.Background()

	tests := []struct {
		name   string
		params client.SessionCreateParams
		code   client.ErrorCode
		param  string
	}{
		{name: "valid", params: client.SessionCreateParams{AgentID: "a", Amount: 1240, Currency: "GBP", ExpiresIn: 300}},
		{name: "bad currency", params: client.SessionCreateParams{AgentID: "a", Amount: 1240, Currency: "XXZ"}, code: client.CodeValidationError, param: "currency"},
		{name: "zero amount", params: client.SessionCreateParams{AgentID: "a", Currency: "GBP"}, code: client.CodeValidationInvalidAmount, param: "amount"},
		{name: "no agent", params: client.SessionCreateParams{Amount: 1, Currency: "GBP"}, code: client.CodeValidationMissingField, param: "agentId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := pb.Sessions.DryRun(ctx, &tt.params)
			if tt.code == "" {
				require.NoError(t, err)
				assert.True(t, res.Valid)
				assert.Empty(t, res.Warnings)
				assert.Equal(t, http.StatusOK, res.LastResponse.StatusCode)
				return
			}
			apiErr := asAPIError(err)
			require.NotNil(t, apiErr, "err: %v", err)
			assert.Equal(t, tt.code, apiErr.Code)
			assert.Equal(t, tt.param, apiErr.Param)
		})
	}
	list, err := pb.Sessions.ListPage(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, list.Data, "a dry run creates nothing")
	assert.Zero(t, w.vcc.Stats().CreateSession, "nor calls VCC")
}

// TestListPaging: the iterator walks every page with starting_after, newest first, applies the
// filters and stops fetching when the caller stops.
func TestListPaging(t *testing.T) {
	w := newWorld(t)
	rec := &recorder{}
	pb := newClient(w, w.secretKey, rec, &sleeper{})
	ctx := context.Background()

	var ids []string // oldest first
	for i, agent := range []string{"agent-a", "agent-b", "agent-a", "agent-a", "agent-b"} {
		w.clock.Advance(time.Second) // distinct creation times, so "newest first" is one order
		sess, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: agent, Amount: int64(100 + i), Currency: "GBP"})
		require.NoError(t, err)
		ids = append(ids, sess.ID)
	}
	_, err := pb.Sessions.Cancel(ctx, ids[3])
	require.NoError(t, err)
	newestFirst := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, ids[i])
		}
		return out
	}

	tests := []struct {
		name   string
		params *client.SessionListParams
		want   []string
		pages  int
	}{
		{name: "all, two a page", params: &client.SessionListParams{Limit: 2}, want: newestFirst(4, 3, 2, 1, 0), pages: 3},
		{name: "default page", params: nil, want: newestFirst(4, 3, 2, 1, 0), pages: 1},
		{name: "one agent", params: &client.SessionListParams{AgentID: "agent-a", Limit: 1}, want: newestFirst(3, 2, 0), pages: 3},
		{name: "one status", params: &client.SessionListParams{Status: client.StatusCancelled}, want: newestFirst(3), pages: 1},
		{name: "after an id", params: &client.SessionListParams{StartingAfter: ids[2], Limit: 100}, want: newestFirst(1, 0), pages: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.reset()
			var got []string
			for sess, err := range pb.Sessions.List(ctx, tt.params) {
				require.NoError(t, err)
				got = append(got, sess.ID)
			}
			assert.Equal(t, tt.want, got)
			pages := rec.seen()
			assert.Len(t, pages, tt.pages)
			for i := 1; i < len(pages); i++ {
				q, err := url.ParseQuery(pages[i].Query)
				require.NoError(t, err)
				assert.Equal(t, tt.want[i*tt.params.Limit-1], q.Get("starting_after"), "page %d starts after the last one's end", i+1)
			}
		})
	}

	t.Run("stops when the caller stops", func(t *testing.T) {
		rec.reset()
		n := 0
		for _, err := range pb.Sessions.List(ctx, &client.SessionListParams{Limit: 2}) {
			require.NoError(t, err)
			if n++; n == 2 {
				break
			}
		}
		assert.Len(t, rec.seen(), 1, "no second page fetched")
	})
	t.Run("one page", func(t *testing.T) {
		page, err := pb.Sessions.ListPage(ctx, &client.SessionListParams{Limit: 2})
		require.NoError(t, err)
		assert.Equal(t, "list", page.Object)
		assert.Len(t, page.Data, 2)
		assert.True(t, page.HasMore)
	})
	t.Run("an error ends the walk", func(t *testing.T) {
		var errs []error
		for sess, err := range pb.Sessions.List(ctx, &client.SessionListParams{StartingAfter: "vp_cs_test_0000000000000000"}) {
			assert.Nil(t, sess)
			errs = append(errs, err)
		}
		require.Len(t, errs, 1)
		assert.Equal(t, client.CodeValidationError, client.CodeOf(errs[0]))
	})
}

// TestOutcome reads a session's result and failure as paybridge recorded them from VCC.
func TestOutcome(t *testing.T) {
	tests := []struct {
		name     string
		cancel   bool           // cancel the session before the customer pays
		complete map[string]any // the stub's control body
		want     client.SessionStatus
		check    func(t *testing.T, s *client.Session)
	}{
		{
			name: "paid", complete: map[string]any{"decision": "ACCEPT"}, want: client.StatusSucceeded,
			check: func(t *testing.T, s *client.Session) {
				require.NotNil(t, s.Result)
				assert.Equal(t, client.DecisionAccept, s.Result.Decision)
				assert.Equal(t, "ACCEPT", s.Result.GatewayStatus)
				assert.NotEmpty(t, s.Result.ReasonCode)
				assert.NotEmpty(t, s.Result.TransactionID)
				assert.False(t, s.Result.Late)
				assert.Empty(t, s.Result.Data)
				assert.Nil(t, s.Failure)
			},
		},
		{
			name: "paid after the cancel", cancel: true, complete: map[string]any{"decision": "ACCEPT"}, want: client.StatusSucceeded,
			check: func(t *testing.T, s *client.Session) {
				require.NotNil(t, s.Result)
				assert.Equal(t, client.DecisionAccept, s.Result.Decision)
				assert.True(t, s.Result.Late, "a late payment")
			},
		},
		{
			name: "declined", complete: map[string]any{"decision": "REJECT"}, want: client.StatusFailed,
			check: func(t *testing.T, s *client.Session) {
				require.NotNil(t, s.Failure)
				assert.Equal(t, client.CodeProviderChargeFailed, s.Failure.Code)
				assert.NotEmpty(t, s.Failure.Message)
				require.NotNil(t, s.Result)
				assert.Equal(t, client.DecisionReject, s.Result.Decision)
			},
		},
		{
			name:     "a result the gateway profile cannot read",
			complete: map[string]any{"paymentResultData": map[string]string{"ApprovalStatus": "1", "TxRefNum": "5F0A1B2C3D", "CardNumber": "4111 1111 1111 1111"}},
			want:     client.StatusFailed,
			check: func(t *testing.T, s *client.Session) {
				require.NotNil(t, s.Failure)
				assert.Equal(t, client.CodeTransactionVerificationFailed, s.Failure.Code)
				require.NotNil(t, s.Result)
				assert.Equal(t, client.DecisionUnknown, s.Result.Decision)
				assert.Equal(t, "5F0A1B2C3D", s.Result.Data["TxRefNum"], "the raw result, for reconciliation")
				assert.NotContains(t, s.Result.Data["CardNumber"], "4111", "never a card number")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			pb := newClient(w, w.secretKey, &recorder{}, &sleeper{})
			ctx := context.Background()

			sess, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "agent-1", Amount: 1240, Currency: "GBP"})
			require.NoError(t, err)
			if tt.cancel {
				_, err := pb.Sessions.Cancel(ctx, sess.ID)
				require.NoError(t, err)
			}
			w.mustControl(t, http.MethodPost, "/_control/sessions/"+sess.VCC.SessionGUID+"/complete", tt.complete)

			var got *client.Session
			require.Eventually(t, func() bool {
				w.clock.Advance(time.Second) // paybridge asks VCC every 2 s of its clock
				got, err = pb.Sessions.Get(ctx, sess.ID)
				return err == nil && got.Status == tt.want
			}, 10*time.Second, 10*time.Millisecond, "never %s (last: %+v, %v)", tt.want, got, err)
			tt.check(t, got)
		})
	}
}
