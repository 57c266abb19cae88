package config_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/config"
)

// env returns a getenv over vars.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// problems flattens an error joined with errors.Join into its messages.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range joined.Unwrap() {
			out = append(out, problems(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// minimal is the smallest useful file: one merchant with VCC credentials.
const minimal = `
merchants:
  - id: acme
    vcc:
      region: emea
      clientId: acme-bridge
      clientSecret: s3cret-vcc
`

func TestParseDefaults(t *testing.T) {
	c, err := config.Parse([]byte(minimal), env(nil))
	require.NoError(t, err)
	require.Len(t, c.Merchants, 1)
	m := c.Merchants[0]

	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"publicBaseUrl", c.PublicBaseURL, "http://127.0.0.1:8080"},
		{"docsBaseUrl", c.DocsBaseURL, "http://127.0.0.1:8080/docs/error-codes"},
		{"dataDir", c.DataDir, "./data"},
		{"masterKey", c.MasterKey, ""},
		{"metrics.listen", c.Metrics.Listen, ""},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
		{"provider.sessionLifetime", c.Provider.SessionLifetime, 15 * time.Minute},
		{"provider.maxAttempts", c.Provider.MaxAttempts, 5},
		{"provider.pollInterval", c.Provider.PollInterval, 2 * time.Second},
		{"provider.pollConcurrency", c.Provider.PollConcurrency, 8},
		{"sessions.defaultTTL", c.Sessions.DefaultTTL, 30 * time.Minute},
		{"agentTokens.defaultTTL", c.AgentTokens.DefaultTTL, time.Hour},
		{"agentTokens.maxTTL", c.AgentTokens.MaxTTL, 24 * time.Hour},
		{"keys.rollGrace", c.Keys.RollGrace, 24 * time.Hour},
		{"rateLimits.sessionCreatesPerKey", c.RateLimits.SessionCreatesPerKey, 30},
		{"rateLimits.sessionCreatesWindow", c.RateLimits.SessionCreatesWindow, 60 * time.Second},
		{"rateLimits.perIP", c.RateLimits.PerIP, 600},
		{"rateLimits.perIPWindow", c.RateLimits.PerIPWindow, 60 * time.Second},
		{"idempotency.ttl", c.Idempotency.TTL, 24 * time.Hour},
		{"webhooks.retryWindow", c.Webhooks.RetryWindow, 24 * time.Hour},
		{"webhooks.initialBackoff", c.Webhooks.InitialBackoff, 30 * time.Second},
		{"webhooks.maxBackoff", c.Webhooks.MaxBackoff, time.Hour},
		{"webhooks.timeout", c.Webhooks.Timeout, 10 * time.Second},
		{"events.retention", c.Events.Retention, 30 * 24 * time.Hour},
		{"vcc.requestTimeout", c.VCC.RequestTimeout, 10 * time.Second},
		{"vcc.maxRetries", c.VCC.MaxRetries, 3},
		{"merchants[0].status", m.Status, "active"},
		{"merchants[0].vcc.defaultAccountConfigurationId", m.VCC.DefaultAccountConfigurationID, (*int)(nil)},
	} {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
	assert.Empty(t, c.Warnings())
}

func TestParseEmptyFileIsDefault(t *testing.T) {
	for _, doc := range []string{"", "# nothing but a comment\n", "---\n"} {
		c, err := config.Parse([]byte(doc), env(nil))
		require.NoError(t, err, "%q", doc)
		assert.Equal(t, config.Default(), c, "%q", doc)
		assert.Empty(t, c.Warnings())
		assert.Equal(t, []string{"merchants: none configured: add at least one (see config/example.yaml); every request would fail authentication"},
			problems(c.CheckServable()), "valid, but serve and check refuse it")
	}
}

func TestParseDerivedDefaults(t *testing.T) {
	for _, tt := range []struct {
		name, doc                string
		wantPublic, wantDocsBase string
	}{
		{"from listen", "listen: 10.0.0.5:9090", "http://10.0.0.5:9090", "http://10.0.0.5:9090/docs/error-codes"},
		{"wildcard IPv4 listen", "listen: 0.0.0.0:9090", "http://localhost:9090", "http://localhost:9090/docs/error-codes"},
		{"wildcard IPv6 listen", "listen: '[::]:9090'", "http://localhost:9090", "http://localhost:9090/docs/error-codes"},
		{"empty host", "listen: ':9090'", "http://localhost:9090", "http://localhost:9090/docs/error-codes"},
		{"docs from publicBaseUrl", "publicBaseUrl: https://pay.example.com/", "https://pay.example.com/", "https://pay.example.com/docs/error-codes"},
		{"explicit docs", "docsBaseUrl: https://docs.example.com/errors", "http://127.0.0.1:8080", "https://docs.example.com/errors"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.doc), env(nil))
			require.NoError(t, err)
			assert.Equal(t, tt.wantPublic, c.PublicBaseURL)
			assert.Equal(t, tt.wantDocsBase, c.DocsBaseURL)
		})
	}
}

func TestParseDefaultAccountConfigurationIsTheFirst(t *testing.T) {
	c, err := config.Parse([]byte(`
merchants:
  - id: acme
    vcc: {accountConfigurationIds: [7, 3]}
`), env(nil))
	require.NoError(t, err)
	assert.Equal(t, new(7), c.Merchants[0].VCC.DefaultAccountConfigurationID)
}

// An explicit value, even zero, is kept: zero is valid for some settings and an error for others.
func TestParseKeepsExplicitZero(t *testing.T) {
	c, err := config.Parse([]byte("vcc: {maxRetries: 0}\nkeys: {rollGrace: 0s}\n"), env(nil))
	require.NoError(t, err)
	assert.Equal(t, 0, c.VCC.MaxRetries)
	assert.Equal(t, time.Duration(0), c.Keys.RollGrace)

	_, err = config.Parse([]byte("provider:\n  maxAttempts: 0\n"), env(nil))
	assert.Equal(t, []string{"provider.maxAttempts: must be between 1 and 20, got 0"}, problems(err))
}

// A key given no value keeps its default, as a missing key does.
func TestParseNullKeepsDefault(t *testing.T) {
	c, err := config.Parse([]byte("provider:\n  maxAttempts:\nsessions: ~\n"), env(nil))
	require.NoError(t, err)
	assert.Equal(t, 5, c.Provider.MaxAttempts)
	assert.Equal(t, 30*time.Minute, c.Sessions.DefaultTTL)
}

