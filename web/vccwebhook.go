package web

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/webhook"
)

// webhookTokenTTL is how long a token issued to VCC for its webhook calls lasts.
const webhookTokenTTL = time.Hour

// tokenResponse is RFC 6749's access token response.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// vccWebhookMerchants returns the merchants with any VCC webhook credentials, or
// webhook_not_configured when there are none: nothing could be verified.
func (s *Server) vccWebhookMerchants(r *http.Request) ([]*bridge.Merchant, error) {
	all, err := s.merchants.Merchants(r.Context())
	if err != nil {
		return nil, err
	}
	var out []*bridge.Merchant
	for _, m := range all {
		if a := m.VCCWebhook; (a.ClientID != "" && a.ClientSecret != "") || a.SigningSecret != "" {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, bridge.Errorf(bridge.CodeWebhookNotConfigured, "No merchant has VCC webhook credentials configured on this paybridge.").
			WithFix("Your paybridge operator must set vccWebhook (clientId and clientSecret, or signingSecret) for the merchant whose VCC account calls this webhook.")
	}
	return out, nil
}

// oauthToken is POST /oauth/token: the OAuth2 client-credentials grant VCC uses (as Vonage can
// configure for webhooks) to obtain a bearer token for POST /v1/webhooks/vcc. The body is
// form-encoded, as RFC 6749 requires; errors keep the envelope, with error set to the OAuth
// error code so OAuth clients read it too.
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) error {
	merchants, err := s.vccWebhookMerchants(r)
	if err != nil {
		return err
	}
	// HTTP Basic credentials are checked before the body is read, so a caller without them
	// cannot make paybridge wait for one; form-body credentials still work, read with a small cap.
	id, secret, basic := r.BasicAuth()
	var m *bridge.Merchant
	if basic {
		if m, err = s.matchClient(merchants, id, secret); err != nil {
			return err
		}
		authenticatedNow(r)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
	if err := r.ParseForm(); err != nil {
		return bridge.Errorf(bridge.CodeValidationError, "invalid_request").WithFix("Send a form-encoded body (application/x-www-form-urlencoded) of at most 4 KiB.")
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		return bridge.Errorf(bridge.CodeValidationError, "unsupported_grant_type").WithParam("grant_type").
			WithFix("Use grant_type=client_credentials.")
	}
	if !basic {
		if m, err = s.matchClient(merchants, r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: s.keyring.IssueWebhookToken(m.ID, s.clock.Now().Add(webhookTokenTTL)),
		TokenType:   "Bearer", ExpiresIn: int(webhookTokenTTL.Seconds()),
	})
	return nil
}

// maxTokenForm bounds the form body of POST /oauth/token: a grant type and two credentials.
const maxTokenForm = 4 << 10

// matchClient returns the merchant whose vccWebhook client credentials these are.
func (s *Server) matchClient(merchants []*bridge.Merchant, id, secret string) (*bridge.Merchant, error) {
	if id == "" || secret == "" {
		return nil, bridge.Errorf(bridge.CodeWebhookMissingSignature, "invalid_client").
			WithFix("Send client_id and client_secret (form fields or HTTP Basic auth): the vccWebhook credentials configured for the merchant.")
	}
	for _, m := range merchants {
		a := m.VCCWebhook
		if a.ClientID != "" && a.ClientSecret != "" &&
			subtle.ConstantTimeCompare([]byte(id), []byte(a.ClientID)) == 1 &&
			subtle.ConstantTimeCompare([]byte(secret), []byte(a.ClientSecret)) == 1 {
			return m, nil
		}
	}
	return nil, bridge.Errorf(bridge.CodeWebhookInvalidSignature, "invalid_client").
		WithFix("The client credentials are not those configured in the merchant's vccWebhook; check them with your paybridge operator.")
}

// vccNotification is the part of VCC's webhook body paybridge reads: which session to look at.
// The rest of the body is not trusted; the status is fetched from VCC.
type vccNotification struct {
	SessionGUID string `json:"sessionGuid"`
}

// vccWebhook is POST /v1/webhooks/vcc: VCC calls it when a payment completes or a session ends.
// It is authenticated by a bearer token from /oauth/token or an X-VonPay-Signature HMAC; the body
// only says which session to fetch from VCC, and a duplicate changes nothing.
func (s *Server) vccWebhook(w http.ResponseWriter, r *http.Request) error {
	merchants, err := s.vccWebhookMerchants(r)
	if err != nil {
		return err
	}
	// A bearer token is checked before the body is read: a caller without credentials cannot
	// make paybridge wait for (or store) a body. A signature needs the body, so it is checked
	// after reading it.
	var merchant *bridge.Merchant
	if r.Header.Get("Authorization") != "" {
		if merchant, err = s.authenticateVCCBearer(r, merchants); err != nil {
			return err
		}
		authenticatedNow(r)
	} else if r.Header.Get(webhook.Header) == "" {
		return bridge.Errorf(bridge.CodeWebhookMissingSignature, "The webhook carried neither a bearer token nor an %s header.", webhook.Header)
	}
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if merchant == nil {
		if merchant, err = s.authenticateVCCSignature(r, body, merchants); err != nil {
			return err
		}
		authenticatedNow(r)
	}
	var n vccNotification
	if err := decodeLenient(body, &n); err != nil {
		return err
	}
	if n.SessionGUID == "" {
		return bridge.Errorf(bridge.CodeValidationError, "The webhook body must be VCC's session status JSON with a sessionGuid.").WithParam("sessionGuid")
	}
	// Once authenticated and readable, the call is acknowledged whatever acting on it finds:
	// VCC retries a non-200 for 12 hours, and the poller catches up with anything that failed.
	if err := s.sessions.ProviderNotified(r.Context(), merchant.ID, n.SessionGUID); err != nil {
		s.logger.WarnContext(r.Context(), "acting on VCC webhook", "merchant", merchant.ID, "vccSession", capText(n.SessionGUID, capInputText), "err", err)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"received": true})
	return nil
}

