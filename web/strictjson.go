package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/paybridge/paybridge/bridge"
)

// Strict JSON: what encoding/json lets through and paybridge refuses, before a body is decoded.
// encoding/json matches field names case-insensitively, keeps the last of duplicate keys,
// accepts escaped control characters and silently replaces invalid UTF-8; each of those would
// let a body mean something other than what its sender (or a proxy, or a log reader) sees. Each
// is a validation_error whose param names the field.
//
// Free-text fields (a struct field tagged `text:"free"`: the values of metadata) may carry tab,
// line feed and carriage return; no field carries any other control character.

// errStopWalk ends the walk at a syntax error, which decoding then reports in its own words.
var errStopWalk = errors.New("stop")

// checkStrictJSON walks body, a JSON value for Go type t, and returns the first strictness
// violation. allowUnknown lets keys that name no field through (for bodies paybridge reads only
// part of, such as VCC's webhook); their contents are still checked for duplicate keys and
// UTF-8, but not for control characters, which are not paybridge's to judge there.
func checkStrictJSON(body []byte, t reflect.Type, allowUnknown bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a number too large for float64 is a type error for decoding to word
	w := &strictWalker{dec: dec, body: body, allowUnknown: allowUnknown}
	if err := w.value("", t, false); err != nil && err != errStopWalk {
		return err
	}
	return nil
}

type strictWalker struct {
	dec          *json.Decoder
	body         []byte
	allowUnknown bool
}

// anyType stands for a value of ours whose shape is not a struct (a json.RawMessage, an
// interface): its strings are checked, its keys are free.
var anyType = reflect.TypeFor[any]()

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// value walks one value at path of Go type t; t is nil inside an unknown field.
func (w *strictWalker) value(path string, t reflect.Type, free bool) error {
	start := w.dec.InputOffset()
	tok, err := w.dec.Token()
	if err != nil {
		return w.tokenError(path, err)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return w.array(path, t, free)
		}
		return w.object(path, t, free)
	case string:
		return w.str(path, w.body[start:w.dec.InputOffset()], v, t != nil, free)
	}
	return nil
}

func (w *strictWalker) array(path string, t reflect.Type, free bool) error {
	var elem reflect.Type
	switch {
	case t == nil:
	case t != rawMessageType && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		elem = t.Elem()
	default:
		elem = anyType
	}
	for i := 0; w.dec.More(); i++ {
		if err := w.value(path+"["+strconv.Itoa(i)+"]", elem, free); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil {
		return w.tokenError(path, err)
	}
	return nil
}

func (w *strictWalker) object(path string, t reflect.Type, free bool) error {
	var fields map[string]jsonField
	isStruct := t != nil && t.Kind() == reflect.Struct
	if isStruct {
		fields = fieldsOf(t)
	}
	seen := map[string]bool{}
	for w.dec.More() {
		start := w.dec.InputOffset()
		tok, err := w.dec.Token()
		if err != nil {
			return w.tokenError(path, err)
		}
		key, _ := tok.(string)
		keyPath := joinPath(path, key)
		if err := w.str(keyPath, w.body[start:w.dec.InputOffset()], key, t != nil, false); err != nil {
			return err
		}
		if seen[key] {
			return fieldError(keyPath, "Duplicate key %q: each key may appear once in an object.", capText(keyPath, capInputText)).
				WithFix("Send each field once; with duplicates, readers of the body disagree about which one counts.")
		}
		seen[key] = true
		var child reflect.Type
		childFree := false
		switch {
		case isStruct:
			f, ok := fields[key]
			switch {
			case ok:
				child, childFree = f.typ, f.free
			case w.caseVariant(fields, key) != "":
				want := w.caseVariant(fields, key)
				return fieldError(keyPath, "Unrecognized key %q: field names are case-sensitive; did you mean %q?", capText(key, capInputText), want).
					WithFix(fmt.Sprintf("Spell the field %q exactly.", want))
			case !w.allowUnknown:
				// Decoding refuses it, in the words it always has.
				return errStopWalk
			}
		case t == nil:
		case t.Kind() == reflect.Map && t != rawMessageType:
			child, childFree = t.Elem(), free
		default:
			child = anyType
		}
		if err := w.value(keyPath, child, childFree); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil {
		return w.tokenError(path, err)
	}
	return nil
}

// caseVariant returns the field key names with different letter case, or "".
func (w *strictWalker) caseVariant(fields map[string]jsonField, key string) string {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return name
		}
	}
	return ""
}

// str checks one string, a key or a value: raw is its bytes in the body (with what precedes it),
// s what it decoded to. known says the string is one of paybridge's fields, whose control
// characters are checked.
func (w *strictWalker) str(path string, raw []byte, s string, known, free bool) error {
	if !utf8.Valid(raw) || strings.ContainsRune(s, utf8.RuneError) && !literalReplacementChar(raw) {
		return fieldError(path, "Invalid UTF-8 at %q: strings must be valid UTF-8.", capText(path, capInputText)).
			WithFix("Encode the body as UTF-8 (and escape only valid Unicode characters; a lone surrogate such as \\ud800 is not one).")
	}
	if !known {
		return nil
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(free && (r == '\t' || r == '\n' || r == '\r')) {
			return fieldError(path, "Control character U+%04X at %q.", r, capText(path, capInputText)).
				WithFix("Remove control characters; only metadata values may hold tabs and line breaks.")
		}
	}
	return nil
}

// literalReplacementChar reports whether raw writes U+FFFD itself (as UTF-8 or escaped) rather
// than encoding/json producing it from an invalid escape.
func literalReplacementChar(raw []byte) bool {
	return bytes.Contains(raw, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`))
}

// tokenError turns a tokenizer error into the strict error it means: a raw control character in
// a string is named with its field; any other syntax error is left to the decoder.
func (w *strictWalker) tokenError(path string, err error) error {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) && strings.Contains(syntax.Error(), "in string literal") && path != "" {
		return fieldError(path, "Control character in a string at %q.", capText(path, capInputText)).
			WithFix("Remove control characters; only metadata values may hold tabs and line breaks, and those escaped (\\t, \\n, \\r).")
	}
	return errStopWalk
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldError is a validation_error about the field at path.
func fieldError(path, format string, args ...any) *bridge.Error {
	return bridge.Errorf(bridge.CodeValidationError, format, args...).WithParam(capText(path, capInputText))
}

// jsonField is one field of a request struct as JSON sees it.
type jsonField struct {
	typ  reflect.Type
	free bool // free text: may hold tabs and line breaks
}

var fieldCache sync.Map // reflect.Type → map[string]jsonField

// fieldsOf returns the JSON field names of struct type t, embedded structs' included.
func fieldsOf(t reflect.Type) map[string]jsonField {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]jsonField)
	}
	m := map[string]jsonField{}
	addFields(t, m)
	fieldCache.Store(t, m)
	return m
}

func addFields(t reflect.Type, m map[string]jsonField) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, m)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = jsonField{typ: f.Type, free: f.Tag.Get("text") == "free"}
	}
}

// decodeLenient decodes a body paybridge reads only part of (VCC's webhook): unknown fields
// are allowed, everything else is as strict as decodeStrict.
func decodeLenient(body []byte, v any) error {
	if err := checkStrictJSON(body, reflect.TypeOf(v), true); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return bridge.Errorf(bridge.CodeValidationError, "The webhook body must be VCC's session status JSON with a sessionGuid.").WithParam("sessionGuid")
	}
	return nil
}
