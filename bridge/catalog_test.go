package bridge_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// seedCatalog is the "Error Codes Reference" table of seeds/002_384333a5adc44f64.txt (code, HTTP
// status, description), copied verbatim and in the seed's order: the public contract the catalog
// must match.
var seedCatalog = []struct {
	code        bridge.Code
	status      int
	description string
}{
	{"auth_missing_bearer", 401, "No Authorization: Bearer header provided"},
	{"auth_invalid_key", 401, "API key is malformed or does not exist"},
	{"auth_key_expired", 401, "Key has rotated past its grace window or been force-deactivated mid-rotation"},
	{"auth_key_type_forbidden", 403, "Publishable key used on a secret-only endpoint, or sandbox/live mode mismatch"},
	{"auth_merchant_inactive", 401, "Merchant account is disabled or suspended"},
	{"merchant_not_onboarded", 403, "Merchant application is pending_approval or denied — live-key creation blocked until merchant-onboarding review completes"},
	{"auth_service_unavailable", 503, "Authentication service is temporarily unavailable"},
	{"session_not_found", 404, "Session ID does not exist"},
	{"session_expired", 410, "Session has expired (30-minute TTL)"},
	{"session_wrong_state", 409, "Session is in the wrong state for this operation"},
	{"session_integrity_error", 500, "Internal session state mismatch — contact support"},
	{"validation_error", 400, "Request body failed schema validation"},
	{"validation_missing_field", 400, "A required field is missing from the request body"},
	{"validation_invalid_amount", 400, "Amount is not a positive integer or exceeds maximum"},
	{"merchant_not_configured", 422, "Merchant is missing required configuration (e.g., payment provider credentials)"},
	{"rate_limit_exceeded", 429, "Per-IP rate limit — retry after the Retry-After interval"},
	{"rate_limit_exceeded_per_key", 429, "Per-API-key rate limit (30 session-creates/min) — contact support if you need a higher ceiling"},
	{"provider_unavailable", 502, "Upstream payment provider is not responding"},
	{"provider_attestation_failed", 403, "Payment provider rejected the attestation (Vora browser-side token handoff failed)"},
	{"provider_charge_failed", 402, "Card declined or charge rejected by the upstream provider"},
	{"internal_error", 500, "Unexpected server error"},
	{"webhook_missing_signature", 401, "Webhook request is missing the signature header"},
	{"webhook_invalid_signature", 401, "Webhook signature does not match the expected value"},
	{"webhook_not_configured", 503, "Webhook verification secret is not configured on the server"},
	{"origin_forbidden", 403, "Request origin is not in the merchant's allowed origins list"},
	{"transaction_verification_failed", 403, "Transaction could not be verified with the payment provider"},
	{"unsupported_media_type", 415, "Content-Type header is missing or not application/json"},
}

func TestSeedTableHas27Codes(t *testing.T) {
	// Guards the literal above against a copying mistake: the seed says "27 codes total".
	seen := map[bridge.Code]bool{}
	for _, row := range seedCatalog {
		assert.False(t, seen[row.code], "seed table lists %s twice", row.code)
		seen[row.code] = true
	}
	assert.Len(t, seen, 27)
}

func TestCatalogMatchesSeed(t *testing.T) {
	cat := bridge.Catalog()
	require.Len(t, cat, len(seedCatalog), "the catalog must hold exactly the seed's 27 codes")

	count := map[bridge.Code]int{}
	for _, e := range cat {
		count[e.Code]++
	}
	for code, n := range count {
		assert.Equal(t, 1, n, "catalog lists %s %d times", code, n)
	}

	for i, want := range seedCatalog {
		t.Run(string(want.code), func(t *testing.T) {
			assert.Equal(t, 1, count[want.code], "catalog must list the code exactly once")
			info := bridge.Info(want.code)
			require.NotNil(t, info)
			assert.Equal(t, want.code, info.Code, "Info returned another code's entry")
			assert.Equal(t, want.status, info.Status)
			assert.Equal(t, want.description, info.Description, "Description must be the seed's text")
			assert.Equal(t, want.code, cat[i].Code, "Catalog must follow the seed's order")
		})
	}
}

func TestCatalogEntriesAreDocumented(t *testing.T) {
	for _, e := range bridge.Catalog() {
		t.Run(string(e.Code), func(t *testing.T) {
			assert.NotEmpty(t, e.Description, "Description")
			assert.NotEmpty(t, e.Meaning, "Meaning")
			assert.NotEmpty(t, e.Fix, "Fix")
			require.NotEmpty(t, e.Causes, "Causes")
			for i, c := range e.Causes {
				assert.NotEmpty(t, c, "Causes[%d]", i)
			}
		})
	}
}

