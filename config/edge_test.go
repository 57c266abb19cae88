package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/config"
)

// writePair writes a fresh self-signed certificate and its key as PEM files in dir.
func writePair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{name}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

func TestEdgeDefaults(t *testing.T) {
	c, err := config.Parse([]byte(minimal), env(nil))
	require.NoError(t, err)
	assert.Equal(t, config.HTTP{ReadHeaderTimeout: 10 * time.Second, BodyTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxUnauthenticatedPerIP: 32}, c.HTTP)
	assert.False(t, c.TLS.Enabled())
	assert.Empty(t, c.TrustedProxyPrefixes())
}

// TestValidateEdge: TLS, trusted proxies and the HTTP timeouts, each problem named by its key.
func TestValidateEdge(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "pay.example")
	_, otherKey := writePair(t, dir, "other.example")
	garbage := filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a certificate"), 0o600))

	for _, tt := range []struct {
		name   string
		change func(c *config.Config)
		want   string // "" when valid
	}{
		{"tls pair", func(c *config.Config) { c.TLS = config.TLS{CertFile: cert, KeyFile: key} }, ""},
		{"tls without key", func(c *config.Config) { c.TLS = config.TLS{CertFile: cert} },
			"tls.keyFile: required when tls.certFile is set"},
		{"tls without cert", func(c *config.Config) { c.TLS = config.TLS{KeyFile: key} },
			"tls.certFile: required when tls.keyFile is set"},
		{"tls cert missing", func(c *config.Config) { c.TLS = config.TLS{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: key} },
			"tls.certFile: cannot be read: no such file or directory"},
		{"tls key missing", func(c *config.Config) { c.TLS = config.TLS{CertFile: cert, KeyFile: filepath.Join(dir, "nope.key")} },
			"tls.keyFile: cannot be read: no such file or directory"},
		{"tls cert not PEM", func(c *config.Config) { c.TLS = config.TLS{CertFile: garbage, KeyFile: key} },
			"tls.certFile: must hold a PEM certificate"},
		{"tls key of another certificate", func(c *config.Config) { c.TLS = config.TLS{CertFile: cert, KeyFile: otherKey} },
			"tls.keyFile: must hold the PEM private key of tls.certFile's certificate"},
		{"proxies", func(c *config.Config) { c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.10", "2001:db8::/32"} }, ""},
		{"proxy not an address", func(c *config.Config) { c.TrustedProxies = []string{"10.0.0.0/8", "proxy.internal"} },
			`trustedProxies[1]: must be a CIDR such as 10.0.0.0/8 or an IP address, got "proxy.internal"`},
		{"proxy bad prefix", func(c *config.Config) { c.TrustedProxies = []string{"10.0.0.0/33"} },
			`trustedProxies[0]: must be a CIDR such as 10.0.0.0/8 or an IP address, got "10.0.0.0/33"`},
		{"header timeout", func(c *config.Config) { c.HTTP.ReadHeaderTimeout = 0 }, "http.readHeaderTimeout: must be greater than 0s, got 0s"},
		{"body timeout", func(c *config.Config) { c.HTTP.BodyTimeout = -time.Second }, "http.bodyTimeout: must be greater than 0s, got -1s"},
		{"idle timeout", func(c *config.Config) { c.HTTP.IdleTimeout = 0 }, "http.idleTimeout: must be greater than 0s, got 0s"},
		{"unauthenticated cap", func(c *config.Config) { c.HTTP.MaxUnauthenticatedPerIP = 0 },
			"http.maxUnauthenticatedPerIP: must be between 1 and 10000, got 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid(t)
			tt.change(c)
			err := c.Validate()
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, []string{tt.want}, problems(err))
			var fe *config.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, strings.SplitN(tt.want, ": ", 2)[0], fe.Path)
			assert.NotContains(t, err.Error(), "PRIVATE KEY", "key material in an error")
		})
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	c := valid(t)
	c.TrustedProxies = []string{"10.1.2.3/8", "192.0.2.10", "::ffff:192.0.2.11", "2001:db8::1"}
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.10/32"),
		netip.MustParsePrefix("192.0.2.11/32"), netip.MustParsePrefix("2001:db8::1/128"),
	}, c.TrustedProxyPrefixes())
}

func TestParseEdgeSettings(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "pay.example")
	c, err := config.Parse([]byte(minimal+`
tls: {certFile: "`+cert+`", keyFile: "`+key+`"}
trustedProxies: [10.0.0.0/8]
http: {readHeaderTimeout: 3s, bodyTimeout: 4s, idleTimeout: 5s, maxUnauthenticatedPerIP: 6}
`), env(nil))
	require.NoError(t, err)
	assert.Equal(t, config.TLS{CertFile: cert, KeyFile: key}, c.TLS)
	assert.Equal(t, []string{"10.0.0.0/8"}, c.TrustedProxies)
	assert.Equal(t, config.HTTP{ReadHeaderTimeout: 3 * time.Second, BodyTimeout: 4 * time.Second,
		IdleTimeout: 5 * time.Second, MaxUnauthenticatedPerIP: 6}, c.HTTP)
}