// valid returns a configuration that passes Validate, with two merchants.
func valid(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(`
masterKey: `+base64.StdEncoding.EncodeToString(make([]byte, 32))+`
merchants:
  - id: acme
    vcc:
      region: emea
      clientId: acme-bridge
      clientSecret: s3cret-vcc
      accountConfigurationIds: [1, 2]
    allowedOrigins: [https://desk.acme.example]
    webhook: {url: https://crm.acme.example/hook, secret: whsec_s3cret}
    vccWebhook: {clientId: vcc, clientSecret: s3cret-vcc-webhook, signingSecret: s3cret-signing}
  - id: globex
    status: inactive
`), env(nil))
	require.NoError(t, err)
	return c
}

func TestValidateRejects(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(c *config.Config)
		want   string
	}{
		{"listen without port", func(c *config.Config) { c.Listen = "localhost" },
			"listen: must be host:port, such as 127.0.0.1:8080"},
		{"listen port out of range", func(c *config.Config) { c.Listen = "127.0.0.1:65536" },
			`listen: port "65536" is out of range: use 0 to 65535 (0 picks a free one)`},
		{"listen port out of range, as a newcomer types it", func(c *config.Config) { c.Listen = "127.0.0.1:99999" },
			`listen: port "99999" is out of range: use 0 to 65535 (0 picks a free one)`},
		{"metrics.listen without port", func(c *config.Config) { c.Metrics.Listen = "localhost" },
			"metrics.listen: must be host:port, such as 127.0.0.1:9090, or empty to serve /metrics on listen"},
		{"metrics.listen port out of range", func(c *config.Config) { c.Metrics.Listen = "127.0.0.1:70000" },
			`metrics.listen: port "70000" is out of range: use 0 to 65535 (0 picks a free one)`},
		{"metrics.listen on the API's address", func(c *config.Config) { c.Metrics.Listen = c.Listen },
			"metrics.listen: must differ from listen (leave it empty to serve /metrics on listen)"},
		{"publicBaseUrl relative", func(c *config.Config) { c.PublicBaseURL = "/pay" },
			"publicBaseUrl: must be an absolute http(s) URL"},
		{"publicBaseUrl other scheme", func(c *config.Config) { c.PublicBaseURL = "ftp://pay.example.com" },
			"publicBaseUrl: must be an absolute http(s) URL"},
		{"docsBaseUrl", func(c *config.Config) { c.DocsBaseURL = "docs" },
			"docsBaseUrl: must be an absolute http(s) URL"},
		{"dataDir", func(c *config.Config) { c.DataDir = "" },
			"dataDir: must not be empty"},
		{"masterKey not base64", func(c *config.Config) { c.MasterKey = "s3cret master key!" },
			"masterKey: must be base64 (standard or URL-safe alphabet, padded or not)"},
		{"masterKey short", func(c *config.Config) { c.MasterKey = base64.StdEncoding.EncodeToString([]byte("s3cret-16-bytes!")) },
			"masterKey: decodes to 16 bytes, need at least 32"},
		{"log.level", func(c *config.Config) { c.Log.Level = "verbose" },
			`log.level: must be one of debug, info, warn, error, got "verbose"`},
		{"log.format", func(c *config.Config) { c.Log.Format = "xml" },
			`log.format: must be one of json, text, got "xml"`},
		{"provider.sessionLifetime", func(c *config.Config) { c.Provider.SessionLifetime = 0 },
			"provider.sessionLifetime: must be greater than 0s, got 0s"},
		{"provider.maxAttempts low", func(c *config.Config) { c.Provider.MaxAttempts = 0 },
			"provider.maxAttempts: must be between 1 and 20, got 0"},
		{"provider.maxAttempts high", func(c *config.Config) { c.Provider.MaxAttempts = 21 },
			"provider.maxAttempts: must be between 1 and 20, got 21"},
		{"provider.pollInterval", func(c *config.Config) { c.Provider.PollInterval = 50 * time.Millisecond },
			"provider.pollInterval: must be at least 100ms, got 50ms"},
		{"provider.pollConcurrency low", func(c *config.Config) { c.Provider.PollConcurrency = 0 },
			"provider.pollConcurrency: must be between 1 and 256, got 0"},
		{"provider.pollConcurrency high", func(c *config.Config) { c.Provider.PollConcurrency = 257 },
			"provider.pollConcurrency: must be between 1 and 256, got 257"},
		{"sessions.defaultTTL low", func(c *config.Config) { c.Sessions.DefaultTTL = 4 * time.Minute },
			"sessions.defaultTTL: must be between 5m and 1h, got 4m"},
		{"sessions.defaultTTL high", func(c *config.Config) { c.Sessions.DefaultTTL = 61 * time.Minute },
			"sessions.defaultTTL: must be between 5m and 1h, got 1h1m"},
		{"agentTokens.defaultTTL", func(c *config.Config) { c.AgentTokens.DefaultTTL = 0 },
			"agentTokens.defaultTTL: must be greater than 0s, got 0s"},
		{"agentTokens.maxTTL", func(c *config.Config) { c.AgentTokens.MaxTTL = -time.Hour },
			"agentTokens.maxTTL: must be greater than 0s, got -1h"},
		{"agentTokens.defaultTTL over maxTTL", func(c *config.Config) { c.AgentTokens.DefaultTTL = 25 * time.Hour },
			"agentTokens.defaultTTL: must not exceed agentTokens.maxTTL (24h), got 25h"},
		{"keys.rollGrace negative", func(c *config.Config) { c.Keys.RollGrace = -time.Second },
			"keys.rollGrace: must be between 0s and 720h, got -1s"},
		{"keys.rollGrace over 30 days", func(c *config.Config) { c.Keys.RollGrace = 721 * time.Hour },
			"keys.rollGrace: must be between 0s and 720h, got 721h"},
		{"rateLimits.sessionCreatesPerKey", func(c *config.Config) { c.RateLimits.SessionCreatesPerKey = 0 },
			"rateLimits.sessionCreatesPerKey: must be greater than 0, got 0"},
		{"rateLimits.sessionCreatesWindow", func(c *config.Config) { c.RateLimits.SessionCreatesWindow = 0 },
			"rateLimits.sessionCreatesWindow: must be greater than 0s, got 0s"},
		{"rateLimits.perIP", func(c *config.Config) { c.RateLimits.PerIP = -1 },
			"rateLimits.perIP: must be greater than 0, got -1"},
		{"rateLimits.perIPWindow", func(c *config.Config) { c.RateLimits.PerIPWindow = 0 },
			"rateLimits.perIPWindow: must be greater than 0s, got 0s"},
		{"idempotency.ttl", func(c *config.Config) { c.Idempotency.TTL = 0 },
			"idempotency.ttl: must be greater than 0s, got 0s"},
		{"webhooks.retryWindow", func(c *config.Config) { c.Webhooks.RetryWindow = 0 },
			"webhooks.retryWindow: must be greater than 0s, got 0s"},
		{"events.retention", func(c *config.Config) { c.Events.Retention = -time.Hour },
			"events.retention: must be greater than 0s, got -1h"},
		{"webhooks.initialBackoff", func(c *config.Config) { c.Webhooks.InitialBackoff = 0 },
			"webhooks.initialBackoff: must be greater than 0s, got 0s"},
		{"webhooks.maxBackoff", func(c *config.Config) { c.Webhooks.MaxBackoff = 0 },
			"webhooks.maxBackoff: must be greater than 0s, got 0s"},
		{"webhooks.initialBackoff over maxBackoff", func(c *config.Config) { c.Webhooks.InitialBackoff = 2 * time.Hour },
			"webhooks.initialBackoff: must not exceed webhooks.maxBackoff (1h), got 2h"},
		{"webhooks.timeout", func(c *config.Config) { c.Webhooks.Timeout = 0 },
			"webhooks.timeout: must be greater than 0s, got 0s"},
		{"vcc.requestTimeout", func(c *config.Config) { c.VCC.RequestTimeout = 0 },
			"vcc.requestTimeout: must be greater than 0s, got 0s"},
		{"vcc.maxRetries low", func(c *config.Config) { c.VCC.MaxRetries = -1 },
			"vcc.maxRetries: must be between 0 and 10, got -1"},
		{"vcc.maxRetries high", func(c *config.Config) { c.VCC.MaxRetries = 11 },
			"vcc.maxRetries: must be between 0 and 10, got 11"},
		{"merchant id missing", func(c *config.Config) { c.Merchants[1].ID = "" },
			"merchants[1].id: required"},
		{"merchant id upper case", func(c *config.Config) { c.Merchants[1].ID = "Globex" },
			`merchants[1].id: must be 1 to 64 characters of a-z, 0-9, _ and -, got "Globex"`},
		{"merchant id too long", func(c *config.Config) { c.Merchants[1].ID = strings.Repeat("g", 65) },
			`merchants[1].id: must be 1 to 64 characters of a-z, 0-9, _ and -, got "` + strings.Repeat("g", 65) + `"`},
		{"merchant id duplicate", func(c *config.Config) { c.Merchants[1].ID = "acme" },
			`merchants[1].id: duplicate "acme"`},
		{"merchant ids share an environment prefix", func(c *config.Config) { c.Merchants[0].ID, c.Merchants[1].ID = "acme-uk", "acme_uk" },
			`merchants[1].id: "acme-uk" and "acme_uk" share the environment variable prefix PAYBRIDGE_MERCHANT_ACME_UK_; rename one`},
		{"merchant status", func(c *config.Config) { c.Merchants[1].Status = "enabled" },
			`merchants[1].status: must be one of active, pending_approval, denied, inactive, got "enabled"`},
		{"vcc.region", func(c *config.Config) { c.Merchants[0].VCC.Region = "eu" },
			`merchants[0].vcc.region: must be one of emea, nam, apac, got "eu"`},
		{"vcc.tokenUrl not absolute", func(c *config.Config) { c.Merchants[0].VCC.TokenURL = "emea.cc.vonage.com/Auth/connect/token" },
			"merchants[0].vcc.tokenUrl: must be an absolute http(s) URL"},
		{"vcc.tokenUrl plain http", func(c *config.Config) { c.Merchants[0].VCC.TokenURL = "http://emea.cc.vonage.com/Auth/connect/token" },
			"merchants[0].vcc.tokenUrl: must use https (http is allowed only for loopback hosts)"},
		{"vcc.apiBaseUrl not absolute", func(c *config.Config) { c.Merchants[0].VCC.APIBaseURL = "paymentapi" },
			"merchants[0].vcc.apiBaseUrl: must be an absolute http(s) URL"},
		{"vcc.apiBaseUrl plain http", func(c *config.Config) { c.Merchants[0].VCC.APIBaseURL = "http://vcc.example.com/paymentapi" },
			"merchants[0].vcc.apiBaseUrl: must use https (http is allowed only for loopback hosts)"},
		{"accountConfigurationIds negative (0 is a real id)", func(c *config.Config) { c.Merchants[0].VCC.AccountConfigurationIDs = []int{1, 0, -1} },
			"merchants[0].vcc.accountConfigurationIds[2]: must be 0 or greater, got -1"},
		{"accountConfigurationIds duplicate", func(c *config.Config) { c.Merchants[0].VCC.AccountConfigurationIDs = []int{1, 2, 1} },
			"merchants[0].vcc.accountConfigurationIds[2]: duplicate 1"},
		{"defaultAccountConfigurationId not listed", func(c *config.Config) { c.Merchants[0].VCC.DefaultAccountConfigurationID = new(3) },
			"merchants[0].vcc.defaultAccountConfigurationId: must be one of accountConfigurationIds [1 2], got 3"},
		{"defaultAccountConfigurationId negative", func(c *config.Config) { c.Merchants[1].VCC.DefaultAccountConfigurationID = new(-1) },
			"merchants[1].vcc.defaultAccountConfigurationId: must be 0 or greater, got -1"},
		{"allowedOrigins with path", func(c *config.Config) { c.Merchants[0].AllowedOrigins[0] = "https://desk.acme.example/app" },
			"merchants[0].allowedOrigins[0]: must be an origin: scheme://host[:port] with no path, such as https://desk.example.com"},
		{"allowedOrigins trailing slash", func(c *config.Config) { c.Merchants[0].AllowedOrigins[0] = "https://desk.acme.example/" },
			"merchants[0].allowedOrigins[0]: must be an origin: scheme://host[:port] with no path, such as https://desk.example.com"},
		{"allowedOrigins without scheme", func(c *config.Config) { c.Merchants[0].AllowedOrigins[0] = "desk.acme.example" },
			"merchants[0].allowedOrigins[0]: must be an origin: scheme://host[:port] with no path, such as https://desk.example.com"},
		{"allowedOrigins with query", func(c *config.Config) { c.Merchants[0].AllowedOrigins[0] = "https://desk.acme.example?x=1" },
			"merchants[0].allowedOrigins[0]: must be an origin: scheme://host[:port] with no path, such as https://desk.example.com"},
		{"allowedOrigins with user", func(c *config.Config) { c.Merchants[0].AllowedOrigins[0] = "https://agent@desk.acme.example" },
			"merchants[0].allowedOrigins[0]: must be an origin: scheme://host[:port] with no path, such as https://desk.example.com"},
		{"allowedOrigins plain http", func(c *config.Config) { c.Merchants[0].AllowedOrigins[0] = "http://desk.acme.example" },
			"merchants[0].allowedOrigins[0]: must use https (http is allowed only for localhost and 127.0.0.1)"},
		{"webhook.url not absolute", func(c *config.Config) { c.Merchants[0].Webhook.URL = "crm.acme.example/hook" },
			"merchants[0].webhook.url: must be an absolute http(s) URL"},
		{"webhook.url plain http", func(c *config.Config) { c.Merchants[0].Webhook.URL = "http://crm.acme.example/hook" },
			"merchants[0].webhook.url: must use https (http is allowed only for loopback hosts)"},
		{"webhook.secret prefix", func(c *config.Config) { c.Merchants[0].Webhook.Secret = "s3cret-no-prefix" },
			`merchants[0].webhook.secret: must start with "whsec_" when webhook.url is set`},
		{"webhook.secret missing", func(c *config.Config) { c.Merchants[0].Webhook.Secret = "" },
			`merchants[0].webhook.secret: must start with "whsec_" when webhook.url is set`},
		{"vccWebhook.clientSecret missing", func(c *config.Config) { c.Merchants[0].VCCWebhook.ClientSecret = "" },
			"merchants[0].vccWebhook.clientSecret: required when vccWebhook.clientId is set"},
		{"vccWebhook.clientId missing", func(c *config.Config) { c.Merchants[0].VCCWebhook.ClientID = "" },
			"merchants[0].vccWebhook.clientId: required when vccWebhook.clientSecret is set"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid(t)
			tt.change(c)
			err := c.Validate()
			require.Error(t, err)
			assert.Equal(t, []string{tt.want}, problems(err))
			var fe *config.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, strings.SplitN(tt.want, ": ", 2)[0], fe.Path)
			assert.NotContains(t, err.Error(), "s3cret", "a secret in an error")
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(c *config.Config)
	}{
		{"as is", func(*config.Config) {}},
		{"http on localhost origin", func(c *config.Config) { c.Merchants[0].AllowedOrigins = []string{"http://localhost:3000"} }},
		{"http on 127.0.0.1 origin", func(c *config.Config) { c.Merchants[0].AllowedOrigins = []string{"http://127.0.0.1:3000"} }},
		{"http on loopback VCC", func(c *config.Config) {
			c.Merchants[0].VCC.TokenURL = "http://127.0.0.1:9000/Auth/connect/token"
			c.Merchants[0].VCC.APIBaseURL = "http://[::1]:9000/paymentapi"
		}},
		{"http webhook on localhost", func(c *config.Config) { c.Merchants[0].Webhook.URL = "http://localhost:4000/hook" }},
		{"http publicBaseUrl anywhere", func(c *config.Config) { c.PublicBaseURL = "http://pay.internal:8080" }},
		{"no master key", func(c *config.Config) { c.MasterKey = "" }},
		{"no retries", func(c *config.Config) { c.VCC.MaxRetries = 0 }},
		{"no roll grace", func(c *config.Config) { c.Keys.RollGrace = 0 }},
		{"roll grace of 30 days", func(c *config.Config) { c.Keys.RollGrace = 30 * 24 * time.Hour }},
		{"session TTL bounds", func(c *config.Config) { c.Sessions.DefaultTTL = time.Hour }},
		{"active without VCC credentials", func(c *config.Config) { c.Merchants[0].VCC = config.MerchantVCC{} }},
		{"webhook secret without url", func(c *config.Config) { c.Merchants[0].Webhook = config.Webhook{Secret: "whsec_x"} }},
		{"signing secret alone", func(c *config.Config) {
			c.Merchants[0].VCCWebhook = config.VCCWebhook{SigningSecret: "s3cret"}
		}},
		{"default account configuration without a list", func(c *config.Config) {
			c.Merchants[1].VCC.DefaultAccountConfigurationID = new(9)
		}},
		{"every status", func(c *config.Config) {
			for _, s := range []string{"active", "pending_approval", "denied", "inactive"} {
				c.Merchants = append(c.Merchants, config.Merchant{ID: "m-" + s, Status: s})
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid(t)
			tt.change(c)
			assert.NoError(t, c.Validate())
		})
	}
}

