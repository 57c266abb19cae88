package bridge

// CodeInfo documents one error code: its HTTP status and what to tell the caller. The one table
// below is the only place codes meet statuses; the web package answers with it and renders the
// error-code reference from it.
type CodeInfo struct {
	Code        Code
	Status      int    // HTTP status
	Description string // one line, as in the reference table
	Meaning     string // a paragraph: what happened
	Causes      []string
	Fix         string // default fix when an Error does not carry its own
}

// Info returns the catalog entry for code; an unknown code gets internal_error's entry, so a
// mistake can never put an undocumented code on the wire.
func Info(code Code) *CodeInfo {
	if i, ok := catalogIndex[code]; ok {
		return &catalog[i]
	}
	return &catalog[catalogIndex[CodeInternalError]]
}

// PublicFix returns the error's own fix, or its code's default fix.
func (e *Error) PublicFix() string {
	if e.Fix != "" {
		return e.Fix
	}
	return Info(e.Code).Fix
}

// Catalog returns every code's entry in reference order.
func Catalog() []CodeInfo { return append([]CodeInfo(nil), catalog...) }

var catalogIndex = func() map[Code]int {
	m := make(map[Code]int, len(catalog))
	for i, c := range catalog {
		m[c.Code] = i
	}
	return m
}()

