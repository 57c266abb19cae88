package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/client"
	"github.com/paybridge/paybridge/web"
)

// TestErrorFields: every field of a *client.Error is filled from real errors of the real server,
// errors.As finds it through wrapping, and no string form shows the key the client holds.
func TestErrorFields(t *testing.T) {
	w := newWorld(t, func(c *worldConfig) { c.perIP = web.RateLimit{Limit: 40, Window: time.Minute} })
	ctx := context.Background()
	unknownKey := "vp_sk_test_" + strings.Repeat("Z", 32)

	secret := newClient(w, w.secretKey, &recorder{}, &sleeper{})
	done, err := secret.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "agent-1", Amount: 100, Currency: "GBP"})
	require.NoError(t, err)
	_, err = secret.Sessions.Cancel(ctx, done.ID)
	require.NoError(t, err)

	tests := []struct {
		name   string
		key    string
		call   func(*client.Client) error
		status int
		code   client.ErrorCode
		param  string
	}{
		{name: "validation_error with param", key: w.secretKey, call: func(pb *client.Client) error {
			_, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "agent-1", Amount: 100, Currency: "GBP", Country: "GBR"})
			return err
		}, status: 400, code: client.CodeValidationError, param: "country"},
		{name: "validation_missing_field", key: w.secretKey, call: func(pb *client.Client) error {
			_, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "agent-1", Amount: 100})
			return err
		}, status: 400, code: client.CodeValidationMissingField, param: "currency"},
		{name: "validation_invalid_amount", key: w.secretKey, call: func(pb *client.Client) error {
			_, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "agent-1", Amount: -5, Currency: "GBP"})
			return err
		}, status: 400, code: client.CodeValidationInvalidAmount, param: "amount"},
		{name: "session_not_found", key: w.secretKey, call: func(pb *client.Client) error {
			_, err := pb.Sessions.Get(ctx, "vp_cs_test_0000000000000000")
			return err
		}, status: 404, code: client.CodeSessionNotFound, param: "id"},
		{name: "an id is one path segment", key: w.secretKey, call: func(pb *client.Client) error {
			_, err := pb.Sessions.Cancel(ctx, "../../api/merchants/api-keys")
			return err
		}, status: 404, code: client.CodeSessionNotFound, param: "id"},
		{name: "session_wrong_state", key: w.secretKey, call: func(pb *client.Client) error {
			_, err := pb.Sessions.Restart(ctx, done.ID)
			return err
		}, status: 409, code: client.CodeSessionWrongState},
		{name: "auth_invalid_key", key: unknownKey, call: func(pb *client.Client) error {
			_, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "agent-1", Amount: 100, Currency: "GBP"})
			return err
		}, status: 401, code: client.CodeAuthInvalidKey},
		{name: "auth_missing_bearer", key: "", call: func(pb *client.Client) error {
			_, err := pb.APIKeys.List(ctx)
			return err
		}, status: 401, code: client.CodeAuthMissingBearer},
		{name: "auth_key_type_forbidden", key: w.publishableKey, call: func(pb *client.Client) error {
			_, err := pb.Sessions.Get(ctx, done.ID)
			return err
		}, status: 403, code: client.CodeAuthKeyTypeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			pb := newClient(w, tt.key, rec, &sleeper{})
			err := tt.call(pb)
			require.Error(t, err)
			wrapped := fmt.Errorf("charging the customer: %w", err)
			var apiErr *client.Error
			require.ErrorAs(t, wrapped, &apiErr)
			assert.Equal(t, tt.code, client.CodeOf(wrapped))

			assert.Equal(t, tt.status, apiErr.HTTPStatus)
			assert.Equal(t, tt.code, apiErr.Code)
			assert.NotEmpty(t, apiErr.Message)
			assert.NotEmpty(t, apiErr.Fix)
			assert.Equal(t, w.srv.URL+"/docs/error-codes#"+string(tt.code), apiErr.Docs)
			assert.Equal(t, tt.param, apiErr.Param)
			seen := rec.seen()
			require.Len(t, seen, 1, "an error of this kind is not retried")
			assert.NotEmpty(t, apiErr.RequestID)
			assert.Equal(t, seen[0].RequestID, apiErr.RequestID, "the request id is the X-Request-Id header's")
			assert.Zero(t, apiErr.RetryAfter)

			msg := err.Error()
			assert.Contains(t, msg, fmt.Sprint(tt.status))
			assert.Contains(t, msg, string(tt.code))
			assert.Contains(t, msg, apiErr.RequestID)
			assertNoSecret(t, tt.key, err)
		})
	}
}

