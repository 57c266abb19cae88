package vcc_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/bridge/bridgetest"
	"github.com/paybridge/paybridge/pcipal/pcipalstub"
	"github.com/paybridge/paybridge/vcc"
	"github.com/paybridge/paybridge/vcc/vccstub"
)

// stubWorld is the real VCC and PCI Pal stubs on loopback, sharing a manual clock with the client.
type stubWorld struct {
	stub     *vccstub.Server
	clock    *bridgetest.ManualClock
	merchant *bridge.Merchant
	secret   string
}

func newStubWorld(tb testing.TB) *stubWorld {
	tb.Helper()
	clock := newManualClock()
	pci := pcipalstub.New(pcipalstub.Options{Clock: clock})
	pciSrv := httptest.NewServer(pci)
	tb.Cleanup(pciSrv.Close)
	pci.SetBaseURL(pciSrv.URL)

	stub := vccstub.New(vccstub.Options{Clock: clock, PCIPal: pci})
	srv := httptest.NewServer(stub)
	tb.Cleanup(srv.Close)
	tb.Cleanup(stub.Close) // runs first: releases requests the timeout fault holds
	stub.SetBaseURL(srv.URL)

	acct := vccstub.DefaultAccount()
	return &stubWorld{
		stub:  stub,
		clock: clock,
		merchant: &bridge.Merchant{
			ID:     "sandbox-merchant",
			Status: bridge.MerchantActive,
			VCC: bridge.VCCAccount{
				TokenURL:                      stub.TokenURL(),
				APIBaseURL:                    stub.PaymentAPIURL(),
				ClientID:                      acct.ClientID,
				ClientSecret:                  acct.ClientSecret,
				AccountConfigurationIDs:       acct.ConfigurationIDs,
				DefaultAccountConfigurationID: new(acct.ConfigurationIDs[0]),
			},
		},
		secret: acct.ClientSecret,
	}
}

// client returns a Client on the world's clock, logging to the returned buffer.
func (w *stubWorld) client(opts vcc.Options) (*vcc.Client, *logBuffer) {
	logger, logs := newLogger()
	opts.Clock = w.clock
	opts.Logger = logger
	return vcc.New(opts), logs
}

// Each documented VCC failure, produced by the stub, maps to its code with a fix, and nothing
// public or logged holds the client secret or a token.
func TestStubDocumentedFailures(t *testing.T) {
	tests := []struct {
		name       string
		faults     vccstub.Faults
		configID   int
		wantCode   bridge.Code
		wantKind   vcc.ErrorKind
		wantParam  string
		wantAcct   string
		wantID     int
		msgHas     string
		fixHas     []string
		wantCreate int // create requests the stub saw
	}{
		{
			name: "token invalid_client", faults: vccstub.Faults{Token: vccstub.FaultInvalidClient},
			wantCode: bridge.CodeMerchantNotConfigured, wantKind: vcc.KindInvalidClient,
			msgHas: `{"error":"invalid_client"}`, fixHas: []string{"API Admin", "client ID and client secret"}, wantCreate: 0,
		},
		{
			name: "invalid_client_key", faults: vccstub.Faults{Create: vccstub.FaultInvalidClientKey},
			wantCode: bridge.CodeMerchantNotConfigured, wantKind: vcc.KindInvalidClientKey,
			msgHas: "Provider's authorization endpoint returned error message 'invalid_client_key'",
			fixHas: []string{"VCC support", "PCI provider credentials"}, wantCreate: 1,
		},
		{
			name: "provider permissions", faults: vccstub.Faults{Create: vccstub.FaultProviderPermissions}, configID: 2,
			wantCode: bridge.CodeMerchantNotConfigured, wantKind: vcc.KindProviderPermissions, wantAcct: "sandbox", wantID: 2,
			msgHas: "'invalid_client'/'invalid_client' for account name: sandbox, configuration id: 2",
			fixHas: []string{`"sandbox"`, "configuration id 2", "permission to start PCI sessions"}, wantCreate: 1,
		},
		{
			name: "unknown account configuration (fault)", faults: vccstub.Faults{Create: vccstub.FaultUnknownAccountConfiguration}, configID: 1,
			wantCode: bridge.CodeValidationError, wantKind: vcc.KindUnknownAccountConfiguration, wantParam: "accountConfigurationId",
			wantAcct: "sandbox", wantID: 1,
			msgHas: "Account configuration does not exists for account: sandbox, configuration Id: 1.",
			fixHas: []string{"accountConfigurationId 1", `"sandbox"`, "Vonage supplied"}, wantCreate: 1,
		},
		{
			name: "unknown account configuration (real)", configID: 99,
			wantCode: bridge.CodeValidationError, wantKind: vcc.KindUnknownAccountConfiguration, wantParam: "accountConfigurationId",
			wantAcct: "sandbox", wantID: 99, msgHas: "configuration Id: 99.", fixHas: []string{"accountConfigurationId 99"}, wantCreate: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newStubWorld(t)
			c, logs := w.client(fastOptions())
			// A token issued before the fault, so the test can check it never leaks.
			var tokens []string
			if tt.faults.Token == "" {
				tok, err := c.Token(t.Context(), w.merchant)
				require.NoError(t, err)
				tokens = append(tokens, tok)
			}
			require.NoError(t, w.stub.SetFaults(tt.faults))
			req := gbpRequest()
			if tt.configID != 0 {
				req.AccountConfigurationID = new(tt.configID)
			}

			_, err := c.CreateSession(t.Context(), w.merchant, req)

			be := requireCode(t, err, tt.wantCode)
			assert.Equal(t, tt.wantParam, be.Param)
			assert.Contains(t, be.Message, tt.msgHas)
			for _, s := range tt.fixHas {
				assert.Contains(t, be.Fix, s)
			}
			var ve *vcc.Error
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.wantKind, ve.Kind)
			assert.Equal(t, tt.wantAcct, ve.Account)
			assert.Equal(t, tt.wantID, ve.ConfigurationID)
			assert.Equal(t, tt.wantCreate, w.stub.Stats().CreateSession, "refusals are not retried")

			for _, secret := range append(tokens, w.secret) {
				for _, s := range []string{be.Message, be.Fix, be.Error(), logs.String()} {
					assert.NotContains(t, s, secret)
				}
			}
			assert.Contains(t, logs.String(), `"merchant":"sandbox-merchant"`, "the flow was logged")
		})
	}
}

