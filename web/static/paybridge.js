/*
 * paybridge.js: the paybridge agent widget. Plain JavaScript, no build step; paybridge serves it
 * at /static/paybridge.js.
 *
 * It connects the agent's browser to paybridge, shows PCI Pal's secure card capture page in an
 * iframe whenever paybridge hands a payment over, reports a frame the provider refused (an expired
 * provider session) when it has evidence of it, so paybridge can start a new one, and shows the
 * outcome.
 *
 *   <div id="payment"></div>
 *   <link rel="stylesheet" href="https://pay.example.com/static/paybridge.css">
 *   <script src="https://pay.example.com/static/paybridge.js"></script>
 *   <script>
 *     const widget = PayBridge.mount(document.getElementById("payment"), {
 *       baseUrl: "https://pay.example.com",
 *       publishableKey: "vp_pk_live_...",
 *       // Your backend mints the token with its secret key (POST /v1/agent_tokens).
 *       getAgentToken: async () => (await (await fetch("/desk/agent-token", {method: "POST"})).json()).token,
 *     });
 *     widget.on("succeeded", (data) => console.log("paid", data.session.id));
 *     const session = await widget.takePayment({amount: 1240, currency: "GBP", reference: "INV-1001"});
 *   </script>
 *
 * API
 *
 *   PayBridge.mount(element, options) -> widget
 *     Renders into element: a status line, the payment panel with the iframe, a compact timeline.
 *     options.baseUrl          paybridge's URL, e.g. "https://pay.example.com"
 *     options.publishableKey   "vp_pk_...": the only credential that ever goes in a URL
 *     options.getAgentToken()  returns (a promise of) the agent token "vp_at_..." or {token}; asked
 *                              on the first connect and again whenever paybridge rejects the token
 *     options.agentId          optional; the agent token names the agent, this is only shown
 *     options.frameTimeoutMs   6000: when the handoff carries an announcement, the time the
 *                              provider page has after the form POST to post it
 *     options.frameCheck       how the widget tells a refused frame (the browser hides it: the
 *                              iframe's load event fires either way) from a loaded one:
 *       "auto" (default)  positive evidence only. When the merchant configured the announcement
 *                         its PCI Pal flow posts (a PostMessage step; paybridge sends it in each
 *                         handoff as announcement: {origin, data}), the frame is loaded when a
 *                         message from the iframe's window comes from that origin with data that
 *                         holds every key of announcement.data with an equal value (nested values
 *                         compared deeply, extra keys allowed; a string holding JSON is parsed),
 *                         and refused when none comes within frameTimeoutMs of the form POST.
 *                         Without an announcement (live PCI Pal posts nothing unless its flow is
 *                         set up to) the frame is loaded when a document loads in it and is never
 *                         counted as refused for want of a message; only a CSP frame-ancestors
 *                         report (Chromium's ReportingObserver, from the iframe URL's origin)
 *                         counts as a refusal. Expiry is then recovered by paybridge (VCC's
 *                         status, the attempt's age) and by the agent's "Start a new one".
 *       "none"            never reports a refusal; the frame is loaded when a document loads.
 *       "announcement"    the former name of "auto", kept for old host pages.
 *
 *   Before posting the provider tokens of an attempt that may have been posted before (one from
 *   the ready snapshot of a reconnect or a reload, or one this widget already posted, or one whose
 *   expiresAt has passed), the widget asks paybridge first ({type: "session.refresh", sessionId,
 *   attempt}): paybridge renews an attempt older than the provider lifetime, and the widget posts
 *   only the handoff that answers. It asks again when the tab comes back to the foreground. While
 *   a payment is open the panel offers "Payment page not showing? Start a new one", which sends
 *   session.restart.
 *
 *   widget.on(type, fn) -> unsubscribe()
 *     fn(data) runs for: "ready", "handoff", "restarting", "succeeded", "failed", "expired",
 *     "cancelled", "error", "status" ({state: "connecting" | "connected" | "reconnecting" |
 *     "closed", ...}), "frame.loaded" ({sessionId, attempt, announced}: announced is true when the
 *     announcement came, false when only a document loaded) and "frame.refused" ({sessionId,
 *     attempt, reason: "no_announcement" | "csp_frame_ancestors"}). data is the event's data as
 *     paybridge sent it, minus the provider tokens (formFields). "handoff" runs once per attempt.
 *   widget.off(type, fn)
 *   widget.takePayment({amount, currency, reference, ...}) -> Promise<session>
 *     POST /v1/sessions with the publishable key and the agent token in headers and a fresh
 *     Idempotency-Key; rejects with a PayBridge.APIError carrying the API's {code, error, fix,
 *     docs, param, requestId} and the HTTP status.
 *   widget.restart(sessionId)  asks paybridge for a new attempt (throws when not connected); an
 *                              attempt younger than 5 s is not restarted (an "error" event with
 *                              code rate_limit_exceeded)
 *   widget.show(sessionId)     puts another open payment of the agent in the panel (one from
 *                              "ready" or "handoff"); its current attempt is asked of paybridge
 *                              first, like a reload's. Throws when not connected or not open.
 *   widget.state               {status, sessionId, attempt, frame}: what the widget shows now;
 *                              frame is "none", "checking" (asking paybridge before posting),
 *                              "pending", "loaded" or "refused"
 *   widget.close()             disconnects for good and clears the panel
 *
 * Security: the agent token lives only in a variable of this closure, and the provider tokens only
 * in the hidden form until the frame settles. Neither goes into a URL, the console, localStorage,
 * sessionStorage or a cookie.
 */
