/*
 * paybridge.d.ts: TypeScript declarations of the paybridge agent widget, served beside it at
 * /static/paybridge.d.ts. They describe the global PayBridge that /static/paybridge.js defines
 * (a plain script, not a module): reference this file from a host page written in TypeScript,
 *
 *   /// <reference path="./paybridge.d.ts" />
 *   const widget = PayBridge.mount(document.getElementById("payment")!, {...});
 *
 * or list it in tsconfig.json's "files". The wire shapes follow paybridge's /openapi.json
 * (components ReadyData, HandoffEventData, SessionRestartingData, SessionFailedData,
 * ErrorEventData, Session, CreateSessionRequest). paybridge's CI checks this file with
 * tsc --strict against an example host page, and that its option and event names are the
 * widget's.
 */

declare namespace PayBridge {
  /**
   * Renders the widget into element (a status line, the payment panel with the iframe, a compact
   * timeline of events) and connects to paybridge. Throws a TypeError for a missing element or
   * an invalid option.
   */
  function mount(element: Element, options: MountOptions): Widget;

  /** What getAgentToken may return: the agent token "vp_at_..." or an object holding it. */
  type AgentTokenResult = string | { token: string };

  /** The options of mount. */
  interface MountOptions {
    /** paybridge's http(s) URL, e.g. "https://pay.example.com". */
    baseUrl: string;
    /**
     * A publishable key, "vp_pk_...": the only credential that ever goes in a URL. A secret key
     * is refused (never put one in a browser).
     */
    publishableKey: string;
    /**
     * Returns (a promise of) the agent token your backend minted with its secret key
     * (POST /v1/agent_tokens). Asked on the first connect and again whenever paybridge rejects the
     * token; the widget keeps it only in memory.
     */
    getAgentToken: () => AgentTokenResult | PromiseLike<AgentTokenResult>;
    /** Optional: the agent token names the agent; this is only shown in the status line. */
    agentId?: string;
    /**
     * Default 6000: when a handoff carries an announcement, how long the provider page has after
     * the form POST to post it before the frame counts as refused. Must be positive.
     */
    frameTimeoutMs?: number;
    /**
     * How the widget tells a refused frame from a loaded one (a browser hides it: the iframe's
     * load event fires either way).
     * - "auto" (default): positive evidence only. With the handoff's announcement (the merchant's
     *   PCI Pal flow posts one), the frame is loaded when a matching message comes from the
     *   iframe and refused when none comes within frameTimeoutMs; without one, loaded when a
     *   document loads in it, refused only on Chromium's CSP frame-ancestors report.
     * - "none": never reports a refusal.
     * - "announcement": the former name of "auto", kept for old host pages.
     */
    frameCheck?: "auto" | "none" | "announcement";
  }

  /** A mounted widget. */
  interface Widget {
    /**
     * Runs fn(data) for every event of that type until the returned function is called. Throws a
     * TypeError for an unknown type.
     */
    on<K extends keyof WidgetEventMap>(type: K, fn: (data: WidgetEventMap[K]) => void): () => void;
    /** Removes a handler added with on. */
    off<K extends keyof WidgetEventMap>(type: K, fn: (data: WidgetEventMap[K]) => void): void;
    /**
     * Creates a session (POST /v1/sessions with the publishable key, the agent token and a fresh
     * Idempotency-Key) for the agent; paybridge hands its payment page to this widget. Rejects with
     * an APIError when paybridge answers with an error.
     */
    takePayment(params: PaymentParams): Promise<Session>;
    /**
     * Asks paybridge for a new attempt (a new payment page) of sessionId. Throws when not
     * connected; an attempt younger than 5 s is not restarted (an "error" event with code
     * rate_limit_exceeded follows).
     */
    restart(sessionId: string): void;
    /**
     * Puts another open payment of the agent (one seen in "ready" or "handoff") in the panel. Its
     * current attempt is asked of paybridge first, as after a reload. A new attempt of a payment
     * not on screen (renewed by paybridge) fires "handoff" but leaves the panel alone while
     * another open payment is shown. Throws when not connected,
     * or when sessionId is not an open payment of this agent.
     */
    show(sessionId: string): void;
    /** Disconnects for good and clears the panel; every handler is removed. */
    close(): void;
    /** What the widget shows now (a fresh copy on each read). */
    readonly state: WidgetState;
  }

