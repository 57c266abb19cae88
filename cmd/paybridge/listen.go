package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/client"
	"github.com/paybridge/paybridge/internal/backoff"
	"github.com/paybridge/paybridge/webhook"
)

// listenSlack is how far behind the newest event it has seen `listen` keeps looking: an event
// committed a little after a newer one (two nodes, or two transactions racing) is still found.
const listenSlack = time.Minute

// listenOptions are the settings of one `paybridge listen` run.
type listenOptions struct {
	api, key, forwardTo, since, secret string
	poll                               time.Duration
	retries                            int
	retryWait                          time.Duration
}

// runListen is `paybridge listen`: like `stripe listen`, it polls a running paybridge for the
// merchant's new events and forwards each, signed, to a local URL.
func runListen(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("listen", stderr)
	var o listenOptions
	cfgPath := fs.String("config", "", "a paybridge config file: --api defaults to its publicBaseUrl")
	fs.StringVar(&o.api, "api", "", "paybridge's base URL (default: --config's publicBaseUrl, else http://127.0.0.1:8080)")
	fs.StringVar(&o.key, "api-key", "", "a secret key (vp_sk_...) of the merchant and mode to listen to (default: $PAYBRIDGE_API_KEY)")
	fs.StringVar(&o.forwardTo, "forward-to", "", "the URL to POST each event to (required)")
	fs.StringVar(&o.since, "since-event", "", "forward the events after this one (vp_evt_...) too, instead of only those from now on")
	fs.StringVar(&o.secret, "webhook-secret", "", "the signing secret (whsec_...) to sign forwarded events with (default: a new one, printed)")
	fs.DurationVar(&o.poll, "poll-interval", time.Second, "how often to ask paybridge for new events")
	fs.IntVar(&o.retries, "retries", 3, "how many times to retry a forward that fails")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: paybridge listen --forward-to URL [--api URL | --config F] [--api-key vp_sk_...] [--since-event vp_evt_...] [--webhook-secret whsec_...]")
		fmt.Fprintln(fs.Output(), "Forwards the merchant's events, signed as paybridge signs its webhooks, to a local URL.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if o.forwardTo == "" {
		return errors.New("listen: --forward-to is required (the URL to send events to)")
	}
	if o.key == "" {
		o.key = getenv("PAYBRIDGE_API_KEY")
	}
	switch {
	case o.key == "":
		return errors.New("listen: no API key: set PAYBRIDGE_API_KEY or --api-key to a secret key (vp_sk_...)")
	case !strings.HasPrefix(o.key, "vp_sk_"):
		return errors.New("listen: the API key must be a secret key (vp_sk_...)")
	}
	if o.api == "" && *cfgPath != "" {
		cfg, err := loadConfig(*cfgPath, getenv)
		if err != nil {
			return err
		}
		o.api = cfg.PublicBaseURL
	}
	if o.api == "" {
		o.api = "http://127.0.0.1:8080"
	}
	if o.secret == "" {
		o.secret = "whsec_" + bridge.RandomBase62(32)
	}
	o.retryWait = 500 * time.Millisecond
	return listen(ctx, o, stdout, stderr)
}

// listener is one run's state: which events it has seen (forwarded, or there before it
// started), and how far back it still looks.
type listener struct {
	o      listenOptions
	pb     *client.Client
	http   *http.Client
	out    io.Writer
	seen   map[string]time.Time // event id → created
	floor  time.Time            // events created before this are never looked at
	newest time.Time
}

func listen(ctx context.Context, o listenOptions, stdout, stderr io.Writer) error {
	l := &listener{o: o, pb: client.New(o.api, o.key), out: stdout, seen: map[string]time.Time{},
		http: &http.Client{Timeout: 30 * time.Second}}
	start, err := l.start(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdout, "Ready! Forwarding %s's events to %s\n", o.api, o.forwardTo)
	fmt.Fprintf(stdout, "Your webhook signing secret is %s\n", o.secret)
	l.forward(ctx, start)
	t := time.NewTicker(o.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fresh, err := l.poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The client has retried what it safely can; say so, and ask again next tick.
			fmt.Fprintf(stderr, "listen: reading events: %v\n", err)
			continue
		}
		l.forward(ctx, fresh)
	}
}