var catalog = []CodeInfo{
	{
		Code: CodeAuthMissingBearer, Status: 401,
		Description: "No Authorization: Bearer header provided",
		Meaning:     "The request did not include an Authorization: Bearer <key> header.",
		Causes:      []string{"The header is missing or misspelled.", "The scheme is not Bearer.", "A proxy stripped the header."},
		Fix:         "Send the header Authorization: Bearer <key> with your vp_sk_* key (server side) or vp_pk_* key (browser).",
	},
	{
		Code: CodeAuthInvalidKey, Status: 401,
		Description: "API key is malformed or does not exist",
		Meaning:     "The API key (or agent token) is malformed, unknown, or was not issued by this paybridge.",
		Causes:      []string{"A typo or truncated key.", "A key from another paybridge deployment.", "A forged or edited agent token."},
		Fix:         "Check the prefix (vp_sk_test_, vp_sk_live_, vp_pk_test_, vp_pk_live_) and that the key was created on this paybridge (paybridge keys create, or POST /api/merchants/api-keys).",
	},
	{
		Code: CodeAuthKeyExpired, Status: 401,
		Description: "Key has rotated past its grace window or been force-deactivated mid-rotation",
		Meaning:     "The key was rolled and its grace window has ended, or it was revoked. Agent tokens past their expiry answer this too.",
		Causes:      []string{"The key was rolled more than the grace window ago (default 24 h).", "The key was revoked.", "The agent token's TTL passed."},
		Fix:         "Use the key that replaced this one (or create a new key); for agent tokens, mint a fresh one with POST /v1/agent_tokens.",
	},
	{
		Code: CodeAuthKeyTypeForbidden, Status: 403,
		Description: "Publishable key used on a secret-only endpoint, or sandbox/live mode mismatch",
		Meaning:     "A publishable key (vp_pk_*) was used on an endpoint that needs a secret key, or a test credential met a live one (or the reverse).",
		Causes:      []string{"Calling a server-side endpoint from the browser.", "Mixing test and live keys and agent tokens."},
		Fix:         "Call this endpoint from your backend with a vp_sk_* key of the same mode (test or live) as the objects and tokens involved.",
	},
	{
		Code: CodeAuthMerchantInactive, Status: 401,
		Description: "Merchant account is disabled or suspended",
		Meaning:     "The merchant this key belongs to is inactive; no call is accepted.",
		Causes:      []string{"The merchant's status in the configuration is inactive."},
		Fix:         "Ask your paybridge operator to set the merchant's status: active in the configuration (merchants[].status) and restart paybridge.",
	},
	{
		Code: CodeMerchantNotOnboarded, Status: 403,
		Description: "Merchant application is pending_approval or denied — live-key creation blocked until merchant-onboarding review completes",
		Meaning:     "A live-mode key was requested for a merchant whose onboarding is pending_approval or denied. Test-mode keys stay self-serve.",
		Causes:      []string{"The merchant's status is pending_approval or denied."},
		Fix:         "Use test-mode keys meanwhile. Approval is your paybridge operator's decision: once they set the merchant's status: active in the configuration, create the live key again.",
	},
	{
		Code: CodeAuthServiceUnavailable, Status: 503,
		Description: "Authentication service is temporarily unavailable",
		Meaning:     "paybridge could not read its key store to check the key.",
		Causes:      []string{"The data store is unavailable or timed out."},
		Fix:         "Retry with backoff. If it persists, your paybridge operator should check the data store: GET /readyz, the disk under dataDir, or the PostgreSQL database in store.url.",
	},
	{
		Code: CodeSessionNotFound, Status: 404,
		Description: "Session ID does not exist",
		Meaning:     "No session with this id exists for your merchant in this key's mode.",
		Causes:      []string{"A typo in the id.", "The session belongs to another merchant.", "A test key looking up a live session, or the reverse."},
		Fix:         "Check the id, and use a key of the same merchant and mode that created the session.",
	},
	{
		Code: CodeSessionExpired, Status: 410,
		Description: "Session has expired (30-minute TTL)",
		Meaning:     "The session passed its TTL (default 30 minutes, expiresIn when given) before the payment completed.",
		Causes:      []string{"The customer did not finish in time."},
		Fix:         "Create a new session.",
	},
	{
		Code: CodeSessionWrongState, Status: 409,
		Description: "Session is in the wrong state for this operation",
		Meaning:     "The session's status does not allow this operation (for example, cancelling a session that already succeeded).",
		Causes:      []string{"The operation was already done.", "The payment finished meanwhile.", "The customer is keying card details right now."},
		Fix:         "Read the session (GET /v1/sessions/{id}); the allowed transitions are: pending → active, failed, expired, cancelled; active → succeeded, failed, expired, cancelled; succeeded, failed, expired and cancelled are final.",
	},
	{
		Code: CodeSessionIntegrityError, Status: 500,
		Description: "Internal session state mismatch — contact support",
		Meaning:     "Stored session data no longer matches an invariant paybridge relies on.",
		Causes:      []string{"Stored data was edited or damaged.", "Sealed provider tokens could not be opened with the current master key."},
		Fix:         "Do not retry blindly. Your paybridge operator should find the X-Request-Id in paybridge's logs: the usual causes are a changed masterKey (restore the previous one) or damaged data (restore the store from a backup).",
	},
	{
		Code: CodeValidationError, Status: 400,
		Description: "Request body failed schema validation",
		Meaning:     "The request failed validation; the error field says what and where, and param names the field.",
		Causes:      []string{"A wrong type or format.", "An unknown field.", "Malformed JSON or a body over 1 MiB.", "An accountConfigurationId VCC does not know."},
		Fix:         "Correct the field named in param as the error message says, then resend.",
	},
	{
		Code: CodeValidationMissingField, Status: 400,
		Description: "A required field is missing from the request body",
		Meaning:     "A required field is missing; param names it.",
		Causes:      []string{"The field was left out or is null."},
		Fix:         "Add the field named in param. POST /v1/sessions needs amount and currency, and agentId when called with a secret key.",
	},
	{
		Code: CodeValidationInvalidAmount, Status: 400,
		Description: "Amount is not a positive integer or exceeds maximum",
		Meaning:     "amount must be a whole number of minor units from 1 to 99,999,999.",
		Causes:      []string{"Zero or negative.", "A decimal such as 12.40 instead of 1240.", "More than 99,999,999."},
		Fix:         "Send amount as a positive integer in minor units (1240 = £12.40), at most 99999999.",
	},
	{
		Code: CodeMerchantNotConfigured, Status: 422,
		Description: "Merchant is missing required configuration (e.g., payment provider credentials)",
		Meaning:     "The merchant's payment provider set-up is missing or rejected: VCC credentials absent or wrong, or VCC's PCI provider credentials or permissions wrong.",
		Causes:      []string{"No VCC client ID/secret configured.", "VCC rejected the client credentials (invalid_client).", "VCC's PCI provider credentials are wrong (invalid_client_key).", "The PCI provider API user lacks permission."},
		Fix:         "Follow the fix in the response: it names who must act (your paybridge operator, the merchant's VCC admin, VCC support or the PCI provider). Missing credentials go in the merchant's vcc settings of the configuration; paybridge check --config F tries them.",
	},
	{
		Code: CodeRateLimitExceeded, Status: 429,
		Description: "Per-IP rate limit — retry after the Retry-After interval",
		Meaning:     "Too many requests came from your IP address in the current window.",
		Causes:      []string{"Many agents behind one NAT address.", "A retry loop without backoff."},
		Fix:         "Wait for Retry-After seconds, then retry. If the traffic is legitimate, raise rateLimits.perIP (or lengthen rateLimits.perIPWindow) in the configuration; behind a proxy, list it in trustedProxies so clients are told apart.",
	},
	{
		Code: CodeRateLimitExceededPerKey, Status: 429,
		Description: "Per-API-key rate limit (30 session-creates/min) — contact support if you need a higher ceiling",
		Meaning:     "This API key created more sessions than its limit allows in the current window.",
		Causes:      []string{"A burst of session creates from one key.", "A retry loop creating new sessions."},
		Fix:         "Wait for Retry-After seconds, and send retries with the same Idempotency-Key so they reuse the session. If the traffic is legitimate, raise rateLimits.sessionCreatesPerKey (per rateLimits.sessionCreatesWindow) in the configuration.",
	},
	{
		Code: CodeProviderUnavailable, Status: 502,
		Description: "Upstream payment provider is not responding",
		Meaning:     "VCC did not answer in time, refused the connection, or answered with a server error, even after retries.",
		Causes:      []string{"A VCC outage or maintenance.", "Network trouble between paybridge and VCC."},
		Fix:         "Retry shortly with backoff (use the same Idempotency-Key). If it persists, your paybridge operator can run paybridge check --config F, which names the VCC URL tried and why it failed, and check VCC's service status.",
	},
	{
		Code: CodeProviderAttestationFailed, Status: 403,
		Description: "Payment provider rejected the attestation (Vora browser-side token handoff failed)",
		Meaning:     "The browser-side token handoff to the provider kept failing: the provider page refused the frame on every attempt until the restart limit was reached. The provider-native reason (e.g. ATTESTATION_EXPIRED) is in the message.",
		Causes:      []string{"The provider session keeps expiring before the agent's browser loads it.", "The agent desktop blocks the provider frame.", "Clock or network trouble on the agent's machine."},
		Fix:         "Create a new session. If it happens again, check that the agent desktop can reach PCI Pal and allows its frame (Content-Security-Policy frame-src, browser extensions, proxies); provider.maxAttempts in the configuration sets how many attempts a session gets.",
	},
	{
		Code: CodeProviderChargeFailed, Status: 402,
		Description: "Card declined or charge rejected by the upstream provider",
		Meaning:     "The provider declined the payment or reported an error for it.",
		Causes:      []string{"Card declined, insufficient funds, fraud rules.", "A processor-side error."},
		Fix:         "Ask the customer for another payment method and take the payment in a new session; retrying the same card is unlikely to succeed.",
	},
	{
		Code: CodeInternalError, Status: 500,
		Description: "Unexpected server error",
		Meaning:     "Something unexpected went wrong inside paybridge.",
		Causes:      []string{"A bug or an unavailable dependency."},
		Fix:         "Retry once. If it persists, your paybridge operator should search paybridge's logs for the X-Request-Id (every line of the request carries it) and report the failure with that line.",
	},
	{
		Code: CodeWebhookMissingSignature, Status: 401,
		Description: "Webhook request is missing the signature header",
		Meaning:     "A webhook call carried neither a bearer token nor an X-VonPay-Signature header.",
		Causes:      []string{"VCC's webhook authentication is not set up.", "A proxy stripped the header."},
		Fix:         "Set up VCC's webhook authentication with the merchant's vccWebhook.clientId and clientSecret (VCC then fetches a bearer token from POST /oauth/token), or sign with vccWebhook.signingSecret and send X-VonPay-Signature.",
	},
	{
		Code: CodeWebhookInvalidSignature, Status: 401,
		Description: "Webhook signature does not match the expected value",
		Meaning:     "The webhook's bearer token or X-VonPay-Signature did not verify.",
		Causes:      []string{"Wrong secret.", "The body was changed after signing (sign the raw body).", "The timestamp is outside the tolerance window.", "An expired bearer token."},
		Fix:         "Check that the secret VCC holds matches the merchant's vccWebhook settings in the configuration, and that the raw body is signed as t=<unix>,v1=<hex HMAC-SHA256(secret, \"t.body\")>.",
	},
	{
		Code: CodeWebhookNotConfigured, Status: 503,
		Description: "Webhook verification secret is not configured on the server",
		Meaning:     "paybridge has no webhook credentials configured for this merchant, so it cannot verify the call.",
		Causes:      []string{"vccWebhook is missing from the merchant's configuration."},
		Fix:         "Your paybridge operator must set the merchant's vccWebhook.clientId and clientSecret (or signingSecret) in the configuration and give the same credentials to VCC.",
	},
	{
		Code: CodeOriginForbidden, Status: 403,
		Description: "Request origin is not in the merchant's allowed origins list",
		Meaning:     "A browser call with a publishable key came from an Origin the merchant does not allow.",
		Causes:      []string{"The agent desktop's origin is not in allowedOrigins.", "A scheme or port mismatch (https://desk.example vs https://desk.example:8443)."},
		Fix:         "Add the exact origin (scheme://host[:port]) to the merchant's allowedOrigins.",
	},
	{
		Code: CodeTransactionVerificationFailed, Status: 403,
		Description: "Transaction could not be verified with the payment provider",
		Meaning:     "The provider's result does not match the session (amount or currency), so paybridge did not mark it paid.",
		Causes:      []string{"The amount or currency keyed at the provider differs from the session's."},
		Fix:         "Do not take the payment again: it may have been taken. Run paybridge reconcile --config F (or look up the session's vcc.sessionGuid with VCC) to see what VCC holds, and check the merchant's gateway profile (vcc.gateway) if the result data could not be read.",
	},
	{
		Code: CodeUnsupportedMediaType, Status: 415,
		Description: "Content-Type header is missing or not application/json",
		Meaning:     "POST and PUT bodies must be JSON.",
		Causes:      []string{"Content-Type missing or set to a form type."},
		Fix:         "Send Content-Type: application/json with every POST or PUT that carries a body.",
	},
}