func TestValidateReportsEveryProblemInFileOrder(t *testing.T) {
	_, err := config.Parse([]byte(`
listen: nowhere
provider:
  maxAttempts: 0
merchants:
  - id: acme
    vcc: {tokenUrl: "not a url"}
  - id: acme
    status: enabled
`), env(nil))
	assert.Equal(t, []string{
		"listen: must be host:port, such as 127.0.0.1:8080",
		"provider.maxAttempts: must be between 1 and 20, got 0",
		"merchants[0].vcc.tokenUrl: must be an absolute http(s) URL",
		`merchants[1].id: duplicate "acme"`,
		`merchants[1].status: must be one of active, pending_approval, denied, inactive, got "enabled"`,
	}, problems(err))
}

func TestParseRejectsUnknownKeys(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
		want      []string
	}{
		{"top level", "listen: 127.0.0.1:8080\nlisten_addr: 127.0.0.1:9090\n",
			[]string{"line 2: listen_addr: unknown key"}},
		{"nested", "provider:\n  sessionLifetime: 15m\n  maxAttemps: 3\n",
			[]string{`line 3: provider.maxAttemps: unknown key; did you mean "maxAttempts"?`}},
		{"case slip", "publicBaseURL: https://pay.example.com\n",
			[]string{`line 1: publicBaseURL: unknown key; did you mean "publicBaseUrl"?`}},
		{"in the second merchant", "merchants:\n  - id: a\n  - id: b\n    vcc:\n      clientID: x\n",
			[]string{`line 5: merchants[1].vcc.clientID: unknown key; did you mean "clientId"?`}},
		{"in a flow mapping", "merchants:\n  - {id: a, webhook: {url: 'https://x.example', secrett: whsec_x}}\n",
			[]string{`line 2: merchants[0].webhook.secrett: unknown key; did you mean "secret"?`}},
		{"every one at once", "lsten: x\nlog:\n  colour: true\nmerchants:\n  - id: a\n    title: A\n",
			[]string{`line 1: lsten: unknown key; did you mean "listen"?`, "line 3: log.colour: unknown key", "line 6: merchants[0].title: unknown key"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc), env(nil))
			assert.Equal(t, tt.want, problems(err))
		})
	}
}