// TestRateLimitError: a 429 carries Retry-After; the client waits at least that long before
// retrying, and does not retry at all when told to wait longer than it may.
func TestRateLimitError(t *testing.T) {
	w := newWorld(t, func(c *worldConfig) { c.perIP = web.RateLimit{Limit: 1, Window: 4 * time.Second} })
	ctx := context.Background()

	rec := &recorder{}
	noRetries := newClient(w, w.secretKey, rec, &sleeper{}, client.WithMaxRetries(0))
	_, err := noRetries.APIKeys.List(ctx)
	require.NoError(t, err, "the bucket's one request")
	_, err = noRetries.APIKeys.List(ctx)
	apiErr := asAPIError(err)
	require.NotNil(t, apiErr, "err: %v", err)
	assert.Equal(t, http.StatusTooManyRequests, apiErr.HTTPStatus)
	assert.Equal(t, client.CodeRateLimitExceeded, apiErr.Code)
	assert.NotEmpty(t, apiErr.Message)
	assert.NotEmpty(t, apiErr.Fix)
	assert.Equal(t, w.srv.URL+"/docs/error-codes#rate_limit_exceeded", apiErr.Docs)
	assert.Equal(t, rec.seen()[1].RequestID, apiErr.RequestID)
	assert.Equal(t, 4*time.Second, apiErr.RetryAfter)
	assertNoSecret(t, w.secretKey, err)

	t.Run("waits Retry-After, then retries", func(t *testing.T) {
		rec, sl := &recorder{}, &sleeper{clock: w.clock}
		pb := newClient(w, w.secretKey, rec, sl)
		list, err := pb.APIKeys.List(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, list.LastResponse.Attempts)
		seen := rec.seen()
		require.Len(t, seen, 2)
		assert.Equal(t, http.StatusTooManyRequests, seen[0].Status)
		waits := sl.recorded()
		require.Len(t, waits, 1)
		assert.GreaterOrEqual(t, waits[0], 4*time.Second)
	})
	t.Run("a Retry-After beyond the longest wait is not waited for", func(t *testing.T) {
		rec, sl := &recorder{}, &sleeper{clock: w.clock}
		pb := newClient(w, w.secretKey, rec, sl, client.WithRetryWait(10*time.Millisecond, time.Second))
		_, err := pb.APIKeys.List(ctx)
		apiErr := asAPIError(err)
		require.NotNil(t, apiErr, "err: %v", err)
		assert.Equal(t, client.CodeRateLimitExceeded, apiErr.Code)
		assert.Equal(t, 4*time.Second, apiErr.RetryAfter, "the caller learns how long to wait")
		assert.Len(t, rec.seen(), 1)
		assert.Empty(t, sl.recorded())
	})
}

// TestForeignErrors: an answer that is not paybridge's (a gateway's) and a network error are
// errors too, without the gateway's body, and without the key.
func TestForeignErrors(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	t.Run("a gateway's answer", func(t *testing.T) {
		rec := &recorder{faults: func(int, *http.Request) fault { return only500 }}
		pb := newClient(w, w.secretKey, rec, &sleeper{})
		_, err := pb.Sessions.Get(ctx, "vp_cs_test_0000000000000000")
		apiErr := asAPIError(err)
		require.NotNil(t, apiErr, "err: %v", err)
		assert.Equal(t, http.StatusInternalServerError, apiErr.HTTPStatus)
		assert.Empty(t, apiErr.Code, "not paybridge's answer")
		assert.Empty(t, client.CodeOf(err))
		assert.Equal(t, gatewayRequestID, apiErr.RequestID, "from the X-Request-Id header")
		assert.Contains(t, apiErr.Message, "500")
		assert.NotContains(t, err.Error(), "<html>", "a foreign body is not repeated")
		assertNoSecret(t, w.secretKey, err)
	})
	t.Run("no server", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		sl := &sleeper{}
		pb := client.New("http://"+addr, w.secretKey, client.WithSleep(sl.sleep))
		_, err = pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "a", Amount: 1, Currency: "GBP"})
		require.Error(t, err)
		assert.Nil(t, asAPIError(err))
		assert.ErrorIs(t, err, syscall.ECONNREFUSED)
		assert.Len(t, sl.recorded(), client.DefaultMaxRetries, "a refused connection sent nothing: retried")
		assertNoSecret(t, w.secretKey, err)
	})
	t.Run("mistakes no retry can mend", func(t *testing.T) {
		tests := []struct{ name, baseURL, key, want string }{
			{name: "a key with a line break", baseURL: w.srv.URL, key: w.secretKey + "\n", want: "control characters"},
			{name: "a relative base URL", baseURL: "pay.acme.example", key: w.secretKey, want: "not an absolute http(s) URL"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rec, sl := &recorder{}, &sleeper{}
				pb := client.New(tt.baseURL, tt.key, client.WithHTTPClient(&http.Client{Transport: rec}), client.WithSleep(sl.sleep))
				_, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "a", Amount: 1, Currency: "GBP"})
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.want)
				assert.Empty(t, rec.seen(), "nothing sent")
				assert.Empty(t, sl.recorded(), "nothing retried")
				assertNoSecret(t, w.secretKey, err)
			})
		}
	})
	t.Run("the client prints no key", func(t *testing.T) {
		pb := client.New(w.srv.URL, w.secretKey)
		for _, s := range []string{fmt.Sprint(pb), fmt.Sprintf("%v %+v %#v %s", pb, pb, pb, pb)} {
			assert.NotContains(t, s, w.secretKey)
		}
	})
}

// TestErrorCodes: the client's codes are exactly the server's catalog and the OpenAPI
// document's ErrorCode enum, in order, so that they never drift.
func TestErrorCodes(t *testing.T) {
	w := newWorld(t)
	codes := client.ErrorCodes()

	var catalog []client.ErrorCode
	for _, info := range bridge.Catalog() {
		catalog = append(catalog, client.ErrorCode(info.Code))
	}
	assert.Equal(t, catalog, codes, "bridge.Catalog()")

	resp, err := http.Get(w.srv.URL + "/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var doc struct {
		Components struct {
			Schemas struct {
				ErrorCode struct {
					Enum []client.ErrorCode `json:"enum"`
				} `json:"ErrorCode"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	assert.Equal(t, doc.Components.Schemas.ErrorCode.Enum, codes, "the OpenAPI ErrorCode enum")
	assert.Len(t, codes, 27)
}

// assertNoSecret checks that no string form of err shows key.
func assertNoSecret(t *testing.T, key string, err error) {
	t.Helper()
	if key == "" {
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%v|%+v|%#v", err, err, err)} {
		assert.NotContains(t, s, key, "the key leaked")
		assert.NotContains(t, s, key[len(key)-12:], "part of the key leaked")
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		assert.NotContains(t, e.Error(), key)
	}
}
