package bridge

import (
	"errors"
	"fmt"
)

// Code is one of the 27 public error codes of paybridge's API. The set is closed: nothing else is
// ever emitted. Each code's HTTP status and documentation live in one table, catalog.go.
type Code string

// The 27 error codes, exactly those of the public error-code reference.
const (
	CodeAuthMissingBearer             Code = "auth_missing_bearer"
	CodeAuthInvalidKey                Code = "auth_invalid_key"
	CodeAuthKeyExpired                Code = "auth_key_expired"
	CodeAuthKeyTypeForbidden          Code = "auth_key_type_forbidden"
	CodeAuthMerchantInactive          Code = "auth_merchant_inactive"
	CodeMerchantNotOnboarded          Code = "merchant_not_onboarded"
	CodeAuthServiceUnavailable        Code = "auth_service_unavailable"
	CodeSessionNotFound               Code = "session_not_found"
	CodeSessionExpired                Code = "session_expired"
	CodeSessionWrongState             Code = "session_wrong_state"
	CodeSessionIntegrityError         Code = "session_integrity_error"
	CodeValidationError               Code = "validation_error"
	CodeValidationMissingField        Code = "validation_missing_field"
	CodeValidationInvalidAmount       Code = "validation_invalid_amount"
	CodeMerchantNotConfigured         Code = "merchant_not_configured"
	CodeRateLimitExceeded             Code = "rate_limit_exceeded"
	CodeRateLimitExceededPerKey       Code = "rate_limit_exceeded_per_key"
	CodeProviderUnavailable           Code = "provider_unavailable"
	CodeProviderAttestationFailed     Code = "provider_attestation_failed"
	CodeProviderChargeFailed          Code = "provider_charge_failed"
	CodeInternalError                 Code = "internal_error"
	CodeWebhookMissingSignature       Code = "webhook_missing_signature"
	CodeWebhookInvalidSignature       Code = "webhook_invalid_signature"
	CodeWebhookNotConfigured          Code = "webhook_not_configured"
	CodeOriginForbidden               Code = "origin_forbidden"
	CodeTransactionVerificationFailed Code = "transaction_verification_failed"
	CodeUnsupportedMediaType          Code = "unsupported_media_type"
)

// Codes lists every public error code in the order of the reference.
var Codes = []Code{
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

// Error is paybridge's one error type. Message, Fix and Param are public: they go into the
// response body verbatim and must never hold a secret. Cause is private: it is logged (it may
// name upstream details) but never shown to the caller.
type Error struct {
	Code    Code
	Message string // human-readable, public
	Fix     string // what to do; empty means the catalog's default fix for Code
	Param   string // the field path at fault, when one field is
	Cause   error  // private detail for logs
}

// Error implements error. It prints the public parts and the cause, for logs.
func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the private cause so errors.Is and errors.As see through an Error.
func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns an Error with code and a formatted public message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithFix returns e with its public fix set.
func (e *Error) WithFix(fix string) *Error { e.Fix = fix; return e }

// WithParam returns e with the field at fault set.
func (e *Error) WithParam(param string) *Error { e.Param = param; return e }

// WithCause returns e with a private cause attached.
func (e *Error) WithCause(cause error) *Error { e.Cause = cause; return e }

// ErrorCode returns the code of the first *Error in err's chain, or CodeInternalError for any
// other non-nil error, or "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternalError
}

// AsError returns the first *Error in err's chain, or an internal_error wrapping err, so that
// callers always have a public message that holds nothing private.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternalError, Message: "An unexpected error occurred.", Cause: err}
}

// Sentinel errors returned by Store implementations; the service turns them into public errors.
var (
	// ErrNotFound means the object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a write lost a race or would duplicate an existing object.
	ErrConflict = errors.New("conflict")
)
