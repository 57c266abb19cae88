// An example agent-desktop host page in TypeScript: it mounts the widget with every option and
// handles every event, so `tsc --noEmit --strict` (scripts/test) proves web/static/paybridge.d.ts
// describes a usable API. The @ts-expect-error lines prove it is strict where it should be: tsc
// fails if any of them compiles.

async function mintAgentToken(): Promise<{ token: string }> {
  const resp = await fetch("/desk/agent-token", { method: "POST" });
  if (!resp.ok) throw new Error("the desk backend answered " + resp.status);
  return (await resp.json()) as { token: string };
}

const el = document.getElementById("payment");
if (!el) throw new Error("no #payment element");

const options: PayBridge.MountOptions = {
  baseUrl: "https://pay.example.com",
  publishableKey: "vp_pk_test_example",
  getAgentToken: mintAgentToken,
  agentId: "agent-42",
  frameTimeoutMs: 6000,
  frameCheck: "auto",
};
const widget: PayBridge.Widget = PayBridge.mount(el, options);

// getAgentToken may also return the token itself, synchronously or not.
window.PayBridge.mount(el, { ...options, getAgentToken: () => "vp_at_example", frameCheck: "none" });
PayBridge.mount(el, { ...options, getAgentToken: async () => "vp_at_example", frameCheck: "announcement" });

const log = (...parts: unknown[]): void => console.log("[desk]", ...parts);

const offReady = widget.on("ready", (d) => {
  log("agent", d.agentId, "of", d.merchantId, d.mode, "token until", new Date(d.agentTokenExpiresAt));
  for (const { session, handoff } of d.sessions) {
    log("open", session.id, session.status, handoff ? handoff.attempt : "no attempt yet");
    if (handoff?.announcement) log("waits for", handoff.announcement.origin, Object.keys(handoff.announcement.data));
  }
});
widget.on("handoff", (d) => log("attempt", d.attempt, "of", d.session.id, d.iframeUrl ?? d.customerUrl, "until", d.expiresAt));
widget.on("restarting", (d) => {
  const why: PayBridge.RestartReason = d.reason;
  log("restarting", d.session.id, why);
});
widget.on("succeeded", (d) => {
  const r = d.session.result;
  log("paid", d.session.id, d.session.amount, d.session.currency, r?.decision, r?.transactionId, r?.late === true ? "late" : "");
});
widget.on("failed", (d) => log("failed", d.session.id, d.code, d.error, d.fix, d.session.failure?.code));
widget.on("expired", (d) => log("expired", d.session.id, d.session.status));
widget.on("cancelled", (d) => log("cancelled", d.session.id));
widget.on("error", (d) => {
  if (d.code === "agent_token_unavailable") log("check the desk backend:", d.fix);
  else log("error", d.code, d.error, d.fix, d.sessionId, d.attempt, d.docs, d.session?.id);
});
widget.on("status", (d) => {
  switch (d.state) {
    case "connected":
      log("connected as", d.agentId, d.mode);
      break;
    case "reconnecting":
      log("reconnecting in", d.inMs, "ms after", d.code, d.reason);
      break;
    case "closed":
      log("closed:", d.reason, d.code);
      break;
    case "connecting":
      log("connecting");
      break;
  }
});
widget.on("frame.loaded", (d) => log("page loaded", d.sessionId, d.attempt, d.announced ? "announced" : "document loaded"));
const onRefused = (d: PayBridge.FrameRefusedData): void => log("page refused", d.sessionId, d.attempt, d.reason);
widget.on("frame.refused", onRefused);
widget.off("frame.refused", onRefused);
offReady();

async function takePayment(): Promise<void> {
  try {
    const session: PayBridge.Session = await widget.takePayment({
      amount: 1240,
      currency: "GBP",
      reference: "INV-1001",
      country: "GB",
      channel: "agent_assist",
      accountConfigurationId: 1,
      customer: { firstName: "Ada", surname: "Lovelace", postcode: "EC1A 1BB" },
      lineItems: [{ name: "Energy bill", quantity: 1, unitAmount: 1240 }],
      metadata: { crmCase: "CASE-20931" },
      expiresIn: 1800,
    });
    log("created", session.id, session.status, session.attempt, session.vcc?.sessionGuid);
  } catch (err) {
    if (err instanceof PayBridge.APIError) {
      log("paybridge said", err.status, err.code, err.error, err.fix, err.docs, err.param, err.requestId);
    } else {
      throw err;
    }
  }
}

const state: PayBridge.WidgetState = widget.state;
if (state.sessionId !== null && state.frame === "refused") widget.restart(state.sessionId);
void takePayment().finally(() => widget.close());

// What the declarations must refuse.
// @ts-expect-error: an event the widget does not emit
widget.on("session.handoff", () => {});
// @ts-expect-error: a frameCheck value the widget rejects
PayBridge.mount(el, { ...options, frameCheck: "always" });
// @ts-expect-error: getAgentToken is required
PayBridge.mount(el, { baseUrl: "https://pay.example.com", publishableKey: "vp_pk_test_example" });
// @ts-expect-error: amount is a number of minor units
void widget.takePayment({ amount: "12.40", currency: "GBP" });
// @ts-expect-error: state is read-only
widget.state = state;
// @ts-expect-error: the handoff's data carries no provider tokens
widget.on("handoff", (d) => log(d.formFields));
