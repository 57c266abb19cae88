package web_test

import (
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// TestErrorDocsFitASelfHostedService: the error-codes page shows every code's fix, and its own
// words send readers to their paybridge operator, not to a support desk; "contact support" is
// left only where the seed's pinned descriptions say it.
func TestErrorDocsFitASelfHostedService(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/docs/error-codes", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	page := html.UnescapeString(string(r.Body))

	pinned := 0
	for _, e := range bridge.Catalog() {
		assert.Contains(t, page, e.Fix, "%s's fix is on the page", e.Code)
		pinned += strings.Count(e.Description, "contact support")
	}
	assert.Equal(t, pinned, strings.Count(page, "contact support"), "only the seed's descriptions say contact support")
	assert.Contains(t, page, "give it to your paybridge operator")
}
