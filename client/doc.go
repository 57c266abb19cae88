// Package client is a Go client for paybridge's REST API, for merchants' backends: sessions,
// agent tokens and API keys, typed as the API's OpenAPI document (GET /openapi.json) describes
// them.
//
//	pb := client.New("https://pay.acme.example", os.Getenv("PAYBRIDGE_SECRET_KEY"))
//	sess, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{
//		AgentID: "agent-42", Amount: 1240, Currency: "GBP", Reference: "INV-1001",
//	})
//
// Every failure paybridge answers is an [*Error] carrying its status, Code (one of the 27 codes
// of the error reference, see [ErrorCodes]), Message, Fix, Docs, Param and RequestID; find it
// with errors.As, or read the code with [CodeOf].
//
// Every POST carries an Idempotency-Key, generated per call and reused by that call's retries
// (or given with the [IdempotencyKey] call option), so a retried create answers the first
// session rather than making a second. A call is retried, with jittered exponential backoff
// and at most [WithMaxRetries] times, only where that is safe: a GET or a request carrying an
// Idempotency-Key, after a network error that struck before the request was written, or after
// a 429, 502, 503 or 504 (waiting at least Retry-After). Nothing else is retried: not a 4xx,
// not a 500, not a DELETE.
//
// The client logs nothing, and neither its errors nor its string form ever show the secret key.
//
// To verify the signed webhooks paybridge posts to your backend, use
// [github.com/paybridge/paybridge/webhook.Verify]; this package does not repeat it.
//
// The package depends on the standard library only.
package client