func TestParseMergeKeys(t *testing.T) {
	doc := `
merchants:
  - &acme
    id: acme
    vcc: {region: emea, clientId: acme, clientSecret: x}
  - <<: *acme
    id: acme-2
    bogus: true
`
	_, err := config.Parse([]byte(doc), env(nil))
	assert.Equal(t, []string{"line 8: merchants[1].bogus: unknown key"}, problems(err))

	c, err := config.Parse([]byte(strings.Replace(doc, "    bogus: true\n", "", 1)), env(nil))
	require.NoError(t, err)
	assert.Equal(t, "emea", c.Merchants[1].VCC.Region)
}

// yaml.v3 quotes a mistyped value in its message; a mistyped secret must not leak that way.
func TestParseWrongTypeNamesKeyNotValue(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
		want      []string
	}{
		{"scalar for a mapping", "merchants:\n  - id: a\n    webhook: whsec_s3cret\n",
			[]string{"line 3: merchants[0].webhook: must be a mapping"}},
		{"scalar for a list", "merchants:\n  - id: a\n    allowedOrigins: https://s3cret.example\n",
			[]string{"line 3: merchants[0].allowedOrigins: must be a list"}},
		{"mapping for a list", "merchants: {id: s3cret}\n",
			[]string{"line 1: merchants: must be a list"}},
		{"text for a number", "provider:\n  maxAttempts: s3cret\n",
			[]string{"line 2: provider.maxAttempts: must be a whole number"}},
		{"number for a duration", "provider:\n  pollInterval: 2\n",
			[]string{"line 2: provider.pollInterval: must be a duration such as 500ms, 30s, 15m or 24h"}},
		{"bad duration", "webhooks: {timeout: 10 s3cret}\n",
			[]string{"line 1: webhooks.timeout: must be a duration such as 500ms, 30s, 15m or 24h"}},
		{"text for a bool", "merchants:\n  - vcc: {skipCallTransfer: s3cret}\n",
			[]string{"line 2: merchants[0].vcc.skipCallTransfer: must be true or false"}},
		{"list for a string", "merchants:\n  - vcc: {clientSecret: [s3cret]}\n",
			[]string{"line 2: merchants[0].vcc.clientSecret: must be a string"}},
		{"document not a mapping", "s3cret\n",
			[]string{"line 1: (document): must be a mapping"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc), env(nil))
			require.Error(t, err)
			assert.Equal(t, tt.want, problems(err))
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestParseSyntaxError(t *testing.T) {
	_, err := config.Parse([]byte("provider:\n  maxAttempts: [\n"), env(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line")
	assert.NotContains(t, err.Error(), "quote ${VAR}")

	// An unquoted reference inside a flow mapping ends the scalar at its brace: say so.
	_, err = config.Parse([]byte("merchants:\n  - id: a\n    webhook: {url: https://x.example, secret: ${S}}\n"), env(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `quote ${VAR} references inside {...} or [...]: "${VAR}"`)
}

func TestParseRejectsSecondDocument(t *testing.T) {
	_, err := config.Parse([]byte("listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n"), env(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a second YAML document")
}

func TestParseExpandsEnvironment(t *testing.T) {
	vars := map[string]string{"SECRET": "from-env", "HOST": "crm.acme.example", "PORT": "8443", "EMPTY": ""}
	for _, tt := range []struct {
		name, value, want string
	}{
		{"whole value", "${SECRET}", "from-env"},
		{"inside a value", "https://${HOST}:${PORT}/hook", "https://crm.acme.example:8443/hook"},
		{"escaped", "$${SECRET}", "${SECRET}"},
		{"escaped then expanded", "$${SECRET}-${SECRET}", "${SECRET}-from-env"},
		{"lone dollars", "a$b$$c$", "a$b$$c$"},
		{"no braces", "$SECRET", "$SECRET"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := fmt.Sprintf("dataDir: %q\nmerchants:\n  - id: acme\n    allowedOrigins: [%q]\n    vcc: {clientSecret: %q}\n",
				tt.value, "https://${HOST}", tt.value)
			c, err := config.Parse([]byte(doc), env(vars))
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.DataDir)
			assert.Equal(t, tt.want, c.Merchants[0].VCC.ClientSecret)
			assert.Equal(t, []string{"https://crm.acme.example"}, c.Merchants[0].AllowedOrigins)
		})
	}
}

func TestParseReportsUnsetVariables(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
		want      []string
	}{
		{"unset", "merchants:\n  - id: acme\n    vcc:\n      clientSecret: ${ACME_VCC_SECRET}\n",
			[]string{"merchants[0].vcc.clientSecret: environment variable ACME_VCC_SECRET is not set"}},
		{"empty counts as unset", "dataDir: ${EMPTY}\n",
			[]string{"dataDir: environment variable EMPTY is not set"}},
		{"every one, in file order", "dataDir: ${A}/${B}\nmerchants:\n  - id: acme\n    allowedOrigins: [x, '${C}']\n",
			[]string{
				"dataDir: environment variable A is not set",
				"dataDir: environment variable B is not set",
				"merchants[0].allowedOrigins[1]: environment variable C is not set",
			}},
		{"unterminated", "masterKey: s3cret${OOPS\n",
			[]string{"masterKey: malformed ${...} reference: want ${NAME} with NAME of letters, digits and _ (write $${ for a literal ${)"}},
		{"bad name", "masterKey: ${s3cret-key}\n",
			[]string{"masterKey: malformed ${...} reference: want ${NAME} with NAME of letters, digits and _ (write $${ for a literal ${)"}},
		{"empty name", "masterKey: x${}\n",
			[]string{"masterKey: malformed ${...} reference: want ${NAME} with NAME of letters, digits and _ (write $${ for a literal ${)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc), env(map[string]string{"EMPTY": ""}))
			assert.Equal(t, tt.want, problems(err))
			if err != nil {
				assert.NotContains(t, err.Error(), "s3cret")
			}
		})
	}
}

func TestParseEnvironmentOverridesSecrets(t *testing.T) {
	const file = `
masterKey: ${FILE_MASTER_KEY}
merchants:
  - id: acme-uk
    vcc: {clientId: acme, clientSecret: file-vcc}
    webhook: {url: "https://crm.example", secret: whsec_file, previousSecret: whsec_file_old}
    vccWebhook: {clientId: vcc, clientSecret: file-vcc-webhook, signingSecret: file-signing}
`
	fileKey := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("f", 32)))
	envKey := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("e", 32)))
	for _, tt := range []struct {
		name     string
		variable string
		value    string
		field    func(c *config.Config) string
		fileWant string
	}{
		{"master key", "PAYBRIDGE_MASTER_KEY", envKey,
			func(c *config.Config) string { return c.MasterKey }, fileKey},
		{"VCC client secret", "PAYBRIDGE_MERCHANT_ACME_UK_VCC_CLIENT_SECRET", "env-vcc",
			func(c *config.Config) string { return c.Merchants[0].VCC.ClientSecret }, "file-vcc"},
		{"webhook secret", "PAYBRIDGE_MERCHANT_ACME_UK_WEBHOOK_SECRET", "whsec_env",
			func(c *config.Config) string { return c.Merchants[0].Webhook.Secret }, "whsec_file"},
		{"webhook previous secret", "PAYBRIDGE_MERCHANT_ACME_UK_WEBHOOK_PREVIOUS_SECRET", "whsec_env_old",
			func(c *config.Config) string { return c.Merchants[0].Webhook.PreviousSecret }, "whsec_file_old"},
		{"VCC webhook client secret", "PAYBRIDGE_MERCHANT_ACME_UK_VCC_WEBHOOK_CLIENT_SECRET", "env-vcc-webhook",
			func(c *config.Config) string { return c.Merchants[0].VCCWebhook.ClientSecret }, "file-vcc-webhook"},
		{"VCC webhook signing secret", "PAYBRIDGE_MERCHANT_ACME_UK_VCC_WEBHOOK_SIGNING_SECRET", "env-signing",
			func(c *config.Config) string { return c.Merchants[0].VCCWebhook.SigningSecret }, "file-signing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"FILE_MASTER_KEY": fileKey}

			c, err := config.Parse([]byte(file), env(vars))
			require.NoError(t, err)
			assert.Equal(t, tt.fileWant, tt.field(c), "without the override, the file's value")

			vars[tt.variable] = tt.value
			c, err = config.Parse([]byte(file), env(vars))
			require.NoError(t, err)
			assert.Equal(t, tt.value, tt.field(c), "the override wins over the file")
		})
	}
}

