// agent.js: the demo agent desktop. It mounts the paybridge.js widget, takes payments through it,
// lists the agent's open payments (show one, cancel one) and, demo only, plays the customer
// through the demo backend under /demo/api/.
(function () {
  "use strict";

  const desk = document.getElementById("desk");
  const config = {
    baseUrl: desk.dataset.baseUrl,
    publishableKey: desk.dataset.publishableKey,
    agentId: desk.dataset.agentId,
    pollSeconds: Number(desk.dataset.pollSeconds) || 1,
    recoveryMinMs: Number(desk.dataset.recoveryMinMs) || 0,
  };
  // clock is the page's clock for what the desk times itself (how long a recovery stays on
  // screen). A test may install window.PayBridgeDeskClock before this script runs, to move it
  // without waiting.
  const clock = window.PayBridgeDeskClock || {now: () => Date.now(), after: (ms, fn) => setTimeout(fn, ms)};

  const takeForm = document.getElementById("take-payment");
  const takeButton = document.getElementById("take-payment-button");
  const takeError = document.getElementById("take-error");
  const driveStatus = document.getElementById("drive-status");
  const driveButtons = Array.from(document.querySelectorAll("[data-demo-action]"));
  const openList = document.getElementById("open-payments");
  const openEmpty = document.getElementById("open-empty");
  const openError = document.getElementById("open-error");

  // The page's backend mints agent tokens with the secret key; this page never sees that key.
  async function getAgentToken() {
    const body = await postJSON("/demo/api/agent-token", {agentId: config.agentId});
    return body.token;
  }

  const widget = PayBridge.mount(document.getElementById("paybridge-widget"), {
    baseUrl: config.baseUrl,
    publishableKey: config.publishableKey,
    agentId: config.agentId,
    getAgentToken: getAgentToken,
  });

  // --- the agent's open payments, and the one in the panel ---

  const open = new Map(); // session id -> its latest session object, oldest first
  let active = null; // {id, attempt}: the open payment in the panel, which the demo buttons act on
  let driving = false; // a demo action is on its way
  let waiting = ""; // the demo action whose effect the page waits for

  // refresh reads which payment the widget shows and redraws what depends on it.
  function refresh() {
    const st = widget.state;
    active = st.sessionId && open.has(st.sessionId) ? {id: st.sessionId, attempt: st.attempt} : null;
    for (const b of driveButtons) b.disabled = !active || driving;
    desk.dataset.activeSession = active ? active.id : "";
    renderOpen();
  }

  function renderOpen() {
    const items = [];
    for (const s of open.values()) {
      const shown = active !== null && active.id === s.id;
      const li = document.createElement("li");
      li.className = "open-item";
      li.dataset.sessionId = s.id;
      li.dataset.shown = String(shown);
      const label = document.createElement("span");
      label.className = "open-label";
      label.textContent = money(s.amount, s.currency) + " · " + (s.reference || "no reference") + " · attempt " + s.attempt;
      const guid = document.createElement("small");
      guid.className = "open-guid";
      guid.textContent = s.vcc && s.vcc.sessionGuid ? "VCC session " + s.vcc.sessionGuid : "";
      const show = button(shown ? "On screen" : "Show", "show", shown);
      const cancel = button("Cancel", "cancel", false);
      cancel.setAttribute("aria-label", "Cancel " + (s.reference || s.id));
      li.append(label, " ", show, " ", cancel, guid);
      items.push(li);
    }
    openList.replaceChildren(...items);
    openEmpty.hidden = items.length > 0;
  }

  function button(text, action, disabled) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.dataset.openAction = action;
    b.disabled = disabled;
    return b;
  }

  openList.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-open-action]");
    if (!b) return;
    const id = b.closest("li").dataset.sessionId;
    showOpenError("");
    if (b.dataset.openAction === "show") {
      try {
        widget.show(id);
      } catch (err) {
        showOpenError(err.message);
      }
      refresh();
      return;
    }
    b.disabled = true;
    try {
      // The session.cancelled event takes it off the list.
      await postJSON("/demo/api/sessions/" + encodeURIComponent(id) + "/cancel", {});
    } catch (err) {
      showOpenError("Not cancelled: " + err.message + (err.fix ? " " + err.fix : ""));
      b.disabled = false;
    }
  });

  function showOpenError(text) {
    openError.textContent = text;
    openError.hidden = text === "";
  }

  // --- what the desk says ---

  let statusSeq = 0; // counts status changes, so a delayed one never hides a newer one

  function setDriveStatus(text, state) {
    statusSeq++;
    driveStatus.textContent = text;
    driveStatus.dataset.state = state || "";
    driveStatus.classList.toggle("busy", state === "waiting" || state === "restarting");
  }

  widget.on("ready", (data) => {
    open.clear();
    for (const e of data.sessions) {
      if (e.handoff && e.session) {
        open.set(e.session.id, e.session);
        seeReference(e.session.reference);
      }
    }
    // The widget shows a payment once its handlers have run.
    queueMicrotask(() => {
      refresh();
      if (!waiting) setDriveStatus(active ? "A payment is open: play the customer with the buttons above." : "Take a payment first.");
    });
  });

  // recovering is the recovery of the payment in the panel under way: a new payment page is being
  // started. It stays on screen at least config.recoveryMinMs: on loopback it takes milliseconds,
  // and a recovery nobody sees teaches nothing.
  let recovering = null; // {id, from, since, seq}

  widget.on("restarting", (data) => {
    const s = data.session || {};
    if (open.has(s.id)) open.set(s.id, s);
    if (!active || active.id !== s.id) return;
    waiting = "";
    setDriveStatus("paybridge is starting a new payment page (" + (RESTART_WHY[data.reason] || "the old one ended") + ")…", "restarting");
    recovering = {id: s.id, from: active.attempt, since: clock.now(), seq: statusSeq};
  });

  widget.on("handoff", (h) => {
    if (h.session) {
      open.set(h.sessionId, h.session);
      seeReference(h.session.reference);
    }
    const r = recovering;
    if (r && r.id === h.sessionId && h.attempt > r.from) {
      recovering = null;
      const done = () => {
        if (statusSeq === r.seq) setDriveStatus("Recovered by itself: attempt " + h.attempt + " is on screen. Press Customer pays to finish.", "recovered");
      };
      const left = r.since + config.recoveryMinMs - clock.now();
      if (left > 0) clock.after(left, done);
      else done();
    } else if (!waiting && !r && h.sessionId === widget.state.sessionId) {
      setDriveStatus("The customer is on the card capture page: press Customer pays or Card declined.", "open");
    }
    queueMicrotask(refresh);
  });

  widget.on("frame.loaded", () => refresh());

  for (const outcome of ["succeeded", "failed", "expired", "cancelled"]) {
    widget.on(outcome, (data) => {
      const s = data.session || {};
      open.delete(s.id);
      if (recovering && recovering.id === s.id) recovering = null;
      waiting = "";
      const more = open.size ? " " + open.size + " more open: see Your open payments." : " Take another payment to try again.";
      setDriveStatus((s.reference ? s.reference + ": " : "") + OUTCOME_TEXT[outcome](s) + more, outcome);
      refresh();
    });
  }

  const RESTART_WHY = {
    provider_expired: "the provider session ended",
    frame_refused: "the payment page was refused",
    lifetime_elapsed: "the provider session was too old",
    restart_requested: "asked for",
  };

  // OUTCOME_TEXT says each outcome in the agent's words: a decline is a sentence, not the
  // gateway's decision code.
  const OUTCOME_TEXT = {
    succeeded: (s) => "payment of " + money(s.amount, s.currency) + " taken.",
    failed: (s) => (s.result && s.result.decision === "REJECT" ? "the card was declined." :
      s.failure && s.failure.code === "provider_charge_failed" ? "the card could not be charged." : "the payment failed; see the panel."),
    expired: () => "the payment expired before the customer paid.",
    cancelled: () => "the payment was cancelled.",
  };

  // --- take a payment ---

  // Each new payment gets its own reference: the page suggests INV-<n> past every one it has seen
  // (the backend starts it past the merchant's recent ones), unless the agent typed their own.
  let highestRef = refNumber(takeForm.reference.value) - 1;
  let suggested = takeForm.reference.value;

  function refNumber(ref) {
    const m = /^INV-(\d{1,9})$/.exec(ref || "");
    return m ? Number(m[1]) : 0;
  }

  function seeReference(ref) {
    highestRef = Math.max(highestRef, refNumber(ref));
    if (takeForm.reference.value === suggested && refNumber(suggested) <= highestRef) {
      suggested = "INV-" + (highestRef + 1);
      takeForm.reference.value = suggested;
    }
  }

  takeForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showTakeError("");
    const currency = takeForm.currency.value;
    const amount = minorUnits(takeForm.amount.value);
    if (amount === null) {
      showTakeError("Enter an amount like 12.40 (at most two decimals, more than zero).");
      takeForm.amount.focus();
      return;
    }
    const reference = takeForm.reference.value.trim();
    takeButton.disabled = true;
    takeButton.textContent = "Starting…";
    try {
      await widget.takePayment({amount: amount, currency: currency, reference: reference});
      waiting = "";
      seeReference(reference);
      if (takeForm.reference.value.trim() === reference) {
        // The agent's own reference was used: the next payment gets a new one.
        suggested = "INV-" + (highestRef + 1);
        takeForm.reference.value = suggested;
      }
    } catch (err) {
      showTakeError((err.code ? err.code + ": " : "") + err.message + (err.fix ? " " + err.fix : ""));
    } finally {
      takeButton.disabled = false;
      takeButton.textContent = "Take payment";
    }
  });

  // minorUnits turns "12.40" into 1240: GBP, EUR and USD all have two decimals.
  function minorUnits(text) {
    const m = /^\s*(\d{1,6})(?:[.,](\d{1,2}))?\s*$/.exec(text);
    if (!m) return null;
    const minor = Number(m[1]) * 100 + Number((m[2] || "0").padEnd(2, "0"));
    return minor > 0 ? minor : null;
  }

  function money(minor, currency) {
    try {
      const f = new Intl.NumberFormat(undefined, {style: "currency", currency: currency});
      return f.format(minor / Math.pow(10, f.resolvedOptions().maximumFractionDigits));
    } catch (err) {
      return minor + " " + currency;
    }
  }

  function showTakeError(text) {
    takeError.textContent = text;
    takeError.hidden = text === "";
  }

  // --- play the customer ---

  const driveText = {
    pay: "Customer pays: the stub VCC records an accepted payment. paybridge asks VCC every " + config.pollSeconds + " s, so the outcome arrives in a moment…",
    decline: "Card declined: the stub VCC records a rejected payment; the outcome arrives in a moment…",
    expire: "The provider session ended at PCI Pal. Watch the panel: paybridge starts a new one by itself…",
  };

  for (const b of driveButtons) {
    b.addEventListener("click", async () => {
      if (!active) return;
      const id = active.id;
      const action = b.dataset.demoAction;
      driving = true;
      refresh();
      // Wait for the effect before asking: with VCC's webhook it can arrive before the answer.
      waiting = action;
      setDriveStatus(driveText[action], "waiting");
      try {
        await postJSON("/demo/api/sessions/" + encodeURIComponent(id) + "/" + action, {});
        desk.dataset.lastAction = action;
      } catch (err) {
        waiting = "";
        setDriveStatus("That did not work: " + err.message, "error");
      } finally {
        driving = false;
        refresh();
      }
    });
  }

  async function postJSON(path, body) {
    const resp = await fetch(path, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const err = new Error((data.code ? data.code + ": " : "") + (data.error || "HTTP " + resp.status));
      err.fix = data.fix;
      throw err;
    }
    return data;
  }
})();
