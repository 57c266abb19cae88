package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/config"
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
	"github.com/paybridge/paybridge/vcc/vccstub"
)

// demoAgentID is the agent the demo's keys, curl line and agent desktop use.
const demoAgentID = "demo-agent"

// demoVCCWebhookClientID is the client id the stub VCC presents to paybridge's /oauth/token.
const demoVCCWebhookClientID = "demo-vcc-webhook"

// demoAnnouncementType is what `demo --announce` has the stub PCI Pal's PostMessage step post (as
// "type", beside the provider session id) and the demo merchant's frameAnnouncement expect.
const demoAnnouncementType = "payment-page-ready"

// demoClockKey carries the clock paybridge runs on in an in-process demo: tests move paybridge's
// time (an attempt's age, the browser restart ration) without waiting. The stubs keep real time.
type demoClockKey struct{}

// withDemoClock returns ctx whose demo runs paybridge on clock.
func withDemoClock(ctx context.Context, clock bridge.Clock) context.Context {
	return context.WithValue(ctx, demoClockKey{}, clock)
}

// demoInfo is what `demo --info FILE` writes: everything a script or test needs to drive it.
type demoInfo struct {
	BaseURL        string `json:"baseUrl"`
	SecretKey      string `json:"secretKey"`
	PublishableKey string `json:"publishableKey"`
	MerchantID     string `json:"merchantId"`
	AgentID        string `json:"agentId"`
	VCCStubURL     string `json:"vccStubUrl"`
	PCIPalStubURL  string `json:"pcipalStubUrl"`
	WebhooksURL    string `json:"webhooksUrl"` // the demo merchant's webhook receiver, which lists what it got
	// DataDir is --data, where state outlives the run; empty for a temporary directory.
	DataDir string `json:"dataDir,omitempty"`
	// KeysReused says the keys come from an earlier run with the same --data.
	KeysReused bool `json:"keysReused"`
}