func TestParseOverrideIsVerbatimAndExcusesUnsetFileVariable(t *testing.T) {
	doc := "merchants:\n  - id: acme\n    vcc: {clientSecret: \"${ACME_VCC_SECRET}\"}\n"
	c, err := config.Parse([]byte(doc), env(map[string]string{
		config.MerchantEnvPrefix("acme") + config.EnvVCCClientSecret: "pa$${word}${X}",
	}))
	require.NoError(t, err)
	assert.Equal(t, "pa$${word}${X}", c.Merchants[0].VCC.ClientSecret)
}

func TestMerchantEnvPrefix(t *testing.T) {
	for id, want := range map[string]string{
		"acme":     "PAYBRIDGE_MERCHANT_ACME_",
		"acme-uk":  "PAYBRIDGE_MERCHANT_ACME_UK_",
		"acme_uk2": "PAYBRIDGE_MERCHANT_ACME_UK2_",
		"a.b c":    "PAYBRIDGE_MERCHANT_A_B_C_",
	} {
		assert.Equal(t, want, config.MerchantEnvPrefix(id), id)
	}
}

func TestParseRegionFillsURLs(t *testing.T) {
	for _, tt := range []struct {
		name, vcc           string
		wantToken, wantBase string
	}{
		{"emea", "{region: emea}", "https://emea.cc.vonage.com/Auth/connect/token", "https://emea.api.newvoicemedia.com/globalpci"},
		{"nam", "{region: nam}", "https://nam.cc.vonage.com/Auth/connect/token", "https://nam.api.newvoicemedia.com/globalpci"},
		{"apac", "{region: apac}", "https://apac.cc.vonage.com/Auth/connect/token", "https://apac.api.newvoicemedia.com/globalpci"},
		{"explicit token URL kept", "{region: nam, tokenUrl: 'https://nam.newvoicemedia.com/Auth/connect/token'}",
			"https://nam.newvoicemedia.com/Auth/connect/token", "https://nam.api.newvoicemedia.com/globalpci"},
		{"explicit API base kept", "{region: apac, apiBaseUrl: 'https://apac.api.newvoicemedia.com/api'}",
			"https://apac.cc.vonage.com/Auth/connect/token", "https://apac.api.newvoicemedia.com/api"},
		{"no region", "{clientId: x}", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte("merchants:\n  - id: acme\n    vcc: "+tt.vcc+"\n"), env(nil))
			require.NoError(t, err)
			assert.Equal(t, tt.wantToken, c.Merchants[0].VCC.TokenURL)
			assert.Equal(t, tt.wantBase, c.Merchants[0].VCC.APIBaseURL)
		})
	}
}

