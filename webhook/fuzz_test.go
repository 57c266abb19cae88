package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paybridge/paybridge/webhook"
)

// CI runs each fuzz target for a bounded time, e.g.
//
//	go test -run '^$' -fuzz '^FuzzParseHeader$' -fuzztime 30s ./webhook
//	go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime 30s ./webhook
//
// and plain `go test` runs the seed corpus below.

// headerSeeds are valid headers and near misses, so the fuzzer starts at the interesting edges.
func headerSeeds() []string {
	one := webhook.Sign(testBody, signedAt, testSecret)
	two := webhook.Sign(testBody, signedAt, testSecret, oldSecret)
	sig := hmacHex(testSecret, signedAt, testBody)
	ts := fmt.Sprint(signedAt.Unix())
	return []string{
		one,
		two,
		strings.ToUpper(two),
		" t=" + ts + " ,\tv1=" + sig + " ,v0=abc",
		"v1=" + sig + ",t=" + ts,
		"",
		" ",
		"t=",
		"t=" + ts,
		"v1=" + sig,
		"t=" + ts + ",t=" + ts + ",v1=" + sig,
		"t=-1,v1=" + sig,
		"t=0,v1=" + sig,
		"t=253402300800,v1=" + sig,
		"t=99999999999999999999999,v1=" + sig,
		"t=" + ts + ",v1=" + sig[:63],
		"t=" + ts + ",v1=" + sig + "0",
		"t=" + ts + ",v1=" + strings.Repeat("z", 64),
		"t=" + ts + ",,v1=" + sig,
		"t=" + ts + ",v1=" + sig + ",",
		"t=" + ts + ",=,v1=" + sig,
		"t=" + ts + strings.Repeat(",v1="+sig, 9),
		"t=" + ts + ",v1=" + sig + ",x=" + strings.Repeat("a", webhook.MaxHeaderLen),
		"t=1\x00,v1=" + sig,
		"t=" + ts + ",v1=" + sig + ",é=ü",
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range headerSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		sig, err := webhook.ParseHeader(header)
		if err != nil {
			if !errors.Is(err, webhook.ErrMalformed) && !errors.Is(err, webhook.ErrNoSignature) {
				t.Fatalf("ParseHeader error %v is neither ErrMalformed nor ErrNoSignature", err)
			}
			return
		}
		if len(header) > webhook.MaxHeaderLen {
			t.Fatalf("accepted a header of %d bytes", len(header))
		}
		if n := len(sig.V1); n < 1 || n > webhook.MaxSignatures {
			t.Fatalf("accepted %d v1 values", n)
		}
		for i, v := range sig.V1 {
			if len(v) != sha256.Size {
				t.Fatalf("v1[%d] has %d bytes", i, len(v))
			}
		}
		if sig.Timestamp.Unix() < 1 {
			t.Fatalf("accepted timestamp %d", sig.Timestamp.Unix())
		}

		// The canonical form parses back to the same signature.
		again, err := webhook.ParseHeader(sig.Header())
		if err != nil {
			t.Fatalf("the canonical form of an accepted header does not parse: %v", err)
		}
		if !again.Timestamp.Equal(sig.Timestamp) || len(again.V1) != len(sig.V1) {
			t.Fatalf("round trip changed the signature: %v/%d, then %v/%d", sig.Timestamp, len(sig.V1), again.Timestamp, len(again.V1))
		}
		for i := range sig.V1 {
			if !bytes.Equal(sig.V1[i], again.V1[i]) {
				t.Fatalf("round trip changed v1[%d]", i)
			}
		}

		// Re-signing at the parsed time with as many secrets gives the same shape.
		secrets := make([]string, len(sig.V1))
		for i := range secrets {
			secrets[i] = fmt.Sprintf("whsec_fuzz_%d", i)
		}
		resigned, err := webhook.ParseHeader(webhook.Sign(nil, sig.Timestamp, secrets...))
		if err != nil {
			t.Fatalf("a re-signed header does not parse: %v", err)
		}
		if !resigned.Timestamp.Equal(sig.Timestamp) || len(resigned.V1) != len(sig.V1) {
			t.Fatalf("re-signing changed timestamp or v1 count")
		}
	})
}

func FuzzVerify(f *testing.F) {
	for _, s := range headerSeeds() {
		f.Add(s, testBody)
		f.Add(s, []byte{})
	}
	f.Add(webhook.Sign([]byte("other body"), signedAt, testSecret), []byte("other body"))
	f.Add(webhook.Sign(testBody, signedAt.Add(time.Hour), testSecret), testBody)
	now := signedAt.Add(time.Minute)

	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := webhook.Verify(body, header, testSecret, now, 0)
		if err != nil {
			return
		}
		// Success must mean the header holds the real signature of this body at its own,
		// tolerable, timestamp, computed here without the package.
		sig, perr := webhook.ParseHeader(header)
		if perr != nil {
			t.Fatalf("Verify accepted a header ParseHeader rejects: %v", perr)
		}
		if d := sig.Timestamp.Sub(now); d > webhook.DefaultTolerance || d < -webhook.DefaultTolerance {
			t.Fatalf("Verify accepted a timestamp %v away from now", d)
		}
		h := hmac.New(sha256.New, []byte(testSecret))
		fmt.Fprintf(h, "%d.", sig.Timestamp.Unix())
		h.Write(body)
		want := h.Sum(nil)
		for _, v := range sig.V1 {
			if bytes.Equal(v, want) {
				return
			}
		}
		t.Fatalf("Verify accepted a header without the body's real signature")
	})
}
