package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/paybridge/paybridge/bridge"
)

// Close codes of the agent socket beyond the standard ones. The widget reconnects after any close
// except CloseAgentTokenRejected and CloseForbidden, which need a fresh agent token.
const (
	CloseProtocolError      = 4400 // the first message was not JSON, or not {"type":"auth",...}
	CloseAgentTokenRejected = 4401 // invalid or expired agent token, or the publishable key ended; the reason starts with the code
	CloseForbidden          = 4403 // e.g. a test agent token with a live publishable key
	CloseAuthTimeout        = 4408 // no auth message in time
	CloseSlowConsumer       = 4429 // the socket fell too far behind; reconnect for a fresh snapshot
)

// Browser → server message types.
const (
	msgAuth           = "auth"
	msgFrameLoaded    = "frame.loaded"
	msgFrameRefused   = "frame.refused"
	msgSessionRestart = "session.restart"
	msgSessionRefresh = "session.refresh"
)

// A socket may send socketMessagesPerSecond messages a second, in bursts of socketMessageBurst;
// past that its messages are dropped (with at most one error a second): a browser has no reason
// to send more, and each restart trigger costs a VCC create.
const (
	socketMessagesPerSecond = 10
	socketMessageBurst      = 20
)

// maxClientMessage bounds what a browser may send in one message.
const maxClientMessage = 16 << 10

var upgrader = websocket.Upgrader{
	// 0: gorilla reads through the reader the hijack hands it, which is the socket's own
	// (ownReader), so the socket can wait for the next frame without gorilla (agentConn.next).
	ReadBufferSize: 0,
	// Idle sockets hold no write buffer: the pool lends one per write, so it can be large enough
	// for a handoff in one frame.
	WriteBufferSize: 4096,
	WriteBufferPool: &sync.Pool{},
	// The Origin was checked against the merchant's allowedOrigins before upgrading.
	CheckOrigin: func(*http.Request) bool { return true },
}

// clientMessage is anything the browser sends. Action fields may be flat or under data.
type clientMessage struct {
	Type       string `json:"type"`
	AgentToken string `json:"agentToken,omitempty"`
	SessionID  string `json:"sessionId,omitempty"`
	Attempt    int    `json:"attempt,omitempty"`
	Data       *struct {
		SessionID string `json:"sessionId"`
		Attempt   int    `json:"attempt"`
	} `json:"data,omitempty"`
}

func (m *clientMessage) target() (string, int) {
	if m.Data != nil {
		return m.Data.SessionID, m.Data.Attempt
	}
	return m.SessionID, m.Attempt
}

// readyData is the data of the ready event: the agent's snapshot and when its token ends.
type readyData struct {
	*bridge.ReadyData
	AgentTokenExpiresAt time.Time `json:"agentTokenExpiresAt"`
}

// errorData is the data of an error event sent to one socket.
type errorData struct {
	Code  bridge.Code `json:"code"`
	Error string      `json:"error"`
	Fix   string      `json:"fix"`
	Docs  string      `json:"docs"`
}

