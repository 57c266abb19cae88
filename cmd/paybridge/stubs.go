package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
	"github.com/paybridge/paybridge/vcc/vccstub"
)

// stubWorld is both upstream stubs served from one loopback listener: VCC's auth, Payment API and
// control API, and PCI Pal's framed view (/session/..., POST /refreshlogon and its sign-in page
// at /).
type stubWorld struct {
	vcc      *vccstub.Server
	pcipal   *pcipalstub.Server
	listener net.Listener
	server   *http.Server
	served   chan error
}

// startStubs binds addr and serves both stubs until close.
func startStubs(addr string, clock bridge.Clock, logger *slog.Logger) (*stubWorld, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stubs: listen on %s: %w", addr, err)
	}
	base := "http://" + ln.Addr().String()
	// The PCI Pal stub starts silent, as live PCI Pal without a PostMessage flow step;
	// `PUT /_control/pcipal` (or the demo's --announce) switches the step on.
	pci := pcipalstub.New(pcipalstub.Options{Clock: clock, Logger: logger})
	pci.SetBaseURL(base)
	v := vccstub.New(vccstub.Options{Clock: clock, Logger: logger, PCIPal: pci})
	v.SetBaseURL(base)
	mux := http.NewServeMux()
	pci.Mount(mux)
	mux.Handle("/", v)
	w := &stubWorld{vcc: v, pcipal: pci, listener: ln, served: make(chan error, 1),
		server: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}}
	go func() { w.served <- w.server.Serve(ln) }()
	return w, nil
}

// baseURL is where both stubs answer.
func (w *stubWorld) baseURL() string { return w.vcc.BaseURL() }

// close stops serving and the VCC stub's background webhooks.
func (w *stubWorld) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = w.server.Shutdown(ctx)
	w.vcc.Close()
}

// runStubs is `paybridge stubs`: both stubs alone, for running paybridge serve against them.
func runStubs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("stubs", stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "address to serve both stubs on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	logger := newLogger(stderr, "text", slog.LevelInfo)
	w, err := startStubs(*addr, bridge.SystemClock{}, logger)
	if err != nil {
		return err
	}
	defer w.close()
	acct := vccstub.DefaultAccount()
	fmt.Fprintf(stdout, `VCC and PCI Pal stubs on %[1]s
  VCC token URL:        %[1]s%[2]s   (client %[3]s / %[4]s)
  VCC Payment API base: %[1]s%[5]s
  control API:          %[1]s/_control/...   (complete, expire, keying, pcipal, faults, stats)
Press Ctrl-C to stop.
`, w.baseURL(), vccstub.TokenPath, acct.ClientID, acct.ClientSecret, vccstub.PaymentAPIPath)
	select {
	case <-ctx.Done():
		return nil
	case err := <-w.served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