// 200 concurrent creates for one merchant share one token request.
func TestStubConcurrentCreatesOneToken(t *testing.T) {
	w := newStubWorld(t)
	c, _ := w.client(fastOptions())
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Go(func() {
			s, err := c.CreateSession(t.Context(), w.merchant, gbpRequest())
			if err == nil && s.IframeURL == "" {
				err = assert.AnError
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := w.stub.Stats()
	assert.Equal(t, 1, st.TokenRequests)
	assert.Equal(t, 200, st.CreateSession)
}

// A token is reused until TokenEarlyExpiry before its expiry on the shared clock, then refetched
// before the stub would refuse it.
func TestStubTokenReuseAndExpiry(t *testing.T) {
	w := newStubWorld(t)
	c, _ := w.client(fastOptions())
	steps := []struct {
		advance    time.Duration
		wantTokens int
	}{
		{0, 1},
		{30 * time.Minute, 1},
		{28*time.Minute + 59*time.Second, 1}, // 58m59s: still more than 60s left
		{2 * time.Second, 2},                 // 59m01s: within the early-expiry window
		{58 * time.Minute, 2},
		{time.Minute + time.Second, 3},
	}
	for i, s := range steps {
		w.clock.Advance(s.advance)
		_, err := c.CreateSession(t.Context(), w.merchant, gbpRequest())
		require.NoError(t, err, "step %d", i)
		assert.Equal(t, s.wantTokens, w.stub.Stats().TokenRequests, "step %d", i)
	}
	assert.Equal(t, len(steps), w.stub.Stats().CreateSession, "no call was refused for an expired token")
}

// Tokens revoked at VCC: the next call gets a 401, fetches one new token and succeeds.
func TestStubRevokedTokens(t *testing.T) {
	w := newStubWorld(t)
	c, logs := w.client(fastOptions())
	_, err := c.CreateSession(t.Context(), w.merchant, gbpRequest())
	require.NoError(t, err)
	old, err := c.Token(t.Context(), w.merchant)
	require.NoError(t, err)
	require.Equal(t, 1, w.stub.RevokeTokens())

	s, err := c.CreateSession(t.Context(), w.merchant, gbpRequest())
	require.NoError(t, err)
	assert.NotEmpty(t, s.SessionGUID)
	st := w.stub.Stats()
	assert.Equal(t, 2, st.TokenRequests, "exactly one extra token request")
	assert.Equal(t, 3, st.CreateSession, "the refused call and its one retry")
	assert.NotContains(t, logs.String(), old)

	_, err = c.SessionStatus(t.Context(), w.merchant, s.SessionGUID)
	require.NoError(t, err)
	assert.Equal(t, 2, w.stub.Stats().TokenRequests, "the new token is reused")
}

func TestStubTransientFailures(t *testing.T) {
	t.Run("http_503 twice, then success", func(t *testing.T) {
		w := newStubWorld(t)
		c, _ := w.client(fastOptions())
		require.NoError(t, w.stub.SetFaults(vccstub.Faults{Create: vccstub.FaultHTTP503, Times: 2}))
		s, err := c.CreateSession(t.Context(), w.merchant, gbpRequest())
		require.NoError(t, err)
		assert.NotEmpty(t, s.IframeURL)
		assert.Equal(t, 3, w.stub.Stats().CreateSession)
	})
	t.Run("http_503 beyond the retries", func(t *testing.T) {
		w := newStubWorld(t)
		c, _ := w.client(fastOptions())
		require.NoError(t, w.stub.SetFaults(vccstub.Faults{Create: vccstub.FaultHTTP503}))
		_, err := c.CreateSession(t.Context(), w.merchant, gbpRequest())
		be := requireCode(t, err, bridge.CodeProviderUnavailable)
		assert.Contains(t, be.Message, "503")
		assert.Equal(t, 1+vcc.DefaultMaxRetries, w.stub.Stats().CreateSession)
	})
	t.Run("timeout within a short deadline", func(t *testing.T) {
		w := newStubWorld(t)
		c, _ := w.client(fastOptions())
		require.NoError(t, w.stub.SetFaults(vccstub.Faults{Create: vccstub.FaultTimeout}))
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err := c.CreateSession(ctx, w.merchant, gbpRequest())
		be := requireCode(t, err, bridge.CodeProviderUnavailable)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "the caller's deadline, not the stub's 60 s hold, ended it")
		assert.Contains(t, be.Fix, "retriable")
	})
	t.Run("timeout per attempt: a create is not repeated", func(t *testing.T) {
		// VCC may have started the session it never answered for; a second create would orphan it.
		w := newStubWorld(t)
		opts := fastOptions()
		opts.RequestTimeout = 100 * time.Millisecond
		opts.MaxRetries = 2
		c, _ := w.client(opts)
		require.NoError(t, w.stub.SetFaults(vccstub.Faults{Create: vccstub.FaultTimeout}))
		_, err := c.CreateSession(t.Context(), w.merchant, gbpRequest())
		be := requireCode(t, err, bridge.CodeProviderUnavailable)
		assert.Contains(t, be.Message, "in time")
		assert.Equal(t, 1, w.stub.Stats().CreateSession)
	})
}

func TestStubSessionLifecycle(t *testing.T) {
	w := newStubWorld(t)
	c, _ := w.client(fastOptions())
	req := gbpRequest()
	req.Reference = "INV-42"
	s, err := c.CreateSession(t.Context(), w.merchant, req)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(s.IframeURL, "http://127.0.0.1"), s.IframeURL)
	assert.NotEmpty(t, s.AgentAccessToken)
	assert.NotEmpty(t, s.AgentRefreshToken)

	st, err := c.SessionStatus(t.Context(), w.merchant, s.SessionGUID)
	require.NoError(t, err)
	assert.Equal(t, s.SessionGUID, st.SessionGUID)
	assert.NotEmpty(t, st.ProviderSessionGUID)
	assert.False(t, st.HasResult())

	_, err = w.stub.Keying(s.SessionGUID)
	require.NoError(t, err)
	st, err = c.SessionStatus(t.Context(), w.merchant, s.SessionGUID)
	require.NoError(t, err)
	assert.True(t, st.CaptureInProgress())

	_, err = w.stub.Complete(s.SessionGUID, bridge.DecisionAccept, "")
	require.NoError(t, err)
	st, err = c.SessionStatus(t.Context(), w.merchant, s.SessionGUID)
	require.NoError(t, err)
	require.True(t, st.HasResult())
	profile := bridge.DefaultProfile()
	got := profile.Read(st.Result)
	assert.Equal(t, bridge.OutcomeApproved, got.Kind)
	assert.NotEmpty(t, got.TransactionID)
	assert.Equal(t, "GBP", got.Currency)
	assert.True(t, got.AmountRead)
	assert.Equal(t, req.Amount, got.Amount, "VCC reports the minor units our decimal string meant")
	assert.False(t, st.LastUpdatedOn.IsZero())

	w.clock.Advance(vccstub.DefaultRetention + time.Second)
	_, err = c.SessionStatus(t.Context(), w.merchant, s.SessionGUID)
	assert.ErrorIs(t, err, bridge.ErrNotFound, "purged after retention")

	_, err = c.SessionStatus(t.Context(), w.merchant, "00000000-0000-0000-0000-000000000000")
	assert.ErrorIs(t, err, bridge.ErrNotFound)
}

func TestStubExpiredAndDigital(t *testing.T) {
	w := newStubWorld(t)
	c, _ := w.client(fastOptions())
	s, err := c.CreateSession(t.Context(), w.merchant, gbpRequest())
	require.NoError(t, err)
	_, err = w.stub.Expire(s.SessionGUID)
	require.NoError(t, err)
	st, err := c.SessionStatus(t.Context(), w.merchant, s.SessionGUID)
	require.NoError(t, err)
	assert.True(t, st.EndedWithoutPayment())

	req := gbpRequest()
	req.Channel = bridge.ChannelDigital
	d, err := c.CreateSession(t.Context(), w.merchant, req)
	require.NoError(t, err)
	assert.NotEmpty(t, d.SessionGUID)
	assert.Contains(t, d.CustomerURL, d.SessionGUID)
	assert.Empty(t, d.IframeURL)
	assert.Equal(t, 1, w.stub.Stats().CreateDigitalSession)
}

// Every flow above, logged at debug level into one buffer: the logs describe each request and
// hold no client secret, access token or agent token.
func TestStubLogsHoldNoSecrets(t *testing.T) {
	w := newStubWorld(t)
	opts := fastOptions()
	// Short, for the timeout fault below, but long enough that the 503 and its retry fit in it
	// on a loaded machine.
	opts.RequestTimeout = time.Second
	c, logs := w.client(opts)
	var secrets []string
	remember := func() {
		tok, err := c.Token(t.Context(), w.merchant)
		require.NoError(t, err)
		secrets = append(secrets, tok)
	}

	s, err := c.CreateSession(t.Context(), w.merchant, gbpRequest())
	require.NoError(t, err)
	secrets = append(secrets, s.AgentAccessToken, s.AgentRefreshToken)
	remember()

	w.stub.RevokeTokens()
	_, err = c.SessionStatus(t.Context(), w.merchant, s.SessionGUID)
	require.NoError(t, err)
	remember()

	for _, f := range []vccstub.Faults{
		{Create: vccstub.FaultInvalidClientKey},
		{Create: vccstub.FaultProviderPermissions},
		{Create: vccstub.FaultUnknownAccountConfiguration},
		{Create: vccstub.FaultHTTP503, Times: 1},
		{Create: vccstub.FaultTimeout, Times: 1},
	} {
		require.NoError(t, w.stub.SetFaults(f))
		s, _ := c.CreateSession(t.Context(), w.merchant, gbpRequest())
		if s != nil {
			secrets = append(secrets, s.AgentAccessToken, s.AgentRefreshToken)
		}
	}
	w.stub.RevokeTokens()
	w.clock.Advance(2 * time.Hour)
	require.NoError(t, w.stub.SetFaults(vccstub.Faults{Token: vccstub.FaultInvalidClient}))
	_, err = c.CreateSession(t.Context(), w.merchant, gbpRequest())
	requireCode(t, err, bridge.CodeMerchantNotConfigured)

	out := logs.String()
	for _, want := range []string{`"method":"POST"`, `"path":"` + vccstub.PaymentAPIPath + `/v1/session"`, `"status":503`, `"attempt":2`, `"durationMs"`, `"path":"/Auth/connect/token"`} {
		assert.Contains(t, out, want)
	}
	assert.GreaterOrEqual(t, len(secrets), 4)
	for _, s := range append(secrets, w.secret) {
		require.NotEmpty(t, s)
		assert.NotContains(t, out, s)
	}
	assert.NotContains(t, out, "Bearer")
}

// BenchmarkCreateSession measures parallel creates against the stub and reports how many token
// requests 1,000 creates cost (the budget: one per token lifetime at any concurrency).
func BenchmarkCreateSession(b *testing.B) {
	w := newStubWorld(b)
	c, _ := w.client(vcc.Options{})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.CreateSession(context.Background(), w.merchant, gbpRequest()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(w.stub.Stats().TokenRequests)*1000/float64(b.N), "tokens/1000creates")
}
