package vcc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/paybridge/paybridge/bridge"
)

// ErrorKind says which VCC failure an Error is. The first five are the failures VCC documents
// (seed 000) plus "unavailable"; the others cover refusals VCC does not document.
type ErrorKind string

// Error kinds.
const (
	// KindInvalidClient: the token endpoint answered {"error":"invalid_client"}; the merchant's
	// VCC API credentials are wrong.
	KindInvalidClient ErrorKind = "invalid_client"
	// KindInvalidClientKey: the VCC account holds wrong PCI provider credentials.
	KindInvalidClientKey ErrorKind = "invalid_client_key"
	// KindUnknownAccountConfiguration: the accountConfigurationId is not one of the account's.
	KindUnknownAccountConfiguration ErrorKind = "unknown_account_configuration"
	// KindProviderPermissions: the API user VCC uses at the PCI provider may not start sessions.
	KindProviderPermissions ErrorKind = "provider_permissions"
	// KindUnavailable: timeouts, refused connections, 5xx, 429 after retries, unreadable bodies.
	KindUnavailable ErrorKind = "unavailable"
	// KindAuthRejected: VCC's auth refused the merchant's credentials in a way other than
	// invalid_client (another OAuth error code, or the Payment API answering 401 to a freshly
	// issued token).
	KindAuthRejected ErrorKind = "auth_rejected"
	// KindRejected: VCC refused a create with a 400/403/404/409/422 whose text we do not know.
	KindRejected ErrorKind = "rejected"
)

// Error is a failure reported by VCC, or the absence of an answer. It is the Cause of the
// *bridge.Error the client returns, so errors.As finds it. Text is VCC's own error text with any
// credential paybridge sent scrubbed out; the documented texts hold no secrets.
type Error struct {
	Kind            ErrorKind
	Status          int    // HTTP status VCC answered; 0 when no answer came
	Text            string // upstream error text
	Account         string // VCC account name, when the text names one
	ConfigurationID int    // account configuration id, when the text names one
	Err             error  // underlying transport or context error, if any
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("vcc: ")
	b.WriteString(string(e.Kind))
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Text != "" {
		b.WriteString(": ")
		b.WriteString(e.Text)
	}
	if e.Err != nil {
		if text := causeText(e.Err); text != "" {
			b.WriteString(": ")
			b.WriteString(text)
		}
	}
	return b.String()
}

// causeText is err's text, except for a timeout: the message of the public error wrapping e
// already says VCC did not answer in time, so only the request is named ("Post <url>"), and
// the timeout is worded once in the line that logs it. errors.Is still finds the deadline.
func causeText(err error) string {
	var nerr net.Error
	if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &nerr) && nerr.Timeout()) {
		return err.Error()
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Op + " " + uerr.URL
	}
	return ""
}

// Unwrap returns the underlying transport or context error, so errors.Is(err,
// context.DeadlineExceeded) works through a returned error.
func (e *Error) Unwrap() error { return e.Err }

// The documented texts of seed 000. Matched case-insensitively and tolerant of VCC's "does not
// exists" grammar being fixed one day; the account name is everything up to the next field.
var (
	reProviderPermissions = regexp.MustCompile(`(?i)Provider's authorization endpoint returned error message 'invalid_client'/'invalid_client' for account name: (.*?), configuration id: (-?\d+)`)
	reInvalidClientKey    = regexp.MustCompile(`(?i)Provider's authorization endpoint returned error message 'invalid_client_key'`)
	reUnknownAccountConf  = regexp.MustCompile(`(?i)Account configuration does not exists? for account: (.*?), configuration Id: (-?\d+)`)
	reInvalidClient       = regexp.MustCompile(`"error"\s*:\s*"invalid_client"`)
)

// maxTextLen bounds how much upstream text is quoted: a proxy's HTML error page is not a message.
const maxTextLen = 300

// recognise reads a Payment API error body and returns the documented failure it reports, or
// nil when the text is none of them. It searches both the message extracted from the body and
// the raw body, because VCC answers with JSON objects, JSON strings or plain text.
func recognise(status int, body []byte, secrets ...string) *Error {
	text := upstreamText(body, secrets...)
	e := &Error{Status: status, Text: text}
	for _, s := range []string{text, string(body)} {
		switch {
		case match(reProviderPermissions, s, e):
			e.Kind = KindProviderPermissions
		case reInvalidClientKey.MatchString(s):
			e.Kind = KindInvalidClientKey
		case match(reUnknownAccountConf, s, e):
			e.Kind = KindUnknownAccountConfiguration
		case reInvalidClient.MatchString(s) || strings.EqualFold(s, "invalid_client"):
			e.Kind = KindInvalidClient
		default:
			continue
		}
		return e
	}
	return nil
}

// match reports whether re matches s and, if so, fills e's account and configuration id from
// the two submatches.
func match(re *regexp.Regexp, s string, e *Error) bool {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	e.Account = strings.TrimSpace(m[1])
	e.ConfigurationID, _ = strconv.Atoi(m[2])
	return true
}

