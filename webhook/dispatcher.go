package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/internal/backoff"
)

// Defaults of DispatcherOptions.
const (
	DefaultRetryWindow    = 24 * time.Hour
	DefaultInitialBackoff = 30 * time.Second
	DefaultMaxBackoff     = time.Hour
	DefaultConcurrency    = 4
	DefaultBatchSize      = 32
	DefaultPollInterval   = time.Second
	DefaultHTTPTimeout    = 10 * time.Second
	// DefaultRetention is how long events are kept (events.retention).
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultPurgeInterval is how often Run deletes events older than the retention.
	DefaultPurgeInterval = time.Hour
)

// Headers of a delivery besides Header.
const (
	// EventIDHeader carries the event id (vp_evt_...), also the body's "id": receivers
	// deduplicate on it.
	EventIDHeader = "X-VonPay-Event-Id"
	// UserAgent identifies paybridge's deliveries.
	UserAgent = "paybridge-webhooks/1"
)

// Bounds on what a failed delivery keeps of the receiver's answer.
const (
	maxErrorBody = 200      // bytes of the response body quoted in LastError
	maxPeek      = 4 << 10  // bytes read for it, so a secret cut at byte 200 is still redacted whole
	maxDrain     = 64 << 10 // bytes read from a response so the connection can be reused
)

// DispatcherOptions are the dependencies and settings of a Dispatcher. Store and Merchants are
// required; zero values elsewhere mean the documented default.
type DispatcherOptions struct {
	Store     bridge.OutboxStore
	Merchants bridge.MerchantDirectory
	Clock     bridge.Clock // nil: bridge.SystemClock
	Logger    *slog.Logger // nil: discard
	// HTTPClient sends deliveries. nil: a client with a DefaultHTTPTimeout timeout that does not
	// follow redirects (a 3xx is a failed delivery, so a signed body never lands somewhere the
	// merchant did not configure).
	HTTPClient *http.Client

	RetryWindow    time.Duration // since CreatedAt; a failure after it abandons the message (24h)
	InitialBackoff time.Duration // wait after the first failure; doubles per failure (30s)
	MaxBackoff     time.Duration // cap on the wait, before jitter (1h)
	Concurrency    int           // deliveries in flight at once (4)
	BatchSize      int           // due messages read per round (32)
	PollInterval   time.Duration // how often Run starts a round (1s)
	// Retention is how long an event is kept once its delivery has ended (30 days); Run purges
	// older ones every PurgeInterval (1h). A negative Retention keeps every event.
	Retention     time.Duration
	PurgeInterval time.Duration

	// PreviousSecrets, if set, returns a merchant's earlier signing secrets, still honoured by
	// its receiver during a roll. Each delivery carries a v1 for Webhook.Secret first, then one
	// for Webhook.PreviousSecret if set, then one per secret this returns (at most
	// MaxSignatures in all).
	PreviousSecrets func(merchantID string) []string
	// Random returns a number in [0, 1) for the backoff jitter. nil: math/rand/v2.Float64.
	Random func() float64
}

// Dispatcher delivers the merchant webhooks in the outbox: at least once, signed at send time,
// retried with jittered exponential backoff until the retry window closes. Messages reach the
// outbox in the same transaction as the session transition they report, so a crash between the
// two loses nothing; a crash between a receiver's 2xx and the store recording it sends the
// message again, which is why every delivery carries the event id. It is safe for concurrent
// use. On a store several nodes share (a bridge.OutboxClaimer), each due message is leased to
// one node's Dispatcher, and a dead node's leases lapse to the others; on bbolt a single node
// owns the file.
type Dispatcher struct {
	store     bridge.OutboxStore
	merchants bridge.MerchantDirectory
	clock     bridge.Clock
	log       *slog.Logger
	client    *http.Client
	previous  func(string) []string
	random    func() float64

	retryWindow    time.Duration
	initialBackoff time.Duration
	maxBackoff     time.Duration
	concurrency    int
	batchSize      int
	pollInterval   time.Duration
	retention      time.Duration
	purgeInterval  time.Duration

	mu      sync.Mutex
	claimed map[string]bool // ids of messages being delivered now

	delivered, failed, abandoned atomic.Uint64 // attempts by result, for /metrics
}