// invalidVCC is the error for VCC credentials that do not verify.
func invalidVCC(why string) error {
	return bridge.Errorf(bridge.CodeWebhookInvalidSignature, "The webhook's credentials did not verify: %s.", why)
}

// authenticateVCCBearer returns the merchant whose webhook token the Authorization header carries.
func (s *Server) authenticateVCCBearer(r *http.Request, merchants []*bridge.Merchant) (*bridge.Merchant, error) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, invalidVCC("the Authorization scheme is not Bearer")
	}
	id, ok := s.keyring.VerifyWebhookToken(strings.TrimSpace(token), s.clock.Now())
	if !ok {
		return nil, invalidVCC("the bearer token is unknown or expired")
	}
	for _, m := range merchants {
		if m.ID == id {
			return m, nil
		}
	}
	return nil, invalidVCC("the token's merchant no longer has VCC webhook credentials")
}

// authenticateVCCSignature returns the merchant whose signing secret signed body.
func (s *Server) authenticateVCCSignature(r *http.Request, body []byte, merchants []*bridge.Merchant) (*bridge.Merchant, error) {
	var signers []*bridge.Merchant
	var secrets []string
	for _, m := range merchants {
		if m.VCCWebhook.SigningSecret != "" {
			signers = append(signers, m)
			secrets = append(secrets, m.VCCWebhook.SigningSecret)
		}
	}
	if len(secrets) == 0 {
		return nil, bridge.Errorf(bridge.CodeWebhookNotConfigured, "No merchant has a VCC webhook signing secret configured.").
			WithFix("Your paybridge operator must set vccWebhook.signingSecret, or VCC must authenticate with a bearer token from POST /oauth/token.")
	}
	i, err := webhook.VerifyAny(body, r.Header.Get(webhook.Header), secrets, s.clock.Now(), webhook.DefaultTolerance)
	if err != nil {
		return nil, invalidVCC(err.Error())
	}
	return signers[i], nil
}