// agentSocket is GET /v1/ws?key=vp_pk_...: the publishable key and Origin are checked before the
// upgrade; the agent token comes in the first message, never in the URL.
func (s *Server) agentSocket(w http.ResponseWriter, r *http.Request) error {
	// Credential events from here on are seen by the re-check after the socket registers, so none
	// falls between the checks below and the registration.
	events := s.credentialEvents.Load()
	key := r.URL.Query().Get("key")
	if key == "" {
		return bridge.Errorf(bridge.CodeAuthMissingBearer, "GET /v1/ws needs the publishable key as ?key=vp_pk_....").
			WithFix("Connect to /v1/ws?key=<your vp_pk_* key>, then send {\"type\":\"auth\",\"agentToken\":\"vp_at_...\"} as the first message.")
	}
	p, err := s.keys.Authenticate(r.Context(), key)
	if err != nil {
		return err
	}
	authenticatedNow(r)
	if p.Key.Type != bridge.KeyPublishable {
		return bridge.Errorf(bridge.CodeAuthKeyTypeForbidden, "The agent socket takes a publishable key; a secret key was put in a URL.").
			WithFix("Roll the secret key you used (it may now sit in logs) and connect with your vp_pk_* key.")
	}
	if err := checkOrigin(r, p.Merchant); err != nil {
		return err
	}
	if !websocket.IsWebSocketUpgrade(r) {
		return bridge.Errorf(bridge.CodeValidationError, "GET /v1/ws expects a WebSocket upgrade request.")
	}
	up := upgrader
	up.Error = func(w http.ResponseWriter, r *http.Request, status int, reason error) {
		s.writeError(w, r, bridge.Errorf(bridge.CodeValidationError, "WebSocket handshake failed: %v", reason))
	}
	own := &ownReader{ResponseWriter: w}
	conn, err := up.Upgrade(own, r, http.Header{"X-Request-Id": {RequestID(r.Context())}})
	if err != nil {
		return nil // the upgrader has answered
	}
	s.sockets.Add(1)
	// The handshake runs here; the socket is then served by one fresh goroutine, its reader, and
	// this handler returns, releasing its stack (grown by the handshake) and the HTTP server's
	// per-connection state. Writes need no goroutine of their own: one runs only while there is
	// something to write (agentConn.Wake), pings come from a timer, and credential ends from the
	// key service's events and the service clock.
	c := s.openSocket(conn, own.br, p, RequestID(r.Context()), key, events)
	if c == nil {
		_ = conn.Close()
		s.sockets.Done()
		return nil
	}
	go c.read()
	return nil
}

// agentConn is one authenticated agent socket. Its only goroutine while idle is its reader.
type agentConn struct {
	s     *Server
	conn  *websocket.Conn
	br    *bufio.Reader // what gorilla reads the connection through
	sub   *bridge.Subscription
	agent bridge.AgentRef
	// requestID is the handshake's, for the socket's logs and actions (context, made per use: an
	// idle socket holds none). Actions are never cancelled: one in flight when the socket ends
	// (a restart, say) completes.
	requestID string

	// The credentials it was opened with, whose end ends it.
	keyID      string // the publishable key
	tokenKeyID string // the secret key that minted the agent token
	tokenEpoch int64

	ping   *time.Timer // keepalive, on the wall clock
	closed atomic.Bool

	expiry *expiry // the earliest end of a credential it holds; guarded by the server's expiries

	shut atomic.Bool // the connection has been closed
}