(function (global) {
  "use strict";

  // A CSP report may reach the page just after the frame's load event: it still counts for the
  // frame this long after its load.
  const REPORT_GRACE_MS = 1000;
  // paybridge does not restart an attempt younger than 5 s on a browser's word: a refusal seen
  // sooner is reported again after this long, until a new attempt comes (at most REREPORT_MAX).
  const REREPORT_MS = 5500;
  const REREPORT_MAX = 3;
  // How long paybridge has to answer a session.refresh before the panel says so.
  const REFRESH_ANSWER_MS = 10000;
  // A tab coming back to the foreground asks paybridge about its attempt at most this often.
  const VISIBLE_REFRESH_MIN_MS = 5000;
  const DEFAULT_FRAME_TIMEOUT_MS = 6000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 20000;
  const TIMELINE_MAX = 50;

  // Close codes of GET /v1/ws beyond the standard ones.
  const CLOSE_PROTOCOL_ERROR = 4400; // our first message was wrong: reconnecting cannot help
  const CLOSE_TOKEN_REJECTED = 4401; // the agent token is invalid or expired: get a fresh one
  const CLOSE_FORBIDDEN = 4403; // the token does not go with the key: get a fresh one

  // Frame names are unique on the page, across every widget mounted on it: a form targets its
  // iframe by name, and two widgets must never post into each other's frames.
  let frameSeq = 0;

  const HOST_EVENTS = ["ready", "handoff", "restarting", "succeeded", "failed", "expired", "cancelled",
    "error", "status", "frame.loaded", "frame.refused"];
  const TERMINAL = {
    "session.succeeded": "succeeded",
    "session.failed": "failed",
    "session.expired": "expired",
    "session.cancelled": "cancelled",
  };
  const RESTART_REASONS = {
    frame_refused: "the payment page was refused",
    provider_expired: "the provider session ended",
    lifetime_elapsed: "the provider session was too old",
    restart_requested: "a restart was requested",
  };
  const CLOSE_REASONS = {
    1001: "paybridge is restarting",
    1006: "the connection was lost",
    1011: "paybridge had an internal error",
    4408: "authentication took too long",
    4429: "the connection fell behind",
  };

  /** APIError is what takePayment rejects with when paybridge answers with an error. */
  class APIError extends Error {
    constructor(status, body, requestId) {
      body = body && typeof body === "object" ? body : {};
      super(body.error || "paybridge answered HTTP " + status);
      this.name = "PayBridgeAPIError";
      this.status = status;
      this.code = body.code || "http_" + status;
      this.error = this.message;
      this.fix = body.fix || "";
      this.docs = body.docs || "";
      this.param = body.param || "";
      this.requestId = body.requestId || requestId || "";
    }
  }

  function mount(element, options) {
    if (!element || element.nodeType !== 1) {
      throw new TypeError("PayBridge.mount: the first argument must be a DOM element");
    }
    const opts = checkOptions(options);
    const apiBase = opts.baseUrl.replace(/\/+$/, "");
    const wsURL = socketURL(apiBase, opts.publishableKey);

    let agentToken = null; // the only copy; see the security note at the top
    let tokenPromise = null;
    let socket = null;
    let connecting = false;
    let closed = false;
    let failures = 0; // connection attempts since the last ready
    let reconnectTimer = null;
    let status = "connecting";
    // current is what the panel shows: {sessionId, attempt, session, frame, outcome, checking,
    // badURL}. checking: the widget asked paybridge (session.refresh) before posting the attempt.
    let current = null;
    const highest = new Map(); // session id -> highest attempt seen
    const ended = new Set(); // session ids that reached a terminal status
    const posted = new Set(); // "sessionId#attempt" whose tokens this widget posted into a frame
    const asked = new Map(); // session id -> the attempt a session.refresh asked about
    const views = new Map(); // open session id -> its latest session object, for show()
    let refreshTimer = null; // the wait for the answer to a session.refresh
    let restartAskedAt = 0; // when the agent last pressed "Start a new one"
    let visibleRefreshAt = 0;
    const listeners = new Map();
    const ui = render(element);

    ui.retry.addEventListener("click", () => {
      if (!current || current.outcome) return;
      try {
        restart(current.sessionId);
        restartAskedAt = Date.now();
        setPanelMessage("Asked paybridge for a new payment page…");
      } catch (err) {
        setPanelMessage(err.message);
      }
    });
    global.addEventListener("message", onMessage);
    global.addEventListener("online", onOnline);
    global.addEventListener("pageshow", onPageShow);
    if (global.document) global.document.addEventListener("visibilitychange", onVisibilityChange);
    const reports = observeReports(onReports);
    connect();

    // --- host events ---

    function on(type, fn) {
      if (!HOST_EVENTS.includes(type)) {
        throw new TypeError("PayBridge: unknown event " + JSON.stringify(type) + "; one of " + HOST_EVENTS.join(", "));
      }
      if (typeof fn !== "function") throw new TypeError("PayBridge: on(type, fn) needs a function");
      if (!listeners.has(type)) listeners.set(type, new Set());
      listeners.get(type).add(fn);
      return () => off(type, fn);
    }

    function off(type, fn) {
      const set = listeners.get(type);
      if (set) set.delete(fn);
    }

    function emit(type, data) {
      const set = listeners.get(type);
      if (!set) return;
      for (const fn of Array.from(set)) {
        try {
          fn(data);
        } catch (err) {
          // A broken host handler must not break the widget; surface it without swallowing it.
          setTimeout(() => { throw err; });
        }
      }
    }

    // --- the socket ---

    function connect() {
      reconnectTimer = null;
      if (closed || connecting || socket) return;
      connecting = true;
      setStatus(failures === 0 ? "connecting" : "reconnecting", {});
      ensureToken().then((token) => {
        connecting = false;
        if (closed) return;
        let ws;
        try {
          ws = new WebSocket(wsURL);
        } catch (err) {
          scheduleReconnect(0, "the socket could not be opened");
          return;
        }
        socket = ws;
        ws.onopen = () => {
          if (socket === ws) ws.send(JSON.stringify({type: "auth", agentToken: token}));
        };
        ws.onmessage = (ev) => {
          if (socket !== ws) return;
          let msg;
          try {
            msg = JSON.parse(ev.data);
          } catch (err) {
            return;
          }
          handleEvent(msg);
        };
        ws.onclose = (ev) => {
          if (socket !== ws) return;
          socket = null;
          handleClose(ev.code, ev.reason);
        };
      }, (err) => {
        connecting = false;
        if (closed) return;
        const error = "getAgentToken failed: " + (err && err.message ? err.message : "no token");
        note("error", error);
        emit("error", {code: "agent_token_unavailable", error: error, fix: "Check the getAgentToken function of the page and the backend endpoint it calls."});
        scheduleReconnect(0, "no agent token");
      });
    }

    function handleClose(code, reason) {
      if (closed) return;
      const why = reason || CLOSE_REASONS[code] || "the connection closed (" + code + ")";
      if (code === CLOSE_PROTOCOL_ERROR) {
        note("error", "paybridge closed the connection: " + why);
        emit("error", {code: "protocol_error", error: why, fix: "Reload the page; if it persists, update paybridge.js."});
        setStatus("closed", {code: code, reason: why});
        return;
      }
      if (code === CLOSE_TOKEN_REJECTED || code === CLOSE_FORBIDDEN) {
        agentToken = null; // the next connect asks the host for a fresh one
      }
      scheduleReconnect(code, why);
    }

    function scheduleReconnect(code, reason) {
      if (closed || reconnectTimer) return;
      // Jittered exponential backoff, 0.5 s up to 20 s, reset by a successful ready.
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, failures));
      const delay = Math.max(BACKOFF_MIN_MS, Math.round(base * (0.5 + Math.random() * 0.5)));
      failures++;
      note("status", "Disconnected: " + reason + "; reconnecting in " + (delay / 1000).toFixed(1) + " s");
      setStatus("reconnecting", {inMs: delay, code: code, reason: reason});
      reconnectTimer = setTimeout(connect, delay);
    }

    function onOnline() {
      if (reconnectTimer) {
        clearTimeout(reconnectTimer);
        connect();
      }
    }

    function ensureToken() {
      if (agentToken) return Promise.resolve(agentToken);
      if (!tokenPromise) {
        tokenPromise = Promise.resolve()
          .then(() => opts.getAgentToken())
          .then((got) => {
            const token = typeof got === "string" ? got : got && got.token;
            if (typeof token !== "string" || token === "") {
              throw new Error("getAgentToken must return the agent token (a string) or {token}");
            }
            agentToken = token;
            return token;
          })
          .finally(() => { tokenPromise = null; });
      }
      return tokenPromise;
    }

    function send(msg) {
      if (!socket || socket.readyState !== 1) return false;
      socket.send(JSON.stringify(msg));
      return true;
    }

    // --- events from paybridge ---

    function handleEvent(msg) {
      const data = msg.data || {};
      if (msg.type === "ready") {
        onReady(data);
      } else if (msg.type === "session.handoff") {
        onHandoff(data);
      } else if (msg.type === "session.restarting") {
        const s = data.session || {};
        const reason = RESTART_REASONS[data.reason] || data.reason || "paybridge restarts it";
        note("restarting", "Starting a new payment page: " + reason, {session: s.id, attempt: s.attempt, reason: data.reason});
        if (current && current.sessionId === s.id) setPanelMessage("Starting a new payment page (" + reason + ")…");
        emit("restarting", data);
      } else if (TERMINAL[msg.type]) {
        onTerminal(TERMINAL[msg.type], msg.sessionId, data);
      } else if (msg.type === "error") {
        onError(msg.sessionId, data);
      }
    }

    function onError(sessionId, data) {
      note("error", (data.code ? data.code + ": " : "") + (data.error || "error"), {session: sessionId, code: data.code});
      const mine = current && !current.outcome && (sessionId === current.sessionId ||
        (!sessionId && Date.now() - restartAskedAt < 2000));
      if (mine) {
        if (data.code === "rate_limit_exceeded") {
          // The agent pressed "Start a new one" right after a new page was started: say so kindly.
          setPanelMessage("A new payment page was started a moment ago. Give it a few seconds to appear, then ask again if it still does not show.");
        } else {
          setPanelMessage("paybridge could not do that: " + (data.error || data.code) + (data.fix ? " " + data.fix : ""));
        }
      }
      emit("error", Object.assign({sessionId: sessionId}, data));
    }

    function onReady(data) {
      failures = 0;
      const sessions = Array.isArray(data.sessions) ? data.sessions : [];
      setStatus("connected", {agentId: data.agentId, mode: data.mode});
      note("ready", "Connected as " + data.agentId + " (" + plural(sessions.length, "open payment") + ")");
      emit("ready", {
        merchantId: data.merchantId, mode: data.mode, agentId: data.agentId,
        agentTokenExpiresAt: data.agentTokenExpiresAt,
        sessions: sessions.map((e) => ({session: e.session, handoff: e.handoff ? publicHandoff(e.handoff) : undefined})),
      });
      // The snapshot is oldest first: show the most recent open session's current handoff.
      let latest = null;
      for (const e of sessions) {
        if (e.handoff && e.session && !ended.has(e.session.id)) {
          latest = e;
          views.set(e.session.id, e.session);
        }
      }
      if (latest) {
        // A snapshot's tokens may have been posted before (this page before a reconnect, or before
        // a reload): showHandoff asks paybridge before posting them.
        showHandoff(latest.handoff, latest.session, false);
      } else if (current && !current.outcome) {
        clearFrame();
        current = null;
        showEmpty("The payment that was shown is no longer open.");
      }
    }

    // onHandoff takes a session.handoff event: paybridge sent it just now, for a new attempt or as
    // the answer to a session.refresh.
    function onHandoff(data) {
      if (!accepts(data)) return;
      if (data.session) views.set(data.sessionId, data.session);
      if ((data.attempt | 0) > (highest.get(data.sessionId) || 0)) {
        note("handoff", "Payment page for attempt " + data.attempt + " handed over", {session: data.sessionId, attempt: data.attempt});
        emit("handoff", publicHandoff(data));
      }
      if (inBackground(data)) {
        // A new page for a payment the agent switched away from (paybridge renewed it): it does
        // not take the panel from the open payment the agent is on; show() brings it up, asking
        // paybridge first as for any page not posted yet.
        highest.set(data.sessionId, data.attempt | 0);
        return;
      }
      showHandoff(data, data.session, true);
    }

    // inBackground reports whether h is a new attempt of a payment this page already knows but is
    // not showing, while another open payment is on screen and h was not asked for (show()).
    function inBackground(h) {
      return !!current && !current.outcome && current.sessionId !== h.sessionId &&
        highest.has(h.sessionId) && !asked.has(h.sessionId);
    }

    // accepts reports whether a handoff is new: not for an ended session, nor an older attempt.
    function accepts(h) {
      if (!h || !h.sessionId || !h.iframeUrl || ended.has(h.sessionId)) return false;
      return (h.attempt | 0) >= (highest.get(h.sessionId) || 0);
    }

    // showHandoff shows h's attempt. fresh: h is a session.handoff paybridge just sent; otherwise
    // it comes from a ready snapshot. Tokens that may have been posted before are posted only
    // once paybridge has answered a session.refresh for them.
    function showHandoff(h, session, fresh) {
      if (!accepts(h)) return;
      const attempt = h.attempt | 0;
      highest.set(h.sessionId, attempt);
      const shown = current && current.sessionId === h.sessionId && current.attempt === attempt;
      if (shown && current.frame) {
        // Already on screen. A refusal reported while the socket was down may have been lost:
        // report it again; paybridge ignores it if it already acted.
        if (current.frame.state === "refused") {
          send({type: "frame.refused", sessionId: h.sessionId, attempt: attempt});
        }
        return;
      }
      if (!webURL(h.iframeUrl)) {
        refuseHandoff(h, session || {});
        return;
      }
      const answer = fresh && asked.has(h.sessionId) && attempt >= asked.get(h.sessionId);
      if (!answer && (!fresh || posted.has(postKey(h.sessionId, attempt)) || pastExpiry(h))) {
        askFirst(h, session || {});
        return;
      }
      if (shown && current.checking && !answer) return; // still waiting for paybridge's answer
      asked.delete(h.sessionId);
      clearTimeout(refreshTimer);
      renderFrame(h, session || {});
    }

    // askFirst shows the payment without a frame and asks paybridge whether h's attempt may still
    // be shown: it answers with a session.handoff for the current attempt (renewed first if it
    // was older than the provider lifetime), which showHandoff then posts.
    function askFirst(h, session) {
      const attempt = h.attempt | 0;
      const again = current && current.sessionId === h.sessionId && current.attempt === attempt && current.checking;
      if (!again) {
        clearFrame();
        current = {sessionId: h.sessionId, attempt: attempt, session: session, frame: null, outcome: null, checking: true};
        showPayment(session, attempt);
        ui.panel.dataset.frame = "checking";
        setPanelMessage("Checking with paybridge that the payment page is still valid…");
      }
      asked.set(h.sessionId, attempt);
      // Not connected: the next ready snapshot asks again.
      if (send({type: "session.refresh", sessionId: h.sessionId, attempt: attempt})) {
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(() => {
          if (current && current.checking && current.sessionId === h.sessionId) {
            setPanelMessage("paybridge has not confirmed the payment page yet. If it does not appear, start a new one.");
          }
        }, REFRESH_ANSWER_MS);
      }
    }

    // pastExpiry reports whether h's provider session should be over by this browser's clock.
    function pastExpiry(h) {
      const t = h.expiresAt ? Date.parse(h.expiresAt) : NaN;
      return !isNaN(t) && Date.now() >= t;
    }

    // refreshShown asks paybridge about the attempt on screen (the tab came back to the
    // foreground): one older than the provider lifetime is renewed, and the new one handed over.
    function refreshShown() {
      const frame = current && !current.outcome && current.frame;
      if (!frame || Date.now() - visibleRefreshAt < VISIBLE_REFRESH_MIN_MS) return;
      visibleRefreshAt = Date.now();
      send({type: "session.refresh", sessionId: frame.sessionId, attempt: frame.attempt});
    }

    function onVisibilityChange() {
      if (global.document.visibilityState === "visible") refreshShown();
    }

    function onPageShow(ev) {
      if (ev.persisted) refreshShown(); // restored from the back/forward cache
    }

    // refuseHandoff shows an error instead of posting the tokens to an address that is not a web
    // page (javascript:, data:, ...). No provider page was tried, so this is no refused frame.
    function refuseHandoff(h, session) {
      const attempt = h.attempt | 0;
      if (current && current.sessionId === h.sessionId && current.attempt === attempt && current.badURL) return;
      clearFrame();
      current = {sessionId: h.sessionId, attempt: attempt, session: session, frame: null, outcome: null, badURL: true};
      showPayment(session, attempt);
      const error = "paybridge handed over a payment page address that is not an http(s) URL; it was not opened.";
      setPanelMessage(error);
      note("error", error, {session: h.sessionId, attempt: attempt});
      emit("error", {sessionId: h.sessionId, attempt: attempt, code: "handoff_url_refused", error: error,
        fix: "Ask for a new payment page; if it persists, contact paybridge's operator."});
    }

    function onTerminal(name, sessionId, data) {
      const s = data.session || {};
      const id = s.id || sessionId;
      ended.add(id);
      asked.delete(id);
      views.delete(id);
      let text;
      if (name === "succeeded") {
        text = "Payment taken: " + money(s.amount, s.currency) + (s.result && s.result.transactionId ? " (transaction " + s.result.transactionId + ")" : "");
      } else if (name === "failed") {
        text = failureText(data, s);
      } else if (name === "expired") {
        text = "The payment session expired before the customer paid.";
      } else {
        text = "The payment was cancelled.";
      }
      note(name, text, {session: id});
      if (current && current.sessionId === id) {
        clearFrame();
        current.outcome = name;
        showOutcome(name, text);
      }
      emit(name, data);
    }

    // --- the frame ---

    function renderFrame(h, session) {
      clearFrame();
      const attempt = h.attempt | 0;
      current = {sessionId: h.sessionId, attempt: attempt, session: session, frame: null, outcome: null};
      const name = "paybridge-frame-" + (++frameSeq);
      const iframe = document.createElement("iframe");
      iframe.name = name;
      iframe.className = "pb-frame";
      iframe.title = "Secure card capture";
      iframe.dataset.sessionId = h.sessionId;
      iframe.dataset.attempt = String(attempt);
      // PCI Pal's documented embedding: a hidden form POSTs the two tokens into the named iframe.
      const form = document.createElement("form");
      form.method = "post";
      form.action = h.iframeUrl;
      form.target = name;
      form.hidden = true;
      form.autocomplete = "off";
      form.className = "pb-handoff";
      const fields = h.formFields || {};
      for (const key of Object.keys(fields)) {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = key;
        input.value = fields[key];
        form.appendChild(input);
      }
      const announcement = opts.frameCheck === "auto" ? announcementOf(h) : null;
      const frame = {
        sessionId: h.sessionId, attempt: attempt, iframe: iframe, form: form, state: "pending",
        origin: originOf(h.iframeUrl), announcement: announcement, timer: null, loadedAt: 0, reports: 0,
      };
      current.frame = frame;
      showPayment(session, attempt);
      ui.frameBox.replaceChildren(iframe, form);
      ui.panel.dataset.frame = "pending";
      iframe.addEventListener("load", () => onFrameLoad(frame));
      posted.add(postKey(h.sessionId, attempt));
      HTMLFormElement.prototype.submit.call(form);
      if (announcement) {
        frame.timer = setTimeout(() => refuse(frame, "no_announcement"), opts.frameTimeoutMs);
      }
    }

    function onFrameLoad(frame) {
      if (frame.state !== "pending") return;
      let href = null;
      try {
        href = frame.iframe.contentWindow.location.href;
      } catch (err) {
        // Cross-origin: a real document loaded, the provider's page or the browser's error page.
      }
      if (href === "about:blank") return; // the iframe's initial empty document
      // With an announcement to wait for, a load says nothing: a refused frame loads too. (The
      // provider's login takes two navigations, so there may be two loads before it.)
      if (frame.announcement) return;
      frame.loadedAt = Date.now();
      loaded(frame, false);
    }

    function onMessage(event) {
      const frame = current && current.frame;
      if (!frame || frame.state !== "pending" || !frame.announcement) return;
      if (event.source !== frame.iframe.contentWindow || event.origin !== frame.announcement.origin) return;
      if (!announces(frame.announcement.data, event.data)) return;
      loaded(frame, true);
    }

    // onReports takes Chromium's CSP violation reports: a frame-ancestors violation from the
    // iframe URL's origin while the frame loads is the browser refusing it. (Reports name only
    // the origin, and an X-Frame-Options refusal makes none.)
    function onReports(list) {
      const frame = current && current.frame;
      if (!frame || opts.frameCheck !== "auto") return;
      const loading = frame.state === "pending" || (frame.state === "loaded" && Date.now() - frame.loadedAt < REPORT_GRACE_MS);
      if (!loading) return;
      for (const r of list) {
        const b = r && r.body;
        if (!b || String(b.effectiveDirective || "").indexOf("frame-ancestors") !== 0) continue;
        if (originOf(b.blockedURL || b.documentURL || r.url) === frame.origin) {
          refuse(frame, "csp_frame_ancestors");
          return;
        }
      }
    }

    function loaded(frame, announced) {
      settle(frame, "loaded");
      send({type: "frame.loaded", sessionId: frame.sessionId, attempt: frame.attempt});
      note("frame.loaded", "Payment page loaded (attempt " + frame.attempt + "): the customer keys the card on the phone",
        {session: frame.sessionId, attempt: frame.attempt, announced: announced});
      setPanelMessage("");
      emit("frame.loaded", {sessionId: frame.sessionId, attempt: frame.attempt, announced: announced});
    }

    function refuse(frame, why) {
      if ((frame.state !== "pending" && frame.state !== "loaded") || !current || current.frame !== frame) return;
      settle(frame, "refused");
      reportRefused(frame);
      note("frame.refused", "The payment page was refused (attempt " + frame.attempt + "); paybridge starts a new one", {session: frame.sessionId, attempt: frame.attempt, reason: why});
      setPanelMessage("The payment page was refused (the provider session has probably expired). paybridge is starting a new one…");
      emit("frame.refused", {sessionId: frame.sessionId, attempt: frame.attempt, reason: why});
    }

    // reportRefused tells paybridge, and again a little later while no new attempt has come:
    // paybridge ignores a report about an attempt younger than 5 s, and a report sent while the
    // socket was down is lost.
    function reportRefused(frame) {
      send({type: "frame.refused", sessionId: frame.sessionId, attempt: frame.attempt});
      if (frame.reports++ < REREPORT_MAX) {
        frame.timer = setTimeout(() => {
          if (frame.state === "refused" && current && current.frame === frame) reportRefused(frame);
        }, REREPORT_MS);
      }
    }

    // settle ends a frame's wait; the form and its tokens leave the page.
    function settle(frame, state) {
      frame.state = state;
      clearTimeout(frame.timer);
      frame.form.remove();
      ui.panel.dataset.frame = state;
    }

    function clearFrame() {
      clearTimeout(refreshTimer);
      const frame = current && current.frame;
      if (!frame) return;
      clearTimeout(frame.timer);
      frame.state = "gone";
      frame.form.remove();
      frame.iframe.remove();
      current.frame = null;
      ui.panel.dataset.frame = "none";
    }

    // --- rendering ---

    function setStatus(state, extra) {
      status = state;
      ui.root.dataset.state = state;
      let text;
      if (state === "connected") {
        text = "Connected" + (extra.agentId || opts.agentId ? " as agent " + (extra.agentId || opts.agentId) : "") + (extra.mode === "test" ? " (test mode)" : "");
      } else if (state === "reconnecting") {
        text = extra.inMs ? "Disconnected (" + extra.reason + "); reconnecting in " + Math.ceil(extra.inMs / 1000) + " s…" : "Reconnecting…";
      } else if (state === "closed") {
        text = "Disconnected" + (extra.reason ? ": " + extra.reason : "");
      } else {
        text = "Connecting to paybridge…";
      }
      ui.statusText.textContent = text;
      emit("status", Object.assign({state: state}, extra));
    }

    function showPayment(session, attempt) {
      ui.empty.hidden = true;
      ui.outcome.hidden = true;
      ui.outcome.removeAttribute("data-outcome");
      ui.summary.hidden = false;
      const parts = [];
      if (session.amount != null && session.currency) parts.push(money(session.amount, session.currency));
      if (session.reference) parts.push(session.reference);
      parts.push("attempt " + attempt);
      ui.summary.textContent = parts.join(" · ");
      ui.help.hidden = false; // "Start a new one" stays available while the payment is open
      setPanelMessage("Loading the secure payment page…");
    }

    function showOutcome(name, text) {
      ui.summary.hidden = false;
      ui.help.hidden = true;
      setPanelMessage("");
      ui.outcome.hidden = false;
      ui.outcome.dataset.outcome = name;
      ui.outcome.textContent = text;
    }

    function showEmpty(text) {
      ui.summary.hidden = true;
      ui.help.hidden = true;
      ui.outcome.hidden = true;
      ui.outcome.removeAttribute("data-outcome");
      setPanelMessage("");
      ui.empty.textContent = text;
      ui.empty.hidden = false;
    }

    function setPanelMessage(text) {
      ui.message.textContent = text;
      ui.message.hidden = text === "";
    }

    function note(type, text, attrs) {
      const li = document.createElement("li");
      li.dataset.type = type;
      if (attrs) {
        for (const key of Object.keys(attrs)) {
          if (attrs[key] != null) li.dataset[key] = String(attrs[key]);
        }
      }
      const now = new Date();
      const time = document.createElement("time");
      time.dateTime = now.toISOString();
      time.textContent = now.toLocaleTimeString([], {hour12: false});
      const label = document.createElement("span");
      label.textContent = text;
      li.append(time, " ", label);
      ui.timeline.prepend(li);
      while (ui.timeline.children.length > TIMELINE_MAX) ui.timeline.lastElementChild.remove();
    }

    // --- the API ---

    async function takePayment(params) {
      if (closed) throw new Error("PayBridge: the widget is closed");
      if (!params || typeof params !== "object") {
        throw new TypeError("PayBridge: takePayment needs {amount, currency, ...}");
      }
      const body = JSON.stringify(params);
      for (let tries = 0; ; tries++) {
        const token = await ensureToken();
        const resp = await fetch(apiBase + "/v1/sessions", {
          method: "POST",
          mode: "cors",
          credentials: "omit",
          cache: "no-store",
          headers: {
            "Authorization": "Bearer " + opts.publishableKey,
            "X-Agent-Token": token,
            "Content-Type": "application/json",
            "Idempotency-Key": idempotencyKey(),
          },
          body: body,
        });
        let data = null;
        try {
          data = await resp.json();
        } catch (err) {
          data = null;
        }
        if (resp.ok) return data;
        const err = new APIError(resp.status, data, resp.headers.get("X-Request-Id"));
        // An expired agent token: ask the host for a fresh one and try once more. The rejected
        // request created nothing, so a new Idempotency-Key is right.
        if (resp.status === 401 && tries === 0) {
          if (agentToken === token) agentToken = null;
          continue;
        }
        throw err;
      }
    }

    function restart(sessionId) {
      if (typeof sessionId !== "string" || sessionId === "") {
        throw new TypeError("PayBridge: restart needs a session id");
      }
      const msg = {type: "session.restart", sessionId: sessionId};
      if (current && current.sessionId === sessionId) msg.attempt = current.attempt;
      if (!send(msg)) {
        throw new Error("PayBridge: not connected to paybridge; try again once the status is connected");
      }
    }

    // show puts an open session of this agent in the panel. Its tokens may have been posted
    // before, so it goes the way of a reload: paybridge is asked first (session.refresh) and
    // answers with the current attempt's handoff, renewed if past the provider lifetime.
    function show(sessionId) {
      if (typeof sessionId !== "string" || sessionId === "") {
        throw new TypeError("PayBridge: show needs a session id");
      }
      const view = views.get(sessionId);
      if (!view || ended.has(sessionId)) {
        throw new Error("PayBridge: " + sessionId + " is not an open payment of this agent");
      }
      if (current && current.sessionId === sessionId && !current.outcome) return;
      if (!socket || socket.readyState !== 1) {
        throw new Error("PayBridge: not connected to paybridge; try again once the status is connected");
      }
      askFirst({sessionId: sessionId, attempt: Math.max(highest.get(sessionId) || 0, view.attempt | 0)}, view);
    }

    function close() {
      if (closed) return;
      closed = true;
      clearTimeout(reconnectTimer);
      reconnectTimer = null;
      clearFrame();
      global.removeEventListener("message", onMessage);
      global.removeEventListener("online", onOnline);
      global.removeEventListener("pageshow", onPageShow);
      if (global.document) global.document.removeEventListener("visibilitychange", onVisibilityChange);
      if (reports) reports.disconnect();
      if (socket) {
        const ws = socket;
        socket = null;
        ws.close(1000, "closed by the page");
      }
      agentToken = null;
      setStatus("closed", {reason: "closed by the page"});
      listeners.clear();
    }

    return Object.freeze({
      on: on,
      off: off,
      takePayment: takePayment,
      restart: restart,
      show: show,
      close: close,
      get state() {
        return {
          status: status,
          sessionId: current ? current.sessionId : null,
          attempt: current ? current.attempt : null,
          frame: current && current.frame ? current.frame.state : "none",
        };
      },
    });
  }

  // failureText says why a payment failed in the agent's words: a decline is a sentence, not the
  // gateway's decision code (that stays on the session's result, for the back office).
  function failureText(data, s) {
    const code = data.code || (s.failure && s.failure.code);
    if (code === "provider_charge_failed") {
      if (s.result && s.result.decision === "REJECT") {
        return "The card was declined. Ask the customer for another card (or to call their bank), then take the payment again.";
      }
      return "The card could not be charged: the payment provider reported an error. Take the payment again; if it fails again, try another card.";
    }
    return "Payment failed: " + (data.error || (s.failure && s.failure.error) || "the provider did not take it") + (data.fix ? " " + data.fix : "");
  }

  function checkOptions(o) {
    if (!o || typeof o !== "object") throw new TypeError("PayBridge.mount: options are required");
    if (typeof o.baseUrl !== "string" || !/^https?:\/\//.test(o.baseUrl)) {
      throw new TypeError("PayBridge.mount: options.baseUrl must be paybridge's http(s) URL");
    }
    if (typeof o.publishableKey !== "string" || !o.publishableKey.startsWith("vp_pk_")) {
      throw new TypeError("PayBridge.mount: options.publishableKey must be a vp_pk_ key (never a secret key in a browser)");
    }
    if (typeof o.getAgentToken !== "function") {
      throw new TypeError("PayBridge.mount: options.getAgentToken must be a function returning the agent token");
    }
    const timeout = o.frameTimeoutMs == null ? DEFAULT_FRAME_TIMEOUT_MS : Number(o.frameTimeoutMs);
    if (!(timeout > 0)) throw new TypeError("PayBridge.mount: options.frameTimeoutMs must be a positive number");
    let frameCheck = o.frameCheck == null ? "auto" : o.frameCheck;
    if (frameCheck === "announcement") frameCheck = "auto"; // its former name
    if (frameCheck !== "auto" && frameCheck !== "none") {
      throw new TypeError('PayBridge.mount: options.frameCheck must be "auto" or "none"');
    }
    return {
      baseUrl: o.baseUrl, publishableKey: o.publishableKey, getAgentToken: o.getAgentToken,
      agentId: typeof o.agentId === "string" ? o.agentId : "", frameTimeoutMs: timeout, frameCheck: frameCheck,
    };
  }

  // socketURL is ws(s)://<host>/v1/ws?key=<publishable key>: the agent token goes in the first
  // message, never in the URL.
  function socketURL(apiBase, publishableKey) {
    const u = new URL(apiBase + "/v1/ws");
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("key", publishableKey);
    return u.toString();
  }

  function render(root) {
    root.classList.add("pb-widget");
    root.replaceChildren();
    const status = el("div", "pb-status");
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    const statusText = el("span", "pb-status-text");
    status.append(el("span", "pb-dot"), statusText);

    const panel = el("section", "pb-panel");
    panel.setAttribute("aria-label", "Payment");
    panel.dataset.frame = "none";
    const summary = el("div", "pb-summary");
    summary.hidden = true;
    const message = el("p", "pb-message");
    message.setAttribute("role", "status");
    message.hidden = true;
    const empty = el("p", "pb-empty");
    empty.textContent = "No payment in progress.";
    const outcome = el("div", "pb-outcome");
    outcome.setAttribute("role", "alert");
    outcome.hidden = true;
    // The agent's own way out when the page stays blank or shows an error: the browser cannot
    // always tell (see frameCheck), the agent can.
    const help = el("p", "pb-help");
    help.hidden = true;
    const retry = el("button", "pb-retry");
    retry.type = "button";
    retry.textContent = "Start a new one";
    help.append(el("span", "pb-help-text"), " ", retry);
    help.firstChild.textContent = "Payment page not showing?";
    const frameBox = el("div", "pb-frame-box");
    panel.append(summary, message, help, empty, outcome, frameBox);

    const events = el("section", "pb-events");
    events.setAttribute("aria-label", "Payment events");
    const title = el("h3", "pb-events-title");
    title.textContent = "Events";
    const timeline = el("ol", "pb-timeline");
    events.append(title, timeline);

    root.append(status, panel, events);
    return {root, statusText, panel, summary, message, help, retry, empty, outcome, frameBox, timeline};
  }

  function el(tag, className) {
    const e = document.createElement(tag);
    e.className = className;
    return e;
  }

  // publicHandoff is a handoff without its provider tokens, for the host page.
  function publicHandoff(h) {
    const out = Object.assign({}, h);
    delete out.formFields;
    return out;
  }

  // webURL reports whether u is an absolute http: or https: URL, the only kind a form may post to.
  function webURL(u) {
    try {
      const protocol = new URL(u).protocol;
      return protocol === "https:" || protocol === "http:";
    } catch (err) {
      return false;
    }
  }

  function originOf(u) {
    try {
      return new URL(u).origin;
    } catch (err) {
      return "";
    }
  }

  function postKey(sessionId, attempt) {
    return sessionId + "#" + attempt;
  }

  // announcementOf returns the handoff's {origin, data} announcement when it is usable, else null.
  function announcementOf(h) {
    const a = h.announcement;
    if (!a || typeof a !== "object" || typeof a.origin !== "string" || a.origin === "") return null;
    if (!a.data || typeof a.data !== "object") return null;
    return {origin: a.origin, data: a.data};
  }

  // announces reports whether a message's data holds every key of want with an equal value
  // (nested values compared deeply, extra keys allowed). A PostMessage step may post its data as
  // a JSON string: that is parsed first.
  function announces(want, got) {
    if (typeof got === "string") {
      try {
        got = JSON.parse(got);
      } catch (err) {
        return false;
      }
    }
    if (!got || typeof got !== "object" || Array.isArray(got)) return false;
    for (const key of Object.keys(want)) {
      if (!Object.prototype.hasOwnProperty.call(got, key) || !deepEqual(want[key], got[key])) return false;
    }
    return true;
  }

  // deepEqual compares JSON values: objects by their keys, arrays by their items in order.
  function deepEqual(a, b) {
    if (a === b) return true;
    if (!a || !b || typeof a !== "object" || typeof b !== "object" || Array.isArray(a) !== Array.isArray(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    for (const k of ka) {
      if (!Object.prototype.hasOwnProperty.call(b, k) || !deepEqual(a[k], b[k])) return false;
    }
    return true;
  }

  // observeReports passes the page's CSP violation reports to fn, where the browser has a
  // ReportingObserver (Chromium); it returns the observer to disconnect, or null.
  function observeReports(fn) {
    if (typeof global.ReportingObserver !== "function") return null;
    try {
      const o = new global.ReportingObserver((list) => fn(list), {types: ["csp-violation"], buffered: false});
      o.observe();
      return o;
    } catch (err) {
      return null;
    }
  }

  function money(minor, currency) {
    if (typeof minor !== "number" || !currency) return "";
    try {
      const f = new Intl.NumberFormat(undefined, {style: "currency", currency: currency});
      const digits = f.resolvedOptions().maximumFractionDigits;
      return f.format(minor / Math.pow(10, digits));
    } catch (err) {
      return minor + " " + currency + " (minor units)";
    }
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function idempotencyKey() {
    const c = global.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    const b = c.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  global.PayBridge = Object.freeze({mount: mount, APIError: APIError});
})(window);
