package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/paybridge/paybridge/bridge"
)

// MaxBodyBytes is the largest request body accepted (1 MiB).
const MaxBodyBytes = 1 << 20

// fieldFixes are the fixes for type errors on fields whose right form is worth spelling out.
var fieldFixes = map[string]string{
	"amount":                 "Ensure 'amount' is a positive integer in minor units (e.g., 1499 for $14.99)",
	"accountConfigurationId": "Ensure 'accountConfigurationId' is an integer, one of the IDs Vonage supplied.",
	"expiresIn":              "Ensure 'expiresIn' is an integer number of seconds from 300 to 3600.",
	"metadata":               "Ensure 'metadata' is an object whose values are all strings of at most 500 characters.",
	"lineItems":              "Ensure 'lineItems' is an array of at most 100 objects {name, quantity, unitAmount}.",
}

// requireJSON answers 415 unless the request says its body is JSON.
func requireJSON(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		got := r.Header.Get("Content-Type")
		if got == "" {
			got = "none"
		}
		return bridge.Errorf(bridge.CodeUnsupportedMediaType, "Content-Type must be application/json, got %s.", got)
	}
	return nil
}

// readBody reads at most MaxBodyBytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, bridge.Errorf(bridge.CodeValidationError, "The request body is larger than 1 MiB.").
			WithFix("Send a smaller body: a session needs only a few fields (lineItems at most 100, metadata values at most 500 characters).")
	}
	if err != nil {
		return nil, bridge.Errorf(bridge.CodeValidationError, "The request body could not be read.").WithCause(err)
	}
	return body, nil
}

// decodeStrict decodes one JSON object from body into v, rejecting unknown fields, trailing data
// and everything checkStrictJSON refuses (field names in the wrong case, duplicate keys, control
// characters, invalid UTF-8), and words every failure like the reference's validator ("Expected
// number, received string at \"amount\""). An empty body decodes as {} when emptyOK.
func decodeStrict(body []byte, v any, emptyOK bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return bridge.Errorf(bridge.CodeValidationError, "The request body is empty; send a JSON object.")
	}
	if err := checkStrictJSON(body, reflect.TypeOf(v), false); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bridge.Errorf(bridge.CodeValidationError, "Unexpected data after the JSON object.")
	}
	return nil
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return bridge.Errorf(bridge.CodeValidationError, "Malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: ")).
			WithFix("Send a valid JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bridge.Errorf(bridge.CodeValidationError, "Malformed JSON: the body ends in the middle of a value.").WithFix("Send a valid JSON object.")
	case errors.As(err, &typ):
		path := typ.Field
		if path == "" {
			return bridge.Errorf(bridge.CodeValidationError, "Expected object, received %s", jsonKind(typ.Value)).WithFix("Send a JSON object.")
		}
		e := bridge.Errorf(bridge.CodeValidationError, "Expected %s, received %s at %q", goKind(typ.Type), jsonKind(typ.Value), path).WithParam(path)
		if fix, ok := fieldFixes[strings.SplitN(path, ".", 2)[0]]; ok {
			e.Fix = fix
		}
		return e
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		name = capText(name, capInputText)
		return bridge.Errorf(bridge.CodeValidationError, "Unrecognized key %q", name).WithParam(name).
			WithFix(fmt.Sprintf("Remove %q: unknown fields are rejected so that typos do not pass silently.", name))
	}
	return bridge.Errorf(bridge.CodeValidationError, "The request body is not valid JSON.").WithCause(err)
}

// jsonKind names a JSON value's type from UnmarshalTypeError.Value ("string", "number 1.5", ...).
func jsonKind(v string) string {
	switch {
	case strings.HasPrefix(v, "number"):
		return "number"
	case v == "bool":
		return "boolean"
	}
	return v
}

// goKind names the JSON type a Go type expects.
func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Pointer:
		return goKind(t.Elem())
	}
	return "object"
}

// rawKind names the JSON type of a raw value.
func rawKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case '[':
		return "array"
	case '{':
		return "object"
	case 'n':
		return "null"
	}
	return "number"
}

// parseAmount reads the amount field, kept raw so that a string, a fraction or an overflow each
// get the right code: a non-number is a type error, a non-integer number an invalid amount.
func parseAmount(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, bridge.Errorf(bridge.CodeValidationMissingField, "Missing required field \"amount\"").WithParam("amount")
	}
	if kind := rawKind(raw); kind != "number" {
		return 0, bridge.Errorf(bridge.CodeValidationError, "Expected number, received %s at \"amount\"", kind).
			WithParam("amount").WithFix(fieldFixes["amount"])
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, bridge.Errorf(bridge.CodeValidationInvalidAmount, "amount must be a positive integer in minor units, got %s", raw).
			WithParam("amount")
	}
	return n, nil
}
