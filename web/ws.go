package web

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
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
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	// Idle sockets hold no write buffer: the pool lends one per write.
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
	conn, err := up.Upgrade(w, r, http.Header{"X-Request-Id": {RequestID(r.Context())}})
	if err != nil {
		return nil // the upgrader has answered
	}
	s.sockets.Add(1)
	// The handshake runs here; the socket is then served by two fresh goroutines and this
	// handler returns, releasing its stack (grown by the handshake) and the HTTP server's
	// per-connection state: an idle socket should cost little, there may be thousands.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	sock := s.openSocket(ctx, conn, p)
	if sock == nil {
		cancel()
		_ = conn.Close()
		s.sockets.Done()
		return nil
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		s.readActions(ctx, conn, sock.sub, sock.agent)
	}()
	go func() {
		defer s.sockets.Done()
		defer sock.sub.Close()
		// key lives on only in this goroutine, to be checked again at each keepalive.
		s.writeEvents(ctx, conn, sock.sub, key, sock.tokenExpiry, readerDone)
		cancel()
		_ = conn.Close() // unblocks the reader if the writer ended first
		<-readerDone
	}()
	return nil
}

// openedSocket is an authenticated, subscribed agent socket.
type openedSocket struct {
	agent       bridge.AgentRef
	sub         *bridge.Subscription
	tokenExpiry time.Time
}

// openSocket is a socket's handshake: the agent token in the first message, the subscription,
// and the ready snapshot written first. It returns nil, having sent a close frame, if the agent
// may not connect.
func (s *Server) openSocket(ctx context.Context, conn *websocket.Conn, p *bridge.Principal) *openedSocket {
	conn.SetReadLimit(maxClientMessage)

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
	token, err := s.keys.VerifyAgentToken(p, hello.AgentToken)
	if err != nil {
		e := bridge.AsError(err)
		code := CloseAgentTokenRejected
		if e.Code == bridge.CodeAuthKeyTypeForbidden {
			code = CloseForbidden
		}
		closeSocket(conn, code, string(e.Code)+": "+e.Message)
		return nil
	}
	agent := bridge.AgentRef{MerchantID: p.Merchant.ID, Mode: p.Key.Mode, AgentID: token.AgentID}
	// Stale attempts restart before this socket subscribes, so it learns of them from the
	// snapshot rather than from events ahead of it. Subscribing before reading the snapshot loses
	// nothing: what changes meanwhile is queued behind ready, which goes out first.
	if err := s.sessions.RefreshAgent(ctx, agent); err != nil {
		s.logger.WarnContext(ctx, "refresh agent sessions", "agent", agent.AgentID, "err", err)
	}
	sub := s.hub.Subscribe(agent)
	snapshot, err := s.sessions.AgentSnapshot(ctx, agent)
	if err != nil {
		sub.Close()
		s.logger.ErrorContext(ctx, "agent snapshot", "merchant", agent.MerchantID, "agent", agent.AgentID, "err", err)
		closeSocket(conn, websocket.CloseInternalServerErr, "internal_error: the agent's sessions could not be read")
		return nil
	}
	ready, ok := s.hub.Encode(sub, &bridge.Event{Agent: agent, Type: bridge.EventReady, ID: bridge.NewEventID(),
		Data: readyData{ReadyData: snapshot, AgentTokenExpiresAt: token.ExpiresAt}})
	_ = conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if !ok || conn.WriteMessage(websocket.TextMessage, ready) != nil {
		sub.Close()
		return nil
	}
	s.logger.InfoContext(ctx, "agent connected", "merchant", agent.MerchantID, "agent", agent.AgentID, "sessions", len(snapshot.Sessions))
	return &openedSocket{agent: agent, sub: sub, tokenExpiry: token.ExpiresAt}
}

// writeEvents is the socket's only writer: events, pings, and the close that ends it. key is the
// publishable key the socket was opened with; it is never logged.
func (s *Server) writeEvents(ctx context.Context, conn *websocket.Conn, sub *bridge.Subscription, key string, tokenExpiry time.Time, readerDone <-chan struct{}) {
	ping := time.NewTicker(s.pingInterval)
	defer ping.Stop()
	for {
		select {
		case msg := <-sub.Messages():
			_ = conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
			if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ping.C:
			// The agent token's expiry is checked at each keepalive, on the service clock.
			if !s.clock.Now().Before(tokenExpiry) {
				closeSocket(conn, CloseAgentTokenRejected, "auth_key_expired: the agent token expired; reconnect with a fresh one")
				return
			}
			// So is the publishable key: revoking it, the end of its roll grace or the merchant
			// going inactive must end the sockets it opened, not only refuse new ones.
			if err := s.recheckKey(ctx, key, sub.Agent); err != nil {
				e := bridge.AsError(err)
				closeSocket(conn, CloseAgentTokenRejected, string(e.Code)+": "+e.Message)
				return
			}
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.writeTimeout)); err != nil {
				return
			}
		case <-sub.Done():
			if errors.Is(sub.Err(), bridge.ErrSlowConsumer) {
				closeSocket(conn, CloseSlowConsumer, "slow consumer: reconnect for a fresh snapshot")
			}
			return
		case <-s.closing:
			closeSocket(conn, websocket.CloseGoingAway, "server shutting down")
			return
		case <-readerDone:
			return
		}
	}
}

// recheckKey authenticates an open socket's publishable key again. It returns the public error
// that should close the socket, or nil; a key store that cannot answer right now closes nothing.
func (s *Server) recheckKey(ctx context.Context, key string, agent bridge.AgentRef) error {
	_, err := s.keys.Authenticate(ctx, key)
	switch code := bridge.ErrorCode(err); code {
	case "":
		return nil
	case bridge.CodeAuthServiceUnavailable:
		s.logger.WarnContext(ctx, "agent socket: key check unavailable; keeping the socket", "agent", agent.AgentID, "err", err)
		return nil
	default:
		s.logger.InfoContext(ctx, "agent socket closed: its publishable key no longer works", "merchant", agent.MerchantID,
			"agent", agent.AgentID, "code", code)
		return err
	}
}

// readActions handles the browser's messages; a peer silent for longer than a ping interval plus
// the pong timeout is dead.
func (s *Server) readActions(ctx context.Context, conn *websocket.Conn, sub *bridge.Subscription, agent bridge.AgentRef) {
	deadline := func() { _ = conn.SetReadDeadline(time.Now().Add(s.pingInterval + s.pongTimeout)) }
	conn.SetPongHandler(func(string) error { deadline(); return nil })
	limit := rate.NewLimiter(socketMessagesPerSecond, socketMessageBurst)
	complain := rate.NewLimiter(1, 1)
	for {
		deadline()
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if !limit.Allow() {
			if complain.Allow() {
				s.sendError(sub, "", bridge.Errorf(bridge.CodeRateLimitExceeded, "This socket sends more than %d messages a second; the excess is dropped.", socketMessagesPerSecond))
			}
			continue
		}
		var msg clientMessage
		if err := json.Unmarshal(data, &msg); err != nil {
			s.sendError(sub, "", bridge.Errorf(bridge.CodeValidationError, "The message is not valid JSON."))
			continue
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
		if actionErr != nil && ctx.Err() == nil {
			s.logger.InfoContext(ctx, "agent action failed", "type", capText(msg.Type, capInputText), "session", capText(sessionID, capInputText), "err", actionErr)
			s.sendError(sub, sessionID, actionErr)
		}
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
