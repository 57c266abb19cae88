package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ErrorCode is one of paybridge's public error codes: for programs to branch on. The set is
// closed and each code has one HTTP status; see the server's /docs/error-codes.
type ErrorCode string

// The 27 error codes of the reference, in its order.
const (
	CodeAuthMissingBearer             ErrorCode = "auth_missing_bearer"
	CodeAuthInvalidKey                ErrorCode = "auth_invalid_key"
	CodeAuthKeyExpired                ErrorCode = "auth_key_expired"
	CodeAuthKeyTypeForbidden          ErrorCode = "auth_key_type_forbidden"
	CodeAuthMerchantInactive          ErrorCode = "auth_merchant_inactive"
	CodeMerchantNotOnboarded          ErrorCode = "merchant_not_onboarded"
	CodeAuthServiceUnavailable        ErrorCode = "auth_service_unavailable"
	CodeSessionNotFound               ErrorCode = "session_not_found"
	CodeSessionExpired                ErrorCode = "session_expired"
	CodeSessionWrongState             ErrorCode = "session_wrong_state"
	CodeSessionIntegrityError         ErrorCode = "session_integrity_error"
	CodeValidationError               ErrorCode = "validation_error"
	CodeValidationMissingField        ErrorCode = "validation_missing_field"
	CodeValidationInvalidAmount       ErrorCode = "validation_invalid_amount"
	CodeMerchantNotConfigured         ErrorCode = "merchant_not_configured"
	CodeRateLimitExceeded             ErrorCode = "rate_limit_exceeded"
	CodeRateLimitExceededPerKey       ErrorCode = "rate_limit_exceeded_per_key"
	CodeProviderUnavailable           ErrorCode = "provider_unavailable"
	CodeProviderAttestationFailed     ErrorCode = "provider_attestation_failed"
	CodeProviderChargeFailed          ErrorCode = "provider_charge_failed"
	CodeInternalError                 ErrorCode = "internal_error"
	CodeWebhookMissingSignature       ErrorCode = "webhook_missing_signature"
	CodeWebhookInvalidSignature       ErrorCode = "webhook_invalid_signature"
	CodeWebhookNotConfigured          ErrorCode = "webhook_not_configured"
	CodeOriginForbidden               ErrorCode = "origin_forbidden"
	CodeTransactionVerificationFailed ErrorCode = "transaction_verification_failed"
	CodeUnsupportedMediaType          ErrorCode = "unsupported_media_type"
)

// ErrorCodes returns every error code, in the reference's order.
func ErrorCodes() []ErrorCode {
	return []ErrorCode{
		CodeAuthMissingBearer, CodeAuthInvalidKey, CodeAuthKeyExpired, CodeAuthKeyTypeForbidden,
		CodeAuthMerchantInactive, CodeMerchantNotOnboarded, CodeAuthServiceUnavailable,
		CodeSessionNotFound, CodeSessionExpired, CodeSessionWrongState, CodeSessionIntegrityError,
		CodeValidationError, CodeValidationMissingField, CodeValidationInvalidAmount,
		CodeMerchantNotConfigured, CodeRateLimitExceeded, CodeRateLimitExceededPerKey,
		CodeProviderUnavailable, CodeProviderAttestationFailed, CodeProviderChargeFailed,
		CodeInternalError, CodeWebhookMissingSignature, CodeWebhookInvalidSignature,
		CodeWebhookNotConfigured, CodeOriginForbidden, CodeTransactionVerificationFailed,
		CodeUnsupportedMediaType,
	}
}

// Error is an error answer: paybridge's error envelope, or, when something in between (a proxy,
// a load balancer) answered instead, its status with an empty Code.
type Error struct {
	// HTTPStatus is the response's status code.
	HTTPStatus int `json:"-"`
	// Code is for programs; empty when the answer was not paybridge's.
	Code ErrorCode `json:"code"`
	// Message is for people (the envelope's "error").
	Message string `json:"error"`
	// Fix says what to do about it.
	Fix string `json:"fix"`
	// Docs links to the code's section of the error reference.
	Docs string `json:"docs"`
	// Param names the field, query parameter or header at fault, when one is.
	Param string `json:"param,omitempty"`
	// RequestID identifies the request to paybridge's operators: the body's requestId, else
	// the X-Request-Id header.
	RequestID string `json:"requestId"`
	// RetryAfter is the response's Retry-After (a 429's), zero without one.
	RetryAfter time.Duration `json:"-"`
}

// Error reads "paybridge: <status> <code>: <message> (param <p>; request <id>)".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "paybridge: %d", e.HTTPStatus)
	if e.Code != "" {
		b.WriteString(" " + string(e.Code))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	var notes []string
	if e.Param != "" {
		notes = append(notes, "param "+e.Param)
	}
	if e.RequestID != "" {
		notes = append(notes, "request "+e.RequestID)
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, "; ") + ")")
	}
	return b.String()
}

// CodeOf returns the code of the *Error in err's chain, or "" when there is none (a network
// error, a cancelled context) or the answer was not paybridge's.
func CodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// errorFrom builds the Error of a non-2xx answer. A body that is not paybridge's envelope is
// left out: it is not paybridge's words and may be anything.
func errorFrom(status int, header http.Header, body []byte, now time.Time) *Error {
	e := &Error{}
	if err := jsonUnmarshal(body, e); err != nil || e.Code == "" {
		e = &Error{Message: fmt.Sprintf("%d %s, not from paybridge's API", status, http.StatusText(status))}
	}
	e.HTTPStatus = status
	if e.RequestID == "" {
		e.RequestID = header.Get("X-Request-Id")
	}
	e.RetryAfter = retryAfter(header.Get("Retry-After"), now)
	return e
}