// openSocket is a socket's handshake: the agent token in the first message, the subscription,
// the ready snapshot written first, and the socket registered for credential events. It returns
// nil, having sent a close frame, if the agent may not connect.
func (s *Server) openSocket(conn *websocket.Conn, br *bufio.Reader, p *bridge.Principal, requestID, key string, events uint64) *agentConn {
	conn.SetReadLimit(maxClientMessage)
	ctx := context.WithValue(context.Background(), requestIDKey, requestID)

	_ = conn.SetReadDeadline(time.Now().Add(s.authTimeout))
	_, first, err := conn.ReadMessage()
	if err != nil {
		// Silence until the deadline is 4408; a peer that hung up or broke the framing gets
		// nothing (a close frame to a closed socket goes nowhere).
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			closeSocket(conn, CloseAuthTimeout, "no auth message within the time allowed")
		} else if errors.Is(err, websocket.ErrReadLimit) {
			closeSocket(conn, CloseProtocolError, "the first message is too large")
		}
		return nil
	}
	var hello clientMessage
	if err := json.Unmarshal(first, &hello); err != nil {
		closeSocket(conn, CloseProtocolError, `the first message is not JSON; it must be {"type":"auth","agentToken":"vp_at_..."}`)
		return nil
	}
	if hello.Type != msgAuth || hello.AgentToken == "" {
		closeSocket(conn, CloseProtocolError, `the first message must be {"type":"auth","agentToken":"vp_at_..."}`)
		return nil
	}
	token, err := s.keys.VerifyAgentToken(ctx, p, hello.AgentToken)
	if err != nil {
		closeSocket(conn, closeCode(err), closeReason(err))
		return nil
	}
	agent := bridge.AgentRef{MerchantID: p.Merchant.ID, Mode: p.Key.Mode, AgentID: token.AgentID}
	c := &agentConn{s: s, conn: conn, br: br, agent: agent, requestID: requestID,
		keyID: p.Key.ID, tokenKeyID: token.KeyID, tokenEpoch: token.Epoch}
	// Stale attempts restart before this socket subscribes, so it learns of them from the
	// snapshot rather than from events ahead of it. Subscribing before reading the snapshot loses
	// nothing: what changes meanwhile is queued behind ready, which goes out first (the socket
	// holds the writer's turn until then).
	if err := s.sessions.RefreshAgent(ctx, agent); err != nil {
		s.logger.WarnContext(ctx, "refresh agent sessions", "agent", agent.AgentID, "err", err)
	}
	c.sub = s.hub.SubscribeSink(agent, c)
	if !s.register(c) {
		c.sub.Close()
		closeSocket(conn, websocket.CloseGoingAway, "server shutting down")
		return nil
	}
	fail := func() *agentConn {
		c.sub.Close()
		s.forget(c)
		return nil
	}
	// A credential that ended while this socket was being opened was not seen by the events
	// above: check again, once, only then.
	if s.credentialEvents.Load() != events {
		if err := s.recheck(ctx, key, hello.AgentToken); err != nil {
			closeSocket(conn, closeCode(err), closeReason(err))
			return fail()
		}
	}
	snapshot, err := s.sessions.AgentSnapshot(ctx, agent)
	if err != nil {
		s.logger.ErrorContext(ctx, "agent snapshot", "merchant", agent.MerchantID, "agent", agent.AgentID, "err", err)
		closeSocket(conn, websocket.CloseInternalServerErr, "internal_error: the agent's sessions could not be read")
		return fail()
	}
	ready, ok := s.hub.Encode(c.sub, &bridge.Event{Agent: agent, Type: bridge.EventReady, ID: bridge.NewEventID(),
		Data: readyData{ReadyData: snapshot, AgentTokenExpiresAt: token.ExpiresAt}})
	_ = conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if !ok || conn.WriteMessage(websocket.TextMessage, ready) != nil {
		return fail()
	}
	// Token expiry and the grace ends of both keys are times: scheduled, not checked per ping.
	s.expiries.schedule(c, token.ExpiresAt, errTokenExpired)
	if !p.Key.ExpiresAt.IsZero() {
		s.expiries.schedule(c, p.Key.ExpiresAt, p.Key.Usable(p.Key.ExpiresAt))
	}
	if k := token.MintedBy; k != nil && !k.ExpiresAt.IsZero() {
		s.expiries.schedule(c, k.ExpiresAt, bridge.MintingKeyUsable(k, k.ExpiresAt))
	}
	c.ping = time.AfterFunc(s.pingInterval, c.keepalive)
	s.logger.InfoContext(ctx, "agent connected", "merchant", agent.MerchantID, "agent", agent.AgentID, "sessions", len(snapshot.Sessions))
	c.flush() // what was published while ready was being written; then the turn is free
	return c
}

// errTokenExpired closes a socket whose agent token's expiry has come.
var errTokenExpired = bridge.Errorf(bridge.CodeAuthKeyExpired, "the agent token expired; reconnect with a fresh one")

// errServerClosing ends every socket on Shutdown.
var errServerClosing = errors.New("server shutting down")

// recheck authenticates a socket's key and agent token again.
func (s *Server) recheck(ctx context.Context, key, token string) error {
	p, err := s.keys.Authenticate(ctx, key)
	if err == nil {
		_, err = s.keys.VerifyAgentToken(ctx, p, token)
	}
	return err
}

