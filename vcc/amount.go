package vcc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/paybridge/paybridge/bridge"
)

// FormatAmount renders an amount in minor units as the decimal string VCC's paymentData.Amount
// expects, using the currency's ISO 4217 exponent: GBP 1240 → "12.40", JPY 1240 → "1240",
// BHD 1240 → "1.240", IDR 1000000 → "10000.00". An unknown currency is a validation_error on
// "currency".
func FormatAmount(minor int64, currencyCode string) (string, error) {
	scale, ok := bridge.CurrencyExponent(currencyCode)
	if !ok {
		return "", bridge.Errorf(bridge.CodeValidationError, "Unknown currency %q", currencyCode).
			WithParam("currency").
			WithFix("Use an ISO 4217 currency code such as GBP, EUR or USD.")
	}
	if minor < 0 {
		return "", bridge.Errorf(bridge.CodeValidationInvalidAmount, "Amount must not be negative").
			WithParam("amount")
	}
	digits := strconv.FormatInt(minor, 10)
	if scale == 0 {
		return digits, nil
	}
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	cut := len(digits) - scale
	return digits[:cut] + "." + digits[cut:], nil
}

// ParseMinorAmount parses the minor-unit amount string of a VCC status (paymentResultData.Amount,
// e.g. "1240"). Only plain non-negative integers are accepted.
func ParseMinorAmount(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, fmt.Errorf("vcc: amount %q is not a whole number of minor units", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("vcc: amount %q: %w", s, err)
	}
	return n, nil
}
