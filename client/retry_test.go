package client_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/client"
	"github.com/paybridge/paybridge/vcc"
)

// TestRetries: what the client retries, with which Idempotency-Key, and what the real server
// made of it. A retried create never makes a second session.
func TestRetries(t *testing.T) {
	ctx := context.Background()
	create := &client.SessionCreateParams{AgentID: "agent-1", Amount: 1240, Currency: "GBP"}
	firstOnly := func(f fault) func(int, *http.Request) fault {
		return func(n int, _ *http.Request) fault {
			if n == 1 {
				return f
			}
			return pass
		}
	}

	tests := []struct {
		name     string
		faults   func(int, *http.Request) fault
		call     func(*world, *client.Client) (*client.Response, error)
		attempts int  // requests sent
		ok       bool // the call succeeds
		replayed bool // paybridge answered the stored first answer
		sessions int  // sessions paybridge holds afterwards (each made one provider session)
		status   int  // the error's status, when not ok and an answer came
	}{
		{
			name:   "create whose answer a gateway lost (503): retried with its key, replayed",
			faults: firstOnly(gateway503),
			call: func(_ *world, pb *client.Client) (*client.Response, error) {
				s, err := pb.Sessions.Create(ctx, create)
				return response(s, err)
			},
			attempts: 2, ok: true, replayed: true, sessions: 1,
		},
		{
			name:   "create refused before it was sent: retried",
			faults: firstOnly(refuse),
			call: func(_ *world, pb *client.Client) (*client.Response, error) {
				s, err := pb.Sessions.Create(ctx, create)
				return response(s, err)
			},
			attempts: 2, ok: true, sessions: 1,
		},
		{
			name:   "create whose connection was lost after it was sent: not retried",
			faults: firstOnly(loseAnswer),
			call: func(_ *world, pb *client.Client) (*client.Response, error) {
				s, err := pb.Sessions.Create(ctx, create)
				return response(s, err)
			},
			attempts: 1, sessions: 1,
		},
		{
			name: "restart behind a gateway 503: retried, one new attempt",
			faults: func(n int, _ *http.Request) fault {
				if n == 2 { // the restart's first attempt
					return gateway503
				}
				return pass
			},
			call: func(_ *world, pb *client.Client) (*client.Response, error) {
				s, err := pb.Sessions.Create(ctx, create)
				if err != nil {
					return nil, err
				}
				s, err = pb.Sessions.Restart(ctx, s.ID)
				if err == nil && s.Attempt != 2 {
					t.Errorf("attempt %d after one restart", s.Attempt)
				}
				return response(s, err)
			},
			attempts: 3, ok: true, replayed: true, sessions: 2, // the create's and the restart's provider sessions
		},
		{
			name:   "read answered 503: retried",
			faults: firstOnly(only503),
			call: func(_ *world, pb *client.Client) (*client.Response, error) {
				l, err := pb.APIKeys.List(ctx)
				return response(l, err)
			},
			attempts: 2, ok: true,
		},
		{
			name:   "read answered 503 every time: at most the retries",
			faults: func(int, *http.Request) fault { return only503 },
			call: func(_ *world, pb *client.Client) (*client.Response, error) {
				l, err := pb.APIKeys.List(ctx)
				return response(l, err)
			},
			attempts: 1 + client.DefaultMaxRetries, status: http.StatusServiceUnavailable,
		},
		{
			name:   "read answered 500: not retried",
			faults: firstOnly(only500),
			call: func(_ *world, pb *client.Client) (*client.Response, error) {
				l, err := pb.APIKeys.List(ctx)
				return response(l, err)
			},
			attempts: 1, status: http.StatusInternalServerError,
		},
		{
			name: "create refused by paybridge (400): not retried",
			call: func(_ *world, pb *client.Client) (*client.Response, error) {
				s, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "agent-1", Currency: "GBP"})
				return response(s, err)
			},
			attempts: 1, status: http.StatusBadRequest,
		},
		{
			name:   "revoke (no Idempotency-Key) answered 503: not retried",
			faults: firstOnly(only503),
			call: func(w *world, pb *client.Client) (*client.Response, error) {
				k, err := pb.APIKeys.Revoke(ctx, "key_0000000000000000")
				return response(k, err)
			},
			attempts: 1, status: http.StatusServiceUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			rec, sl := &recorder{faults: tt.faults}, &sleeper{}
			pb := newClient(w, w.secretKey, rec, sl)
			resp, err := tt.call(w, pb)
			seen := rec.seen()
			require.Len(t, seen, tt.attempts, "attempts: %+v", seen)
			assert.Len(t, sl.recorded(), tt.attempts-callsOf(seen), "one wait before each retry")
			if tt.ok {
				require.NoError(t, err)
				assert.Equal(t, tt.replayed, resp.Replayed)
			} else {
				require.Error(t, err)
				if tt.status != 0 {
					apiErr := asAPIError(err)
					require.NotNil(t, apiErr, "err: %v", err)
					assert.Equal(t, tt.status, apiErr.HTTPStatus)
				} else {
					assert.Nil(t, asAPIError(err), "no answer came")
				}
			}
			// Every retry of a POST carried its first attempt's key; each logical call its own.
			for i := 1; i < len(seen); i++ {
				if seen[i].Path == seen[i-1].Path && seen[i].Method == http.MethodPost {
					assert.Equal(t, seen[i-1].IdempotencyKey, seen[i].IdempotencyKey, "a retry reuses its call's key")
				}
			}
			for _, a := range seen {
				if a.Method != http.MethodPost {
					assert.Empty(t, a.IdempotencyKey, "%s carries no key", a.Method)
				}
			}
			assert.Len(t, w.vcc.Sessions(), tt.sessions, "provider sessions made")
		})
	}
}

