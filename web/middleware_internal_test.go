package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/bridgetest"
)

// TestPanicBecomesInternalError: a handler that panics answers internal_error with the
// envelope and a request id, and nothing of the panic reaches the body (only the log).
func TestPanicBecomesInternalError(t *testing.T) {
	logs := &bridgetest.LogSink{}
	s := &Server{logger: logs.Logger(), docsBase: "http://paybridge.test/docs/error-codes"}
	h := withRequestID(s.logAndRecover(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret internals: db password hunter2")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/sessions", nil))

	require.Equal(t, http.StatusInternalServerError, rec.Code)
	var body ErrorBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, bridge.CodeInternalError, body.Code)
	assert.NotEmpty(t, body.Fix)
	assert.Equal(t, "http://paybridge.test/docs/error-codes#internal_error", body.Docs)
	assert.Equal(t, rec.Header().Get("X-Request-Id"), body.RequestID)
	assert.NotContains(t, rec.Body.String(), "hunter2")
	assert.NotContains(t, rec.Body.String(), "panic")
	assert.Contains(t, logs.String(), "hunter2", "the panic is logged for the operator")
}
