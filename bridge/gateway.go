package bridge

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// VCC's paymentResultData depends on the payment gateway behind the PCI Pal flow (UPSTREAM): the
// documented example is CyberSource's vocabulary, a Chase Orbital flow answers with
// ApprovalStatus and no decision at all. A GatewayProfile says how to read one gateway's result
// (and how to write paymentData for its flow); each merchant names one, optionally one per
// account configuration.

// Built-in gateway profile names.
const (
	ProfileCyberSource  = "cybersource"
	ProfileChaseOrbital = "chase_orbital"
	ProfileCustom       = "custom"
)

// AmountFormat is how an amount is written: whole minor units ("1240") or a decimal string in
// the currency's exponent ("12.40").
type AmountFormat string

// Amount formats.
const (
	AmountMinor   AmountFormat = "minor"
	AmountDecimal AmountFormat = "decimal"
)

// GatewayProfile reads one gateway's paymentResultData and names the paymentData keys of its
// flow.
type GatewayProfile struct {
	Name string // cybersource, chase_orbital or custom

	// StatusKey holds the gateway's verdict; Approved, Declined and Errored list its values
	// (compared without case). Any other value, or a missing key, is unreadable.
	StatusKey                   string
	Approved, Declined, Errored []string
	TransactionIDKey            string
	ReasonKey                   string
	// AmountKey and CurrencyKey hold what was charged, in AmountFormat. Verified against the
	// session unless VerifyAmount is false, which a profile must say explicitly: a payment is
	// then taken as approved whatever its amount, at the merchant's risk.
	AmountKey    string
	AmountFormat AmountFormat
	CurrencyKey  string
	VerifyAmount bool

	// PaymentData names the keys of the paymentData paybridge sends VCC for this flow.
	PaymentData PaymentDataKeys
}

// PaymentDataKeys are the paymentData keys of a flow and the format of its Amount. An empty key
// leaves that field out.
type PaymentDataKeys struct {
	Amount, Currency, Country, Reference                      string
	FirstName, Surname, Email, Phone, Street1, City, Postcode string
	AmountFormat                                              AmountFormat
}

// DefaultPaymentDataKeys are the keys VCC documents (UPSTREAM), with a decimal Amount.
var DefaultPaymentDataKeys = PaymentDataKeys{
	Amount: "Amount", Currency: "Currency", Country: "Country", Reference: "MerchantReferenceCode",
	FirstName: "FirstName", Surname: "Surname", Email: "Email", Phone: "CustomerPhoneNumber",
	Street1: "Street1", City: "City", Postcode: "Postcode", AmountFormat: AmountDecimal,
}

// BuiltinProfile returns the built-in profile called name, or false.
func BuiltinProfile(name string) (GatewayProfile, bool) {
	switch name {
	case ProfileCyberSource:
		// decision ACCEPT / REJECT / ERROR; REVIEW (held for the merchant's review) is neither a
		// payment nor a decline, so it reads as unreadable: the agent must not take it again.
		return GatewayProfile{Name: name, StatusKey: "decision", Approved: []string{"ACCEPT"}, Declined: []string{"REJECT"},
			Errored: []string{"ERROR"}, TransactionIDKey: "requestID", ReasonKey: "reasonCode",
			AmountKey: "Amount", AmountFormat: AmountMinor, CurrencyKey: "Currency", VerifyAmount: true,
			PaymentData: DefaultPaymentDataKeys}, true
	case ProfileChaseOrbital:
		// ApprovalStatus 1 approved, 0 declined, 2 error; RespCode; TxRefNum. The amount keys
		// are VCC's general ones: a flow that reports none must say verifyAmount: false.
		return GatewayProfile{Name: name, StatusKey: "ApprovalStatus", Approved: []string{"1"}, Declined: []string{"0"},
			Errored: []string{"2"}, TransactionIDKey: "TxRefNum", ReasonKey: "RespCode",
			AmountKey: "Amount", AmountFormat: AmountMinor, CurrencyKey: "Currency", VerifyAmount: true,
			PaymentData: DefaultPaymentDataKeys}, true
	}
	return GatewayProfile{}, false
}

// DefaultProfile is the profile of a merchant that names none: CyberSource, the documented shape.
func DefaultProfile() GatewayProfile {
	p, _ := BuiltinProfile(ProfileCyberSource)
	return p
}

// Check reports what is wrong with p, naming the profile field.
func (p *GatewayProfile) Check() error {
	switch {
	case p.StatusKey == "":
		return fmt.Errorf("statusKey: required")
	case len(p.Approved) == 0:
		return fmt.Errorf("approved: at least one value means approved")
	case p.VerifyAmount && (p.AmountKey == "" || p.CurrencyKey == ""):
		return fmt.Errorf("amountKey: required to verify the amount (or set verifyAmount: false, at the merchant's risk)")
	case p.AmountFormat != AmountMinor && p.AmountFormat != AmountDecimal:
		return fmt.Errorf("amountFormat: must be minor or decimal")
	case p.PaymentData.AmountFormat != AmountMinor && p.PaymentData.AmountFormat != AmountDecimal:
		return fmt.Errorf("paymentData.amountFormat: must be minor or decimal")
	}
	for _, v := range p.Approved {
		if containsFold(p.Declined, v) || containsFold(p.Errored, v) {
			return fmt.Errorf("approved: %q also means declined or error", v)
		}
	}
	return nil
}