// callsOf counts the logical calls among attempts: a POST with a new key, or any other request
// that is not a repeat of the one before.
func callsOf(seen []attempt) int {
	n := 0
	for i, a := range seen {
		if i == 0 || a.Path != seen[i-1].Path || a.Method != seen[i-1].Method || a.IdempotencyKey != seen[i-1].IdempotencyKey {
			n++
		}
	}
	return n
}

// response returns the answer v came from.
func response(v any, err error) (*client.Response, error) {
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case *client.Session:
		return v.LastResponse, nil
	case *client.APIKey:
		return v.LastResponse, nil
	case *client.APIKeyList:
		return v.LastResponse, nil
	}
	panic(fmt.Sprintf("response: %T", v))
}

// TestOwnIdempotencyKey: after a call that failed once sent, the caller retries it with its own
// key, and paybridge answers the first session instead of making another.
func TestOwnIdempotencyKey(t *testing.T) {
	w := newWorld(t)
	rec := &recorder{faults: func(n int, _ *http.Request) fault {
		if n == 1 {
			return loseAnswer
		}
		return pass
	}}
	pb := newClient(w, w.secretKey, rec, &sleeper{})
	ctx := context.Background()
	params := &client.SessionCreateParams{AgentID: "agent-1", Amount: 1240, Currency: "GBP", Reference: "ORDER-1001"}

	_, err := pb.Sessions.Create(ctx, params, client.IdempotencyKey("order-1001"))
	require.Error(t, err, "the answer was lost")
	sess, err := pb.Sessions.Create(ctx, params, client.IdempotencyKey("order-1001"))
	require.NoError(t, err)
	assert.True(t, sess.LastResponse.Replayed)
	assert.Equal(t, "order-1001", sess.LastResponse.IdempotencyKey)
	for _, a := range rec.seen() {
		assert.Equal(t, "order-1001", a.IdempotencyKey)
	}

	list, err := pb.Sessions.ListPage(ctx, nil)
	require.NoError(t, err)
	require.Len(t, list.Data, 1, "one session")
	assert.Equal(t, sess.ID, list.Data[0].ID)
	assert.Len(t, w.vcc.Sessions(), 1, "one provider session")

	_, err = pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "agent-1", Amount: 999, Currency: "GBP"}, client.IdempotencyKey("order-1001"))
	apiErr := asAPIError(err)
	require.NotNil(t, apiErr, "the same key for another request: %v", err)
	assert.Equal(t, client.CodeValidationError, apiErr.Code)
	assert.Equal(t, "Idempotency-Key", apiErr.Param)
}

