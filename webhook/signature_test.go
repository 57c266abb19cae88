package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/webhook"
)

const (
	testSecret  = "whsec_test_4eC39HqLyjWDarjtT1zdp7dc"
	oldSecret   = "whsec_test_old_Vd83nQbR6yMxk2LpZa0c"
	otherSecret = "whsec_test_other_u7Tq0Jc5hW2nE9sKx1"
)

var (
	signedAt = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	testBody = []byte(`{"id":"vp_evt_123","type":"session.succeeded","created":1773500966,"livemode":false,"data":{"id":"vp_cs_test_0123456789abcdef"}}`)
)

// hmacHex is the signature computed here, independently of the package: HMAC-SHA256 over
// "<unix>.<body>".
func hmacHex(secret string, t time.Time, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(h, "%d.", t.Unix())
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func TestSignFormat(t *testing.T) {
	got := webhook.Sign(testBody, signedAt, testSecret)
	assert.Equal(t, fmt.Sprintf("t=%d,v1=%s", signedAt.Unix(), hmacHex(testSecret, signedAt, testBody)), got)

	roll := webhook.Sign(testBody, signedAt, testSecret, oldSecret)
	assert.Equal(t, fmt.Sprintf("t=%d,v1=%s,v1=%s", signedAt.Unix(),
		hmacHex(testSecret, signedAt, testBody), hmacHex(oldSecret, signedAt, testBody)), roll,
		"one v1 per secret, in the order given")

	// Sub-second precision is dropped: the header carries whole seconds.
	assert.Equal(t, got, webhook.Sign(testBody, signedAt.Add(999*time.Millisecond), testSecret))
}

func TestSignVerifyRoundTrip(t *testing.T) {
	bodies := map[string][]byte{
		"json":   testBody,
		"empty":  {},
		"binary": {0, 1, 2, 0xfe, 0xff, '.', ','},
		"large":  []byte(strings.Repeat("x", 1<<20)),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			header := webhook.Sign(body, signedAt, testSecret)
			assert.NoError(t, webhook.Verify(body, header, testSecret, signedAt, 0))
			assert.ErrorIs(t, webhook.Verify(body, header, otherSecret, signedAt, 0), webhook.ErrMismatch)
		})
	}
}

func TestVerifyTolerance(t *testing.T) {
	header := webhook.Sign(testBody, signedAt, testSecret)
	tests := []struct {
		name      string
		offset    time.Duration // of the verifier's clock from the signing time
		tolerance time.Duration
		want      error
	}{
		{"same second", 0, 0, nil},
		{"default tolerance, late edge", webhook.DefaultTolerance, 0, nil},
		{"default tolerance, just late", webhook.DefaultTolerance + time.Second, 0, webhook.ErrTimestamp},
		{"default tolerance, early edge", -webhook.DefaultTolerance, 0, nil},
		{"default tolerance, just early", -webhook.DefaultTolerance - time.Second, 0, webhook.ErrTimestamp},
		{"one nanosecond past the edge", webhook.DefaultTolerance + time.Nanosecond, 0, webhook.ErrTimestamp},
		{"negative tolerance means default", webhook.DefaultTolerance, -time.Second, nil},
		{"custom tolerance, edge", 10 * time.Second, 10 * time.Second, nil},
		{"custom tolerance, past", 11 * time.Second, 10 * time.Second, webhook.ErrTimestamp},
		{"custom tolerance, early past", -11 * time.Second, 10 * time.Second, webhook.ErrTimestamp},
		{"a day late", 24 * time.Hour, 0, webhook.ErrTimestamp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := bridgetest.NewManualClock(signedAt)
			clock.Advance(tc.offset)
			err := webhook.Verify(testBody, header, testSecret, clock.Now(), tc.tolerance)
			if tc.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
}

func TestVerifySecretRoll(t *testing.T) {
	header := webhook.Sign(testBody, signedAt, testSecret, oldSecret)
	sig, err := webhook.ParseHeader(header)
	require.NoError(t, err)
	require.Len(t, sig.V1, 2)

	assert.NoError(t, webhook.Verify(testBody, header, testSecret, signedAt, 0), "the new secret verifies")
	assert.NoError(t, webhook.Verify(testBody, header, oldSecret, signedAt, 0), "the old secret verifies")
	assert.ErrorIs(t, webhook.Verify(testBody, header, otherSecret, signedAt, 0), webhook.ErrMismatch, "an unrelated secret fails")

	// Either order of the two v1 values verifies.
	swapped := fmt.Sprintf("t=%d,v1=%s,v1=%s", signedAt.Unix(), hex.EncodeToString(sig.V1[1]), hex.EncodeToString(sig.V1[0]))
	assert.NoError(t, webhook.Verify(testBody, swapped, testSecret, signedAt, 0))
	assert.NoError(t, webhook.Verify(testBody, swapped, oldSecret, signedAt, 0))
}

func TestVerifyAny(t *testing.T) {
	oneSig := webhook.Sign(testBody, signedAt, oldSecret)
	tests := []struct {
		name    string
		header  string
		secrets []string
		want    int
		wantErr error
	}{
		{"second candidate", oneSig, []string{otherSecret, oldSecret}, 1, nil},
		{"first candidate", oneSig, []string{oldSecret, otherSecret}, 0, nil},
		{"empty candidates skipped", oneSig, []string{"", oldSecret}, 1, nil},
		{"none matches", oneSig, []string{otherSecret, testSecret}, -1, webhook.ErrMismatch},
		{"no candidates", oneSig, nil, -1, webhook.ErrNoSecret},
		{"only empty candidates", oneSig, []string{"", ""}, -1, webhook.ErrNoSecret},
		{"first matching secret wins", webhook.Sign(testBody, signedAt, testSecret, oldSecret), []string{oldSecret, testSecret}, 0, nil},
		{"no header", "", []string{oldSecret}, -1, webhook.ErrNoSignature},
		{"malformed header", "t=1", []string{oldSecret}, -1, webhook.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := webhook.VerifyAny(testBody, tc.header, tc.secrets, signedAt, 0)
			assert.Equal(t, tc.want, got)
			if tc.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.wantErr)
			}
		})
	}
}