func TestCodesMatchSeedOrder(t *testing.T) {
	want := make([]bridge.Code, len(seedCatalog))
	for i, row := range seedCatalog {
		want[i] = row.code
	}
	assert.Equal(t, want, bridge.Codes)
}

func TestCatalogReturnsACopy(t *testing.T) {
	cat := bridge.Catalog()
	require.NotEmpty(t, cat)
	original := cat[0].Status
	cat[0].Status = 999
	cat[0].Code = "changed"
	assert.Equal(t, original, bridge.Catalog()[0].Status)
	assert.Equal(t, original, bridge.Info(bridge.Codes[0]).Status)
}

func TestInfoUnknownCodeIsInternalError(t *testing.T) {
	internal := bridge.Info(bridge.CodeInternalError)
	require.Equal(t, bridge.CodeInternalError, internal.Code)
	for _, code := range []bridge.Code{"", "no_such_code", "AUTH_INVALID_KEY", "auth_invalid_key "} {
		t.Run(string(code), func(t *testing.T) {
			got := bridge.Info(code)
			assert.Equal(t, bridge.CodeInternalError, got.Code)
			assert.Equal(t, 500, got.Status)
			assert.Equal(t, internal.Fix, got.Fix)
		})
	}
}

func TestErrorPublicFix(t *testing.T) {
	tests := []struct {
		name string
		err  *bridge.Error
		want string
	}{
		{
			name: "own fix wins",
			err:  bridge.Errorf(bridge.CodeSessionNotFound, "gone").WithFix("Look elsewhere."),
			want: "Look elsewhere.",
		},
		{
			name: "empty fix falls back to the code's entry",
			err:  bridge.Errorf(bridge.CodeSessionNotFound, "gone"),
			want: bridge.Info(bridge.CodeSessionNotFound).Fix,
		},
		{
			name: "unknown code falls back to internal_error's fix",
			err:  &bridge.Error{Code: "no_such_code", Message: "x"},
			want: bridge.Info(bridge.CodeInternalError).Fix,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotEmpty(t, tt.want)
			assert.Equal(t, tt.want, tt.err.PublicFix())
		})
	}
	// Each code's fallback is its own, not a shared string.
	assert.NotEqual(t, bridge.Errorf(bridge.CodeAuthInvalidKey, "").PublicFix(),
		bridge.Errorf(bridge.CodeSessionExpired, "").PublicFix())
}

// TestCatalogFixesFitASelfHostedService: paybridge is run by the merchant's own operator, so a fix
// never sends anyone to a "support" that does not exist, and every limit or setting a fix can be
// solved by names its configuration key. The seed's descriptions (pinned above) are left as they are.
func TestCatalogFixesFitASelfHostedService(t *testing.T) {
	for _, e := range bridge.Catalog() {
		// VCC support is real (Vonage's); paybridge's own is the operator.
		assert.NotContains(t, strings.ToLower(strings.ReplaceAll(e.Fix, "VCC support", "")), "support", "%s: a self-hosted service has no support desk to send callers to", e.Code)
		assert.NotContains(t, strings.ToLower(e.Fix), "dashboard", "%s: paybridge has no dashboard", e.Code)
	}
	for _, tt := range []struct {
		code bridge.Code
		keys []string // configuration keys (or commands) the fix must name
	}{
		{bridge.CodeRateLimitExceeded, []string{"rateLimits.perIP", "trustedProxies"}},
		{bridge.CodeRateLimitExceededPerKey, []string{"rateLimits.sessionCreatesPerKey", "Idempotency-Key"}},
		{bridge.CodeAuthMerchantInactive, []string{"status: active"}},
		{bridge.CodeMerchantNotOnboarded, []string{"status: active"}},
		{bridge.CodeMerchantNotConfigured, []string{"paybridge check"}},
		{bridge.CodeProviderUnavailable, []string{"paybridge check", "Idempotency-Key"}},
		{bridge.CodeProviderAttestationFailed, []string{"provider.maxAttempts"}},
		{bridge.CodeWebhookNotConfigured, []string{"vccWebhook.clientId"}},
		{bridge.CodeWebhookMissingSignature, []string{"vccWebhook.clientId", "vccWebhook.signingSecret"}},
		{bridge.CodeTransactionVerificationFailed, []string{"paybridge reconcile", "vcc.gateway"}},
		{bridge.CodeSessionIntegrityError, []string{"masterKey", "X-Request-Id"}},
		{bridge.CodeInternalError, []string{"X-Request-Id", "logs"}},
		{bridge.CodeAuthServiceUnavailable, []string{"/readyz", "store.url"}},
	} {
		for _, k := range tt.keys {
			assert.Contains(t, bridge.Info(tt.code).Fix, k, "%s", tt.code)
		}
	}
}