func TestMasterKeyBytes(t *testing.T) {
	key := make([]byte, 40)
	for i := range key {
		key[i] = byte(250 - i) // high bytes, so standard and URL-safe alphabets differ
	}
	for _, tt := range []struct {
		name string
		enc  *base64.Encoding
	}{
		{"standard padded", base64.StdEncoding},
		{"standard unpadded", base64.RawStdEncoding},
		{"URL-safe padded", base64.URLEncoding},
		{"URL-safe unpadded", base64.RawURLEncoding},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			c.MasterKey = " " + tt.enc.EncodeToString(key) + "\n"
			got, err := c.MasterKeyBytes()
			require.NoError(t, err)
			assert.Equal(t, key, got)
			assert.NoError(t, c.Validate())
		})
	}

	t.Run("empty", func(t *testing.T) {
		got, err := config.Default().MasterKeyBytes()
		assert.NoError(t, err)
		assert.Nil(t, got)
	})
	t.Run("too short", func(t *testing.T) {
		c := config.Default()
		c.MasterKey = base64.StdEncoding.EncodeToString(key[:31])
		_, err := c.MasterKeyBytes()
		require.EqualError(t, err, "masterKey: decodes to 31 bytes, need at least 32")
		assert.NotContains(t, err.Error(), c.MasterKey)
	})
	t.Run("not base64", func(t *testing.T) {
		c := config.Default()
		c.MasterKey = "s3cret!"
		_, err := c.MasterKeyBytes()
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "s3cret")
	})
}