func TestVerifyTampered(t *testing.T) {
	header := webhook.Sign(testBody, signedAt, testSecret)
	sigHex := hmacHex(testSecret, signedAt, testBody)
	altered := []byte(sigHex) // one hex digit changed, still 64 hex digits
	if altered[10] == '0' {
		altered[10] = '1'
	} else {
		altered[10] = '0'
	}

	tests := []struct {
		name   string
		body   []byte
		header string
		now    time.Time
		want   error
	}{
		{"body changed", []byte(strings.Replace(string(testBody), "succeeded", "failed", 1)), header, signedAt, webhook.ErrMismatch},
		{"body with a trailing newline", append(append([]byte{}, testBody...), '\n'), header, signedAt, webhook.ErrMismatch},
		{"body re-encoded", []byte(strings.ReplaceAll(string(testBody), ",", ", ")), header, signedAt, webhook.ErrMismatch},
		{"timestamp moved forward", testBody, fmt.Sprintf("t=%d,v1=%s", signedAt.Unix()+1, sigHex), signedAt, webhook.ErrMismatch},
		{"timestamp moved back", testBody, fmt.Sprintf("t=%d,v1=%s", signedAt.Unix()-60, sigHex), signedAt, webhook.ErrMismatch},
		{"signature altered", testBody, fmt.Sprintf("t=%d,v1=%s", signedAt.Unix(), altered), signedAt, webhook.ErrMismatch},
		{"signature upper-case still matches", testBody, fmt.Sprintf("t=%d,v1=%s", signedAt.Unix(), strings.ToUpper(sigHex)), signedAt, nil},
		{"replayed an hour later", testBody, header, signedAt.Add(time.Hour), webhook.ErrTimestamp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(tc.body, tc.header, testSecret, tc.now, 0)
			if tc.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
}

func TestVerifyNoSecret(t *testing.T) {
	// HMAC with an empty key is computable by anyone: an unconfigured secret must never verify.
	header := webhook.Sign(testBody, signedAt, "")
	assert.ErrorIs(t, webhook.Verify(testBody, header, "", signedAt, 0), webhook.ErrNoSecret)
}

func TestParseHeader(t *testing.T) {
	sigA := hmacHex(testSecret, signedAt, testBody)
	sigB := hmacHex(oldSecret, signedAt, testBody)
	ts := fmt.Sprint(signedAt.Unix())

	valid := []struct {
		name   string
		header string
		wantN  int
	}{
		{"one v1", "t=" + ts + ",v1=" + sigA, 1},
		{"two v1", "t=" + ts + ",v1=" + sigA + ",v1=" + sigB, 2},
		{"v1 before t", "v1=" + sigA + ",t=" + ts, 1},
		{"upper-case hex", "t=" + ts + ",v1=" + strings.ToUpper(sigA), 1},
		{"spaces around parts", " t=" + ts + " ,\tv1=" + sigA + " ", 1},
		{"unknown scheme ignored", "t=" + ts + ",v0=deadbeef,v1=" + sigA, 1},
		{"future scheme ignored", "t=" + ts + ",v1=" + sigA + ",v2=" + strings.Repeat("ab", 64), 1},
		{"eight v1", "t=" + ts + strings.Repeat(",v1="+sigA, webhook.MaxSignatures), webhook.MaxSignatures},
		{"the same v1 twice", "t=" + ts + ",v1=" + sigA + ",v1=" + sigA, 2},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := webhook.ParseHeader(tc.header)
			require.NoError(t, err)
			assert.True(t, sig.Timestamp.Equal(signedAt), "timestamp %v", sig.Timestamp)
			require.Len(t, sig.V1, tc.wantN)
			assert.Equal(t, sigA, hex.EncodeToString(sig.V1[0]))
		})
	}

	invalid := []struct {
		name   string
		header string
		want   error
	}{
		{"empty", "", webhook.ErrNoSignature},
		{"blank", "  \t ", webhook.ErrNoSignature},
		{"no t", "v1=" + sigA, webhook.ErrMalformed},
		{"no v1", "t=" + ts, webhook.ErrMalformed},
		{"only other schemes", "t=" + ts + ",v0=" + sigA, webhook.ErrMalformed},
		{"two t", "t=" + ts + ",t=" + ts + ",v1=" + sigA, webhook.ErrMalformed},
		{"t empty", "t=,v1=" + sigA, webhook.ErrMalformed},
		{"t negative", "t=-" + ts + ",v1=" + sigA, webhook.ErrMalformed},
		{"t plus sign", "t=+" + ts + ",v1=" + sigA, webhook.ErrMalformed},
		{"t zero", "t=0,v1=" + sigA, webhook.ErrMalformed},
		{"t fractional", "t=" + ts + ".5,v1=" + sigA, webhook.ErrMalformed},
		{"t hex", "t=0x10,v1=" + sigA, webhook.ErrMalformed},
		{"t in milliseconds far future", "t=" + ts + "000,v1=" + sigA, webhook.ErrMalformed},
		{"t overflows int64", "t=99999999999999999999,v1=" + sigA, webhook.ErrMalformed},
		{"t with inner space", "t= " + ts + ",v1=" + sigA, webhook.ErrMalformed},
		{"v1 short", "t=" + ts + ",v1=" + sigA[:63], webhook.ErrMalformed},
		{"v1 long", "t=" + ts + ",v1=" + sigA + "0", webhook.ErrMalformed},
		{"v1 not hex", "t=" + ts + ",v1=" + strings.Repeat("g", 64), webhook.ErrMalformed},
		{"v1 empty", "t=" + ts + ",v1=", webhook.ErrMalformed},
		{"nine v1", "t=" + ts + strings.Repeat(",v1="+sigA, webhook.MaxSignatures+1), webhook.ErrMalformed},
		{"part without =", "t=" + ts + ",v1=" + sigA + ",garbage", webhook.ErrMalformed},
		{"empty part", "t=" + ts + ",,v1=" + sigA, webhook.ErrMalformed},
		{"trailing comma", "t=" + ts + ",v1=" + sigA + ",", webhook.ErrMalformed},
		{"empty key", "t=" + ts + ",v1=" + sigA + ",=x", webhook.ErrMalformed},
		{"key with space", "t=" + ts + ",v 1=" + sigA, webhook.ErrMalformed},
		{"semicolons", "t=" + ts + ";v1=" + sigA, webhook.ErrMalformed},
		{"too long", "t=" + ts + ",v1=" + sigA + ",x=" + strings.Repeat("a", webhook.MaxHeaderLen), webhook.ErrMalformed},
		{"a Stripe-style header with another name", "sha256=" + sigA, webhook.ErrMalformed},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := webhook.ParseHeader(tc.header)
			require.ErrorIs(t, err, tc.want)
			assert.Zero(t, sig)
			// The error describes the problem, never the header's contents.
			assert.NotContains(t, err.Error(), sigA)
			// Verify reports the same error, before looking at any signature.
			assert.ErrorIs(t, webhook.Verify(testBody, tc.header, testSecret, signedAt, 0), tc.want)
		})
	}
}

func TestSignatureHeaderRoundTrip(t *testing.T) {
	header := webhook.Sign(testBody, signedAt, testSecret, oldSecret)
	sig, err := webhook.ParseHeader(header)
	require.NoError(t, err)
	assert.Equal(t, header, sig.Header())

	// A non-canonical header parses to the same signature as its canonical form.
	messy := " v1=" + strings.ToUpper(hmacHex(testSecret, signedAt, testBody)) + " , v0=ff ,t=" + fmt.Sprint(signedAt.Unix())
	sig, err = webhook.ParseHeader(messy)
	require.NoError(t, err)
	assert.Equal(t, webhook.Sign(testBody, signedAt, testSecret), sig.Header())
}

func BenchmarkSign(b *testing.B) {
	body := []byte(strings.Repeat("x", 1024))
	for b.Loop() {
		webhook.Sign(body, signedAt, testSecret)
	}
}

func BenchmarkVerify(b *testing.B) {
	body := []byte(strings.Repeat("x", 1024))
	header := webhook.Sign(body, signedAt, testSecret, oldSecret)
	for b.Loop() {
		if err := webhook.Verify(body, header, oldSecret, signedAt, 0); err != nil {
			b.Fatal(err)
		}
	}
}
