package config

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// problems collects validation failures in the order they are found.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, &FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
}

func (p *problems) intRange(path string, got, lo, hi int) {
	if got < lo || got > hi {
		p.add(path, "must be between %d and %d, got %d", lo, hi, got)
	}
}

func (p *problems) positive(path string, got int) {
	if got <= 0 {
		p.add(path, "must be greater than 0, got %d", got)
	}
}

func (p *problems) durationRange(path string, got, lo, hi time.Duration) {
	if got < lo || got > hi {
		p.add(path, "must be between %s and %s, got %s", fmtDuration(lo), fmtDuration(hi), fmtDuration(got))
	}
}

func (p *problems) positiveDuration(path string, got time.Duration) {
	if got <= 0 {
		p.add(path, "must be greater than 0s, got %s", fmtDuration(got))
	}
}

// url checks an absolute http(s) URL; httpAnywhere allows plain http for any host, otherwise
// only for loopback hosts. Problems never quote the URL, which may carry credentials.
func (p *problems) url(path, raw string, httpAnywhere bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http" {
		p.add(path, "must be an absolute http(s) URL")
		return
	}
	if u.Scheme == "http" && !httpAnywhere && !isLoopback(u.Hostname()) {
		p.add(path, "must use https (http is allowed only for loopback hosts)")
	}
}

// fmtDuration prints d without zero minutes or seconds: 5m, 1h, 720h, 100ms.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var merchantIDPattern = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// merchantStatuses are the statuses a merchant may have, in the order messages list them.
var merchantStatuses = []string{StatusActive, StatusPendingApproval, StatusDenied, StatusInactive}

