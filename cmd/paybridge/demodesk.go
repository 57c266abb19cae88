package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/web"
)

// demoDeskFiles are the agent desktop's page and assets.
//
//go:embed demodesk
var demoDeskFiles embed.FS

var demoDeskPage = template.Must(template.ParseFS(demoDeskFiles, "demodesk/agent.html"))

// maxDemoBody bounds what the demo backend reads from the page.
const maxDemoBody = 4 << 10

// demoDesk is the demo's agent desktop: the /demo/agent page, built on the paybridge.js widget,
// and under /demo/api/ an integrator's backend in miniature. The backend holds the secret key,
// which never reaches the browser, and calls paybridge's HTTP API like a merchant backend would:
// it mints agent tokens for its own page and, demo only, plays the customer by driving the stub
// VCC's control API.
type demoDesk struct {
	logger *slog.Logger
	client *http.Client
	mux    *http.ServeMux
	// deskKey signs the desk cookies the agent pages set: the agent-token endpoint mints only
	// for an agent whose page this process served to the caller.
	deskKey []byte
	// webhooks is the demo merchant's webhook receiver, under /demo/webhooks.
	webhooks *demoWebhooks

	// Set by configure before the server takes its first request, read-only after.
	info         demoInfo
	origins      []string    // the desktop's own origins: the only callers of /demo/api/
	server       *web.Server // whose error envelope the desktop's errors use
	pollInterval time.Duration
}

// newDemoDesk returns the desktop's handler, with webhooks as the merchant's webhook receiver;
// configure must be called before it serves.
func newDemoDesk(logger *slog.Logger, webhooks *demoWebhooks) *demoDesk {
	d := &demoDesk{logger: logger, client: &http.Client{Timeout: 30 * time.Second}, mux: http.NewServeMux(),
		deskKey: make([]byte, 32), webhooks: webhooks}
	_, _ = rand.Read(d.deskKey)
	assets, _ := fs.Sub(demoDeskFiles, "demodesk")
	d.mux.Handle("GET /demo/{$}", http.RedirectHandler("/demo/agent", http.StatusFound))
	d.mux.HandleFunc("GET /demo/agent", d.agentPage)
	d.mux.Handle("GET /demo/assets/", http.StripPrefix("/demo/assets/", d.noDirs(http.FileServerFS(assets), assets)))
	d.mux.HandleFunc("POST /demo/api/agent-token", d.agentToken)
	d.mux.HandleFunc("POST /demo/api/sessions/{id}/{action}", d.drive)
	d.mux.HandleFunc("POST "+demoWebhookPath, d.receiveWebhook)
	d.mux.HandleFunc("GET "+demoWebhookPath, d.listWebhooks)
	d.mux.HandleFunc("/demo/", func(w http.ResponseWriter, r *http.Request) {
		d.fail(w, r, bridge.Errorf(bridge.CodeValidationError, "No demo endpoint %s %s.", r.Method, r.URL.Path).
			WithFix("Open /demo/agent for the agent desktop."))
	})
	return d
}

// configure gives the desktop the demo's base URL, keys and stub URLs, its allowed origins and
// the server it is mounted on.
func (d *demoDesk) configure(info demoInfo, origins []string, server *web.Server, pollInterval time.Duration) {
	d.info, d.origins, d.server, d.pollInterval = info, origins, server, pollInterval
}

// ServeHTTP implements http.Handler.
func (d *demoDesk) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.mux.ServeHTTP(w, r) }

