package web

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/paybridge/paybridge/bridge"
)

// Edge defaults: what an unknown caller may cost before it has authenticated.
const (
	defaultHeaderTimeout      = 10 * time.Second
	defaultBodyTimeout        = 30 * time.Second
	defaultIdleTimeout        = 2 * time.Minute
	defaultUnauthenticatedCap = 32
	// maxHeaderBytes bounds a request's header block; paybridge's own headers are a few hundred
	// bytes, and net/http's default of 1 MiB would let one connection hold that much.
	maxHeaderBytes = 64 << 10
	// maxForwardedHops bounds how many forwarding hops are examined, from the right.
	maxForwardedHops = 32
)

// edge is what every request passes before routing: it learns the client's address, gives the
// body a read deadline, and spends one request of the client's per-IP bucket (unknown routes
// included, so no path is free to flood). A request without credentials in its headers also
// takes one of the client's unauthenticated slots, which it gives back once it has
// authenticated (a VCC signature, form credentials) or when it ends. One with credentials in its
// headers takes none: every endpoint checks those before reading anything more, so such a
// request is answered at once or belongs to a known caller, metered by its key.
func (s *Server) edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := s.clientIP(r)
		info := infoOf(r)
		if info != nil {
			info.clientIP = ip
		}
		s.bodyDeadline(w, r)
		q := s.perIP.take(ip)
		q.setHeaders(w.Header())
		if !q.allowed {
			s.writeError(w, r, bridge.Errorf(bridge.CodeRateLimitExceeded,
				"Too many requests from your IP address: %d per %s.", q.limit, q.window))
			return
		}
		if !headerCredentials(r) {
			release, ok := s.unauthenticated.acquire(ip)
			if !ok {
				s.writeError(w, r, bridge.Errorf(bridge.CodeRateLimitExceeded,
					"Too many requests from your IP address are in progress without credentials: at most %d at once.", s.unauthenticated.max).
					WithFix("Wait for your requests in flight to finish, and send credentials (an API key, VCC's bearer token) with each request."))
				return
			}
			defer release()
			if info != nil {
				info.release = release
			}
		}
		next.ServeHTTP(w, r)
	})
}

// headerCredentials reports whether r carries credentials that are checked before its body is
// read: an Authorization header (an API key, VCC's bearer token, HTTP Basic client credentials),
// or the agent socket's publishable key.
func headerCredentials(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.URL.Path == "/v1/ws" && r.URL.Query().Get("key") != ""
}

// authenticatedNow frees r's unauthenticated slot: its caller is known, and what it may do from
// here on is metered by its key.
func authenticatedNow(r *http.Request) {
	if info := infoOf(r); info != nil && info.release != nil {
		info.release()
	}
}

// bodyDeadline gives a request's body bodyTimeout to arrive, so a client trickling bytes cannot
// hold a connection and a goroutine for long. It holds as well while net/http discards a body the
// handler did not read (an answer before the body: wrong credentials). Once the body has been
// read to its end, net/http lifts the deadline itself as it starts watching the connection for
// the client going away, so a deadline passing then does not cancel a handler still at work (a
// create waiting on VCC). Bodiless requests, WebSocket upgrades among them, get no deadline; an
// upgraded socket sets its own.
func (s *Server) bodyDeadline(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || websocket.IsWebSocketUpgrade(r) {
		return
	}
	// A writer without deadlines (a recorder in a unit test) is served without one.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.bodyTimeout))
}

// slots caps concurrent requests per key (a client IP) that have not authenticated.
type slots struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newSlots(max int) *slots { return &slots{max: max, n: make(map[string]int)} }

// acquire takes one of key's slots; release (safe to call more than once) gives it back. Keys
// with no slot taken are forgotten, so the map holds only requests in flight.
func (s *slots) acquire(key string) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[key] >= s.max {
		return nil, false
	}
	s.n[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.n[key]--; s.n[key] <= 0 {
				delete(s.n, key)
			}
		})
	}, true
}

// clientIP is the address a request came from: the connection's peer, unless that peer is one
// of the trusted proxies. Then the forwarding headers the proxies wrote are read from the right
// (the hop nearest to paybridge) and the first address that is not a trusted proxy is the
// client; whatever a client wrote itself lies further left and is never reached. X-Forwarded-For
// is read when present, else Forwarded (RFC 7239). An unreadable hop ends the walk at the last
// trusted one, so a bucket is always keyed by a real address.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(peer.Unmap()) {
		return host
	}
	client := peer.Unmap()
	hops := forwardedHops(r.Header)
	for i, seen := len(hops)-1, 0; i >= 0 && seen < maxForwardedHops; i, seen = i-1, seen+1 {
		addr, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = addr
		if !s.trusted(addr) {
			break
		}
	}
	return client.String()
}

// trusted reports whether addr is one of the configured proxies.
func (s *Server) trusted(addr netip.Addr) bool {
	for _, p := range s.trustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// forwardedHops returns the forwarding chain, leftmost (furthest from paybridge) first.
func forwardedHops(h http.Header) []string {
	var hops []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, v := range xff {
			for _, hop := range strings.Split(v, ",") {
				hops = append(hops, strings.TrimSpace(hop))
			}
		}
		return hops
	}
	for _, v := range h.Values("Forwarded") {
		for _, element := range strings.Split(v, ",") {
			for _, pair := range strings.Split(element, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					hops = append(hops, strings.Trim(strings.TrimSpace(val), `"`))
				}
			}
		}
	}
	return hops
}

// parseHop reads one hop: an IP address, maybe with a port, IPv6 maybe in brackets.
func parseHop(hop string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr().Unmap(), true
	}
	hop = strings.TrimSuffix(strings.TrimPrefix(hop, "["), "]")
	addr, err := netip.ParseAddr(hop)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// HTTPServer returns the *http.Server to serve s with: header, body and idle timeouts, a bounded
// header size, errors logged through the server's logger and, when the options name a
// certificate, TLS with the certificate reloaded whenever its files change. Serve it with
// ServeTLS(ln, "", "") when TLSConfig is set, Serve otherwise.
func (s *Server) HTTPServer() *http.Server {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.headerTimeout,
		IdleTimeout:       s.idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	if s.certs != nil {
		srv.TLSConfig = s.certs.tlsConfig()
	}
	return srv
}