  /** The events of Widget.on and the data each handler gets. */
  interface WidgetEventMap {
    /** The socket is authenticated: who the agent is and its open sessions. */
    ready: ReadyData;
    /** A new attempt's payment page was handed over (once per attempt; no provider tokens). */
    handoff: HandoffData;
    /** paybridge is starting a new provider session; a "handoff" with the next attempt follows. */
    restarting: RestartingData;
    /** The payment was taken and verified. */
    succeeded: SessionEventData;
    /** The payment failed: declined, unverifiable, or restarts exhausted. */
    failed: FailedData;
    /** The session reached its TTL before the customer paid. */
    expired: SessionEventData;
    /** The session was cancelled. */
    cancelled: SessionEventData;
    /** Something failed: paybridge's error event, or the widget's own (agent token, protocol, handoff URL). */
    error: ErrorData;
    /** The connection's state changed. */
    status: StatusData;
    /** The payment page loaded in the frame. */
    "frame.loaded": FrameLoadedData;
    /** The payment page was refused (the widget reports it to paybridge, which starts a new one). */
    "frame.refused": FrameRefusedData;
  }

  /** The names Widget.on accepts. */
  type WidgetEventType = keyof WidgetEventMap;

  /** What Widget.state returns. */
  interface WidgetState {
    /** The connection's state. */
    status: ConnectionState;
    /** The session on screen, or null. */
    sessionId: string | null;
    /** Its attempt on screen, or null. */
    attempt: number | null;
    /**
     * The frame: "none" (no frame, e.g. while the widget asks paybridge before posting tokens),
     * "pending" (posted, not settled), "loaded" or "refused". "checking" is the panel's
     * data-frame attribute while asking paybridge, listed here as the widget's docs name it.
     */
    frame: "none" | "checking" | "pending" | "loaded" | "refused";
  }

  /** The state of the widget's connection to paybridge. */
  type ConnectionState = "connecting" | "connected" | "reconnecting" | "closed";

  /** The data of "status": the new state and what goes with it. */
  type StatusData =
    | { state: "connecting" }
    | { state: "connected"; agentId: string; mode: Mode }
    /** inMs, code and reason are there when a reconnect is scheduled. */
    | { state: "reconnecting"; inMs?: number; code?: number; reason?: string }
    | { state: "closed"; code?: number; reason: string };

  /** A session's mode: test keys make test sessions. */
  type Mode = "test" | "live";

  /** The data of "ready". */
  interface ReadyData {
    merchantId: string;
    mode: Mode;
    agentId: string;
    /** When paybridge will close the socket (4401): mint a fresh token before. ISO 8601. */
    agentTokenExpiresAt: string;
    /** The agent's open sessions, oldest first, each with its current handoff when it has one. */
    sessions: Array<{ session: Session; handoff?: Handoff }>;
  }

  /** One attempt's payment page, without the provider tokens (they never reach the host page). */
  interface Handoff {
    sessionId: string;
    /** 1 after create, one more per restart; only grows. */
    attempt: number;
    /** The payment page the widget posts into its iframe. */
    iframeUrl?: string;
    /** The customer's payment link (digital channel). */
    customerUrl?: string;
    /** When this provider session is expected to end. ISO 8601. */
    expiresAt: string;
    /** What the provider page posts once loaded, when the merchant's PCI Pal flow is set up to. */
    announcement?: { origin: string; data: Record<string, unknown> };
  }

  /** The data of "handoff": a Handoff and its session. */
  interface HandoffData extends Handoff {
    session: Session;
  }

  /** Why paybridge starts a new provider session. */
  type RestartReason = "frame_refused" | "provider_expired" | "lifetime_elapsed" | "restart_requested";

  /** The data of "restarting". */
  interface RestartingData {
    session: Session;
    reason: RestartReason;
  }

  /** The data of "succeeded", "expired" and "cancelled". */
  interface SessionEventData {
    session: Session;
  }

  /** The data of "failed": the session and why, in the error vocabulary. */
  interface FailedData {
    session: Session;
    code: ErrorCode;
    error: string;
    fix: string;
  }

  /**
   * The data of "error". sessionId is the session it concerns, when one does; session is there
   * when a restart failed; docs when paybridge answered one of this socket's messages.
   */
  interface ErrorData {
    code: ErrorCode | WidgetErrorCode;
    error: string;
    fix: string;
    sessionId?: string;
    attempt?: number;
    docs?: string;
    session?: Session;
  }

  /**
   * Errors the widget reports itself: getAgentToken failed, paybridge closed the socket for a
   * protocol error (reload the page), a handoff URL that is not http(s) (not opened).
   */
  type WidgetErrorCode = "agent_token_unavailable" | "protocol_error" | "handoff_url_refused";

  /** The data of "frame.loaded". announced: the announcement came (else only a document loaded). */
  interface FrameLoadedData {
    sessionId: string;
    attempt: number;
    announced: boolean;
  }

  /** The data of "frame.refused". */
  interface FrameRefusedData {
    sessionId: string;
    attempt: number;
    reason: "no_announcement" | "csp_frame_ancestors";
  }

