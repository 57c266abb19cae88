// agent.js: the demo agent desktop. It mounts the paybridge.js widget, takes payments through it
// and, demo only, plays the customer through the demo backend under /demo/api/.
(function () {
  "use strict";

  const desk = document.getElementById("desk");
  const config = {
    baseUrl: desk.dataset.baseUrl,
    publishableKey: desk.dataset.publishableKey,
    agentId: desk.dataset.agentId,
    pollSeconds: Number(desk.dataset.pollSeconds) || 1,
  };
  const takeForm = document.getElementById("take-payment");
  const takeButton = document.getElementById("take-payment-button");
  const takeError = document.getElementById("take-error");
  const driveStatus = document.getElementById("drive-status");
  const driveButtons = Array.from(document.querySelectorAll("[data-demo-action]"));

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

  // --- the session the demo buttons act on ---

  let active = null; // {id, attempt}
  let waiting = ""; // the demo action whose effect the page waits for

  function setActive(session) {
    active = session ? {id: session.id, attempt: session.attempt} : null;
    for (const b of driveButtons) b.disabled = !active;
    desk.dataset.activeSession = active ? active.id : "";
  }

  function setDriveStatus(text, state) {
    driveStatus.textContent = text;
    driveStatus.dataset.state = state || "";
    driveStatus.classList.toggle("busy", state === "waiting");
  }

  widget.on("ready", (data) => {
    const open = data.sessions.filter((e) => e.handoff);
    setActive(open.length ? open[open.length - 1].session : null);
    if (!waiting) setDriveStatus(active ? "A payment is open: play the customer with the buttons above." : "Take a payment first.");
  });

  widget.on("handoff", (h) => {
    const recovered = waiting === "expire" && active && active.id === h.sessionId && h.attempt > active.attempt;
    setActive(h.session);
    if (recovered) {
      waiting = "";
      setDriveStatus("Recovered by itself: attempt " + h.attempt + " is on screen. Press Customer pays to finish.", "recovered");
    } else if (!waiting) {
      setDriveStatus("The customer is on the card capture page: press Customer pays or Card declined.", "open");
    }
  });

  widget.on("restarting", (data) => {
    if (waiting === "expire") setDriveStatus("paybridge noticed and is starting a new provider session…", "waiting");
  });

  for (const outcome of ["succeeded", "failed", "expired", "cancelled"]) {
    widget.on(outcome, (data) => {
      const id = data.session && data.session.id;
      if (active && active.id === id) setActive(null);
      waiting = "";
      setDriveStatus("Outcome: " + outcome + ". Take another payment to try again.", outcome);
    });
  }

  // --- take a payment ---

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
    takeButton.disabled = true;
    takeButton.textContent = "Starting…";
    try {
      await widget.takePayment({amount: amount, currency: currency, reference: takeForm.reference.value.trim()});
      waiting = "";
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

  for (const button of driveButtons) {
    button.addEventListener("click", async () => {
      if (!active) return;
      const action = button.dataset.demoAction;
      for (const b of driveButtons) b.disabled = true;
      // Wait for the effect before asking: with VCC's webhook it can arrive before the answer.
      waiting = action;
      setDriveStatus(driveText[action], "waiting");
      try {
        await postJSON("/demo/api/sessions/" + encodeURIComponent(active.id) + "/" + action, {});
        desk.dataset.lastAction = action;
      } catch (err) {
        waiting = "";
        setDriveStatus("That did not work: " + err.message, "error");
      } finally {
        for (const b of driveButtons) b.disabled = !active;
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
