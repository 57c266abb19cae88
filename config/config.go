// Package config holds paybridge's configuration: the types, loading from a YAML file with
// ${VAR} references and environment overrides for every secret, defaults, validation that names
// the exact bad key, and the built-in configuration of `paybridge demo`.
//
// Load and Parse take the environment as a function so that tests, and callers that keep
// secrets elsewhere, never depend on the process environment.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/paybridge/paybridge/bridge"
)

// Config is paybridge's whole configuration. The comment on each field gives its default.
type Config struct {
	Listen         string      `yaml:"listen"`         // default 127.0.0.1:8080
	PublicBaseURL  string      `yaml:"publicBaseUrl"`  // default http(s)://<listen>
	DocsBaseURL    string      `yaml:"docsBaseUrl"`    // default <publicBaseUrl>/docs/error-codes
	DataDir        string      `yaml:"dataDir"`        // default ./data
	MasterKey      string      `yaml:"masterKey"`      // secret; base64 of >= 32 bytes; empty: kept in <dataDir>/master.key
	Store          Store       `yaml:"store"`          // default none: bbolt in <dataDir>/paybridge.db
	TLS            TLS         `yaml:"tls"`            // default none: plain HTTP (behind a TLS proxy)
	TrustedProxies []string    `yaml:"trustedProxies"` // CIDRs or addresses whose forwarding headers are believed; default none
	HTTP           HTTP        `yaml:"http"`
	Metrics        Metrics     `yaml:"metrics"`
	Log            Log         `yaml:"log"`
	Provider       Provider    `yaml:"provider"`
	Sessions       Sessions    `yaml:"sessions"`
	AgentTokens    AgentTokens `yaml:"agentTokens"`
	Sockets        Sockets     `yaml:"sockets"`
	Keys           Keys        `yaml:"keys"`
	RateLimits     RateLimits  `yaml:"rateLimits"`
	Idempotency    Idempotency `yaml:"idempotency"`
	Webhooks       Webhooks    `yaml:"webhooks"`
	Events         Events      `yaml:"events"`
	VCC            VCCClient   `yaml:"vcc"`
	Merchants      []Merchant  `yaml:"merchants"`
	Admin          Admin       `yaml:"admin"`
}

// Admin is serve's local administration socket on the bbolt store, through which `paybridge
// keys` and `paybridge backup` reach a running server. Only processes that may open the file
// (mode 0600: the server's own OS user) can use it.
type Admin struct {
	// Socket is the unix socket's path; default "" is <dataDir>/paybridge.db.admin.sock, "off"
	// disables it. Unused on PostgreSQL, where the commands use the database directly.
	Socket string `yaml:"socket"`
}

// Metrics says where Prometheus metrics are served.
type Metrics struct {
	// Listen, if set (host:port), serves GET /metrics on its own address, only there: the API
	// listener then answers /metrics as any unknown path. Default "": on the API listener.
	Listen string `yaml:"listen"`
}

// Log says how paybridge logs.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error; default info
	Format string `yaml:"format"` // json | text; default json
}

// SlogLevel returns Level as a slog.Level; anything unknown is info.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// HTTP tunes the HTTP edge against slow and unknown clients.
type HTTP struct {
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"` // default 10s: a request's headers must arrive by then
	BodyTimeout       time.Duration `yaml:"bodyTimeout"`       // default 30s: its body must arrive by then
	IdleTimeout       time.Duration `yaml:"idleTimeout"`       // default 2m: idle keep-alive connections close
	// MaxUnauthenticatedPerIP caps the requests per client IP in progress without credentials
	// (not yet authenticated, or to a public endpoint); default 32, 1..10000.
	MaxUnauthenticatedPerIP int `yaml:"maxUnauthenticatedPerIP"`
}

// TLS makes paybridge serve HTTPS itself. Both files or neither; the certificate is reloaded
// when the files change.
type TLS struct {
	CertFile string `yaml:"certFile"` // PEM certificate chain, leaf first
	KeyFile  string `yaml:"keyFile"`  // PEM private key
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// TrustedProxyPrefixes returns TrustedProxies parsed; entries that do not parse (Validate
// reports them) are left out.
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, ok := parseProxy(s); ok {
			out = append(out, p)
		}
	}
	return out
}

