package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/boltstore"
	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
	"github.com/paybridge/paybridge/vcc"
	"github.com/paybridge/paybridge/vcc/vccstub"
	"github.com/paybridge/paybridge/web"
)

// world is a whole paybridge on 127.0.0.1 (the real server, services and bbolt store) against
// the VCC and PCI Pal stubs, with one manual clock for all of them: a copy of the smallest part
// of the web package's test harness.
type world struct {
	clock    *bridgetest.ManualClock
	vcc      *vccstub.Server
	stubs    *httptest.Server
	srv      *httptest.Server
	keys     *bridge.KeyService
	merchant *bridge.Merchant

	secretKey      string
	publishableKey string

	stop []func()
}

// worldConfig is what a test may change before the world starts.
type worldConfig struct {
	perIP   web.RateLimit
	webhook bridge.MerchantWebhook // the merchant's webhook endpoint; none by default
}

// startWorld starts a world; Close stops it and removes its files.
func startWorld(cfg worldConfig) (w *world, err error) {
	w = &world{clock: bridgetest.NewManualClock(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	logger := slog.New(slog.DiscardHandler)

	pcipal := pcipalstub.New(pcipalstub.Options{Clock: w.clock, Logger: logger})
	w.vcc = vccstub.New(vccstub.Options{Clock: w.clock, Logger: logger, PCIPal: pcipal})
	mux := http.NewServeMux()
	pcipal.Mount(mux)
	mux.Handle("/", w.vcc)
	w.stubs = httptest.NewServer(mux)
	pcipal.SetBaseURL(w.stubs.URL)
	w.vcc.SetBaseURL(w.stubs.URL)
	w.stop = append(w.stop, w.stubs.Close, w.vcc.Close)

	acct := vccstub.DefaultAccount()
	w.merchant = &bridge.Merchant{
		ID: "acme", Name: "Acme Energy", Status: bridge.MerchantActive,
		VCC: bridge.VCCAccount{
			TokenURL: w.vcc.TokenURL(), APIBaseURL: w.vcc.PaymentAPIURL(),
			ClientID: acct.ClientID, ClientSecret: acct.ClientSecret,
			AccountConfigurationIDs: []int{1, 2}, DefaultAccountConfigurationID: new(1), SkipCallTransfer: true,
		},
		AllowedOrigins: []string{"https://desk.acme.test"},
		Webhook:        cfg.webhook,
	}
	dir, err := os.MkdirTemp("", "paybridge-client-test-")
	if err != nil {
		return w, err
	}
	w.stop = append(w.stop, func() { _ = os.RemoveAll(dir) })
	store, err := boltstore.Open(filepath.Join(dir, "paybridge.db"), boltstore.Options{})
	if err != nil {
		return w, err
	}
	w.stop = append(w.stop, func() { _ = store.Close() })
	keyring, err := bridge.NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		return w, err
	}
	merchants := bridge.StaticMerchants{w.merchant}
	hub := bridge.NewHub(logger, 0)
	sessions, err := bridge.NewService(bridge.ServiceOptions{
		Clock: w.clock, Logger: logger, SweepInterval: 5 * time.Millisecond,
		Store: store, Merchants: merchants, Publisher: hub, Keyring: keyring,
		// paybridge's own VCC retries, quick: a test may exhaust them.
		Provider: vcc.New(vcc.Options{Clock: w.clock, Logger: logger, RequestTimeout: 2 * time.Second,
			RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond}),
	})
	if err != nil {
		return w, err
	}
	w.keys = bridge.NewKeyService(bridge.KeyServiceOptions{Store: store, Merchants: merchants, Keyring: keyring, Clock: w.clock})

	w.srv = httptest.NewUnstartedServer(nil)
	server, err := web.NewServer(web.Options{
		Sessions: sessions, Keys: w.keys, Hub: hub, Store: store, Merchants: merchants, Keyring: keyring,
		Clock: w.clock, Logger: logger, PublicBaseURL: "http://" + w.srv.Listener.Addr().String(),
		PerIPLimit: cfg.perIP,
	})
	if err != nil {
		w.srv.Close()
		return w, err
	}
	w.srv.Config.Handler = server
	w.srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = sessions.Run(ctx) }()
	w.stop = append(w.stop, func() {
		cancel()
		<-done
		_ = server.Shutdown(context.Background())
		w.srv.Close()
	})

	if w.secretKey, err = w.newKey(bridge.KeySecret); err != nil {
		return w, err
	}
	w.publishableKey, err = w.newKey(bridge.KeyPublishable)
	return w, err
}

// newWorld starts a world stopped when t ends.
func newWorld(t testing.TB, configure ...func(*worldConfig)) *world {
	t.Helper()
	var cfg worldConfig
	for _, c := range configure {
		c(&cfg)
	}
	w, err := startWorld(cfg)
	require.NoError(t, err)
	t.Cleanup(w.Close)
	return w
}

// Close stops everything the world started, last first.
func (w *world) Close() {
	for i := len(w.stop) - 1; i >= 0; i-- {
		w.stop[i]()
	}
	w.stop = nil
}

// newKey stores a new test key of the merchant and returns it.
func (w *world) newKey(typ bridge.KeyType) (string, error) {
	plain, _, err := w.keys.CreateKey(context.Background(), w.merchant.ID, typ, bridge.ModeTest)
	return plain, err
}

// control calls the VCC stub's control API.
func (w *world) control(method, path string, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, w.stubs.URL+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("control %s %s: %d %s", method, path, resp.StatusCode, answer)
	}
	return nil
}

// mustControl is control for tests.
func (w *world) mustControl(t testing.TB, method, path string, body any) {
	t.Helper()
	require.NoError(t, w.control(method, path, body))
}