// upstreamText returns the human text of an error body: the message of a JSON object, a JSON
// string, or the plain text, whitespace collapsed, bounded, with secrets scrubbed.
func upstreamText(body []byte, secrets ...string) string {
	body = bytes.TrimSpace(body)
	text := string(body)
	switch {
	case len(body) > 0 && body[0] == '{':
		var obj map[string]any
		if json.Unmarshal(body, &obj) == nil {
			for _, k := range []string{"message", "Message", "error_description", "detail", "title", "error"} {
				if s, ok := obj[k].(string); ok && s != "" {
					text = s
					break
				}
			}
		}
	case len(body) > 0 && body[0] == '"':
		var s string
		if json.Unmarshal(body, &s) == nil {
			text = s
		}
	}
	return bound(scrub(strings.Join(strings.Fields(text), " "), secrets...))
}

// bound cuts text to maxTextLen bytes on a rune boundary.
func bound(text string) string {
	if len(text) <= maxTextLen {
		return text
	}
	cut := maxTextLen
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + "…"
}

// scrub removes every credential paybridge sent from s. VCC's documented texts hold none; this
// guards against an upstream that echoes a request back.
func scrub(s string, secrets ...string) string {
	for _, secret := range secrets {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// Fixes, written for the person who can act on each failure.
const (
	fixInvalidClient = "The merchant's VCC API credentials are invalid. Ask the merchant's VCC " +
		"administrator to check the client ID and client secret generated in VCC's API Admin " +
		"application, and update them in paybridge's configuration for this merchant."
	fixAuthRejected = "VCC refused the merchant's API credentials. Ask the merchant's VCC administrator " +
		"to check the client ID and client secret generated in VCC's API Admin application and " +
		"that they are allowed the globalpci scope (Payment API)."
	fixInvalidClientKey = "The VCC account holds wrong PCI provider credentials, so the PCI provider " +
		"rejected VCC. Contact VCC support or professional services to check and update the PCI " +
		"provider credentials in the VCC account."
	fixUnavailable = "This is retriable: try again shortly. If it persists, check VCC's service status."
	fixRejected    = "VCC refused the request for the reason quoted. Check the request fields " +
		"(agentId, amount, currency, customer details) against what the VCC account accepts."
	fixNotConfigured = "Configure the merchant's VCC token URL, API base URL, client ID and client " +
		"secret in paybridge's configuration."
)

// bridgeError maps e to paybridge's public error, with e as its private cause.
func (e *Error) bridgeError() *bridge.Error {
	quoted := "."
	if e.Text != "" {
		quoted = ": " + e.Text
	}
	var be *bridge.Error
	switch e.Kind {
	case KindInvalidClient:
		be = bridge.Errorf(bridge.CodeMerchantNotConfigured, "VCC rejected the merchant's API credentials%s", quoted).
			WithFix(fixInvalidClient)
	case KindAuthRejected:
		be = bridge.Errorf(bridge.CodeMerchantNotConfigured, "VCC refused the merchant's API credentials%s", quoted).
			WithFix(fixAuthRejected)
	case KindInvalidClientKey:
		be = bridge.Errorf(bridge.CodeMerchantNotConfigured, "VCC could not start the payment session%s", quoted).
			WithFix(fixInvalidClientKey)
	case KindUnknownAccountConfiguration:
		be = bridge.Errorf(bridge.CodeValidationError, "VCC does not know this account configuration%s", quoted).
			WithParam("accountConfigurationId").
			WithFix(fmt.Sprintf("accountConfigurationId %d does not exist for VCC account %q. Use one of "+
				"the account configuration IDs Vonage supplied for this account.", e.ConfigurationID, e.Account))
	case KindProviderPermissions:
		be = bridge.Errorf(bridge.CodeMerchantNotConfigured, "The PCI provider refused to start a session for VCC%s", quoted).
			WithFix(fmt.Sprintf("The PCI provider must give the API user VCC uses for account %q "+
				"(configuration id %d) permission to start PCI sessions. Ask VCC support or the PCI "+
				"provider to check that user's permissions.", e.Account, e.ConfigurationID))
	case KindRejected:
		be = bridge.Errorf(bridge.CodeValidationError, "VCC refused the request (HTTP %d)%s", e.Status, quoted).
			WithFix(fixRejected)
	default:
		be = bridge.Errorf(bridge.CodeProviderUnavailable, "%s", e.unavailableMessage()).WithFix(fixUnavailable)
	}
	return be.WithCause(e)
}

// unavailableMessage says what went wrong without naming internal addresses, which only the
// private cause carries.
func (e *Error) unavailableMessage() string {
	var nerr net.Error
	switch {
	case e.Status >= 200 && e.Status < 300:
		return "VCC answered with a response paybridge could not read."
	case e.Status != 0 && e.Text != "":
		return fmt.Sprintf("VCC answered HTTP %d: %s", e.Status, e.Text)
	case e.Status != 0:
		return fmt.Sprintf("VCC answered HTTP %d.", e.Status)
	case errors.Is(e.Err, context.DeadlineExceeded), errors.As(e.Err, &nerr) && nerr.Timeout():
		return "VCC did not answer in time."
	case errors.Is(e.Err, context.Canceled):
		return "The request to VCC was cancelled."
	default:
		return "VCC could not be reached."
	}
}
