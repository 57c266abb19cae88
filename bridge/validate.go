package bridge

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the create request (DESIGN section 4 and the error-code reference).
const (
	MinAmount         = 1
	MaxAmount         = 99_999_999
	MaxLineItems      = 100
	MaxMetadataKeys   = 50
	MaxMetadataKeyLen = 40
	MaxMetadataValue  = 500
	MinExpiresIn      = 300 * time.Second
	MaxExpiresIn      = 3600 * time.Second
	maxTextField      = 255
	maxAgentID        = 128
)

// CreateSessionInput is a validated-shape request to start a payment session. Web decodes the
// JSON; Validate applies the rules that hold whatever the entry point.
type CreateSessionInput struct {
	// SessionID is the id to give the session; empty: a new one. An idempotent create fixes it
	// before VCC is called, so a retry can find what the first run made.
	SessionID              string
	MerchantID             string
	Mode                   Mode
	AgentID                string
	Channel                Channel
	Amount                 int64
	Currency               string
	Country                string
	AccountConfigurationID *int // nil: the merchant's default; 0 is a real id (production flows use it)
	Reference              string
	Customer               Customer
	LineItems              []LineItem
	Metadata               map[string]string
	SuccessURL             string
	CancelURL              string
	ExpiresIn              time.Duration // 0: the service default
}

// Validate checks every field rule and returns the first violation as a public error naming the
// field. It normalises currency and country to upper case and defaults the channel.
func (in *CreateSessionInput) Validate() error {
	if in.AgentID == "" {
		return missing("agentId")
	}
	if len(in.AgentID) > maxAgentID || !printable(in.AgentID) {
		return invalid("agentId", "agentId must be 1 to %d printable characters", maxAgentID)
	}
	if in.Amount < MinAmount || in.Amount > MaxAmount {
		return Errorf(CodeValidationInvalidAmount, "amount must be an integer from %d to %d minor units, got %d", MinAmount, MaxAmount, in.Amount).WithParam("amount")
	}
	if in.Currency == "" {
		return missing("currency")
	}
	if len(in.Currency) != 3 {
		return invalid("currency", "currency must be exactly 3 characters, got %q", in.Currency)
	}
	in.Currency = strings.ToUpper(in.Currency)
	if _, ok := CurrencyExponent(in.Currency); !ok {
		return invalid("currency", "currency %q is not an ISO 4217 currency a card can be charged in", in.Currency)
	}
	if in.Country != "" {
		if len(in.Country) != 2 || !letters(in.Country) {
			return invalid("country", "country must be exactly 2 characters (ISO 3166-1 alpha-2), got %q", in.Country)
		}
		in.Country = strings.ToUpper(in.Country)
	}
	switch in.Channel {
	case "":
		in.Channel = ChannelAgentAssist
	case ChannelAgentAssist, ChannelDigital:
	default:
		return invalid("channel", "channel must be %q or %q, got %q", ChannelAgentAssist, ChannelDigital, in.Channel)
	}
	if in.AccountConfigurationID != nil && *in.AccountConfigurationID < 0 {
		return invalid("accountConfigurationId", "accountConfigurationId must be 0 or a positive integer")
	}
	if err := text("reference", in.Reference); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{
		{"customer.firstName", in.Customer.FirstName}, {"customer.surname", in.Customer.Surname},
		{"customer.email", in.Customer.Email}, {"customer.phone", in.Customer.Phone},
		{"customer.street1", in.Customer.Street1}, {"customer.city", in.Customer.City},
		{"customer.postcode", in.Customer.Postcode},
	} {
		if err := text(f.name, f.value); err != nil {
			return err
		}
	}
	if in.Customer.Email != "" && !strings.Contains(in.Customer.Email, "@") {
		return invalid("customer.email", "customer.email must be an email address")
	}
	for _, u := range []struct{ name, value string }{{"successUrl", in.SuccessURL}, {"cancelUrl", in.CancelURL}} {
		if err := checkRedirectURL(u.name, u.value, in.Mode); err != nil {
			return err
		}
	}
	if len(in.LineItems) > MaxLineItems {
		return invalid("lineItems", "lineItems may hold at most %d items, got %d", MaxLineItems, len(in.LineItems))
	}
	for i, li := range in.LineItems {
		p := fmt.Sprintf("lineItems[%d]", i)
		if li.Name == "" {
			return missing(p + ".name")
		}
		if err := text(p+".name", li.Name); err != nil {
			return err
		}
		if li.Quantity < 1 || li.Quantity > 9999 {
			return invalid(p+".quantity", "%s.quantity must be from 1 to 9999, got %d", p, li.Quantity)
		}
		if li.UnitAmount < 0 || li.UnitAmount > MaxAmount {
			return invalid(p+".unitAmount", "%s.unitAmount must be from 0 to %d minor units, got %d", p, MaxAmount, li.UnitAmount)
		}
	}
	if len(in.Metadata) > MaxMetadataKeys {
		return invalid("metadata", "metadata may hold at most %d keys, got %d", MaxMetadataKeys, len(in.Metadata))
	}
	for k, v := range in.Metadata {
		if k == "" || utf8.RuneCountInString(k) > MaxMetadataKeyLen {
			return invalid("metadata", "metadata keys must be 1 to %d characters, got %q", MaxMetadataKeyLen, k)
		}
		if utf8.RuneCountInString(v) > MaxMetadataValue {
			return invalid("metadata."+k, "metadata values may be at most %d characters; %q has %d", MaxMetadataValue, k, utf8.RuneCountInString(v))
		}
	}
	if in.ExpiresIn != 0 && (in.ExpiresIn < MinExpiresIn || in.ExpiresIn > MaxExpiresIn) {
		return invalid("expiresIn", "expiresIn must be from %d to %d seconds, got %d", int(MinExpiresIn.Seconds()), int(MaxExpiresIn.Seconds()), int(in.ExpiresIn.Seconds()))
	}
	return nil
}

func missing(field string) *Error {
	return Errorf(CodeValidationMissingField, "Missing required field %q", field).WithParam(field)
}

func invalid(field, format string, args ...any) *Error {
	return Errorf(CodeValidationError, format, args...).WithParam(field)
}

func text(field, v string) error {
	if utf8.RuneCountInString(v) > maxTextField || !utf8.ValidString(v) {
		return invalid(field, "%s must be at most %d characters of valid UTF-8", field, maxTextField)
	}
	return nil
}

// checkRedirectURL enforces HTTPS, with localhost exempt in test mode.
func checkRedirectURL(field, raw string, mode Mode) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || len(raw) > 2048 {
		return invalid(field, "%s must be an absolute URL", field)
	}
	if u.Scheme == "https" {
		return nil
	}
	if u.Scheme == "http" && mode == ModeTest && isLoopbackHost(u.Hostname()) {
		return nil
	}
	return invalid(field, "%s must use https (http://localhost is allowed in test mode only)", field)
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}

func letters(s string) bool {
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return false
		}
	}
	return true
}