// DeliveryStats counts a Dispatcher's delivery attempts since it started, by result.
type DeliveryStats struct {
	Delivered uint64 // a 2xx
	Failed    uint64 // failed and rescheduled
	Abandoned uint64 // failed and given up on (retry window over, or 410 Gone)
}

// Deliveries returns the attempts made so far, by result.
func (d *Dispatcher) Deliveries() DeliveryStats {
	return DeliveryStats{Delivered: d.delivered.Load(), Failed: d.failed.Load(), Abandoned: d.abandoned.Load()}
}

// NewDispatcher returns a Dispatcher with opts' defaults filled in. It panics if Store or
// Merchants is nil, a wiring mistake.
func NewDispatcher(opts DispatcherOptions) *Dispatcher {
	if opts.Store == nil || opts.Merchants == nil {
		panic("webhook: NewDispatcher needs Store and Merchants")
	}
	d := &Dispatcher{
		store: opts.Store, merchants: opts.Merchants, clock: opts.Clock, log: opts.Logger,
		client: opts.HTTPClient, previous: opts.PreviousSecrets, random: opts.Random,
		retryWindow:    orDefault(opts.RetryWindow, DefaultRetryWindow),
		initialBackoff: orDefault(opts.InitialBackoff, DefaultInitialBackoff),
		maxBackoff:     orDefault(opts.MaxBackoff, DefaultMaxBackoff),
		pollInterval:   orDefault(opts.PollInterval, DefaultPollInterval),
		retention:      opts.Retention,
		purgeInterval:  orDefault(opts.PurgeInterval, DefaultPurgeInterval),
		concurrency:    opts.Concurrency,
		batchSize:      opts.BatchSize,
		claimed:        make(map[string]bool),
	}
	if d.clock == nil {
		d.clock = bridge.SystemClock{}
	}
	if d.retention == 0 {
		d.retention = DefaultRetention
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.client == nil {
		d.client = &http.Client{
			Timeout:       DefaultHTTPTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if d.random == nil {
		d.random = rand.Float64
	}
	if d.concurrency <= 0 {
		d.concurrency = DefaultConcurrency
	}
	if d.batchSize <= 0 {
		d.batchSize = DefaultBatchSize
	}
	return d
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Run delivers due messages every PollInterval, starting at once (so a restarted process sends
// what was pending), and purges events past the retention every PurgeInterval, until ctx ends;
// then it returns nil. A failed round is logged and the next one tried.
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(d.pollInterval)
	defer t.Stop()
	var lastPurge time.Time
	for {
		if _, _, err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.log.ErrorContext(ctx, "webhook delivery round", "err", err)
		}
		if now := d.clock.Now(); now.Sub(lastPurge) >= d.purgeInterval {
			lastPurge = now
			if _, err := d.PurgeEvents(ctx); err != nil && ctx.Err() == nil {
				d.log.WarnContext(ctx, "purge events", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// PurgeEvents deletes the events created more than Retention ago whose delivery has ended, and
// returns how many.
func (d *Dispatcher) PurgeEvents(ctx context.Context) (int, error) {
	if d.retention < 0 {
		return 0, nil
	}
	n, err := d.store.PurgeEvents(ctx, d.clock.Now().Add(-d.retention))
	if err != nil {
		return 0, fmt.Errorf("webhook: purge events: %w", err)
	}
	if n > 0 {
		d.log.InfoContext(ctx, "purged events past their retention", "count", n, "retention", d.retention.String())
	}
	return n, nil
}

// DeliverDue runs one round: it reads up to BatchSize messages due by the clock, delivers them
// with at most Concurrency in flight, and returns when all are done, with how many were
// delivered and how many attempts failed (abandoned ones included). Messages already being
// delivered by another call are skipped. err reports store failures; a message whose outcome
// could not be recorded stays due and is sent again.
func (d *Dispatcher) DeliverDue(ctx context.Context) (delivered, failed int, err error) {
	now := d.clock.Now()
	read := d.store.DueOutbox
	if c, ok := d.store.(bridge.OutboxClaimer); ok {
		// Several nodes share the outbox: each message is leased to the node delivering it.
		read = c.ClaimOutbox
	}
	due, err := read(ctx, now, d.batchSize)
	if err != nil {
		return 0, 0, fmt.Errorf("webhook: read due outbox: %w", err)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, d.concurrency)
	)
	for _, m := range due {
		if ctx.Err() != nil {
			break
		}
		if !d.claim(m.ID) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			d.release(m.ID)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem; d.release(m.ID) }()
			res, err := d.deliver(ctx, m.ID, now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case res == outcomeDelivered:
				delivered++
			case res == outcomeFailed:
				failed++
			}
		})
	}
	wg.Wait()
	return delivered, failed, errors.Join(errs...)
}

// claim marks id as in flight, or reports false if it already is.
func (d *Dispatcher) claim(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.claimed[id] {
		return false
	}
	d.claimed[id] = true
	return true
}

func (d *Dispatcher) release(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.claimed, id)
}

// outcome is what one delivery came to.
type outcome int

const (
	outcomeSkipped   outcome = iota // no longer due, or the round was cancelled
	outcomeDelivered                // a 2xx, recorded
	outcomeFailed                   // recorded as a failed attempt (rescheduled or abandoned)
)

// attempt is the result of one POST, in words safe to store and log.
type attempt struct {
	status  int    // the receiver's HTTP status; 0 when no response came
	problem string // why it failed, for logs: no body, URL or secret; "" on a 2xx
	excerpt string // the start of the receiver's body, redacted, for LastError only
}

func (a attempt) ok() bool { return a.status >= 200 && a.status < 300 }

// deliver sends message id once and records the outcome. It re-reads the message after the
// claim, so one that another round finished in the meantime is not sent again.
func (d *Dispatcher) deliver(ctx context.Context, id string, roundStart time.Time) (outcome, error) {
	m, err := d.store.OutboxMessage(ctx, id)
	if err != nil && ctx.Err() != nil {
		return outcomeSkipped, nil // the round was cancelled before this message started
	}
	if err != nil {
		return outcomeSkipped, fmt.Errorf("webhook: read outbox message %s: %w", id, err)
	}
	if !m.Pending() || m.NextAttemptAt.After(roundStart) {
		return outcomeSkipped, nil
	}
	started := d.clock.Now()
	a := d.post(ctx, m)
	took := d.clock.Now().Sub(started)
	if !a.ok() && ctx.Err() != nil {
		// The round was cancelled (shutdown): not the receiver's fault, so not an attempt. The
		// message stays due and the next process sends it.
		return outcomeSkipped, nil
	}
	// The receiver has answered; record that even if ctx ends now, or a delivered message
	// would be sent again for nothing.
	ctx = context.WithoutCancel(ctx)
	now := d.clock.Now()
	var (
		changed   bool
		abandoned string
	)
	updated, err := d.store.UpdateOutbox(ctx, id, func(m *bridge.OutboxMessage) error {
		changed, abandoned = m.Pending(), "" // set afresh should a store ever run fn twice
		if !changed {
			return nil
		}
		m.Attempts++
		if a.ok() {
			m.DeliveredAt, m.LastError = now, ""
			m.RecordDelivery(bridge.DeliveryAttempt{At: started, Status: a.status, Duration: took})
			return nil
		}
		m.LastError = a.problem
		if a.excerpt != "" {
			m.LastError += ": " + a.excerpt
		}
		m.RecordDelivery(bridge.DeliveryAttempt{At: started, Status: a.status, Error: m.LastError, Duration: took})
		switch {
		case a.status == http.StatusGone:
			// The receiver says the endpoint is gone for good (Stripe's convention too):
			// retrying for a day would only load it.
			abandoned = "receiver answered 410 Gone"
		case now.Sub(m.RetryWindowStart()) >= d.retryWindow:
			abandoned = "retry window of " + d.retryWindow.String() + " passed"
		}
		if abandoned != "" {
			m.AbandonedAt = now
			return nil
		}
		// A resend starts the backoff again from its first step.
		m.NextAttemptAt = now.Add(d.backoff(m.Attempts - m.RetryBase))
		return nil
	})
	if err != nil {
		return outcomeSkipped, fmt.Errorf("webhook: record delivery of %s: %w", id, err)
	}
	if !changed {
		return outcomeSkipped, nil
	}
	attrs := []any{"event", m.ID, "type", m.Type, "merchant", m.MerchantID, "attempts", updated.Attempts}
	if a.status != 0 {
		attrs = append(attrs, "status", a.status)
	}
	switch {
	case a.ok():
		d.delivered.Add(1)
		d.log.InfoContext(ctx, "webhook delivered", attrs...)
		return outcomeDelivered, nil
	case abandoned != "":
		d.abandoned.Add(1)
		d.log.ErrorContext(ctx, "webhook abandoned", append(attrs, "problem", a.problem, "reason", abandoned)...)
	default:
		d.failed.Add(1)
		d.log.WarnContext(ctx, "webhook delivery failed", append(attrs, "problem", a.problem, "nextAttemptAt", updated.NextAttemptAt)...)
	}
	return outcomeFailed, nil
}

// post sends m to its merchant's endpoint, signed now.
func (d *Dispatcher) post(ctx context.Context, m *bridge.OutboxMessage) attempt {
	merchant, err := d.merchants.Merchant(ctx, m.MerchantID)
	switch {
	case errors.Is(err, bridge.ErrNotFound):
		return attempt{problem: "merchant is no longer configured"}
	case err != nil:
		return attempt{problem: "merchant lookup failed"}
	case merchant.Webhook.URL == "":
		return attempt{problem: "merchant has no webhook URL"}
	case merchant.Webhook.Secret == "":
		return attempt{problem: "merchant has no webhook secret"}
	}
	secrets := d.secrets(merchant)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, merchant.Webhook.URL, bytes.NewReader(m.Payload))
	if err != nil {
		// The message of a URL parse error quotes the URL, which may hold a token.
		return attempt{problem: "merchant webhook URL is invalid"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(EventIDHeader, m.ID)
	signature := Sign(m.Payload, d.clock.Now(), secrets...)
	req.Header.Set(Header, signature)

	resp, err := d.client.Do(req)
	if err != nil {
		return attempt{problem: transportProblem(err)}
	}
	defer resp.Body.Close()
	a := attempt{status: resp.StatusCode}
	if !a.ok() {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, maxPeek))
		a.problem = fmt.Sprintf("receiver answered %d", resp.StatusCode)
		// A receiver that echoes the request must not get the signature into LastError either.
		a.excerpt = excerpt(head, append(secrets, signatureValues(signature)...)...)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	return a
}

// secrets returns the merchant's current secret, then its Webhook.PreviousSecret, then those
// PreviousSecrets names (empty and repeated ones dropped), at most MaxSignatures in all.
func (d *Dispatcher) secrets(m *bridge.Merchant) []string {
	out := []string{m.Webhook.Secret}
	previous := []string{m.Webhook.PreviousSecret}
	if d.previous != nil {
		previous = append(previous, d.previous(m.ID)...)
	}
	for _, s := range previous {
		if len(out) == MaxSignatures {
			break
		}
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// backoff returns the wait after a message's attempts-th failed attempt: paybridge's one backoff
// rule (internal/backoff), from InitialBackoff up to MaxBackoff.
func (d *Dispatcher) backoff(attempts int) time.Duration {
	return backoff.Wait(attempts, d.initialBackoff, d.maxBackoff, d.random())
}

// signatureValues returns the header value and each hex v1 in it.
func signatureValues(header string) []string {
	out := []string{header}
	for part := range strings.SplitSeq(header, ",") {
		if v, ok := strings.CutPrefix(part, "v1="); ok {
			out = append(out, v)
		}
	}
	return out
}

// transportProblem describes a failed round trip without the URL, which may carry a credential
// in its query.
func transportProblem(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		if uerr.Timeout() {
			return "request timed out"
		}
		err = uerr.Err
	}
	return "request failed: " + truncate(err.Error(), maxErrorBody)
}

// excerpt returns the start of a receiver's body as one line of printable text with every
// secret (and the signature, should the receiver echo headers) replaced.
func excerpt(body []byte, secrets ...string) string {
	s := strings.ToValidUTF8(string(body), "")
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	return truncate(strings.Join(strings.Fields(s), " "), maxErrorBody)
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
