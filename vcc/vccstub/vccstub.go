// Package vccstub is an in-process stand-in for Vonage Contact Center's auth endpoint and Payment
// API, faithful to shared/UPSTREAM.md: OAuth2 client credentials, agent-assist and digital
// session creation with the documented error texts, session status with VCC's 15-minute result
// retention, and the webhook VCC posts when a session finishes or ends (authenticated with OAuth
// client credentials, as Vonage configures it, or paybridge's HMAC signature as an option).
//
// A control API (and the same as Go methods) lets tests and the demo play the customer, inject
// faults, switch the PCI Pal flow's PostMessage step and read request counts. Agent-assist
// sessions are registered with a pcipalstub.Server, whose iframe URLs the stub hands out. Paths,
// relative to the stub's base URL (the Payment API also answers under /paymentapi, the base path
// paybridge used to derive):
//
//	POST /Auth/connect/token                          OAuth2 client credentials, scope globalpci
//	POST /globalpci/v1/session                        agent-assist session
//	POST /globalpci/v1/digitalsession                 digital session (link to /pay/{guid})
//	GET  /globalpci/v1/session/{sessionGuid}          status
//	GET  /pay/{sessionGuid}                           the digital session's customer page
//	GET, PUT, DELETE /_control/faults                 fault injection (Faults)
//	GET  /_control/sessions                           sessions, newest first (SessionSummary)
//	POST /_control/sessions/{sessionGuid}/complete    {"decision": "ACCEPT"|"REJECT"|"ERROR", "amount": "<minor units>"}
//	                                                  or {"paymentResultData": {"<key>": "<string>", ...}}, verbatim
//	POST /_control/sessions/{sessionGuid}/expire      the provider session ends without a payment
//	POST /_control/sessions/{sessionGuid}/keying      the customer starts keying (InProgress)
//	GET, PUT /_control/pcipal                         {"postMessage": null | {"data": ..., "targetOrigin": "..."}}
//	POST /_control/tokens/revoke                      every issued access token stops working
//	GET  /_control/stats, POST /_control/stats/reset  request counts (Stats)
//
// The stub has no timers: a session whose PCI Pal lifetime has passed becomes Expired, and one
// past its retention is purged, when it is next looked at.
package vccstub

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
)

// Defaults for Options.
const (
	DefaultTokenLifetime = time.Hour
	DefaultRetention     = 15 * time.Minute
)

// Paths of the stubbed VCC endpoints, relative to the base URL.
const (
	TokenPath = "/Auth/connect/token"
	// PaymentAPIPath is the Payment API's base path on the live API hosts
	// (https://{region}.api.newvoicemedia.com/globalpci).
	PaymentAPIPath = "/globalpci"
	// LegacyPaymentAPIPath is an alias of PaymentAPIPath, the base path paybridge's configuration
	// used to derive, so configurations that still name it keep working against the stub.
	LegacyPaymentAPIPath = "/paymentapi"
)

// Account is one VCC account the stub knows: its API credentials and the account configuration
// ids (payment flows) it may use. The client secret is a secret: never logged.
type Account struct {
	Name             string
	ClientID         string
	ClientSecret     string
	ConfigurationIDs []int // the first is the default when a request names none
}

// DefaultAccount is the account a stub has when Options.Accounts is empty.
func DefaultAccount() Account {
	return Account{Name: "sandbox", ClientID: "paybridge-sandbox", ClientSecret: "sandbox-secret", ConfigurationIDs: []int{1, 2}}
}

// Options configure a Server.
type Options struct {
	Clock         bridge.Clock       // nil: bridge.SystemClock
	Logger        *slog.Logger       // nil: discard
	Accounts      []Account          // empty: DefaultAccount only
	TokenLifetime time.Duration      // access token lifetime; 0: DefaultTokenLifetime
	PCIPal        *pcipalstub.Server // where provider sessions are registered; required for agent-assist sessions
	Retention     time.Duration      // how long results stay readable after a session ends; 0: DefaultRetention
	Webhook       *WebhookTarget     // where to post outcomes; nil: no webhooks
}

// Server is the stub's HTTP handler and the Go API tests drive it with. Close it when done.
type Server struct {
	clock     bridge.Clock
	log       *slog.Logger
	accounts  []*Account
	tokenLife time.Duration
	pcipal    *pcipalstub.Server
	retention time.Duration
	mux       *http.ServeMux

	ctx    context.Context // cancelled by Close: stops webhooks and held requests
	cancel context.CancelFunc
	wg     sync.WaitGroup // background webhook deliveries

	mu         sync.Mutex
	closed     bool
	baseURL    string
	tokens     map[string]issuedToken
	sessions   map[string]*session
	faults     Faults
	tokenLeft  int // token fault firings left when faults.Times > 0
	createLeft int // create fault firings left when faults.Times > 0
	stats      Stats
	webhook    *webhookSender
	seq        int64 // sessions created so far, for listing newest first
}