func TestDemo(t *testing.T) {
	c := config.Demo("http://127.0.0.1:43210/")
	require.NoError(t, c.Validate())

	assert.Equal(t, "127.0.0.1:0", c.Listen)
	assert.Equal(t, time.Second, c.Provider.PollInterval)
	require.Len(t, c.Merchants, 1)
	assert.Equal(t, config.Merchant{
		ID:     "sandbox",
		Name:   "Sandbox Merchant",
		Status: "active",
		VCC: config.MerchantVCC{
			TokenURL:                      "http://127.0.0.1:43210/Auth/connect/token",
			APIBaseURL:                    "http://127.0.0.1:43210/globalpci",
			ClientID:                      "paybridge-sandbox",
			ClientSecret:                  "sandbox-secret",
			AccountConfigurationIDs:       []int{1, 2},
			DefaultAccountConfigurationID: new(1),
			SkipCallTransfer:              true,
			Gateway:                       config.Gateway{Profile: "cybersource"},
		},
	}, c.Merchants[0])

	// Everything else is the default.
	want := config.Default()
	want.Listen, want.PublicBaseURL, want.DocsBaseURL = "127.0.0.1:0", "", ""
	want.Provider.PollInterval = time.Second
	want.Merchants = c.Merchants
	want.ApplyDefaults()
	assert.Equal(t, want, c)

	ms := c.BridgeMerchants()
	require.Len(t, ms, 1)
	assert.True(t, ms[0].VCC.Configured())
	assert.True(t, ms[0].VCC.SkipCallTransfer)
}

func TestExampleParses(t *testing.T) {
	vars := map[string]string{
		"ACME_VCC_SECRET":         "example-vcc-secret",
		"ACME_WEBHOOK_SECRET":     "whsec_example",
		"ACME_VCC_WEBHOOK_SECRET": "example-vcc-webhook-secret",
	}
	c, err := config.Parse([]byte(config.Example()), env(vars))
	require.NoError(t, err)
	assert.Empty(t, c.Warnings())
	require.Len(t, c.Merchants, 2)
	assert.Equal(t, "example-vcc-secret", c.Merchants[0].VCC.ClientSecret)
	assert.Equal(t, "https://emea.cc.vonage.com/Auth/connect/token", c.Merchants[0].VCC.TokenURL)

	// Apart from its merchants, the example shows the defaults, as it says.
	c.Merchants = nil
	assert.Equal(t, config.Default(), c)

	// Its variables are real: without them, each is reported.
	_, err = config.Parse([]byte(config.Example()), env(nil))
	assert.Equal(t, []string{
		"merchants[0].vcc.clientSecret: environment variable ACME_VCC_SECRET is not set",
		"merchants[0].webhook.secret: environment variable ACME_WEBHOOK_SECRET is not set",
		"merchants[0].vccWebhook.clientSecret: environment variable ACME_VCC_WEBHOOK_SECRET is not set",
	}, problems(err))
}

// The example documents every key there is.
func TestExampleShowsEveryKey(t *testing.T) {
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(config.Example()), &doc))
	shown := map[string]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			walk(n.Content[0], path)
		case yaml.MappingNode:
			for i := 0; i < len(n.Content); i += 2 {
				p := strings.TrimPrefix(path+"."+n.Content[i].Value, ".")
				shown[p] = true
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for _, item := range n.Content {
				walk(item, path+"[]")
			}
		}
	}
	walk(&doc, "")

	var want []string
	var keys func(t reflect.Type, path string)
	keys = func(t reflect.Type, path string) {
		for i := range t.NumField() {
			f := t.Field(i)
			p := strings.TrimPrefix(path+"."+f.Tag.Get("yaml"), ".")
			want = append(want, p)
			switch {
			case f.Type.Kind() == reflect.Struct:
				keys(f.Type, p)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				keys(f.Type.Elem(), p+"[]")
			}
		}
	}
	keys(reflect.TypeFor[config.Config](), "")

	require.Contains(t, want, "merchants[].vccWebhook.signingSecret", "the walk over Config's keys is broken")
	for _, k := range want {
		assert.True(t, shown[k], "the example does not show %s", k)
	}
}

func TestRedactedHidesEverySecret(t *testing.T) {
	secrets := []string{
		base64.StdEncoding.EncodeToString([]byte("master-key-master-key-master-key")),
		"vcc-client-secret-1", "whsec_webhook-secret-1", "vcc-webhook-client-secret-1", "signing-secret-1",
		"vcc-client-secret-2", "whsec_webhook-secret-2", "vcc-webhook-client-secret-2", "signing-secret-2",
		"url-password",
	}
	c := config.Default()
	c.MasterKey = secrets[0]
	c.PublicBaseURL = "https://ops:" + secrets[9] + "@pay.example.com"
	for i := range 2 {
		c.Merchants = append(c.Merchants, config.Merchant{
			ID:             fmt.Sprintf("m%d", i),
			VCC:            config.MerchantVCC{ClientID: "id", ClientSecret: secrets[1+4*i], AccountConfigurationIDs: []int{1}},
			AllowedOrigins: []string{"https://desk.example"},
			Webhook:        config.Webhook{URL: "https://hook:" + secrets[9] + "@crm.example", Secret: secrets[2+4*i]},
			VCCWebhook:     config.VCCWebhook{ClientID: "vcc", ClientSecret: secrets[3+4*i], SigningSecret: secrets[4+4*i]},
		})
	}
	original := fmt.Sprintf("%+v", c)

	r := c.Redacted()
	asYAML, err := yaml.Marshal(r)
	require.NoError(t, err)
	asJSON, err := json.Marshal(r)
	require.NoError(t, err)
	for _, out := range []string{string(asYAML), string(asJSON), fmt.Sprintf("%+v", r)} {
		for _, s := range secrets {
			assert.NotContains(t, out, s)
		}
		assert.Contains(t, out, "[redacted]")
	}
	assert.Equal(t, "[redacted]", r.Merchants[1].VCCWebhook.SigningSecret)
	assert.Equal(t, "pay.example.com", hostOf(t, r.PublicBaseURL), "a URL keeps its host")

	// The copy is deep: changing it leaves the original alone.
	r.Merchants[0].AllowedOrigins[0] = "https://other.example"
	r.Merchants[0].VCC.AccountConfigurationIDs[0] = 9
	assert.Equal(t, original, fmt.Sprintf("%+v", c))

	// A secret that is not set stays empty, so the output shows what is missing.
	assert.Empty(t, config.Default().Redacted().MasterKey)
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	m := regexp.MustCompile(`@([^/]+)`).FindStringSubmatch(raw)
	require.Len(t, m, 2, raw)
	return m[1]
}

