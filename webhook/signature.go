// Package webhook signs and verifies paybridge webhooks and delivers merchant webhooks from the
// durable outbox.
//
// Every webhook carries the header
//
//	X-VonPay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
//
// and, while a signing secret is being rolled, one v1 per secret (new first):
// "t=...,v1=<with new>,v1=<with old>". The secret is used as the HMAC key exactly as configured,
// "whsec_" prefix included.
//
// Integrators import this package to check a delivery with Verify (see ExampleVerify);
// paybridge uses VerifyAny for VCC's inbound webhook and the Dispatcher to deliver its own.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the HTTP header that carries a webhook's signature.
const Header = "X-VonPay-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the verifier's clock, either
// way, when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Limits that keep ParseHeader's work bounded whatever arrives.
const (
	// MaxHeaderLen is the longest header value ParseHeader reads.
	MaxHeaderLen = 8 << 10
	// MaxSignatures is the most v1 values one header may carry.
	MaxSignatures = 8
)

// maxUnix is the latest timestamp accepted (9999-12-31T23:59:59Z): anything later is not a
// clock reading but garbage, and keeping t in range keeps time arithmetic exact.
const maxUnix = 253402300799

// Errors of ParseHeader, Verify and VerifyAny; match them with errors.Is. None of them, nor the
// detail wrapped around them, quotes the header, the body or a secret.
var (
	// ErrNoSignature means the header is missing or empty.
	ErrNoSignature = errors.New("webhook: no signature header")
	// ErrMalformed means the header is not t=<unix>,v1=<hex>[,v1=<hex>...].
	ErrMalformed = errors.New("webhook: malformed signature header")
	// ErrTimestamp means the signature matches but its timestamp is outside the tolerance: a
	// replay, or a clock far off.
	ErrTimestamp = errors.New("webhook: signature timestamp outside the tolerance")
	// ErrMismatch means no v1 value is the signature of this body with any of the secrets.
	ErrMismatch = errors.New("webhook: signature does not match")
	// ErrNoSecret means the verifier was given no secret (or only empty ones): a configuration
	// mistake, never a reason to accept the request.
	ErrNoSecret = errors.New("webhook: no signing secret configured")
)

// Signature is a parsed signature header.
type Signature struct {
	// Timestamp is when the sender signed, to the second.
	Timestamp time.Time
	// V1 holds the HMAC-SHA256 values (32 bytes each), one per signing secret, in header order.
	V1 [][]byte
}

// Header returns the header value that carries s, in canonical form: t first, then each v1 in
// lower-case hex.
func (s Signature) Header() string {
	var b strings.Builder
	b.Grow(len("t=") + 12 + len(s.V1)*(len(",v1=")+2*sha256.Size))
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(s.Timestamp.Unix(), 10))
	for _, sig := range s.V1 {
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(sig))
	}
	return b.String()
}

// Sign returns the X-VonPay-Signature value for body signed at t (truncated to the second) with
// each secret, in order: during a roll, pass the new secret first and the old one after it. It
// needs at least one and at most MaxSignatures secrets and a t after 1970 for the result to parse.
func Sign(body []byte, t time.Time, secrets ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	sig := Signature{Timestamp: time.Unix(t.Unix(), 0), V1: make([][]byte, len(secrets))}
	for i, secret := range secrets {
		sig.V1[i] = mac(secret, ts, body)
	}
	return sig.Header()
}

