package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/pgstore"
	"github.com/paybridge/paybridge/config"
	"github.com/paybridge/paybridge/vcc"
	"github.com/paybridge/paybridge/web"
	"github.com/paybridge/paybridge/webhook"
)

// app is one running paybridge: the graph main builds from a configuration.
type app struct {
	cfg      *config.Config
	logger   *slog.Logger
	store    bridge.Store
	hub      *bridge.Hub
	sessions *bridge.Service
	keys     *bridge.KeyService
	server   *web.Server
	webhooks *webhook.Dispatcher
	fanout   *pgstore.Fanout // nil on bbolt
	listener net.Listener
	// metricsListener serves /metrics alone when metrics.listen is set; nil: the API serves it.
	metricsListener net.Listener
	// merchants is the configured merchants, replaced by a reload (SIGHUP).
	merchants *bridge.ReloadableMerchants
	clock     bridge.Clock
	// reconcileEvery is how often serve reconciles with VCC in the background (0: every 5 minutes).
	reconcileEvery time.Duration
}

// appOptions are what an app needs besides its configuration.
type appOptions struct {
	logger   *slog.Logger
	clock    bridge.Clock // nil: the system clock
	listener net.Listener // nil: listen on cfg.Listen
	demo     func(a *app) http.Handler
	// reconcileEvery overrides how often the background reconciliation runs (tests); 0: the default.
	reconcileEvery time.Duration
}

