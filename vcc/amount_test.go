package vcc_test

import (
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
		{5, "GBP", "0.05"},
		{100, "GBP", "1.00"},
		{0, "GBP", "0.00"},
		{1, "BHD", "0.001"},
		{99999999, "EUR", "999999.99"},
		{1240, "gbp", "12.40"},
		{7, "KRW", "7"},
	}
	for _, tt := range tests {
		t.Run(tt.currency+"/"+tt.want, func(t *testing.T) {
			got, err := vcc.FormatAmount(tt.minor, tt.currency)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
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
