// Package web is paybridge's HTTP and WebSocket face: routes, middleware, the error envelope,
// handlers and the embedded browser assets. It holds no business rules; those live in bridge.
package web

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

// Options are the dependencies and settings of a Server.
type Options struct {
	Sessions  *bridge.Service
	Keys      *bridge.KeyService
	Hub       *bridge.Hub
	Store     bridge.Store // readiness and idempotency records
	Merchants bridge.MerchantDirectory
	Keyring   *bridge.Keyring // tokens issued to VCC for its webhook calls
	Clock     bridge.Clock
	Logger    *slog.Logger

	// PerKeyLimit meters session creates per API key (30 per 60 s); PerIPLimit meters every API
	// call per client IP (600 per 60 s).
	PerKeyLimit RateLimit
	PerIPLimit  RateLimit
	// IdempotencyTTL is how long a first response is replayed (24 h).
	IdempotencyTTL time.Duration

	// PublicBaseURL is where clients reach this server, e.g. https://pay.example.com.
	PublicBaseURL string
	// DocsBaseURL is the base of every error's docs link; default PublicBaseURL + /docs/error-codes.
	DocsBaseURL string
	// Socket tuning; zero values take the defaults of DESIGN section 6.
	PingInterval time.Duration // 25s
	PongTimeout  time.Duration // 10s
	AuthTimeout  time.Duration // 5s: the first message must authenticate by then
	WriteTimeout time.Duration // 10s: a socket that cannot take a write this long is dead
	// Demo, if set, serves the demo agent desktop and its small backend under /demo/.
	Demo http.Handler

	// The edge, against slow and unknown clients; zero values take the defaults.
	HeaderTimeout time.Duration // 10s: a request's headers must arrive by then (HTTPServer)
	BodyTimeout   time.Duration // 30s: its body must arrive by then
	IdleTimeout   time.Duration // 2m: an idle keep-alive connection is closed (HTTPServer)
	// MaxUnauthenticatedPerIP caps the requests in progress per client IP that have not (yet)
	// authenticated (32).
	MaxUnauthenticatedPerIP int
	// TrustedProxies are the peers whose X-Forwarded-For / Forwarded headers are believed when
	// finding a request's client IP; empty: none, the connection's address is the client's.
	TrustedProxies []netip.Prefix
	// TLSCertFile and TLSKeyFile, if set, make HTTPServer serve TLS with this PEM pair,
	// reloaded when the files change.
	TLSCertFile, TLSKeyFile string

	// VCCMetrics, if set, are exported with the server's metrics (the VCC client feeds them).
	VCCMetrics *VCCMetrics
	// MetricsElsewhere leaves GET /metrics off the API: the caller serves MetricsHandler on its
	// own address, and the API answers /metrics as any unknown path.
	MetricsElsewhere bool
}

// Server is paybridge's HTTP handler. Shutdown closes the agent sockets it holds.
type Server struct {
	sessions  *bridge.Service
	keys      *bridge.KeyService
	hub       *bridge.Hub
	store     bridge.Store
	merchants bridge.MerchantDirectory
	keyring   *bridge.Keyring
	clock     bridge.Clock
	logger    *slog.Logger

	perKey, perIP *limiter
	metrics       *metrics
	// metricsElsewhere: GET /metrics is served on another listener, not by the API.
	metricsElsewhere bool
	idempotencyTTL   time.Duration
	inflight         sync.Map // idempotency scope → chan closed when its first request finishes
	reserveLocks     [64]sync.Mutex
	lockSeed         maphash.Seed // picks a scope's reserveLocks stripe
	// started is when this server was made, on the service clock: an idempotency reservation
	// older than this that it does not hold was left by a process that died.
	started time.Time

	docsBase   string
	publicBase string
	demo       http.Handler

	pingInterval, pongTimeout, authTimeout, writeTimeout time.Duration

	headerTimeout, bodyTimeout, idleTimeout time.Duration
	unauthenticated                         *slots
	trustedProxies                          []netip.Prefix
	certs                                   *certReloader // nil: plain HTTP

	handler http.Handler

	// closeOnce ends every socket on the first Shutdown.
	closeOnce sync.Once
	sockets   sync.WaitGroup

	// The open agent sockets (nil once shutting down), for the key service's credential events;
	// credentialEvents counts those events, so a socket being opened can tell it missed one.
	connsMu          sync.Mutex
	conns            map[*agentConn]struct{}
	credentialEvents atomic.Uint64
	unwatch          func()
	expiries         *expiries
}