// mac returns HMAC-SHA256(secret, "<ts>.<body>").
func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// ParseHeader parses an X-VonPay-Signature value strictly: comma-separated key=value parts, with
// spaces or tabs around a part tolerated; exactly one t (decimal unix seconds, 1 to year 9999);
// one to MaxSignatures v1 values of 64 hex digits (either case). Parts with another well-formed
// key (v0=..., a future v2=...) are ignored, so senders can add schemes. Anything else is
// ErrMalformed; an empty value is ErrNoSignature. Values longer than MaxHeaderLen are refused
// unread.
func ParseHeader(v string) (Signature, error) {
	if len(v) > MaxHeaderLen {
		return Signature{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxHeaderLen)
	}
	if strings.Trim(v, " \t") == "" {
		return Signature{}, ErrNoSignature
	}
	var (
		sig   Signature
		haveT bool
	)
	n := 0
	for part := range strings.SplitSeq(v, ",") {
		n++
		key, value, ok := strings.Cut(strings.Trim(part, " \t"), "=")
		if !ok || !validKey(key) {
			return Signature{}, fmt.Errorf("%w: part %d is not key=value", ErrMalformed, n)
		}
		switch key {
		case "t":
			if haveT {
				return Signature{}, fmt.Errorf("%w: more than one t", ErrMalformed)
			}
			unix, err := parseUnix(value)
			if err != nil {
				return Signature{}, fmt.Errorf("%w: t %v", ErrMalformed, err)
			}
			sig.Timestamp, haveT = time.Unix(unix, 0), true
		case "v1":
			if len(sig.V1) == MaxSignatures {
				return Signature{}, fmt.Errorf("%w: more than %d v1 values", ErrMalformed, MaxSignatures)
			}
			b, err := hex.DecodeString(value)
			if err != nil || len(b) != sha256.Size {
				return Signature{}, fmt.Errorf("%w: v1 in part %d is not %d hex digits", ErrMalformed, n, 2*sha256.Size)
			}
			sig.V1 = append(sig.V1, b)
		}
	}
	switch {
	case !haveT:
		return Signature{}, fmt.Errorf("%w: no t", ErrMalformed)
	case len(sig.V1) == 0:
		return Signature{}, fmt.Errorf("%w: no v1", ErrMalformed)
	}
	return sig, nil
}

// validKey reports whether k can name a scheme: 1 to 16 ASCII letters, digits, '_' or '-'.
func validKey(k string) bool {
	if k == "" || len(k) > 16 {
		return false
	}
	for i := range len(k) {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// parseUnix parses a timestamp: decimal digits only (no sign, no spaces), within 1..maxUnix.
func parseUnix(s string) (int64, error) {
	if s == "" || len(s) > 12 {
		return 0, errors.New("is not 1 to 12 decimal digits")
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("is not a decimal number")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > maxUnix {
		return 0, errors.New("is out of range")
	}
	return n, nil
}

// Verify checks that header is a valid signature of the raw request body with secret, made within
// tolerance of now (0 or less means DefaultTolerance). It returns nil, or an error matching
// ErrNoSecret, ErrNoSignature, ErrMalformed, ErrMismatch or ErrTimestamp. During a roll the
// header carries two v1 values and either may match.
//
// Pass the body exactly as received, before any JSON decoding: re-encoded JSON is not the same
// bytes. Then deduplicate on the event id (the X-VonPay-Event-Id header, or the body's "id"):
// delivery is at least once.
func Verify(body []byte, header string, secret string, now time.Time, tolerance time.Duration) error {
	_, err := VerifyAny(body, header, []string{secret}, now, tolerance)
	return err
}

// VerifyAny is Verify with several candidate secrets, for a receiver that accepts more than one
// (paybridge's VCC webhook while a merchant's secret rolls). It returns the index in secrets of
// the one that matched, or -1 and an error. Empty secrets are skipped; if none is left the error
// is ErrNoSecret.
//
// The signature is checked before the timestamp, so ErrTimestamp always means an authentic but
// stale signature (a replay, or a clock far off) and never tells a forger anything. Each v1 is
// compared with hmac.Equal, in constant time, and every pair is compared even after a match.
func VerifyAny(body []byte, header string, secrets []string, now time.Time, tolerance time.Duration) (int, error) {
	if !hasSecret(secrets) {
		return -1, ErrNoSecret
	}
	sig, err := ParseHeader(header)
	if err != nil {
		return -1, err
	}
	ts := strconv.FormatInt(sig.Timestamp.Unix(), 10)
	matched := -1
	for i, secret := range secrets {
		if secret == "" {
			continue
		}
		want := mac(secret, ts, body)
		for _, got := range sig.V1 {
			if hmac.Equal(want, got) && matched < 0 {
				matched = i
			}
		}
	}
	if matched < 0 {
		return -1, ErrMismatch
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// Compared as instants, not as now.Sub(t): a Duration saturates at ±292 years, and negating
	// the minimum would turn a far-future timestamp into an accepted one.
	if sig.Timestamp.Before(now.Add(-tolerance)) || sig.Timestamp.After(now.Add(tolerance)) {
		return -1, ErrTimestamp
	}
	return matched, nil
}

func hasSecret(secrets []string) bool {
	for _, s := range secrets {
		if s != "" {
			return true
		}
	}
	return false
}