// parseProxy reads a CIDR (10.0.0.0/8) or a single address (10.0.0.1, a /32 or /128).
func parseProxy(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// Provider tunes how paybridge drives provider (PCI Pal) sessions through VCC.
type Provider struct {
	SessionLifetime time.Duration `yaml:"sessionLifetime"` // default 15m: an attempt older than this is restarted
	MaxAttempts     int           `yaml:"maxAttempts"`     // default 5, 1..20
	PollInterval    time.Duration `yaml:"pollInterval"`    // default 2s, at least 100ms
	PollConcurrency int           `yaml:"pollConcurrency"` // default 8, 1..256
	// BrowserRestartEvery rations restarts an agent's socket asks for: an attempt younger than
	// this is not restarted from the browser. Default 5s, 1s..1m.
	BrowserRestartEvery time.Duration `yaml:"browserRestartEvery"`
	// VCCRetention is how long VCC keeps a provider session's result, so how long attempts of a
	// closed session are still asked about for a late payment. Default 15m, 1m..24h.
	VCCRetention time.Duration `yaml:"vccRetention"`
}

// Sessions tunes paybridge sessions.
type Sessions struct {
	DefaultTTL time.Duration `yaml:"defaultTTL"` // default 30m, 5m..60m
}

// AgentTokens tunes the short-lived tokens agents' browsers present.
type AgentTokens struct {
	DefaultTTL time.Duration `yaml:"defaultTTL"` // default 1h, at most MaxTTL
	MaxTTL     time.Duration `yaml:"maxTTL"`     // default 24h
}

// Sockets tunes the agents' WebSockets.
type Sockets struct {
	// PingInterval is how often paybridge pings an idle agent socket; a socket silent for this
	// plus 10 s is closed. Default 25s, 1s..5m.
	PingInterval time.Duration `yaml:"pingInterval"`
}

// Keys tunes API keys.
type Keys struct {
	RollGrace time.Duration `yaml:"rollGrace"` // default 24h, 0..30 days: how long a rolled key keeps working
}

// RateLimits are the request budgets. All must be positive.
type RateLimits struct {
	SessionCreatesPerKey int           `yaml:"sessionCreatesPerKey"` // default 30 ...
	SessionCreatesWindow time.Duration `yaml:"sessionCreatesWindow"` // ... per 60s, per API key
	PerIP                int           `yaml:"perIP"`                // default 600 ...
	PerIPWindow          time.Duration `yaml:"perIPWindow"`          // ... per 60s, per client IP
}

// Store selects the system of record. Without a URL paybridge keeps its state in bbolt under
// dataDir (one node); with one, several nodes share a PostgreSQL database.
type Store struct {
	// URL is a postgres:// URL (or PAYBRIDGE_STORE_URL); secret, as it may carry a password.
	URL string `yaml:"url"`
	// LeaseTTL is how long a node that stops answering keeps its claim on background work (polls,
	// expiry, webhook deliveries) before another node takes it over; default 15s, 3s..5m.
	LeaseTTL time.Duration `yaml:"leaseTtl"`
}

// Shared reports whether the store is one several nodes share (PostgreSQL).
func (s Store) Shared() bool { return s.URL != "" }

// Idempotency tunes Idempotency-Key handling.
type Idempotency struct {
	TTL time.Duration `yaml:"ttl"` // default 24h: how long a first response is kept for replay
}

// Webhooks tunes delivery of merchant webhooks.
type Webhooks struct {
	RetryWindow    time.Duration `yaml:"retryWindow"`    // default 24h: give up after this
	InitialBackoff time.Duration `yaml:"initialBackoff"` // default 30s, at most MaxBackoff
	MaxBackoff     time.Duration `yaml:"maxBackoff"`     // default 1h
	Timeout        time.Duration `yaml:"timeout"`        // default 10s per delivery
}

// Events says how long merchant events are kept (GET /v1/events).
type Events struct {
	Retention time.Duration `yaml:"retention"` // default 720h (30 days), once an event's delivery has ended
}

// VCCClient tunes paybridge's calls to VCC, for every merchant.
type VCCClient struct {
	RequestTimeout time.Duration `yaml:"requestTimeout"` // default 10s
	MaxRetries     int           `yaml:"maxRetries"`     // default 3, 0..10: retries of transient failures
}

// Merchant is one merchant's configuration.
type Merchant struct {
	ID             string      `yaml:"id"`             // required, [a-z0-9_-]{1,64}, unique
	Name           string      `yaml:"name"`           // for people
	Status         string      `yaml:"status"`         // active | pending_approval | denied | inactive; default active
	VCC            MerchantVCC `yaml:"vcc"`            // how paybridge reaches VCC for this merchant
	AllowedOrigins []string    `yaml:"allowedOrigins"` // agent desktop origins, scheme://host[:port]
	Webhook        Webhook     `yaml:"webhook"`        // where outcomes are reported
	VCCWebhook     VCCWebhook  `yaml:"vccWebhook"`     // how VCC authenticates its webhook calls
	// FrameAnnouncement is what the merchant's PCI Pal flow posts to the agent desktop when its
	// page has loaded, if Vonage / PCI Pal set up a PostMessage step; absent: nothing (as live).
	FrameAnnouncement *FrameAnnouncement `yaml:"frameAnnouncement"`
}

// MerchantVCC is a merchant's VCC account.
type MerchantVCC struct {
	// Region (emea, nam or apac) fills TokenURL and APIBaseURL when they are empty.
	Region     string `yaml:"region"`
	TokenURL   string `yaml:"tokenUrl"`   // OAuth2 token endpoint; https unless loopback
	APIBaseURL string `yaml:"apiBaseUrl"` // Payment API base; https unless loopback
	ClientID   string `yaml:"clientId"`
	// ClientSecret is a secret.
	ClientSecret string `yaml:"clientSecret"`
	// AccountConfigurationIDs are the payment configurations sessions may use; each >= 0 (0 is
	// a real id: production flows use it), unique. Empty allows whatever VCC accepts.
	AccountConfigurationIDs []int `yaml:"accountConfigurationIds"`
	// DefaultAccountConfigurationID is used when a request names none; default the first of
	// AccountConfigurationIDs, or none (VCC's own default) when they are empty.
	DefaultAccountConfigurationID *int `yaml:"defaultAccountConfigurationId"`
	SkipCallTransfer              bool `yaml:"skipCallTransfer"` // testing only: no live call needed
	// Gateway reads the result data of the merchant's PCI Pal flows (default cybersource);
	// Gateways overrides it per account configuration id, since each maps to a flow.
	Gateway  Gateway         `yaml:"gateway"`
	Gateways map[int]Gateway `yaml:"gateways"`
}

// Webhook is a merchant's outbound webhook endpoint.
type Webhook struct {
	URL    string `yaml:"url"`    // https, or http for loopback hosts
	Secret string `yaml:"secret"` // secret; whsec_..., required when URL is set
	// PreviousSecret is the secret being rolled away from: while set, every delivery carries a
	// second v1 signature made with it, so the receiver can switch secrets without a gap.
	PreviousSecret string `yaml:"previousSecret"` // secret; whsec_...
}

// VCCWebhook holds the credentials VCC presents when it calls paybridge's inbound webhook.
type VCCWebhook struct {
	ClientID      string `yaml:"clientId"`      // with ClientSecret, for POST /oauth/token
	ClientSecret  string `yaml:"clientSecret"`  // secret
	SigningSecret string `yaml:"signingSecret"` // secret; for X-VonPay-Signature
}

// Merchant statuses, as written in the file.
const (
	StatusActive          = string(bridge.MerchantActive)
	StatusPendingApproval = string(bridge.MerchantPendingApproval)
	StatusDenied          = string(bridge.MerchantDenied)
	StatusInactive        = string(bridge.MerchantInactive)
)

// DefaultListen is where paybridge listens unless told otherwise.
const DefaultListen = "127.0.0.1:8080"

// base returns the fixed defaults. They are laid down before the file is decoded, so a value
// the file sets explicitly, even a zero one, is kept and then checked: `maxAttempts: 0` is an
// error rather than silently 5, and `maxRetries: 0` means no retries. Derived values
// (publicBaseUrl and the like) are filled afterwards by ApplyDefaults.
func base() *Config {
	return &Config{
		Listen:  DefaultListen,
		DataDir: "./data",
		Log:     Log{Level: "info", Format: "json"},
		HTTP: HTTP{
			ReadHeaderTimeout:       10 * time.Second,
			BodyTimeout:             30 * time.Second,
			IdleTimeout:             2 * time.Minute,
			MaxUnauthenticatedPerIP: 32,
		},
		Provider: Provider{
			SessionLifetime:     15 * time.Minute,
			MaxAttempts:         5,
			PollInterval:        2 * time.Second,
			PollConcurrency:     8,
			BrowserRestartEvery: 5 * time.Second,
			VCCRetention:        15 * time.Minute,
		},
		Sessions:    Sessions{DefaultTTL: 30 * time.Minute},
		AgentTokens: AgentTokens{DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour},
		Sockets:     Sockets{PingInterval: 25 * time.Second},
		Keys:        Keys{RollGrace: 24 * time.Hour},
		RateLimits: RateLimits{
			SessionCreatesPerKey: 30,
			SessionCreatesWindow: time.Minute,
			PerIP:                600,
			PerIPWindow:          time.Minute,
		},
		Idempotency: Idempotency{TTL: 24 * time.Hour},
		Store:       Store{LeaseTTL: 15 * time.Second},
		Webhooks: Webhooks{
			RetryWindow:    24 * time.Hour,
			InitialBackoff: 30 * time.Second,
			MaxBackoff:     time.Hour,
			Timeout:        10 * time.Second,
		},
		VCC:    VCCClient{RequestTimeout: 10 * time.Second, MaxRetries: 3},
		Events: Events{Retention: 30 * 24 * time.Hour},
	}
}

// Default returns the default configuration: no merchants, every setting at its default.
func Default() *Config {
	c := base()
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills what is left empty: text settings (listen, dataDir, log), values derived
// from others (publicBaseUrl from listen, docsBaseUrl from publicBaseUrl, VCC URLs from a
// merchant's region, the default account configuration) and merchant status. Numeric settings
// are not touched: their defaults come from Default, since zero is a real value for some.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.PublicBaseURL == "" {
		scheme := "http://"
		if c.TLS.Enabled() {
			scheme = "https://"
		}
		c.PublicBaseURL = scheme + reachable(c.Listen)
	}
	if c.DocsBaseURL == "" {
		c.DocsBaseURL = strings.TrimSuffix(c.PublicBaseURL, "/") + "/docs/error-codes"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if len(c.TrustedProxies) == 0 {
		c.TrustedProxies = nil // `trustedProxies: []` is the default, not a different setting
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	for i := range c.Merchants {
		m := &c.Merchants[i]
		if m.Status == "" {
			m.Status = StatusActive
		}
		if slices.Contains(regions, m.VCC.Region) {
			if m.VCC.TokenURL == "" {
				m.VCC.TokenURL = "https://" + m.VCC.Region + ".cc.vonage.com/Auth/connect/token"
			}
			if m.VCC.APIBaseURL == "" {
				m.VCC.APIBaseURL = "https://" + m.VCC.Region + ".api.newvoicemedia.com/globalpci"
			}
		}
		if m.VCC.DefaultAccountConfigurationID == nil && len(m.VCC.AccountConfigurationIDs) > 0 {
			m.VCC.DefaultAccountConfigurationID = new(m.VCC.AccountConfigurationIDs[0])
		}
	}
}

// regions are the VCC regions a merchant may name.
var regions = []string{"emea", "nam", "apac"}

// reachable turns a listen address into one a client can dial: a wildcard or empty host, which
// means "every interface", becomes localhost.
func reachable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// BridgeMerchants converts the configured merchants to the domain's type. The result shares no
// memory with c.
func (c *Config) BridgeMerchants() []*bridge.Merchant {
	out := make([]*bridge.Merchant, 0, len(c.Merchants))
	for _, m := range c.Merchants {
		gateway, gateways := bridgeGateways(m.VCC)
		var def *int
		if d := m.VCC.DefaultAccountConfigurationID; d != nil {
			def = new(*d)
		}
		out = append(out, &bridge.Merchant{
			ID:     m.ID,
			Name:   m.Name,
			Status: bridge.MerchantStatus(m.Status),
			VCC: bridge.VCCAccount{
				TokenURL:                      m.VCC.TokenURL,
				APIBaseURL:                    m.VCC.APIBaseURL,
				ClientID:                      m.VCC.ClientID,
				ClientSecret:                  m.VCC.ClientSecret,
				AccountConfigurationIDs:       slices.Clone(m.VCC.AccountConfigurationIDs),
				DefaultAccountConfigurationID: def,
				SkipCallTransfer:              m.VCC.SkipCallTransfer,
				Gateway:                       gateway,
				GatewayByConfiguration:        gateways,
			},
			FrameAnnouncement: bridgeAnnouncement(m.FrameAnnouncement),
			AllowedOrigins:    slices.Clone(m.AllowedOrigins),
			Webhook:           bridge.MerchantWebhook{URL: m.Webhook.URL, Secret: m.Webhook.Secret, PreviousSecret: m.Webhook.PreviousSecret},
			VCCWebhook: bridge.VCCWebhookAuth{
				ClientID:      m.VCCWebhook.ClientID,
				ClientSecret:  m.VCCWebhook.ClientSecret,
				SigningSecret: m.VCCWebhook.SigningSecret,
			},
		})
	}
	return out
}

// MasterKeyBytes decodes MasterKey, which may be standard or URL-safe base64, padded or not. It
// returns nil and no error when MasterKey is empty: the caller then keeps a key in
// <dataDir>/master.key. The error never quotes the key.
func (c *Config) MasterKeyBytes() ([]byte, error) {
	key, problem := decodeMasterKey(c.MasterKey)
	if problem != "" {
		return nil, errors.New("masterKey: " + problem)
	}
	return key, nil
}

// decodeMasterKey decodes a master key, or says what is wrong with it without quoting it.
func decodeMasterKey(s string) (key []byte, problem string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ""
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		if b, err := enc.DecodeString(s); err == nil {
			key = b
			break
		}
	}
	switch {
	case key == nil:
		return nil, "must be base64 (standard or URL-safe alphabet, padded or not)"
	case len(key) < bridge.MinMasterKeyLen:
		return nil, fmt.Sprintf("decodes to %d bytes, need at least %d", len(key), bridge.MinMasterKeyLen)
	}
	return key, ""
}

// redacted replaces a secret in Redacted's output.
const redacted = "[redacted]"

// Redacted returns a deep copy of c, for `paybridge check` output and logs, with every secret
// that is set replaced by "[redacted]" and the user information of every URL by "redacted".
// Secrets left empty stay empty, so the copy still shows what is missing.
func (c *Config) Redacted() *Config {
	r := c.clone()
	hide := func(s *string) {
		if *s != "" {
			*s = redacted
		}
	}
	hideURL := func(s *string) { // user and password alike: either may be a token
		if u, err := url.Parse(*s); err == nil && u.User != nil {
			u.User = url.User("redacted")
			*s = u.String()
		}
	}
	hide(&r.MasterKey)
	hideURL(&r.Store.URL)
	if u, err := url.Parse(r.Store.URL); err == nil && u.Query().Has("password") {
		q := u.Query()
		q.Set("password", "redacted")
		u.RawQuery = q.Encode()
		r.Store.URL = u.String()
	}
	hideURL(&r.PublicBaseURL)
	hideURL(&r.DocsBaseURL)
	for i := range r.Merchants {
		m := &r.Merchants[i]
		hide(&m.VCC.ClientSecret)
		hide(&m.Webhook.Secret)
		hide(&m.Webhook.PreviousSecret)
		hide(&m.VCCWebhook.ClientSecret)
		hide(&m.VCCWebhook.SigningSecret)
		hideURL(&m.VCC.TokenURL)
		hideURL(&m.VCC.APIBaseURL)
		hideURL(&m.Webhook.URL)
	}
	return r
}

// clone returns a deep copy of c.
func (c *Config) clone() *Config {
	r := *c
	r.TrustedProxies = slices.Clone(c.TrustedProxies)
	r.Merchants = slices.Clone(c.Merchants)
	for i := range r.Merchants {
		m := &r.Merchants[i]
		m.AllowedOrigins = slices.Clone(m.AllowedOrigins)
		m.VCC.AccountConfigurationIDs = slices.Clone(m.VCC.AccountConfigurationIDs)
	}
	return &r
}

// Demo merchant and VCC stub account, shared with `paybridge demo`.
const (
	DemoMerchantID   = "sandbox"
	DemoClientID     = "paybridge-sandbox" // the VCC stub's default account
	DemoClientSecret = "sandbox-secret"
)

// Demo returns the built-in configuration of `paybridge demo`: one active sandbox merchant whose
// VCC account is the stub at vccBaseURL (for example http://127.0.0.1:43210), skipping call
// transfer, polling every second; everything else default.
//
// Listen is the placeholder 127.0.0.1:0 and the base URLs derive from it: once the listener is
// bound, set Listen, clear PublicBaseURL and DocsBaseURL, and call ApplyDefaults. AllowedOrigins
// is empty: add the bridge's own origin then, so the demo agent desktop it serves may use the
// publishable key.
func Demo(vccBaseURL string) *Config {
	vccBaseURL = strings.TrimSuffix(vccBaseURL, "/")
	c := base()
	c.Listen = "127.0.0.1:0"
	c.Provider.PollInterval = time.Second
	c.Merchants = []Merchant{{
		ID:     DemoMerchantID,
		Name:   "Sandbox Merchant",
		Status: StatusActive,
		VCC: MerchantVCC{
			TokenURL:                      vccBaseURL + "/Auth/connect/token",
			APIBaseURL:                    vccBaseURL + "/globalpci",
			ClientID:                      DemoClientID,
			ClientSecret:                  DemoClientSecret,
			AccountConfigurationIDs:       []int{1, 2},
			DefaultAccountConfigurationID: new(1),
			SkipCallTransfer:              true,
			// The stub VCC answers in CyberSource's shape, as VCC's documentation shows it.
			Gateway: Gateway{Profile: "cybersource"},
		},
	}}
	c.ApplyDefaults()
	return c
}