// newApp opens the store, builds the services and the HTTP server, and binds the listener. If
// the listener's port was 0, cfg's public URLs are derived from the bound address.
func newApp(cfg *config.Config, o appOptions) (_ *app, err error) {
	a := &app{cfg: cfg, logger: o.logger}
	clock := o.clock
	if clock == nil {
		clock = bridge.SystemClock{}
	}
	a.listener = o.listener
	if a.listener == nil {
		if a.listener, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
	}
	if cfg.Metrics.Listen != "" {
		if a.metricsListener, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			a.listener.Close()
			return nil, fmt.Errorf("listen on %s (metrics.listen): %w", cfg.Metrics.Listen, err)
		}
	}
	defer func() {
		if err != nil {
			a.listener.Close()
			if a.metricsListener != nil {
				a.metricsListener.Close()
			}
			if a.fanout != nil {
				a.fanout.Close()
			}
			if a.store != nil {
				a.store.Close()
			}
		}
	}()
	if strings.HasSuffix(cfg.Listen, ":0") {
		cfg.Listen = a.listener.Addr().String()
		cfg.PublicBaseURL, cfg.DocsBaseURL = "", ""
		cfg.ApplyDefaults()
	}

	master, err := masterKey(cfg)
	if err != nil {
		return nil, err
	}
	keyring, err := bridge.NewKeyring(master)
	if err != nil {
		return nil, err
	}
	if a.store, err = openStore(context.Background(), cfg, a.logger, 0); err != nil {
		return nil, err
	}
	// The API, keys and origins see the merchants configured now; work on existing sessions
	// (polls, restarts, outcome webhooks) also finds a merchant a reload removed, so its open
	// sessions settle with its last configuration.
	a.merchants = bridge.NewReloadableMerchants(cfg.BridgeMerchants())
	merchants, settling := a.merchants, a.merchants.Settling()
	vccMetrics := web.NewVCCMetrics()
	a.hub = bridge.NewHub(a.logger, 0)
	// Events reach this node's sockets through the hub; on a shared store, every other node's too.
	var publisher bridge.Publisher = a.hub
	if pg, ok := a.store.(*pgstore.Store); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		a.fanout, err = pgstore.NewFanout(ctx, pg, keyring, a.hub)
		cancel()
		if err != nil {
			return nil, err
		}
		publisher = a.fanout
	}
	if a.sessions, err = newSessionService(cfg, a.store, settling, publisher, keyring, clock, a.logger, vccMetrics.Observe); err != nil {
		return nil, err
	}
	a.clock, a.reconcileEvery = clock, o.reconcileEvery
	a.keys = bridge.NewKeyService(bridge.KeyServiceOptions{
		Store: a.store, Merchants: merchants, Keyring: keyring, Clock: clock,
		RollGrace: cfg.Keys.RollGrace, AgentTokenTTL: cfg.AgentTokens.DefaultTTL, MaxAgentTokenTTL: cfg.AgentTokens.MaxTTL,
	})
	a.webhooks = webhook.NewDispatcher(webhook.DispatcherOptions{
		Store: a.store, Merchants: settling, Clock: clock, Logger: a.logger,
		HTTPClient: &http.Client{Timeout: cfg.Webhooks.Timeout,
			// A 3xx is a failed delivery: a signed body never lands where the merchant did not say.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		RetryWindow: cfg.Webhooks.RetryWindow, InitialBackoff: cfg.Webhooks.InitialBackoff, MaxBackoff: cfg.Webhooks.MaxBackoff,
		Retention: cfg.Events.Retention,
		PreviousSecrets: func(id string) []string {
			if m, err := settling.Merchant(context.Background(), id); err == nil && m.Webhook.PreviousSecret != "" {
				return []string{m.Webhook.PreviousSecret}
			}
			return nil
		},
	})
	var demo http.Handler
	if o.demo != nil {
		demo = o.demo(a)
	}
	a.server, err = web.NewServer(web.Options{
		Sessions: a.sessions, Keys: a.keys, Hub: a.hub, Store: a.store, Merchants: merchants, Keyring: keyring,
		Clock: clock, Logger: a.logger, PublicBaseURL: cfg.PublicBaseURL, DocsBaseURL: cfg.DocsBaseURL, Demo: demo,
		PerKeyLimit:    web.RateLimit{Limit: cfg.RateLimits.SessionCreatesPerKey, Window: cfg.RateLimits.SessionCreatesWindow},
		PerIPLimit:     web.RateLimit{Limit: cfg.RateLimits.PerIP, Window: cfg.RateLimits.PerIPWindow},
		IdempotencyTTL: cfg.Idempotency.TTL,
		PingInterval:   cfg.Sockets.PingInterval,
		HeaderTimeout:  cfg.HTTP.ReadHeaderTimeout, BodyTimeout: cfg.HTTP.BodyTimeout, IdleTimeout: cfg.HTTP.IdleTimeout,
		MaxUnauthenticatedPerIP: cfg.HTTP.MaxUnauthenticatedPerIP,
		TrustedProxies:          cfg.TrustedProxyPrefixes(),
		TLSCertFile:             cfg.TLS.CertFile, TLSKeyFile: cfg.TLS.KeyFile,
		VCCMetrics:       vccMetrics,
		MetricsElsewhere: a.metricsListener != nil,
	})
	if err != nil {
		return nil, err
	}
	a.server.ExportWebhookDeliveries(a.webhooks.Deliveries)
	if a.fanout != nil {
		// A key revoked or rolled, or an agent's tokens revoked, through any node ends the
		// sockets it opened on every node at once: this node's events go out, theirs come in.
		a.keys.Watch(a.fanout)
		a.fanout.ForwardCredentials(a.server)
	}
	return a, nil
}