  /** One of the 27 public error codes (see /docs/error-codes). */
  type ErrorCode =
    | "auth_missing_bearer"
    | "auth_invalid_key"
    | "auth_key_expired"
    | "auth_key_type_forbidden"
    | "auth_merchant_inactive"
    | "merchant_not_onboarded"
    | "auth_service_unavailable"
    | "session_not_found"
    | "session_expired"
    | "session_wrong_state"
    | "session_integrity_error"
    | "validation_error"
    | "validation_missing_field"
    | "validation_invalid_amount"
    | "merchant_not_configured"
    | "rate_limit_exceeded"
    | "rate_limit_exceeded_per_key"
    | "provider_unavailable"
    | "provider_attestation_failed"
    | "provider_charge_failed"
    | "internal_error"
    | "webhook_missing_signature"
    | "webhook_invalid_signature"
    | "webhook_not_configured"
    | "origin_forbidden"
    | "transaction_verification_failed"
    | "unsupported_media_type";

  /** Where a session is; succeeded, failed, expired and cancelled are final. */
  type SessionStatus = "pending" | "active" | "succeeded" | "failed" | "expired" | "cancelled";

  /** agent_assist: the customer keys the card on the phone; digital: through a link. */
  type Channel = "agent_assist" | "digital";

  /** A payment session as paybridge's API returns it. It never holds provider tokens or card data. */
  interface Session {
    id: string;
    object: "session";
    status: SessionStatus;
    livemode: boolean;
    agentId: string;
    /** Minor units of the currency: 1240 GBP is £12.40. */
    amount: number;
    /** ISO 4217, upper case. */
    currency: string;
    country?: string;
    channel: Channel;
    accountConfigurationId?: number;
    reference?: string;
    /** How many provider sessions were started. */
    attempt: number;
    createdAt: string;
    updatedAt: string;
    expiresAt: string;
    metadata: Record<string, string>;
    result?: SessionResult;
    failure?: { code: ErrorCode; error: string };
    vcc?: { sessionGuid: string; providerSessionGuid?: string };
  }

  /** The outcome VCC reported, read through the merchant's gateway profile. */
  interface SessionResult {
    decision: "ACCEPT" | "REJECT" | "ERROR" | "UNKNOWN";
    gatewayStatus?: string;
    reasonCode?: string;
    transactionId?: string;
    /** Paid after the session was cancelled, expired or failed here. */
    late?: boolean;
    /** Only with UNKNOWN: VCC's result data, values shaped like a card number removed. */
    data?: Record<string, string>;
  }

  /** The body of takePayment: POST /v1/sessions' CreateSessionRequest. */
  interface PaymentParams {
    /** Minor units (1240 = £12.40), a positive integer. */
    amount: number;
    /** ISO 4217 code (case-insensitive). */
    currency: string;
    /** Comes from the agent token: omit it, or send the same value. */
    agentId?: string;
    /** ISO 3166-1 alpha-2. */
    country?: string;
    /** Default agent_assist. */
    channel?: Channel;
    accountConfigurationId?: number;
    /** Your reference, sent to VCC as MerchantReferenceCode. */
    reference?: string;
    customer?: Customer;
    successUrl?: string;
    cancelUrl?: string;
    lineItems?: LineItem[];
    metadata?: Record<string, string>;
    /** Session TTL in seconds, 300..3600 (default 1800). */
    expiresIn?: number;
  }

  /** Optional customer details passed on to the PCI provider (sealed at rest by paybridge). */
  interface Customer {
    firstName?: string;
    surname?: string;
    email?: string;
    phone?: string;
    street1?: string;
    city?: string;
    postcode?: string;
  }

  /** One line of what the customer pays for. */
  interface LineItem {
    name: string;
    quantity: number;
    /** Minor units. */
    unitAmount?: number;
  }

  /** What takePayment rejects with when paybridge answers with an error. */
  class APIError extends Error {
    constructor(status: number, body: unknown, requestId?: string | null);
    /** "PayBridgeAPIError". */
    name: string;
    /** The HTTP status. */
    status: number;
    /** The error code, or "http_<status>" when the body was not paybridge's error envelope. */
    code: ErrorCode | `http_${number}`;
    /** The message, as in message. */
    error: string;
    /** What to do about it ("" when not given). */
    fix: string;
    /** A link to the code's section of the error-codes page ("" when not given). */
    docs: string;
    /** The field at fault ("" when none). */
    param: string;
    /** The request's id (X-Request-Id), for support ("" when unknown). */
    requestId: string;
  }
}

interface Window {
  /** The paybridge widget, defined by /static/paybridge.js. */
  readonly PayBridge: typeof PayBridge;
}