// TestVCCOutage: VCC answers paybridge's creates 503 until paybridge's own retries are spent,
// so paybridge answers 502 provider_unavailable (nothing stored for the key); the client retries
// with the same key, and that retry makes the one provider session. Asked again with that key,
// paybridge answers the same session.
func TestVCCOutage(t *testing.T) {
	w := newWorld(t)
	w.mustControl(t, http.MethodPut, "/_control/faults", map[string]any{"create": "http_503", "times": vcc.DefaultMaxRetries + 1})
	rec, sl := &recorder{}, &sleeper{}
	pb := newClient(w, w.secretKey, rec, sl)
	ctx := context.Background()
	params := &client.SessionCreateParams{AgentID: "agent-1", Amount: 1240, Currency: "GBP"}

	sess, err := pb.Sessions.Create(ctx, params)
	require.NoError(t, err)
	assert.Equal(t, client.StatusActive, sess.Status)
	assert.Equal(t, 2, sess.LastResponse.Attempts)
	seen := rec.seen()
	require.Len(t, seen, 2)
	assert.Equal(t, http.StatusBadGateway, seen[0].Status, "paybridge's provider_unavailable")
	assert.Equal(t, seen[0].IdempotencyKey, seen[1].IdempotencyKey)
	assert.Len(t, sl.recorded(), 1)
	assert.Equal(t, vcc.DefaultMaxRetries+2, w.vcc.Stats().CreateSession, "the stub refused the first run's creates and took the retry's")
	require.Len(t, w.vcc.Sessions(), 1, "one provider session")
	assert.Equal(t, sess.VCC.SessionGUID, w.vcc.Sessions()[0].SessionGUID)

	again, err := pb.Sessions.Create(ctx, params, client.IdempotencyKey(sess.LastResponse.IdempotencyKey))
	require.NoError(t, err)
	assert.True(t, again.LastResponse.Replayed)
	assert.Equal(t, sess.ID, again.ID)
	assert.Len(t, w.vcc.Sessions(), 1, "still one provider session")

	var active []string
	for s, err := range pb.Sessions.List(ctx, &client.SessionListParams{Status: client.StatusActive}) {
		require.NoError(t, err)
		active = append(active, s.ID)
	}
	assert.Equal(t, []string{sess.ID}, active, "one active session; the first run left only a failed one, for audit")
}

// TestBackoff: waits double from the minimum, are capped at the maximum, and are jittered within
// the upper half; a cancelled context ends the wait and the call.
func TestBackoff(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	rec, sl := &recorder{faults: func(int, *http.Request) fault { return only503 }}, &sleeper{}
	pb := newClient(w, w.secretKey, rec, sl, client.WithMaxRetries(4), client.WithRetryWait(100*time.Millisecond, 300*time.Millisecond))
	_, err := pb.Sessions.Get(ctx, "vp_cs_test_0000000000000000")
	require.Error(t, err)
	assert.Len(t, rec.seen(), 5)
	waits := sl.recorded()
	require.Len(t, waits, 4)
	for i, ceiling := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond} {
		assert.GreaterOrEqual(t, waits[i], ceiling/2, "wait %d", i+1)
		assert.LessOrEqual(t, waits[i], ceiling, "wait %d", i+1)
	}

	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rec := &recorder{faults: func(int, *http.Request) fault { cancel(); return only503 }}
		// The real sleep: it must return at once, the context being done.
		pb := client.New(w.srv.URL, w.secretKey, client.WithHTTPClient(&http.Client{Transport: rec}), client.WithRetryWait(time.Hour, time.Hour))
		_, err := pb.APIKeys.List(ctx)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Len(t, rec.seen(), 1)
	})
}