// newSessionService is the session service serve runs on store, with the VCC client and the
// lifecycle settings of cfg; `paybridge reconcile` builds the same one. observe, if set, sees
// every HTTP attempt to VCC (the metrics).
func newSessionService(cfg *config.Config, store bridge.Store, merchants bridge.MerchantDirectory, publisher bridge.Publisher,
	keyring *bridge.Keyring, clock bridge.Clock, logger *slog.Logger, observe func(endpoint, outcome string, d time.Duration)) (*bridge.Service, error) {
	provider := vcc.New(vcc.Options{Clock: clock, Logger: logger, RequestTimeout: cfg.VCC.RequestTimeout, MaxRetries: retries(cfg.VCC.MaxRetries),
		Observe: observe})
	return bridge.NewService(bridge.ServiceOptions{
		Store: store, Merchants: merchants, Provider: provider, Publisher: publisher, Keyring: keyring,
		Clock: clock, Logger: logger,
		ProviderLifetime: cfg.Provider.SessionLifetime, MaxAttempts: cfg.Provider.MaxAttempts,
		DefaultTTL: cfg.Sessions.DefaultTTL, PollInterval: cfg.Provider.PollInterval,
		PollConcurrency: cfg.Provider.PollConcurrency, BrowserRestartEvery: cfg.Provider.BrowserRestartEvery,
		LateWatch: cfg.Provider.VCCRetention,
		// On a shared store: learn other nodes' sessions, and retry a live owner's, well within
		// the lease time, so a dead node's work moves soon after its lease lapses.
		ReloadInterval: cfg.Store.LeaseTTL / 5,
	})
}

// retries maps the configuration's "0 means no retries" onto the client's "negative disables".
func retries(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// baseURL is where clients reach this app.
func (a *app) baseURL() string { return strings.TrimSuffix(a.cfg.PublicBaseURL, "/") }

// run serves until ctx ends, then closes agent sockets, drains requests and closes the store.
func (a *app) run(ctx context.Context) error {
	srv := a.server.HTTPServer()
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go func() { _ = a.sessions.Run(bg) }()
	go a.server.Run(bg)
	go func() { _ = a.webhooks.Run(bg) }()
	go a.reconcileLoop(bg)

	served := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			served <- srv.ServeTLS(a.listener, "", "") // the certificate comes from TLSConfig
			return
		}
		served <- srv.Serve(a.listener)
	}()
	metricsSrv := a.serveMetrics()
	a.logger.Info("paybridge listening", "addr", a.listener.Addr().String(), "baseUrl", a.baseURL())

	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	stopBackground()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.server.Shutdown(shutdown)
	if metricsSrv != nil && metricsSrv.Shutdown(shutdown) != nil {
		_ = metricsSrv.Close()
	}
	if serr := srv.Shutdown(shutdown); serr != nil {
		// Requests still running after the grace, or connections a client opened and never used
		// (net/http counts those as busy for 5 s): close them. Stopping is still a clean stop.
		a.logger.Warn("closing connections still open at shutdown", "err", serr)
		_ = srv.Close()
	}
	if a.fanout != nil {
		a.fanout.Close()
	}
	if cerr := a.store.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// serveMetrics serves GET /metrics alone on the metrics listener, if there is one, until
// shut down; nil when the API serves /metrics itself.
func (a *app) serveMetrics() *http.Server {
	if a.metricsListener == nil {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.server.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(a.metricsListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("metrics listener failed; /metrics is not served", "err", err)
		}
	}()
	a.logger.Info("metrics listening", "addr", a.metricsListener.Addr().String())
	return srv
}

// masterKey returns the configured master key or the one kept in <dataDir>/master.key, making
// that file (0600) on first start.
func masterKey(cfg *config.Config) ([]byte, error) {
	key, err := cfg.MasterKeyBytes()
	if err != nil || key != nil {
		return key, err
	}
	path := filepath.Join(cfg.DataDir, "master.key")
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(key) < bridge.MinMasterKeyLen {
			return nil, fmt.Errorf("%s does not hold a base64 key of at least %d bytes", path, bridge.MinMasterKeyLen)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	key = make([]byte, 32)
	_, _ = rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	_, err = io.WriteString(f, base64.StdEncoding.EncodeToString(key)+"\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return key, err
}

// newLogger builds the process logger: JSON or text on w at level, with request ids, and never
// a credential-shaped string or an overlong field, whoever logs it.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(web.SafeLogHandler(web.ContextLogHandler(h)))
}