// Validate checks every setting and returns all problems at once, joined with errors.Join in
// file order; each is a *FieldError naming the exact key path. A merchant without VCC
// credentials, and a file without merchants, are valid here (keys and reconcile may read them);
// serve and check refuse them through CheckServable.
func (c *Config) Validate() error {
	var p problems
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		p.add("listen", "must be host:port, such as 127.0.0.1:8080")
	} else if !validPort(port) {
		p.add("listen", "port %q is out of range: use 0 to 65535 (0 picks a free one)", port)
	}
	if c.Metrics.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			p.add("metrics.listen", "must be host:port, such as 127.0.0.1:9090, or empty to serve /metrics on listen")
		} else if !validPort(port) {
			p.add("metrics.listen", "port %q is out of range: use 0 to 65535 (0 picks a free one)", port)
		} else if c.Metrics.Listen == c.Listen && port != "0" {
			p.add("metrics.listen", "must differ from listen (leave it empty to serve /metrics on listen)")
		}
	}
	p.url("publicBaseUrl", c.PublicBaseURL, true)
	p.url("docsBaseUrl", c.DocsBaseURL, true)
	if c.DataDir == "" {
		p.add("dataDir", "must not be empty")
	}
	if _, problem := decodeMasterKey(c.MasterKey); problem != "" {
		p.add("masterKey", "%s", problem)
	}
	validateTLS(&p, c.TLS)
	validateStore(&p, c)
	for i, proxy := range c.TrustedProxies {
		if _, ok := parseProxy(proxy); !ok {
			p.add(fmt.Sprintf("trustedProxies[%d]", i), "must be a CIDR such as 10.0.0.0/8 or an IP address, got %q", proxy)
		}
	}
	p.positiveDuration("http.readHeaderTimeout", c.HTTP.ReadHeaderTimeout)
	p.positiveDuration("http.bodyTimeout", c.HTTP.BodyTimeout)
	p.positiveDuration("http.idleTimeout", c.HTTP.IdleTimeout)
	p.intRange("http.maxUnauthenticatedPerIP", c.HTTP.MaxUnauthenticatedPerIP, 1, 10000)

	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level", "must be one of debug, info, warn, error, got %q", c.Log.Level)
	}
	if !slices.Contains([]string{"json", "text"}, c.Log.Format) {
		p.add("log.format", "must be one of json, text, got %q", c.Log.Format)
	}

	p.positiveDuration("provider.sessionLifetime", c.Provider.SessionLifetime)
	p.intRange("provider.maxAttempts", c.Provider.MaxAttempts, 1, 20)
	if c.Provider.PollInterval < 100*time.Millisecond {
		p.add("provider.pollInterval", "must be at least 100ms, got %s", fmtDuration(c.Provider.PollInterval))
	}
	p.intRange("provider.pollConcurrency", c.Provider.PollConcurrency, 1, 256)
	p.durationRange("provider.browserRestartEvery", c.Provider.BrowserRestartEvery, time.Second, time.Minute)
	p.durationRange("provider.vccRetention", c.Provider.VCCRetention, time.Minute, 24*time.Hour)

	p.durationRange("sessions.defaultTTL", c.Sessions.DefaultTTL, 5*time.Minute, time.Hour)

	p.durationRange("sockets.pingInterval", c.Sockets.PingInterval, time.Second, 5*time.Minute)
	p.positiveDuration("agentTokens.defaultTTL", c.AgentTokens.DefaultTTL)
	p.positiveDuration("agentTokens.maxTTL", c.AgentTokens.MaxTTL)
	if c.AgentTokens.MaxTTL > 0 && c.AgentTokens.DefaultTTL > c.AgentTokens.MaxTTL {
		p.add("agentTokens.defaultTTL", "must not exceed agentTokens.maxTTL (%s), got %s",
			fmtDuration(c.AgentTokens.MaxTTL), fmtDuration(c.AgentTokens.DefaultTTL))
	}

	p.durationRange("keys.rollGrace", c.Keys.RollGrace, 0, 30*24*time.Hour)

	p.positive("rateLimits.sessionCreatesPerKey", c.RateLimits.SessionCreatesPerKey)
	p.positiveDuration("rateLimits.sessionCreatesWindow", c.RateLimits.SessionCreatesWindow)
	p.positive("rateLimits.perIP", c.RateLimits.PerIP)
	p.positiveDuration("rateLimits.perIPWindow", c.RateLimits.PerIPWindow)

	p.positiveDuration("idempotency.ttl", c.Idempotency.TTL)

	p.positiveDuration("webhooks.retryWindow", c.Webhooks.RetryWindow)
	p.positiveDuration("events.retention", c.Events.Retention)
	p.positiveDuration("webhooks.initialBackoff", c.Webhooks.InitialBackoff)
	p.positiveDuration("webhooks.maxBackoff", c.Webhooks.MaxBackoff)
	if c.Webhooks.MaxBackoff > 0 && c.Webhooks.InitialBackoff > c.Webhooks.MaxBackoff {
		p.add("webhooks.initialBackoff", "must not exceed webhooks.maxBackoff (%s), got %s",
			fmtDuration(c.Webhooks.MaxBackoff), fmtDuration(c.Webhooks.InitialBackoff))
	}
	p.positiveDuration("webhooks.timeout", c.Webhooks.Timeout)

	p.positiveDuration("vcc.requestTimeout", c.VCC.RequestTimeout)
	p.intRange("vcc.maxRetries", c.VCC.MaxRetries, 0, 10)

	firstByID := map[string]int{}        // merchant ID -> index of its first use
	firstByPrefix := map[string]string{} // environment prefix -> ID that took it
	for i, m := range c.Merchants {
		at := func(key string) string { return fmt.Sprintf("merchants[%d].%s", i, key) }
		switch {
		case m.ID == "":
			p.add(at("id"), "required")
		case !merchantIDPattern.MatchString(m.ID):
			p.add(at("id"), "must be 1 to 64 characters of a-z, 0-9, _ and -, got %q", m.ID)
		default:
			if _, dup := firstByID[m.ID]; dup {
				p.add(at("id"), "duplicate %q", m.ID)
				break
			}
			firstByID[m.ID] = i
			prefix := MerchantEnvPrefix(m.ID)
			if other, clash := firstByPrefix[prefix]; clash {
				p.add(at("id"), "%q and %q share the environment variable prefix %s; rename one", other, m.ID, prefix)
				break
			}
			firstByPrefix[prefix] = m.ID
		}
		if !slices.Contains(merchantStatuses, m.Status) {
			p.add(at("status"), "must be one of %s, got %q", strings.Join(merchantStatuses, ", "), m.Status)
		}
		validateMerchantVCC(&p, at("vcc"), m.VCC)
		validateAnnouncement(&p, at("frameAnnouncement"), m.FrameAnnouncement)
		for j, origin := range m.AllowedOrigins {
			validateOrigin(&p, fmt.Sprintf("%s[%d]", at("allowedOrigins"), j), origin)
		}
		if m.Webhook.URL != "" {
			p.url(at("webhook.url"), m.Webhook.URL, false)
			if m.Webhook.PreviousSecret != "" && !strings.HasPrefix(m.Webhook.PreviousSecret, "whsec_") {
				p.add(at("webhook.previousSecret"), "must start with \"whsec_\"")
			}
			if !strings.HasPrefix(m.Webhook.Secret, "whsec_") {
				p.add(at("webhook.secret"), "must start with \"whsec_\" when webhook.url is set")
			}
		}
		switch vw := m.VCCWebhook; {
		case vw.ClientID != "" && vw.ClientSecret == "":
			p.add(at("vccWebhook.clientSecret"), "required when vccWebhook.clientId is set")
		case vw.ClientID == "" && vw.ClientSecret != "":
			p.add(at("vccWebhook.clientId"), "required when vccWebhook.clientSecret is set")
		}
	}
	return errors.Join(p...)
}

// validateTLS checks that both files are given and load as a certificate and its key. Problems
// never quote the files' contents.
func validateTLS(p *problems, t TLS) {
	if !t.Enabled() {
		return
	}
	switch {
	case t.CertFile == "":
		p.add("tls.certFile", "required when tls.keyFile is set")
		return
	case t.KeyFile == "":
		p.add("tls.keyFile", "required when tls.certFile is set")
		return
	}
	certPEM, err := os.ReadFile(t.CertFile)
	if err != nil {
		p.add("tls.certFile", "cannot be read: %v", unwrapPath(err))
		return
	}
	keyPEM, err := os.ReadFile(t.KeyFile)
	if err != nil {
		p.add("tls.keyFile", "cannot be read: %v", unwrapPath(err))
		return
	}
	if block, _ := pem.Decode(certPEM); block == nil || block.Type != "CERTIFICATE" {
		p.add("tls.certFile", "must hold a PEM certificate")
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		p.add("tls.keyFile", "must hold the PEM private key of tls.certFile's certificate")
	}
}