// closeCode is the close code for a credential error: 4403 for a mode mismatch, else 4401.
func closeCode(err error) int {
	if bridge.ErrorCode(err) == bridge.CodeAuthKeyTypeForbidden {
		return CloseForbidden
	}
	return CloseAgentTokenRejected
}

// closeReason is a credential error as a close reason: the code first, then the message.
func closeReason(err error) string {
	e := bridge.AsError(err)
	return string(e.Code) + ": " + e.Message
}

// context is the context of the socket's logs and actions: the handshake's request id.
func (c *agentConn) context() context.Context {
	return context.WithValue(context.Background(), requestIDKey, c.requestID)
}

// Wake implements bridge.Sink: messages wait and no writer runs, so one starts, for as long as
// there is something to write.
func (c *agentConn) Wake() { go c.flush() }

// flush writes what the subscription holds, then gives up the writer's turn.
func (c *agentConn) flush() {
	for {
		msg, ok := c.sub.Next()
		if !ok {
			return
		}
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.s.writeTimeout))
		if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			c.shutdown(0, "") // the reader then ends and cleans up
			return
		}
	}
}

// Ended implements bridge.Sink: the hub ended the subscription. The close frame is written from a
// goroutine of its own, since a stuck socket may hold gorilla's write lock until its deadline.
func (c *agentConn) Ended(err error) {
	switch {
	case err == nil: // closed by the socket itself
	case errors.Is(err, bridge.ErrSlowConsumer):
		go c.shutdown(CloseSlowConsumer, "slow consumer: reconnect for a fresh snapshot")
	case errors.Is(err, errServerClosing):
		go c.shutdown(websocket.CloseGoingAway, "server shutting down")
	default:
		c.s.logger.InfoContext(c.context(), "agent socket closed: its credentials ended", "merchant", c.agent.MerchantID,
			"agent", c.agent.AgentID, "code", bridge.ErrorCode(err))
		go c.shutdown(closeCode(err), closeReason(err))
	}
}

// shutdown sends a close frame (none if code is 0) and closes the connection, once; the reader
// then returns and cleans up.
func (c *agentConn) shutdown(code int, reason string) {
	if c.shut.Swap(true) {
		return
	}
	if code != 0 {
		closeSocket(c.conn, code, reason)
	}
	_ = c.conn.Close()
}

// keepalive pings the peer and arms the next ping; the reader's deadline drops a peer that stops
// answering.
func (c *agentConn) keepalive() {
	if c.closed.Load() {
		return
	}
	if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.s.writeTimeout)); err != nil {
		c.shutdown(0, "")
		return
	}
	if !c.closed.Load() {
		c.ping.Reset(c.s.pingInterval)
	}
}

// read is the socket's one long-lived goroutine: it handles the browser's messages and, when the
// connection ends for any reason, releases everything the socket holds.
func (c *agentConn) read() {
	defer c.finish()
	c.s.readActions(c)
}

// finish releases the socket: timers, subscription, registration, connection.
func (c *agentConn) finish() {
	c.closed.Store(true)
	c.ping.Stop()
	c.s.expiries.cancel(c)
	c.sub.Close()
	c.shutdown(0, "")
	c.s.forget(c)
	c.s.sockets.Done()
}