func TestBridgeMerchants(t *testing.T) {
	c := valid(t)
	got := c.BridgeMerchants()
	require.Len(t, got, 2)
	assert.Equal(t, &bridge.Merchant{
		ID:     "acme",
		Status: bridge.MerchantActive,
		VCC: bridge.VCCAccount{
			TokenURL:                      "https://emea.cc.vonage.com/Auth/connect/token",
			APIBaseURL:                    "https://emea.api.newvoicemedia.com/globalpci",
			ClientID:                      "acme-bridge",
			ClientSecret:                  "s3cret-vcc",
			AccountConfigurationIDs:       []int{1, 2},
			DefaultAccountConfigurationID: new(1),
			Gateway:                       bridge.DefaultProfile(),
		},
		AllowedOrigins: []string{"https://desk.acme.example"},
		Webhook:        bridge.MerchantWebhook{URL: "https://crm.acme.example/hook", Secret: "whsec_s3cret"},
		VCCWebhook:     bridge.VCCWebhookAuth{ClientID: "vcc", ClientSecret: "s3cret-vcc-webhook", SigningSecret: "s3cret-signing"},
	}, got[0])
	assert.Equal(t, bridge.MerchantInactive, got[1].Status)

	got[0].AllowedOrigins[0] = "https://other.example"
	got[0].VCC.AccountConfigurationIDs[0] = 9
	assert.Equal(t, "https://desk.acme.example", c.Merchants[0].AllowedOrigins[0], "shares no memory")
	assert.Equal(t, 1, c.Merchants[0].VCC.AccountConfigurationIDs[0], "shares no memory")
}

func TestWarnings(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(c *config.Config)
		want   []string
	}{
		{"none", func(*config.Config) {}, nil},
		// An error for serve and check now: TestCheckServable.
		{"active without VCC credentials", func(c *config.Config) {
			c.Merchants[0].VCC.ClientSecret = ""
			c.Merchants[0].VCC.TokenURL = ""
		}, nil},
		{"inactive without VCC credentials", func(c *config.Config) {
			c.Merchants[0].Status = "inactive"
			c.Merchants[0].VCC = config.MerchantVCC{}
		}, nil},
		{"skipCallTransfer", func(c *config.Config) { c.Merchants[1].VCC.SkipCallTransfer = true },
			[]string{"merchants[1].vcc.skipCallTransfer (globex): true is for testing only; VCC will not transfer a live call"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid(t)
			tt.change(c)
			require.NoError(t, c.Validate())
			assert.Equal(t, tt.want, c.Warnings())
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "paybridge.yaml")
	require.NoError(t, os.WriteFile(path, []byte(minimal+"listen: 127.0.0.1:9999\n"), 0o600))

	c, err := config.Load(path, env(nil))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9999", c.Listen)
	assert.Equal(t, "acme", c.Merchants[0].ID)

	_, err = config.Load(filepath.Join(dir, "missing.yaml"), env(nil))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestParseNilGetenvIsEmptyEnvironment(t *testing.T) {
	_, err := config.Parse([]byte("dataDir: ${HOME}\n"), nil)
	assert.Equal(t, []string{"dataDir: environment variable HOME is not set"}, problems(err))
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError, "": slog.LevelInfo,
	} {
		assert.Equal(t, want, config.Log{Level: level}.SlogLevel(), level)
	}
}

func TestFieldErrorIsFoundThroughJoin(t *testing.T) {
	_, err := config.Parse([]byte("provider: {maxAttemps: 3}\n"), env(nil))
	var fe *config.FieldError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, config.FieldError{Path: "provider.maxAttemps", Line: 1, Problem: `unknown key; did you mean "maxAttempts"?`}, *fe)
	assert.True(t, slices.Contains(problems(err), `line 1: provider.maxAttemps: unknown key; did you mean "maxAttempts"?`))
}

// TestCheckServable: what serve and check refuse in a valid file, each by its key.
func TestCheckServable(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(c *config.Config)
		want   []string
	}{
		{"two merchants with credentials", func(*config.Config) {}, nil},
		{"no merchants", func(c *config.Config) { c.Merchants = nil },
			[]string{"merchants: none configured: add at least one (see config/example.yaml); every request would fail authentication"}},
		{"active without its client secret", func(c *config.Config) { c.Merchants[0].VCC.ClientSecret = "" },
			[]string{"merchants[0].vcc.clientSecret: required for an active merchant: set it (or PAYBRIDGE_MERCHANT_ACME_VCC_CLIENT_SECRET), or make the merchant status: inactive; without it every payment fails with merchant_not_configured"}},
		{"active without URLs or client ID", func(c *config.Config) { c.Merchants[0].VCC = config.MerchantVCC{ClientSecret: "x"} },
			[]string{
				"merchants[0].vcc.tokenUrl: required for an active merchant: set it (or vcc.region), or make the merchant status: inactive; without it every payment fails with merchant_not_configured",
				"merchants[0].vcc.apiBaseUrl: required for an active merchant: set it (or vcc.region), or make the merchant status: inactive; without it every payment fails with merchant_not_configured",
				"merchants[0].vcc.clientId: required for an active merchant: set it, or make the merchant status: inactive; without it every payment fails with merchant_not_configured",
			}},
		{"inactive without credentials", func(c *config.Config) { c.Merchants[0].Status = "inactive"; c.Merchants[0].VCC = config.MerchantVCC{} }, nil},
		{"pending without its client secret", func(c *config.Config) {
			c.Merchants[0].Status = "pending_approval"
			c.Merchants[0].VCC.ClientSecret = ""
		}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid(t)
			tt.change(c)
			require.NoError(t, c.Validate(), "valid: keys and reconcile may read it")
			err := c.CheckServable()
			assert.Equal(t, tt.want, problems(err))
			if tt.want != nil {
				var fe *config.FieldError
				assert.ErrorAs(t, err, &fe)
			}
		})
	}
}
