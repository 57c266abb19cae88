package vcc_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/vcc"
)

func TestFormatAmount(t *testing.T) {
	tests := []struct {
		minor    int64
		currency string
		want     string
	}{
		{1240, "GBP", "12.40"},
		{1240, "JPY", "1240"},
		{1240, "BHD", "1.240"},
		{1000000, "IDR", "10000.00"}, // CLDR says 0 digits: "1000000" would be a 100× overcharge
		{150, "COP", "1.50"},
		{1240, "IQD", "1.240"}, // CLDR 0, ISO 3
		{5, "KRW", "5"},
		{12345, "CLF", "1.2345"},
		{1240, "HUF", "12.40"},
		{5, "GBP", "0.05"},
		{100, "GBP", "1.00"},
		{0, "GBP", "0.00"},
		{1, "BHD", "0.001"},
		{99999999, "EUR", "999999.99"},
		{1240, "gbp", "12.40"},
		{7, "KRW", "7"},
		{1, "UGX", "1"},
		{1, "XOF", "1"},
		{1, "KWD", "0.001"},
		{1240, "TND", "1.240"},
	}
	// The other currencies where CLDR's digits (0) are not ISO 4217's minor units (2).
	for _, code := range []string{"PKR", "RSD", "LAK", "IRR", "LBP", "MMK", "ALL", "SOS", "SYP", "YER"} {
		tests = append(tests, struct {
			minor    int64
			currency string
			want     string
		}{1240, code, "12.40"})
	}
	for _, tt := range tests {
		t.Run(tt.currency+"/"+tt.want, func(t *testing.T) {
			got, err := vcc.FormatAmount(tt.minor, tt.currency)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// Every currency paybridge accepts (bridge.CurrencyExponent) formats without error, with one of
// ISO 4217's exponents, and the digits are the minor units given; every other code is refused.
// x/text offers no list of every code it knows (currency.Query walks region tenders only), so the
// walk tries every three-letter code.
func TestFormatAmountEveryKnownCurrency(t *testing.T) {
	known := 0
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			for c := 'A'; c <= 'Z'; c++ {
				code := string([]rune{a, b, c})
				got, err := vcc.FormatAmount(123456, code)
				if _, ok := bridge.CurrencyExponent(code); !ok {
					assert.Error(t, err, code)
					continue
				}
				known++
				if !assert.NoError(t, err, code) {
					continue
				}
				whole, frac, _ := strings.Cut(got, ".")
				assert.Contains(t, []int{0, 2, 3, 4}, len(frac), "%s → %q", code, got)
				assert.Equal(t, "123456", whole+frac, "%s → %q", code, got)
			}
		}
	}
	// x/text v0.43 knows 300 codes, historical ones included; a walk that finds few is broken.
	assert.Greater(t, known, 250)
}

func TestFormatAmountErrors(t *testing.T) {
	tests := []struct {
		name      string
		minor     int64
		currency  string
		wantCode  bridge.Code
		wantParam string
	}{
		{"unknown currency", 100, "XYZ", bridge.CodeValidationError, "currency"},
		{"not a code", 100, "pounds", bridge.CodeValidationError, "currency"},
		{"empty currency", 100, "", bridge.CodeValidationError, "currency"},
		{"negative", -5, "GBP", bridge.CodeValidationInvalidAmount, "amount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := vcc.FormatAmount(tt.minor, tt.currency)
			var be *bridge.Error
			require.ErrorAs(t, err, &be)
			assert.Equal(t, tt.wantCode, be.Code)
			assert.Equal(t, tt.wantParam, be.Param)
		})
	}
}

func TestParseMinorAmount(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1240", 1240, false},
		{" 5 ", 5, false},
		{"0", 0, false},
		{"", 0, true},
		{"12.40", 0, true},
		{"-5", 0, true},
		{"+5", 0, true},
		{"1e3", 0, true},
		{"99999999999999999999", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := vcc.ParseMinorAmount(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// Formatting and parsing agree: VCC reports the minor units the request's decimal string meant.
func TestFormatParseRoundTrip(t *testing.T) {
	for _, cur := range []string{"GBP", "JPY", "BHD", "USD"} {
		for _, minor := range []int64{1, 9, 10, 1240, 100000} {
			s, err := vcc.FormatAmount(minor, cur)
			require.NoError(t, err)
			digits := ""
			for _, r := range s {
				if r != '.' {
					digits += string(r)
				}
			}
			got, err := vcc.ParseMinorAmount(digits)
			require.NoError(t, err)
			assert.Equal(t, minor, got, "%s %d → %q", cur, minor, s)
		}
	}
}