// unwrapPath returns the operating system's reason without the path, which the key names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

func validateMerchantVCC(p *problems, path string, v MerchantVCC) {
	if v.Region != "" && !slices.Contains(regions, v.Region) {
		p.add(path+".region", "must be one of %s, got %q", strings.Join(regions, ", "), v.Region)
	}
	if v.TokenURL != "" {
		p.url(path+".tokenUrl", v.TokenURL, false)
	}
	if v.APIBaseURL != "" {
		p.url(path+".apiBaseUrl", v.APIBaseURL, false)
	}
	seen := map[int]bool{}
	for k, id := range v.AccountConfigurationIDs {
		itemPath := fmt.Sprintf("%s.accountConfigurationIds[%d]", path, k)
		switch {
		case id < 0:
			p.add(itemPath, "must be 0 or greater, got %d", id)
		case seen[id]:
			p.add(itemPath, "duplicate %d", id)
		}
		seen[id] = true
	}
	switch def := v.DefaultAccountConfigurationID; {
	case def == nil:
	case *def < 0:
		p.add(path+".defaultAccountConfigurationId", "must be 0 or greater, got %d", *def)
	case len(v.AccountConfigurationIDs) > 0 && !slices.Contains(v.AccountConfigurationIDs, *def):
		p.add(path+".defaultAccountConfigurationId", "must be one of accountConfigurationIds %v, got %d", v.AccountConfigurationIDs, *def)
	}
	validateGateways(p, path, v)
}

// validateOrigin checks an allowed origin: scheme://host[:port] exactly as a browser sends it in
// the Origin header, https unless the host is loopback.
func validateOrigin(p *problems, path, origin string) {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" ||
		strings.HasSuffix(origin, "?") || strings.HasSuffix(origin, "#") {
		p.add(path, "must be an origin: scheme://host[:port] with no path, such as https://desk.example.com")
		return
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		p.add(path, "must use https (http is allowed only for localhost and 127.0.0.1)")
	}
}

// CheckServable returns what makes a valid configuration unfit to serve: no merchant at all
// (every request would fail authentication), or an active merchant without its VCC credentials
// (every payment would fail with merchant_not_configured; usually the variable holding the secret
// is not set). serve and check refuse it; a merchant that is not active may lack credentials.
// Problems are *FieldError, joined with errors.Join.
func (c *Config) CheckServable() error {
	var p problems
	if len(c.Merchants) == 0 {
		p.add("merchants", "none configured: add at least one (see config/example.yaml); every request would fail authentication")
	}
	for i, m := range c.Merchants {
		if m.Status != StatusActive {
			continue
		}
		for _, f := range []struct{ key, value string }{
			{"tokenUrl", m.VCC.TokenURL}, {"apiBaseUrl", m.VCC.APIBaseURL},
			{"clientId", m.VCC.ClientID}, {"clientSecret", m.VCC.ClientSecret},
		} {
			if f.value != "" {
				continue
			}
			how := "set it"
			switch f.key {
			case "tokenUrl", "apiBaseUrl":
				how = "set it (or vcc.region)"
			case "clientSecret":
				how = "set it (or " + MerchantEnvPrefix(m.ID) + EnvVCCClientSecret + ")"
			}
			p.add(fmt.Sprintf("merchants[%d].vcc.%s", i, f.key),
				"required for an active merchant: %s, or make the merchant status: inactive; without it every payment fails with merchant_not_configured", how)
		}
	}
	return errors.Join(p...)
}

// Warnings lists settings that are valid but probably not what was meant.
func (c *Config) Warnings() []string {
	var w []string
	for i, m := range c.Merchants {
		if m.VCC.SkipCallTransfer {
			w = append(w, fmt.Sprintf("merchants[%d].vcc.skipCallTransfer (%s): true is for testing only; VCC will not transfer a live call", i, m.ID))
		}
	}
	return w
}

// validateStore checks store: a PostgreSQL URL whose text is never quoted back (it may hold a
// password), and the master key every node sharing it must have in common.
func validateStore(p *problems, c *Config) {
	if c.Store.LeaseTTL != 0 { // 0: the default
		p.durationRange("store.leaseTtl", c.Store.LeaseTTL, 3*time.Second, 5*time.Minute)
	}
	if c.Store.URL == "" {
		return
	}
	if u, err := url.Parse(c.Store.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		p.add("store.url", "must be a postgres:// URL such as postgres://paybridge@db.internal:5432/paybridge")
	}
	if c.MasterKey == "" {
		// Each node would otherwise make its own <dataDir>/master.key, and none could open the
		// provider tokens or verify the agent tokens another sealed.
		p.add("masterKey", "must be set when store.url is: every node sharing the database needs the same master key (or PAYBRIDGE_MASTER_KEY)")
	}
}
