package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/config"
	"github.com/paybridge/paybridge/vcc"
)

// runCheck is `paybridge check --config F`: validate the file, refuse what serve refuses, and
// try every merchant's VCC credentials, one line per merchant.
func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	offline := fs.Bool("offline", false, "validate only; do not contact VCC")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	if err := cfg.CheckServable(); err != nil {
		return config.Locate(err, *cfgPath)
	}
	fmt.Fprintf(stdout, "%s: valid, %d merchant(s)\n", *cfgPath, len(cfg.Merchants))
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if *offline {
		return nil
	}
	client := vcc.New(vcc.Options{RequestTimeout: cfg.VCC.RequestTimeout, MaxRetries: retries(cfg.VCC.MaxRetries)})
	failed := 0
	for _, m := range cfg.BridgeMerchants() {
		if !m.VCC.Configured() { // not active (CheckServable refused the active ones)
			fmt.Fprintf(stdout, "merchant %s: skipped: %s without VCC credentials\n", m.ID, m.Status)
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := client.Token(tctx, m)
		cancel()
		if err != nil {
			failed++
			cause, fix := checkCause(err, cfg.VCC.RequestTimeout)
			fmt.Fprintf(stdout, "merchant %s: FAILED: POST %s: %s (%s). Fix: %s\n",
				m.ID, printableURL(m.VCC.TokenURL), cause, bridge.ErrorCode(err), fix)
			continue
		}
		fmt.Fprintf(stdout, "merchant %s: VCC credentials ok (POST %s)\n", m.ID, printableURL(m.VCC.TokenURL))
	}
	if failed > 0 {
		return fmt.Errorf("%d merchant(s) failed the VCC credential check", failed)
	}
	return nil
}

// printableURL is raw without user information, which may be a credential.
func printableURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// Fixes for failures that are about where paybridge is told VCC is, not about VCC.
const (
	fixTokenURLHost = "Check the host of merchants[].vcc.tokenUrl (or vcc.region) and that this machine can resolve it."
	fixTokenURLPort = "Check the host and port of merchants[].vcc.tokenUrl (or vcc.region), and any firewall or proxy (HTTPS_PROXY) between."
	fixTokenURLTLS  = "Check that merchants[].vcc.tokenUrl names VCC's host; a proxy that intercepts TLS needs its CA trusted (SSL_CERT_FILE)."
	fixTokenURLPath = "Check merchants[].vcc.tokenUrl (or vcc.region): VCC's token endpoint is https://<region>.cc.vonage.com/Auth/connect/token."
	fixTimeout      = "Check that VCC is reachable from this machine, or raise vcc.requestTimeout."
)

// checkCause says in a few words why a token request failed, and what to do: the DNS lookup, a
// refused connection, TLS, no answer in time, VCC refusing the credentials, or the HTTP status
// VCC answered with its own error code. It never quotes what paybridge sent.
func checkCause(err error, timeout time.Duration) (cause, fix string) {
	fix = bridge.AsError(err).PublicFix()
	var ve *vcc.Error
	if errors.As(err, &ve) && ve.Status != 0 {
		answer := fmt.Sprintf("VCC answered HTTP %d", ve.Status)
		if code := upstreamCode(ve.Text); code != "" {
			answer += " " + code
		}
		// invalid_client, or another refusal of the client itself (a 404 is the wrong URL).
		switch {
		case ve.Kind == vcc.KindInvalidClient || ve.Kind == vcc.KindAuthRejected && ve.Status <= 403:
			return "bad credentials: " + answer, fix
		case ve.Status == 404 || ve.Status == 405:
			return answer, fixTokenURLPath
		}
		return answer, fix
	}
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	var alert tls.AlertError
	var verifyErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("DNS: no such host %s", dnsErr.Name), fixTokenURLHost
		}
		return fmt.Sprintf("DNS: lookup of %s failed: %s", dnsErr.Name, dnsErr.Err), fixTokenURLHost
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens there", fixTokenURLPort
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &certErr), errors.As(err, &verifyErr):
		return "TLS: the server's certificate is not trusted: " + tlsReason(err), fixTokenURLTLS
	case errors.As(err, &recordErr), errors.As(err, &alert):
		return "TLS: handshake failed: " + tlsReason(err), fixTokenURLTLS
	case isTimeout(err):
		return fmt.Sprintf("no answer within %s", timeout), fixTimeout
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return "network: " + opErr.Err.Error(), fixTokenURLPort
	}
	return bridge.AsError(err).Message, fix
}

// tlsReason is the innermost TLS or certificate error's text, without the URL around it.
func tlsReason(err error) string {
	for {
		switch err.(type) {
		case *bridge.Error, *vcc.Error, *url.Error:
			if next := errors.Unwrap(err); next != nil {
				err = next
				continue
			}
		}
		return err.Error()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// upstreamCode is VCC's error code from a token endpoint body such as {"error":"invalid_client"},
// or the bounded text VCC answered when it is not OAuth JSON.
func upstreamCode(text string) string {
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(text), &body) == nil && body.Error != "" {
		return body.Error
	}
	return strings.TrimSpace(text)
}