// issuedToken is an access token the stub handed out.
type issuedToken struct {
	account   *Account
	expiresAt time.Time
}

// New returns a Server with opts' defaults filled in.
func New(opts Options) *Server {
	s := &Server{
		clock:     opts.Clock,
		log:       opts.Logger,
		tokenLife: opts.TokenLifetime,
		pcipal:    opts.PCIPal,
		retention: opts.Retention,
		tokens:    map[string]issuedToken{},
		sessions:  map[string]*session{},
	}
	if s.clock == nil {
		s.clock = bridge.SystemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.tokenLife <= 0 {
		s.tokenLife = DefaultTokenLifetime
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	accounts := opts.Accounts
	if len(accounts) == 0 {
		accounts = []Account{DefaultAccount()}
	}
	for _, a := range accounts {
		a.ConfigurationIDs = slices.Clone(a.ConfigurationIDs)
		s.accounts = append(s.accounts, &a)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if opts.Webhook != nil {
		s.webhook = s.newWebhookSender(*opts.Webhook)
	}

	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST "+TokenPath, s.handleToken)
	for _, base := range []string{PaymentAPIPath, LegacyPaymentAPIPath} {
		s.mux.HandleFunc("POST "+base+"/v1/session", s.handleCreate(bridge.ChannelAgentAssist))
		s.mux.HandleFunc("POST "+base+"/v1/digitalsession", s.handleCreate(bridge.ChannelDigital))
		s.mux.HandleFunc("GET "+base+"/v1/session/{sessionGuid}", s.handleStatus)
	}
	s.mux.HandleFunc("GET /pay/{sessionGuid}", s.handleCustomerPage)

	s.mux.HandleFunc("GET /_control/faults", s.handleGetFaults)
	s.mux.HandleFunc("PUT /_control/faults", s.handlePutFaults)
	s.mux.HandleFunc("DELETE /_control/faults", s.handleDeleteFaults)
	s.mux.HandleFunc("GET /_control/sessions", s.handleListSessions)
	s.mux.HandleFunc("POST /_control/sessions/{sessionGuid}/complete", s.handleComplete)
	s.mux.HandleFunc("POST /_control/sessions/{sessionGuid}/expire", s.handleExpire)
	s.mux.HandleFunc("POST /_control/sessions/{sessionGuid}/keying", s.handleKeying)
	s.mux.HandleFunc("GET /_control/pcipal", s.handleGetPCIPal)
	s.mux.HandleFunc("PUT /_control/pcipal", s.handlePutPCIPal)
	s.mux.HandleFunc("POST /_control/tokens/revoke", s.handleRevokeTokens)
	s.mux.HandleFunc("GET /_control/stats", s.handleStats)
	s.mux.HandleFunc("POST /_control/stats/reset", s.handleResetStats)
	s.mux.HandleFunc("/_control/", func(w http.ResponseWriter, r *http.Request) {
		writeMessage(w, http.StatusNotFound, "No control endpoint "+r.Method+" "+r.URL.Path)
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// SetBaseURL sets the URL the stub is served at, from which digital session links are built.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimRight(u, "/")
}

// BaseURL returns the URL set by SetBaseURL.
func (s *Server) BaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// TokenURL returns the stub's OAuth2 token endpoint: BaseURL plus TokenPath.
func (s *Server) TokenURL() string { return s.BaseURL() + TokenPath }

// PaymentAPIURL returns the base of the stub's Payment API: BaseURL plus PaymentAPIPath (the live
// /globalpci).
func (s *Server) PaymentAPIURL() string { return s.BaseURL() + PaymentAPIPath }

// Close stops background work (webhook deliveries and their retries), releases requests held by
// the timeout or latency faults, and waits for the deliveries to return. It is safe to call more
// than once.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// wait holds a request for d, and reports false if the client gave up or the stub closed first.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}

// message is the error body shape of the Payment API and the control API.
type message struct {
	Message string `json:"message"`
}

// writeMessage answers status with {"message": text}.
func writeMessage(w http.ResponseWriter, status int, text string) {
	writeJSON(w, status, message{Message: text})
}

// writeJSON answers status with v as compact JSON, without HTML escaping, so documented texts go
// out byte for byte.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// marshal is json.Marshal without HTML escaping.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeStrict decodes one JSON value from r into v, refusing unknown fields and trailing data.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// newUUID returns a random (version 4) UUID in its canonical text form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

// randomDigits returns n random decimal digits, like a gateway's request id.
func randomDigits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + mathrand.IntN(10))
	}
	return string(b)
}