// runDemo is `paybridge demo`: both stubs and the bridge on loopback with a sandbox merchant and
// fresh test keys; no configuration needed.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	addr := fs.String("addr", config.DefaultListen, "address for paybridge (port 0 picks a free one)")
	dataDir := fs.String("data", "", "directory for durable state (default: a temporary one, removed at exit)")
	infoFile := fs.String("info", "", "write base URL, keys and stub URLs to this file as JSON")
	verbose := fs.Bool("verbose", false, "log every request (info level) instead of warnings only")
	stubAddr := fs.String("stub-addr", "127.0.0.1:0", "address for the stub VCC and PCI Pal (port 0 picks a free one)")
	pollInterval := fs.Duration("poll-interval", 0, "how often paybridge asks the stub VCC for outcomes (default 1s)")
	store := fs.String("store", "", "a postgres:// URL: keep state in PostgreSQL, as several nodes do, instead of bbolt under --data")
	vccWebhook := fs.Bool("vcc-webhook", true, "have the stub VCC post outcomes to paybridge's /v1/webhooks/vcc, authenticated with OAuth client credentials as VCC does")
	announce := fs.Bool("announce", false, `switch the stub PCI Pal's PostMessage flow step on ({"type":"`+demoAnnouncementType+`","sessionId":...}) and give the merchant the matching frameAnnouncement, so the widget can tell a refused frame`)
	providerLifetime := fs.Duration("provider-lifetime", 0, "paybridge's provider.sessionLifetime: an attempt older than this is renewed before it is shown again (default 15m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *pollInterval != 0 && *pollInterval < 100*time.Millisecond {
		return fmt.Errorf("demo: --poll-interval must be at least 100ms, got %s", *pollInterval)
	}
	if *providerLifetime < 0 || (*providerLifetime != 0 && *providerLifetime < time.Second) {
		return fmt.Errorf("demo: --provider-lifetime must be at least 1s, got %s", *providerLifetime)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := newLogger(stderr, "text", level)

	kept := *dataDir != ""
	if !kept {
		tmp, err := os.MkdirTemp("", "paybridge-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dataDir = tmp
	}
	stubs, err := startStubs(*stubAddr, bridge.SystemClock{}, logger)
	if err != nil {
		return err
	}
	defer stubs.close()
	if *announce {
		// Like a PCI Pal flow's PostMessage step: to "*", since the desktop has two origins here
		// (127.0.0.1 and localhost); the data holds nothing secret.
		step := &pcipalstub.PostMessage{TargetOrigin: "*",
			Data: json.RawMessage(`{"type":"` + demoAnnouncementType + `","sessionId":"` + pcipalstub.SessionIDPlaceholder + `"}`)}
		if err := stubs.pcipal.SetPostMessage(step); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (try --addr 127.0.0.1:0)", *addr, err)
	}
	cfg := config.Demo(stubs.baseURL())
	cfg.Listen, cfg.PublicBaseURL, cfg.DocsBaseURL = ln.Addr().String(), "", ""
	cfg.DataDir, cfg.Store.URL = *dataDir, *store
	if *pollInterval > 0 {
		cfg.Provider.PollInterval = *pollInterval
	}
	if *providerLifetime > 0 {
		cfg.Provider.SessionLifetime = *providerLifetime
	}
	if *announce {
		// The origin defaults to the iframe URL's, the stub's; extra keys (sessionId) are allowed.
		cfg.Merchants[0].FrameAnnouncement = &config.FrameAnnouncement{Data: map[string]any{"type": demoAnnouncementType}}
	}
	cfg.Log = config.Log{Level: level.String(), Format: "text"}
	cfg.ApplyDefaults()
	_, port, _ := net.SplitHostPort(cfg.Listen)
	// The demo agent desktop is served by paybridge itself, so its own origins may use the
	// publishable key.
	cfg.Merchants[0].AllowedOrigins = []string{cfg.PublicBaseURL, "http://localhost:" + port}
	// VCC authenticates its webhook calls with client credentials against paybridge's
	// /oauth/token: the merchant holds them, the stub presents them. Fresh each run.
	hook := config.VCCWebhook{ClientID: demoVCCWebhookClientID, ClientSecret: bridge.RandomBase62(32)}
	if *vccWebhook {
		cfg.Merchants[0].VCCWebhook = hook
	}
	// The keys and the webhook secret of an earlier run with this --data, sealed with the master
	// key kept there: a run adds no key while the earlier ones still work.
	master, err := masterKey(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	keyring, err := bridge.NewKeyring(master)
	if err != nil {
		ln.Close()
		return err
	}
	state, err := loadDemoState(cfg.DataDir, keyring)
	if err != nil {
		logger.Warn("demo: starting with new keys", "err", err)
	}
	if state.WebhookSecret == "" {
		state.WebhookSecret = "whsec_" + bridge.RandomBase62(32)
	}
	// The merchant's webhooks go to the demo's own receiver, which verifies them as a merchant's
	// backend would.
	cfg.Merchants[0].Webhook = config.Webhook{URL: strings.TrimSuffix(cfg.PublicBaseURL, "/") + demoWebhookPath, Secret: state.WebhookSecret}
	clock, _ := ctx.Value(demoClockKey{}).(bridge.Clock)
	desk := newDemoDesk(logger, newDemoWebhooks(state.WebhookSecret, clock))
	a, err := newApp(cfg, appOptions{logger: logger, clock: clock, listener: ln, demo: func(*app) http.Handler { return desk }})
	if err != nil {
		ln.Close()
		return err
	}
	if *vccWebhook {
		stubs.vcc.SetWebhook(&vccstub.WebhookTarget{URL: a.baseURL() + "/v1/webhooks/vcc", TokenURL: a.baseURL() + "/oauth/token",
			ClientID: hook.ClientID, ClientSecret: hook.ClientSecret})
	}
	merchant := cfg.Merchants[0].ID
	reused, err := ensureDemoKeys(ctx, a.keys, merchant, &state)
	if err != nil {
		return err
	}
	if err := saveDemoState(cfg.DataDir, keyring, state); err != nil {
		return fmt.Errorf("demo: keep the keys in %s: %w", cfg.DataDir, err)
	}
	info := demoInfo{BaseURL: a.baseURL(), SecretKey: state.SecretKey, PublishableKey: state.PublishableKey, MerchantID: merchant,
		AgentID: demoAgentID, VCCStubURL: stubs.baseURL(), PCIPalStubURL: stubs.pcipal.BaseURL(),
		WebhooksURL: a.baseURL() + demoWebhookPath, KeysReused: reused}
	if kept {
		info.DataDir = cfg.DataDir
	}
	desk.configure(info, cfg.Merchants[0].AllowedOrigins, a.server, cfg.Provider.PollInterval)
	if *infoFile != "" {
		if err := writeJSONFile(*infoFile, info); err != nil {
			return err
		}
	}
	printDemoBanner(stdout, info, *announce)
	return a.run(ctx)
}

// printDemoBanner tells a newcomer what runs where, with the keys and commands to try. The control
// API's curl lines print a newline after the answer (-w): the stub VCC answers as VCC does,
// without one, and the shell's prompt would start on the answer's line.
func printDemoBanner(w io.Writer, in demoInfo, announce bool) {
	fmt.Fprintf(w, `
paybridge demo is running (test mode, stub VCC and PCI Pal; nothing leaves this machine)

  paybridge:         %[1]s
  error reference:   %[1]s/docs/error-codes
  merchant / agent:  %[4]s / %[5]s
  secret key:        %[2]s
  publishable key:   %[3]s
  webhooks received: %[8]s

Open the agent desktop and take a test payment (it guides you):

  %[1]s/demo/agent

Or create a payment session for the agent from your own backend; the desktop shows it at once:

  curl -s -X POST %[1]s/v1/sessions \
    -H 'Authorization: Bearer %[2]s' \
    -H 'Content-Type: application/json' \
    -d '{"agentId":"%[5]s","amount":1240,"currency":"GBP","reference":"INV-1001"}'

and play the customer with the stub VCC's control API:

  curl -s -w '\n' -X POST %[6]s/_control/sessions/<vcc.sessionGuid>/complete -d '{"decision":"ACCEPT"}'
  curl -s -w '\n' -X POST %[6]s/_control/sessions/<vcc.sessionGuid>/complete -d '{"paymentResultData":{"ApprovalStatus":"1","RespCode":"00","TxRefNum":"..."}}'

Each session's final event reaches the demo merchant's webhook endpoint, signed; the demo
verifies it with the webhook package and lists it at %[8]s
(curl -s -H 'Accept: application/json' %[8]s for JSON).

%[9]s

%[7]s

Press Ctrl-C to stop.
`, in.BaseURL, in.SecretKey, in.PublishableKey, in.MerchantID, in.AgentID, in.VCCStubURL, announcementNote(in, announce),
		in.WebhooksURL, persistenceNote(in))
}

// persistenceNote says what a later run finds again, and what it does not.
func persistenceNote(in demoInfo) string {
	if in.DataDir == "" {
		return `Nothing is kept: the demo's state is in a temporary directory, removed when it stops. Run it
with --data DIR to keep its keys, sessions and webhook events for the next run.`
	}
	keys := "New keys, kept"
	if in.KeysReused {
		keys = "Keys reused from an earlier run, kept"
	}
	return keys + ` in ` + in.DataDir + ` (sealed with its master.key), with paybridge's
sessions and webhook events: the next run with --data ` + in.DataDir + ` finds them again.
Not kept: the stub VCC's and PCI Pal's sessions (the stubs start empty on every run, so a payment
left open gets a new payment page) and the webhooks list.`
}

// announcementNote tells what the stub PCI Pal posts to the desktop, and how to change it.
func announcementNote(in demoInfo, announce bool) string {
	if announce {
		return `The stub PCI Pal's PostMessage flow step is on (--announce): its page posts
{"type":"` + demoAnnouncementType + `",...} to the desktop, which the merchant's frameAnnouncement expects,
so the widget reports a page that stays silent as refused. (Switching the step off now, with
PUT ` + in.VCCStubURL + `/_control/pcipal, shows what a wrong frameAnnouncement does: every page
counts as refused. Run the demo without --announce for a silent page, as live.)`
	}
	return `The stub PCI Pal posts nothing to the desktop, as live PCI Pal without a PostMessage flow step:
an expired provider session is recovered by paybridge (VCC's status, the attempt's age) and by
the panel's "Start a new one". Run the demo with --announce to try the step.`
}

// writeJSONFile writes v to path atomically (a reader never sees half a file), readable only by
// its owner since it holds keys.
func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".paybridge-info-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