// noDirs answers only for files: the asset directory is not listed.
func (d *demoDesk) noDirs(next http.Handler, files fs.FS) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, err := fs.Stat(files, r.URL.Path); r.URL.Path == "" || err != nil || st.IsDir() {
			d.fail(w, r, bridge.Errorf(bridge.CodeValidationError, "No demo asset %q.", r.URL.Path).
				WithFix("The desktop's assets are agent.js and agent.css; open /demo/agent."))
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// agentPageData is what the page template shows; the publishable key is meant for browsers.
type agentPageData struct {
	BaseURL, PublishableKey, MerchantID string
	AgentID, DemoAgentID                string
	PollSeconds                         string
	// Reference is the take-payment form's first reference: one no recent session has.
	Reference string
	// RecoveryMinMS is how long, at least, the desk shows that a new payment page is being
	// started, so the agent sees the recovery happen.
	RecoveryMinMS int64
	WebhooksURL   string
}

// demoRecoveryMinDisplay is how long the desk keeps "starting a new payment page" on screen at
// least: a recovery on loopback takes a few milliseconds, too fast to be seen.
const demoRecoveryMinDisplay = 2500 * time.Millisecond

// demoAgents are the agents the demo has desktops for: the demo's own and two more, to show that
// agents see only their own payments.
var demoAgents = []string{demoAgentID, "agent-2", "agent-3"}

// agentPage is GET /demo/agent?agent=ID: the desktop of one of the demo's agents, by default the
// demo's own. It sets the agent's desk cookie, which the agent-token endpoint asks for.
func (d *demoDesk) agentPage(w http.ResponseWriter, r *http.Request) {
	agent := r.URL.Query().Get("agent")
	if agent == "" {
		agent = d.info.AgentID
	}
	if !slices.Contains(demoAgents, agent) {
		d.fail(w, r, bridge.Errorf(bridge.CodeValidationError, "The demo has no agent desktop for that agent.").WithParam("agent").
			WithFix("Open /demo/agent, or ?agent= one of "+strings.Join(demoAgents, ", ")+"."))
		return
	}
	data := agentPageData{BaseURL: d.info.BaseURL, PublishableKey: d.info.PublishableKey, MerchantID: d.info.MerchantID,
		AgentID: agent, DemoAgentID: d.info.AgentID, PollSeconds: fmt.Sprint(d.pollInterval.Seconds()),
		Reference: d.nextReference(r.Context()), RecoveryMinMS: demoRecoveryMinDisplay.Milliseconds(), WebhooksURL: d.info.WebhooksURL}
	var page bytes.Buffer
	if err := demoDeskPage.Execute(&page, data); err != nil {
		d.logger.ErrorContext(r.Context(), "render the demo agent page", "err", err)
		d.fail(w, r, bridge.Errorf(bridge.CodeInternalError, "The agent desktop could not be rendered."))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", d.contentSecurityPolicy())
	http.SetCookie(w, &http.Cookie{Name: deskCookie(agent), Value: d.deskTicket(agent), Path: "/demo/api/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: strings.HasPrefix(d.info.BaseURL, "https:")})
	_, _ = w.Write(page.Bytes())
}

// demoReference matches the demo's own payment references, INV-<number>.
var demoReference = regexp.MustCompile(`^INV-(\d{1,9})$`)

// firstDemoReference is the reference of the demo's first payment.
const firstDemoReference = 1001

// nextReference returns INV-<n> past every demo reference among the merchant's 100 newest
// sessions, so each new payment gets its own even after a reload or a restart with --data; the
// page counts on from there.
func (d *demoDesk) nextReference(ctx context.Context) string {
	next := firstDemoReference
	status, body, err := d.do(ctx, http.MethodGet, d.info.BaseURL+"/v1/sessions?limit=100", d.info.SecretKey, nil)
	var list struct{ Data []bridge.SessionView }
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &list) != nil {
		d.logger.WarnContext(ctx, "demo: could not list sessions for the next reference", "status", status, "err", err)
		return fmt.Sprintf("INV-%d", next)
	}
	for _, s := range list.Data {
		if m := demoReference.FindStringSubmatch(s.Reference); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= next {
				next = n + 1
			}
		}
	}
	return fmt.Sprintf("INV-%d", next)
}

// deskCookie names an agent's desk cookie; one per agent, so two tabs of two agents in one
// browser each keep theirs. Agent ids come from demoAgents and are valid cookie names.
func deskCookie(agent string) string { return "paybridge_demo_desk_" + agent }

// deskTicket is the desk cookie's value for agent: an HMAC under this process's desk key.
func (d *demoDesk) deskTicket(agent string) string {
	mac := hmac.New(sha256.New, d.deskKey)
	mac.Write([]byte(agent))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// hasDeskTicket reports whether r carries agent's desk cookie from this process.
func (d *demoDesk) hasDeskTicket(r *http.Request, agent string) bool {
	c, err := r.Cookie(deskCookie(agent))
	return err == nil && hmac.Equal([]byte(c.Value), []byte(d.deskTicket(agent)))
}

// contentSecurityPolicy is what an agent desktop embedding PCI Pal should send: scripts and
// styles from itself only, sockets and calls to paybridge only, and the payment frame and its
// form POST to the provider only.
func (d *demoDesk) contentSecurityPolicy() string {
	socket := "ws" + strings.TrimPrefix(d.info.BaseURL, "http")
	provider := originOf(d.info.PCIPalStubURL)
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src 'self' " + d.info.BaseURL + " " + socket,
		"frame-src " + provider,
		"form-action " + provider,
		"object-src 'none'",
		"base-uri 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

// agentTokenRequest is the body of POST /demo/api/agent-token.
type agentTokenRequest struct {
	AgentID string `json:"agentId"`
}

// agentTokenResponse is what the page gets: the token for its widget, and when it ends.
type agentTokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// agentToken is POST /demo/api/agent-token {agentId}: it mints the agent's token with the secret
// key. A real backend mints only for the agent signed in to its own desktop; the demo has no
// sign-in, so it mints only for its own agents, and only for a caller holding the agent's desk
// cookie, which the agent's page sets: an Origin header alone is easily written by any client
// that is not a browser.
func (d *demoDesk) agentToken(w http.ResponseWriter, r *http.Request) {
	var req agentTokenRequest
	if !d.browserCall(w, r, &req) {
		return
	}
	switch {
	case req.AgentID == "":
		d.fail(w, r, bridge.Errorf(bridge.CodeValidationMissingField, "Missing required field \"agentId\"").WithParam("agentId"))
		return
	case !slices.Contains(demoAgents, req.AgentID):
		d.fail(w, r, bridge.Errorf(bridge.CodeValidationError, "The demo mints agent tokens only for its own agents.").WithParam("agentId").
			WithFix("Use one of "+strings.Join(demoAgents, ", ")+"."))
		return
	case !d.hasDeskTicket(r, req.AgentID):
		d.fail(w, r, bridge.Errorf(bridge.CodeOriginForbidden, "The demo mints an agent's token only for that agent's desktop page.").
			WithFix("Open "+d.info.BaseURL+"/demo/agent?agent="+req.AgentID+" and take payments there."))
		return
	}
	var minted agentTokenResponse
	if !d.callAPI(w, r, http.MethodPost, "/v1/agent_tokens", map[string]string{"agentId": req.AgentID}, &minted) {
		return
	}
	web.WriteJSON(w, http.StatusOK, minted)
}

// demoDecisions maps the customer actions to the stub VCC's completion decisions.
var demoDecisions = map[string]string{"pay": "ACCEPT", "decline": "REJECT"}

// driveResponse tells the page which provider session a demo action went to.
type driveResponse struct {
	SessionID   string `json:"sessionId"`
	Action      string `json:"action"`
	Attempt     int    `json:"attempt"`
	SessionGUID string `json:"vccSessionGuid"`
}

// drive is POST /demo/api/sessions/{id}/{pay|decline|expire|cancel}. pay, decline and expire
// play the customer for the current attempt of one of the demo merchant's sessions through the
// stub VCC's control API; cancel is what the agent's own backend does for its agent: it cancels
// the session with paybridge's API, for the desktop of the session's agent only.
func (d *demoDesk) drive(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if _, ok := demoDecisions[action]; !ok && action != "expire" && action != "cancel" {
		d.fail(w, r, bridge.Errorf(bridge.CodeValidationError, "Unknown demo action %q.", action).
			WithFix("Use pay, decline, expire or cancel."))
		return
	}
	if !d.browserCall(w, r, &struct{}{}) {
		return
	}
	// The secret key only sees the demo merchant's sessions: any other id is session_not_found.
	var sess bridge.SessionView
	if !d.callAPI(w, r, http.MethodGet, "/v1/sessions/"+url.PathEscape(id), nil, &sess) {
		return
	}
	if action == "cancel" {
		d.cancel(w, r, &sess)
		return
	}
	if sess.Status != bridge.StatusActive || sess.VCC == nil {
		d.fail(w, r, bridge.Errorf(bridge.CodeSessionWrongState, "The session is %s; the demo plays the customer only for active sessions.", sess.Status).
			WithFix("Take a new payment."))
		return
	}
	control := d.info.VCCStubURL + "/_control/sessions/" + url.PathEscape(sess.VCC.SessionGUID)
	var body any
	if decision, ok := demoDecisions[action]; ok {
		control += "/complete"
		body = map[string]string{"decision": decision}
	} else {
		control += "/expire"
	}
	status, msg, err := d.do(r.Context(), http.MethodPost, control, "", body)
	switch {
	case err != nil:
		d.logger.WarnContext(r.Context(), "demo: stub VCC control call", "action", action, "err", err)
		d.fail(w, r, bridge.Errorf(bridge.CodeProviderUnavailable, "The stub VCC did not answer."))
		return
	case status == http.StatusConflict:
		d.fail(w, r, bridge.Errorf(bridge.CodeSessionWrongState, "The stub VCC says: %s", stubMessage(msg)).
			WithFix("The provider session already finished; wait for the outcome or take a new payment."))
		return
	case status >= 300:
		d.fail(w, r, bridge.Errorf(bridge.CodeProviderUnavailable, "The stub VCC answered HTTP %d: %s", status, stubMessage(msg)))
		return
	}
	web.WriteJSON(w, http.StatusOK, driveResponse{SessionID: sess.ID, Action: action, Attempt: sess.Attempt, SessionGUID: sess.VCC.SessionGUID})
}

// cancel cancels sess for its agent's desktop: a page of another agent, or a caller without the
// agent's desk cookie, cannot cancel it. paybridge's own answer (session_wrong_state while the
// customer is keying, for one) is relayed as it came.
func (d *demoDesk) cancel(w http.ResponseWriter, r *http.Request, sess *bridge.SessionView) {
	if !d.hasDeskTicket(r, sess.AgentID) {
		d.fail(w, r, bridge.Errorf(bridge.CodeOriginForbidden, "The demo cancels a payment only from its agent's desktop page.").
			WithFix("Open "+d.info.BaseURL+"/demo/agent?agent="+url.QueryEscape(sess.AgentID)+" and cancel it there."))
		return
	}
	var done bridge.SessionView
	if !d.callAPI(w, r, http.MethodPost, "/v1/sessions/"+url.PathEscape(sess.ID)+"/cancel", nil, &done) {
		return
	}
	resp := driveResponse{SessionID: done.ID, Action: "cancel", Attempt: done.Attempt}
	if done.VCC != nil {
		resp.SessionGUID = done.VCC.SessionGUID
	}
	web.WriteJSON(w, http.StatusOK, resp)
}

// browserCall admits a call from the desktop page only: its own Origin (a page elsewhere cannot
// mint this agent's tokens) and a JSON body, which a cross-site form cannot send.
func (d *demoDesk) browserCall(w http.ResponseWriter, r *http.Request, into any) bool {
	if origin := r.Header.Get("Origin"); !slices.Contains(d.origins, origin) {
		d.fail(w, r, bridge.Errorf(bridge.CodeOriginForbidden, "The demo backend answers only its own agent desktop's origin.").
			WithFix("Call it from "+d.info.BaseURL+"/demo/agent."))
		return false
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		d.fail(w, r, bridge.Errorf(bridge.CodeUnsupportedMediaType, "The demo backend takes application/json bodies."))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDemoBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil && !errors.Is(err, io.EOF) {
		d.fail(w, r, bridge.Errorf(bridge.CodeValidationError, "The request body is not the expected JSON: %v", err))
		return false
	}
	return true
}

// callAPI calls paybridge's own API with the secret key and decodes a 2xx answer into out. Any
// other answer is relayed to the page as it came: it already is paybridge's error envelope.
func (d *demoDesk) callAPI(w http.ResponseWriter, r *http.Request, method, path string, body, out any) bool {
	status, data, err := d.do(r.Context(), method, d.info.BaseURL+path, d.info.SecretKey, body)
	if err != nil {
		d.logger.WarnContext(r.Context(), "demo: paybridge API call", "path", path, "err", err)
		d.fail(w, r, bridge.Errorf(bridge.CodeInternalError, "The demo backend could not reach paybridge."))
		return false
	}
	if status >= 300 {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_, _ = w.Write(data)
		return false
	}
	if err := json.Unmarshal(data, out); err != nil {
		d.fail(w, r, bridge.Errorf(bridge.CodeInternalError, "paybridge's answer to %s %s could not be read.", method, path))
		return false
	}
	return true
}

// do sends one JSON request and returns the status and up to 64 KiB of the body.
func (d *demoDesk) do(ctx context.Context, method, u, key string, body any) (int, []byte, error) {
	var payload io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		payload = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, payload)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, data, err
}

// fail answers with the server's own error envelope.
func (d *demoDesk) fail(w http.ResponseWriter, r *http.Request, e *bridge.Error) {
	d.server.WriteError(w, r, e)
}

// stubMessage returns the stub's {"message"} text, or the raw body cut short.
func stubMessage(body []byte) string {
	var m struct{ Message string }
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		return m.Message
	}
	return strings.TrimSpace(string(body[:min(len(body), 200)]))
}

// originOf returns scheme://host[:port] of u.
func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Scheme + "://" + p.Host
}