// register adds c to the server's open sockets; false once the server is shutting down.
func (s *Server) register(c *agentConn) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.conns == nil {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// forget removes c from the server's open sockets.
func (s *Server) forget(c *agentConn) {
	s.connsMu.Lock()
	delete(s.conns, c)
	s.connsMu.Unlock()
}

// openConns returns the open sockets match selects.
func (s *Server) openConns(match func(*agentConn) bool) []*agentConn {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	var out []*agentConn
	for c := range s.conns {
		if match(c) {
			out = append(out, c)
		}
	}
	return out
}

// KeyEnds implements bridge.CredentialWatcher: the sockets key opened, or whose agent token it
// minted, end at at: at once (before the call that ended the key returns) or when the service
// clock reaches it.
func (s *Server) KeyEnds(key *bridge.APIKey, at time.Time) {
	s.credentialEvents.Add(1)
	now := s.clock.Now()
	for _, c := range s.openConns(func(c *agentConn) bool { return c.keyID == key.ID || c.tokenKeyID == key.ID }) {
		why := bridge.MintingKeyUsable(key, at)
		if c.keyID == key.ID {
			why = key.Usable(at)
		}
		if why == nil {
			continue
		}
		if at.After(now) {
			s.expiries.schedule(c, at, why)
		} else {
			c.sub.End(why)
		}
	}
}

// AgentTokensRevoked implements bridge.CredentialWatcher: the agent's sockets opened with a
// token of an older epoch end at once.
func (s *Server) AgentTokensRevoked(rec *bridge.AgentTokenRevocation) {
	s.credentialEvents.Add(1)
	for _, c := range s.openConns(func(c *agentConn) bool { return c.agent == rec.Agent && c.tokenEpoch < rec.Epoch }) {
		c.sub.End(bridge.RevokedAgentTokenError())
	}
}

// readActions handles the browser's messages; a peer silent for longer than a ping interval plus
// the pong timeout is dead. Between messages it holds nothing but its connection: the rate
// limiters are made by the first message that needs them.
func (s *Server) readActions(c *agentConn) {
	conn := c.conn
	conn.SetPongHandler(c.pong)
	var limits *socketLimits
	for {
		c.extendRead()
		if err := c.next(); err != nil {
			return
		}
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if limits == nil {
			limits = newSocketLimits()
		}
		s.handleAction(c, limits, data)
	}
}

// next waits for the next data frame, answering pongs itself: an idle socket waits here, in the
// standard library's read, rather than deep in gorilla's, and its goroutine keeps a small stack
// (gorilla's read path needs more than the 2 KiB a goroutine starts with, and a stack that grew
// never shrinks while it is in use). A pong (the browser's answer to each ping) is a whole frame
// between messages: FIN, opcode 0xA, masked, at most 125 bytes; it is dropped here, as gorilla
// would drop it, after extending the read deadline. Any other frame, or anything unusual, is left
// to gorilla, which handles (or refuses) it as before.
func (c *agentConn) next() error {
	for {
		h, err := c.br.Peek(2)
		if err != nil {
			return err
		}
		const fin, masked, opPong = 0x80, 0x80, 0xA
		n := int(h[1] & 0x7f)
		if h[0] != fin|opPong || h[1]&masked == 0 || n > 125 {
			return nil
		}
		if _, err := c.br.Peek(2 + 4 + n); err != nil {
			return err
		}
		_, _ = c.br.Discard(2 + 4 + n)
		c.extendRead()
	}
}

// ownReader lets gorilla read a socket through a reader the socket holds too (next). Gorilla
// takes the hijack's reader when its own ReadBufferSize is 0 and the reader holds more than 256
// bytes.
type ownReader struct {
	http.ResponseWriter
	br *bufio.Reader
}

// socketReadBuffer is the reader's size: more than gorilla's 256 (see ownReader), and enough for
// the largest message a browser sends in one read (the auth message, ~300 bytes).
const socketReadBuffer = 512

// Hijack implements http.Hijacker.
func (o *ownReader) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := o.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("web: the response cannot be hijacked")
	}
	conn, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Reader.Buffered() > 0 {
		_ = conn.Close()
		return nil, nil, errors.New("websocket: client sent data before handshake is complete")
	}
	o.br = bufio.NewReaderSize(conn, socketReadBuffer)
	return conn, bufio.NewReadWriter(o.br, brw.Writer), nil
}

// extendRead gives the peer a ping interval and the pong timeout to say something.
func (c *agentConn) extendRead() {
	_ = c.conn.SetReadDeadline(time.Now().Add(c.s.pingInterval + c.s.pongTimeout))
}

// pong is the socket's pong handler: the peer is alive.
func (c *agentConn) pong(string) error {
	c.extendRead()
	return nil
}

