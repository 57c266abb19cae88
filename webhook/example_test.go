package webhook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/paybridge/paybridge/webhook"
)

// paymentEvents receives paybridge's merchant webhooks. It verifies the signature over the raw
// body, then handles each event id once: paybridge delivers at least once, so the same event may
// arrive again after a timeout or a restart.
type paymentEvents struct {
	secret string // the merchant's webhook secret, whsec_...

	mu   sync.Mutex
	seen map[string]bool // in production: a table with a unique key on the event id
}

func (h *paymentEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the body exactly as sent: the signature covers these bytes, not re-encoded JSON.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	err = webhook.Verify(body, r.Header.Get(webhook.Header), h.secret, time.Now(), webhook.DefaultTolerance)
	switch {
	case errors.Is(err, webhook.ErrNoSignature):
		http.Error(w, "missing signature", http.StatusUnauthorized)
		return
	case err != nil:
		// ErrMalformed, ErrMismatch (forged, or the wrong secret) or ErrTimestamp (replayed).
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}

	var event struct {
		ID   string          `json:"id"` // vp_evt_..., also in the X-VonPay-Event-Id header
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"` // the session object
	}
	if err := json.Unmarshal(body, &event); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	dup := h.seen[event.ID]
	h.seen[event.ID] = true
	h.mu.Unlock()
	if dup {
		fmt.Println("duplicate", event.ID, "acknowledged again")
	} else {
		fmt.Println("handling", event.Type, event.ID) // e.g. mark the order paid
	}
	// Any 2xx tells paybridge the event arrived; anything else makes it retry.
	w.WriteHeader(http.StatusOK)
}

func ExampleVerify() {
	const secret = "whsec_example_secret"
	srv := httptest.NewServer(&paymentEvents{secret: secret, seen: map[string]bool{}})
	defer srv.Close()

	// What paybridge sends; the same event twice, as can happen with at-least-once delivery.
	body := []byte(`{"id":"vp_evt_3x4mpl3","type":"session.succeeded","created":1773500966,"livemode":false,"data":{"id":"vp_cs_test_0123456789abcdef","status":"succeeded"}}`)
	send := func(signature string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhook.Header, signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println("->", resp.StatusCode)
	}
	send(webhook.Sign(body, time.Now(), secret))
	send(webhook.Sign(body, time.Now(), secret))
	send(webhook.Sign(body, time.Now(), "whsec_not_the_secret"))
	send(webhook.Sign(body, time.Now().Add(-time.Hour), secret))
	// Output:
	// handling session.succeeded vp_evt_3x4mpl3
	// -> 200
	// duplicate vp_evt_3x4mpl3 acknowledged again
	// -> 200
	// -> 401
	// -> 401
}
