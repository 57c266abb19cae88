package web

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves a certificate from files and picks up a new one when either file changes,
// so a renewed certificate (certbot, a mounted secret) takes effect without a restart. The files
// are looked at on each handshake: two stats, cheap beside the handshake itself.
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	loaded [2]fileStamp // of certFile and keyFile when cert was loaded
	failed [2]fileStamp // the last pair that failed to load, reported once
}

// fileStamp is what tells a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// newCertReloader loads the pair once; a pair that does not load is an error at start.
func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, logger: logger}
	stamps, err := c.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("web: TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	c.cert, c.loaded = &cert, stamps
	return c, nil
}

func (c *certReloader) stamps() ([2]fileStamp, error) {
	var out [2]fileStamp
	for i, path := range []string{c.certFile, c.keyFile} {
		st, err := stampOf(path)
		if err != nil {
			return out, fmt.Errorf("web: TLS: %w", err)
		}
		out[i] = st
	}
	return out, nil
}

// GetCertificate is tls.Config.GetCertificate: the current certificate, reloaded first when its
// files changed. A pair that does not load (a renewal half written, a key that does not match)
// leaves the previous certificate in service, and is tried again on the next handshake.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamps, err := c.stamps()
	if err != nil || stamps == c.loaded {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if stamps != c.failed {
			c.failed = stamps
			c.logger.Warn("TLS certificate files changed but do not load; keeping the previous certificate", "certFile", c.certFile, "err", err)
		}
		return c.cert, nil
	}
	c.cert, c.loaded = &cert, stamps
	c.logger.Info("TLS certificate reloaded", "certFile", c.certFile)
	return c.cert, nil
}

// tlsConfig is the server's TLS configuration: TLS 1.2 or newer, the certificate from c.
func (c *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}