// NewServer wires the routes and middleware around the services.
func NewServer(opts Options) (*Server, error) {
	if opts.Sessions == nil || opts.Keys == nil || opts.Hub == nil || opts.Store == nil || opts.Merchants == nil || opts.Keyring == nil {
		return nil, errors.New("web: NewServer needs Sessions, Keys, Hub, Store, Merchants and Keyring")
	}
	s := &Server{
		sessions: opts.Sessions, keys: opts.Keys, hub: opts.Hub, store: opts.Store,
		merchants: opts.Merchants, keyring: opts.Keyring,
		clock: opts.Clock, logger: opts.Logger, demo: opts.Demo,
		idempotencyTTL: orDuration(opts.IdempotencyTTL, 24*time.Hour),
		pingInterval:   orDuration(opts.PingInterval, 25*time.Second),
		pongTimeout:    orDuration(opts.PongTimeout, 10*time.Second),
		authTimeout:    orDuration(opts.AuthTimeout, 5*time.Second),
		writeTimeout:   orDuration(opts.WriteTimeout, 10*time.Second),
		headerTimeout:  orDuration(opts.HeaderTimeout, defaultHeaderTimeout),
		bodyTimeout:    orDuration(opts.BodyTimeout, defaultBodyTimeout),
		idleTimeout:    orDuration(opts.IdleTimeout, defaultIdleTimeout),
		trustedProxies: slices.Clone(opts.TrustedProxies),
		conns:          make(map[*agentConn]struct{}),
	}
	perIPSlots := opts.MaxUnauthenticatedPerIP
	if perIPSlots <= 0 {
		perIPSlots = defaultUnauthenticatedCap
	}
	s.unauthenticated = newSlots(perIPSlots)
	if s.clock == nil {
		s.clock = bridge.SystemClock{}
	}
	s.expiries = &expiries{clock: s.clock}
	s.started, s.lockSeed = s.clock.Now(), maphash.MakeSeed()
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	// Whatever the caller configured, nothing credential-shaped a client sends reaches the log.
	s.logger = slog.New(SafeLogHandler(s.logger.Handler()))
	if (opts.TLSCertFile == "") != (opts.TLSKeyFile == "") {
		return nil, errors.New("web: TLSCertFile and TLSKeyFile go together")
	}
	if opts.TLSCertFile != "" {
		var err error
		if s.certs, err = newCertReloader(opts.TLSCertFile, opts.TLSKeyFile, s.logger); err != nil {
			return nil, err
		}
	}
	s.publicBase = strings.TrimSuffix(opts.PublicBaseURL, "/")
	s.docsBase = opts.DocsBaseURL
	if s.docsBase == "" {
		s.docsBase = s.publicBase + "/docs/error-codes"
	}
	s.metrics = newMetrics(s.sessions, s.hub, s.store, s.clock)
	if opts.VCCMetrics != nil {
		opts.VCCMetrics.register(s.metrics.registry)
	}
	s.metricsElsewhere = opts.MetricsElsewhere
	s.perKey = newLimiter(orLimit(opts.PerKeyLimit, RateLimit{Limit: 30, Window: time.Minute}), s.clock)
	s.perIP = newLimiter(orLimit(opts.PerIPLimit, RateLimit{Limit: 600, Window: time.Minute}), s.clock)
	// Revoked and rolled keys and revoked agent tokens end this server's sockets at once.
	s.unwatch = s.keys.Watch(s)
	mux := http.NewServeMux()
	s.routes(mux)
	s.handler = withRequestID(s.logAndRecover(securityHeaders(s.edge(s.cors(s.dispatch(mux))))))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Shutdown closes every agent socket (clients reconnect to another node or after a restart) and
// waits for them to finish, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.unwatch()
		s.connsMu.Lock()
		open := s.conns
		s.conns = nil
		s.connsMu.Unlock()
		for c := range open {
			c.sub.End(errServerClosing)
		}
	})
	done := make(chan struct{})
	go func() { s.sockets.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orLimit(l, def RateLimit) RateLimit {
	if l.Limit <= 0 || l.Window <= 0 {
		return def
	}
	return l
}

// Run does the server's background work until ctx ends: forgetting expired idempotency records.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.store.PurgeIdempotency(ctx, s.clock.Now()); err != nil {
				s.logger.WarnContext(ctx, "purge idempotency records", "err", err)
			} else if n > 0 {
				s.logger.InfoContext(ctx, "purged idempotency records", "count", n)
			}
		}
	}
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// securityHeaders sets the headers every response should carry.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