// OutcomeKind is what a provider session's result data says.
type OutcomeKind int

// Outcome kinds.
const (
	OutcomeNone       OutcomeKind = iota // no result data at all
	OutcomeApproved                      // the gateway took the payment
	OutcomeDeclined                      // the gateway refused it
	OutcomeError                         // the gateway failed to process it
	OutcomeUnreadable                    // result data the profile cannot read: it may be a payment
)

// Outcome is result data read through a profile.
type Outcome struct {
	Kind          OutcomeKind
	GatewayStatus string // the value of the profile's status key, as the gateway wrote it
	ReasonCode    string
	TransactionID string
	Amount        int64 // minor units; valid when AmountRead
	AmountRead    bool
	Currency      string
}

// Decision is the outcome in paybridge's public vocabulary: ACCEPT, REJECT, ERROR or UNKNOWN.
func (o Outcome) Decision() string {
	switch o.Kind {
	case OutcomeApproved:
		return DecisionAccept
	case OutcomeDeclined:
		return DecisionReject
	case OutcomeError:
		return DecisionError
	case OutcomeUnreadable:
		return DecisionUnknown
	}
	return ""
}

// Read reads result data through p. No data at all is OutcomeNone; data without the status key,
// or with a value p does not list, is OutcomeUnreadable.
func (p *GatewayProfile) Read(data map[string]string) Outcome {
	if len(data) == 0 {
		return Outcome{Kind: OutcomeNone}
	}
	status, ok := lookup(data, p.StatusKey)
	o := Outcome{GatewayStatus: status, ReasonCode: get(data, p.ReasonKey), TransactionID: get(data, p.TransactionIDKey),
		Currency: strings.ToUpper(strings.TrimSpace(get(data, p.CurrencyKey)))}
	switch {
	case !ok:
		o.Kind = OutcomeUnreadable
	case containsFold(p.Approved, status):
		o.Kind = OutcomeApproved
	case containsFold(p.Declined, status):
		o.Kind = OutcomeDeclined
	case containsFold(p.Errored, status):
		o.Kind = OutcomeError
	default:
		o.Kind = OutcomeUnreadable
	}
	if raw, ok := lookup(data, p.AmountKey); ok {
		o.Amount, o.AmountRead = parseAmount(raw, p.AmountFormat, o.Currency)
	}
	return o
}

// Matches reports whether an approved outcome is for exactly amount in currency (always true for
// a profile that does not verify amounts).
func (p *GatewayProfile) Matches(o Outcome, amount int64, currency string) bool {
	if !p.VerifyAmount {
		return true
	}
	return o.AmountRead && o.Amount == amount && strings.EqualFold(o.Currency, currency)
}

// parseAmount reads an amount in format: whole minor units, or a decimal in currency's exponent
// (a currency symbol or code around it is tolerated, a thousands separator is not).
func parseAmount(raw string, format AmountFormat, currency string) (int64, bool) {
	s := strings.TrimSpace(raw)
	if format == AmountMinor {
		if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	if strings.ContainsAny(s, "-−()") {
		return 0, false // a negative amount (a credit or refund), whose sign the trim below would drop
	}
	s = strings.TrimFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9') && r != '.' })
	digits, ok := CurrencyExponent(currency)
	if !ok || s == "" {
		return 0, false
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || len(frac) > digits || (hasFrac && frac == "") {
		return 0, false
	}
	frac += strings.Repeat("0", digits-len(frac))
	for _, part := range []string{whole, frac} {
		if strings.IndexFunc(part, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	return n, err == nil
}

// lookup finds key in data, exactly or else without regard to case (gateways and VCC differ).
func lookup(data map[string]string, key string) (string, bool) {
	if key == "" {
		return "", false
	}
	if v, ok := data[key]; ok {
		return strings.TrimSpace(v), true
	}
	for k, v := range data {
		if strings.EqualFold(k, key) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func get(data map[string]string, key string) string {
	v, _ := lookup(data, key)
	return v
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// removedCardNumber replaces a value that looks like a card number.
const removedCardNumber = "[removed: looks like a card number]"

// SanitizeResultData returns a copy of data for keeping and showing: every value that holds
// something shaped like a card number (13 to 19 digits, spaces or dashes allowed between them,
// passing the Luhn check) is replaced, and so is any key that does.
func SanitizeResultData(data map[string]string) map[string]string {
	if len(data) == 0 {
		return nil
	}
	out := make(map[string]string, len(data))
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		v := data[k]
		if HasCardNumber(k) {
			k = fmt.Sprintf("%s #%d", removedCardNumber, i+1)
		}
		if HasCardNumber(v) {
			v = removedCardNumber
		}
		out[k] = v
	}
	return out
}

// HasCardNumber reports whether s holds a run of 13 to 19 digits (single spaces or dashes
// allowed between them) that passes the Luhn check.
func HasCardNumber(s string) bool {
	var digits []byte
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			c := s[i]
			if c >= '0' && c <= '9' {
				digits = append(digits, c)
				continue
			}
			if (c == ' ' || c == '-') && len(digits) > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				continue
			}
		}
		if len(digits) >= 13 && len(digits) <= 19 && luhn(digits) {
			return true
		}
		digits = digits[:0]
	}
	return false
}

func luhn(d []byte) bool {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if (len(d)-1-i)%2 == 1 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}