// start marks the events already there as seen, except those after --since-event, which it
// returns to be forwarded.
func (l *listener) start(ctx context.Context) ([]*client.Event, error) {
	boundary := ""
	if l.o.since != "" {
		ev, err := l.pb.Events.Get(ctx, l.o.since)
		if err != nil {
			return nil, fmt.Errorf("--since-event %s: %w", l.o.since, err)
		}
		boundary, l.floor, l.newest = ev.ID, ev.CreatedAt.Add(-listenSlack), ev.CreatedAt
	} else {
		page, err := l.pb.Events.ListPage(ctx, &client.EventListParams{Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(page.Data) == 0 {
			return nil, nil // nothing yet: everything to come is new
		}
		l.floor, l.newest = page.Data[0].CreatedAt.Add(-listenSlack), page.Data[0].CreatedAt
	}
	var fresh []*client.Event
	before := boundary == "" // from now: every event there is "before"
	for ev, err := range l.pb.Events.List(ctx, &client.EventListParams{Limit: 100}) {
		if err != nil {
			return nil, err
		}
		if ev.CreatedAt.Before(l.floor) {
			break
		}
		if ev.ID == boundary {
			before = true
		}
		if before {
			l.seen[ev.ID] = ev.CreatedAt
		} else {
			fresh = append(fresh, ev)
		}
	}
	return fresh, nil
}

// poll returns the events not seen yet, newest first.
func (l *listener) poll(ctx context.Context) ([]*client.Event, error) {
	var fresh []*client.Event
	for ev, err := range l.pb.Events.List(ctx, &client.EventListParams{Limit: 100}) {
		if err != nil {
			return nil, err
		}
		if !l.floor.IsZero() && ev.CreatedAt.Before(l.floor) {
			break
		}
		if _, ok := l.seen[ev.ID]; !ok {
			fresh = append(fresh, ev)
		}
	}
	return fresh, nil
}

// forward sends events (newest first, as listed) oldest first, each once, and moves the window.
func (l *listener) forward(ctx context.Context, events []*client.Event) {
	for _, ev := range slices.Backward(events) {
		if ctx.Err() != nil {
			return
		}
		l.seen[ev.ID] = ev.CreatedAt
		if ev.CreatedAt.After(l.newest) {
			l.newest = ev.CreatedAt
		}
		fmt.Fprintf(l.out, "%s %s %s -> %s\n", ev.CreatedAt.UTC().Format(time.RFC3339), ev.Type, ev.ID, l.send(ctx, ev))
	}
	if !l.newest.IsZero() {
		l.floor = l.newest.Add(-listenSlack)
		for id, created := range l.seen {
			if created.Before(l.floor) {
				delete(l.seen, id)
			}
		}
	}
}

// send POSTs ev's webhook body to the forward URL, signed now with the run's secret and with the
// headers of a real delivery, retrying a failure with the dispatcher's backoff; it returns the
// outcome in words for the event's line.
func (l *listener) send(ctx context.Context, ev *client.Event) string {
	var outcome string
	for attempt := 0; ; attempt++ {
		status, err := l.post(ctx, ev)
		switch {
		case err == nil && status >= 200 && status < 300:
			return fmt.Sprint(status)
		case err != nil:
			outcome = "error: " + err.Error()
		default:
			outcome = fmt.Sprint(status)
		}
		if attempt == l.o.retries || ctx.Err() != nil {
			if attempt > 0 {
				outcome += fmt.Sprintf(" (gave up after %d attempts)", attempt+1)
			}
			return outcome
		}
		wait := backoff.Wait(attempt+1, l.o.retryWait, 8*l.o.retryWait, rand.Float64())
		select {
		case <-ctx.Done():
			return outcome
		case <-time.After(wait):
		}
	}
}

func (l *listener) post(ctx context.Context, ev *client.Event) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.o.forwardTo, bytes.NewReader(ev.Data))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", webhook.UserAgent)
	req.Header.Set(webhook.EventIDHeader, ev.ID)
	req.Header.Set(webhook.Header, webhook.Sign(ev.Data, time.Now(), l.o.secret))
	resp, err := l.http.Do(req)
	if err != nil {
		var uerr interface{ Unwrap() error }
		if errors.As(err, &uerr) && uerr.Unwrap() != nil {
			err = uerr.Unwrap() // the URL is the user's own; the cause is what matters
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}