// socketLimits meter one socket's messages.
type socketLimits struct{ messages, complaints *rate.Limiter }

func newSocketLimits() *socketLimits {
	return &socketLimits{messages: rate.NewLimiter(socketMessagesPerSecond, socketMessageBurst), complaints: rate.NewLimiter(1, 1)}
}

// handleAction handles one browser message. It is a function of its own so that its frame (JSON,
// service calls) is on the reader's stack only while a message is handled.
//
//go:noinline
func (s *Server) handleAction(c *agentConn, limits *socketLimits, data []byte) {
	ctx, sub, agent := c.context(), c.sub, c.agent
	if !limits.messages.Allow() {
		if limits.complaints.Allow() {
			s.sendError(sub, "", bridge.Errorf(bridge.CodeRateLimitExceeded, "This socket sends more than %d messages a second; the excess is dropped.", socketMessagesPerSecond))
		}
		return
	}
	var msg clientMessage
	if err := json.Unmarshal(data, &msg); err != nil {
		s.sendError(sub, "", bridge.Errorf(bridge.CodeValidationError, "The message is not valid JSON."))
		return
	}
	sessionID, attempt := msg.target()
	var actionErr error
	switch msg.Type {
	case msgFrameLoaded:
		s.logger.DebugContext(ctx, "frame loaded", "session", capText(sessionID, capInputText), "attempt", attempt)
	case msgFrameRefused:
		s.logger.InfoContext(ctx, "frame refused", "session", capText(sessionID, capInputText), "attempt", attempt, "agent", agent.AgentID)
		var current *bridge.HandoffEventData
		current, actionErr = s.sessions.FrameRefused(ctx, agent, sessionID, attempt)
		if current != nil {
			// The report was about an older attempt: this socket missed the handoff.
			s.hub.Send(sub, &bridge.Event{Agent: agent, Type: bridge.EventHandoff, ID: bridge.NewEventID(), SessionID: sessionID, Data: current})
		}
	case msgSessionRestart:
		_, actionErr = s.sessions.RestartFromAgent(ctx, agent, sessionID)
	case msgSessionRefresh:
		// The widget is about to post this attempt's tokens into a frame again: renewed first
		// if the provider session is past its lifetime, then answered to this socket.
		var current *bridge.HandoffEventData
		current, actionErr = s.sessions.RefreshSession(ctx, agent, sessionID, attempt)
		if current != nil {
			s.hub.Send(sub, &bridge.Event{Agent: agent, Type: bridge.EventHandoff, ID: bridge.NewEventID(), SessionID: sessionID, Data: current})
		}
	case msgAuth:
		actionErr = bridge.Errorf(bridge.CodeValidationError, "This socket is already authenticated.")
	default:
		actionErr = bridge.Errorf(bridge.CodeValidationError, "Unknown message type %q; expected frame.loaded, frame.refused or session.restart.", truncate(msg.Type, 40))
	}
	if actionErr != nil && !c.closed.Load() {
		s.logger.InfoContext(ctx, "agent action failed", "type", capText(msg.Type, capInputText), "session", capText(sessionID, capInputText), "err", actionErr)
		s.sendError(sub, sessionID, actionErr)
	}
}

// sendError tells one socket that its action failed.
func (s *Server) sendError(sub *bridge.Subscription, sessionID string, err error) {
	e := bridge.AsError(err)
	s.hub.Send(sub, &bridge.Event{Agent: sub.Agent, Type: bridge.EventError, ID: bridge.NewEventID(), SessionID: sessionID,
		Data: errorData{Code: bridge.Info(e.Code).Code, Error: Redact(e.Message), Fix: Redact(e.PublicFix()), Docs: s.docsURL(e.Code)}})
}

// closeSocket sends a close frame; the reason is cut to the protocol's 123 bytes.
func closeSocket(conn *websocket.Conn, code int, reason string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, truncate(Redact(reason), 123)), time.Now().Add(time.Second))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
