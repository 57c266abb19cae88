package bridge

import (
	"strings"

	"golang.org/x/text/currency"
)

// CurrencyExponent returns the ISO 4217 exponent of a currency a card can be charged in (how
// many of an amount's digits are minor units), and false for anything else: unknown codes and
// codes that are not money a card is charged in (precious metals, accounting units, the testing
// code, "no currency"). Codes are compared upper-cased.
func CurrencyExponent(code string) (int, bool) {
	code = strings.ToUpper(code)
	if len(code) != 3 || notTender[code] {
		return 0, false
	}
	if _, err := currency.ParseISO(code); err != nil && !newerISOCodes[code] {
		return 0, false
	}
	return minorUnits(code), true
}

// newerISOCodes are current ISO 4217 codes that x/text does not know yet.
var newerISOCodes = map[string]bool{"MRU": true, "SLE": true, "VES": true, "ZWG": true, "UYW": true}

// notTender are ISO 4217 codes that are not money a card is charged in: precious metals,
// accounting units, the testing code and "no currency".
var notTender = map[string]bool{
	"XAU": true, "XAG": true, "XPD": true, "XPT": true, "XDR": true, "XSU": true, "XUA": true,
	"XBA": true, "XBB": true, "XBC": true, "XBD": true, "XTS": true, "XXX": true,
}

// minorUnits returns the ISO 4217 exponent of an upper-case currency code: how many of the
// amount's digits are minor units.
//
// It is not currency.Standard.Rounding: x/text answers with CLDR's digits, which say how many
// decimals people use, not ISO 4217's minor units, which say what an amount in minor units means.
// They differ for IDR, COP, IQD, PKR, RSD, LAK, IRR, LBP, MMK, ALL, SOS, SYP and YER, where CLDR
// says 0 and ISO 2 (IQD 3): IDR 1000000 would go out as "1000000" rather than "10000.00", a 100×
// overcharge. paybridge's amounts are ISO minor units, and VCC's result reports them so too.
//
// Every code not listed has 2.
func minorUnits(code string) int {
	switch code {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
		"VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	case "CLF", "UYW":
		return 4
	}
	return 2
}
