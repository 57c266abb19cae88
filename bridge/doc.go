// Package bridge is paybridge's domain: merchants, API keys, agent tokens, sessions and their
// attempts, events, the error catalog, and the Service that runs the session lifecycle. It
// depends on nothing of paybridge's own; the stores, the VCC client and the web server depend on
// it.
//
// # The session lifecycle
//
//	pending ──► active ──► succeeded
//	   │          │ ▲ └──► failed      (provider_charge_failed, transaction_verification_failed,
//	   │          │ │                   provider_attestation_failed when restarts are exhausted)
//	   │          └─┘ restart: new attempt, status stays active
//	   └──────────┴──────► expired     (TTL passed, nothing paid, nobody keying)
//	              └──────► cancelled   (POST /v1/sessions/{id}/cancel)
//
// Every rule of that machine lives in one pure function, decide (lifecycle.go): given the
// session, what VCC said about its attempts, the trigger, the time and the settings, it answers
// one action — ignore, refuse, ask VCC, record, settle, restart, expire, postpone, fail or
// cancel. It is covered by one table test (TestDecide) whose cases are named after the rules of
// DESIGN section 3.
//
// Every trigger goes through one executor, Service.execute (executor.go): take the session's
// lock (a Locker: the Store's own when it has one, else an in-process LocalLocker), read the
// session, ask decide, ask VCC once if decide needs it and decide again, then carry the action
// out — start an attempt, or finish the session with its merchant webhook in the same store
// transaction — and publish to the agent. The triggers are the public methods: FrameRefused
// (trigger 1), RefreshAgent (2), ProviderNotified and the poller (3), RestartSession (4),
// CancelSession, SettledSession and the agent snapshot (reads past the TTL), and the sweep (TTL
// expiry, creates abandoned by a dead process). CreateSession starts the first attempt itself.
package bridge
