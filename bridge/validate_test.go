package bridge_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/bridge"
)

// validInput returns a create request that passes every rule, for rows to break one rule of.
func validInput() *bridge.CreateSessionInput {
	return &bridge.CreateSessionInput{
		MerchantID: "acme",
		Mode:       bridge.ModeTest,
		AgentID:    "agent-1",
		Amount:     1240,
		Currency:   "GBP",
	}
}

func lineItems(n int) []bridge.LineItem {
	items := make([]bridge.LineItem, n)
	for i := range items {
		items[i] = bridge.LineItem{Name: fmt.Sprintf("item %d", i), Quantity: 1, UnitAmount: 100}
	}
	return items
}

func metadata(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func TestCreateSessionInputValidate(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(in *bridge.CreateSessionInput)
		wantCode  bridge.Code // "" for valid
		wantParam string
	}{
		{"valid minimal", func(*bridge.CreateSessionInput) {}, "", ""},

		// agentId
		{"agentId missing", func(in *bridge.CreateSessionInput) { in.AgentID = "" }, bridge.CodeValidationMissingField, "agentId"},
		{"agentId 128 chars", func(in *bridge.CreateSessionInput) { in.AgentID = strings.Repeat("a", 128) }, "", ""},
		{"agentId 129 chars", func(in *bridge.CreateSessionInput) { in.AgentID = strings.Repeat("a", 129) }, bridge.CodeValidationError, "agentId"},
		{"agentId control char", func(in *bridge.CreateSessionInput) { in.AgentID = "agent\n1" }, bridge.CodeValidationError, "agentId"},
		{"agentId DEL", func(in *bridge.CreateSessionInput) { in.AgentID = "agent\x7f" }, bridge.CodeValidationError, "agentId"},
		{"agentId invalid UTF-8", func(in *bridge.CreateSessionInput) { in.AgentID = "agent\xff" }, bridge.CodeValidationError, "agentId"},

		// amount
		{"amount 0", func(in *bridge.CreateSessionInput) { in.Amount = 0 }, bridge.CodeValidationInvalidAmount, "amount"},
		{"amount -1", func(in *bridge.CreateSessionInput) { in.Amount = -1 }, bridge.CodeValidationInvalidAmount, "amount"},
		{"amount 100000000", func(in *bridge.CreateSessionInput) { in.Amount = 100_000_000 }, bridge.CodeValidationInvalidAmount, "amount"},
		{"amount 1", func(in *bridge.CreateSessionInput) { in.Amount = 1 }, "", ""},
		{"amount 99999999", func(in *bridge.CreateSessionInput) { in.Amount = 99_999_999 }, "", ""},

		// currency
		{"currency missing", func(in *bridge.CreateSessionInput) { in.Currency = "" }, bridge.CodeValidationMissingField, "currency"},
		{"currency GB", func(in *bridge.CreateSessionInput) { in.Currency = "GB" }, bridge.CodeValidationError, "currency"},
		{"currency GBPX", func(in *bridge.CreateSessionInput) { in.Currency = "GBPX" }, bridge.CodeValidationError, "currency"},
		{"currency ZZZ", func(in *bridge.CreateSessionInput) { in.Currency = "ZZZ" }, bridge.CodeValidationError, "currency"},
		{"currency XTS (testing code)", func(in *bridge.CreateSessionInput) { in.Currency = "XTS" }, bridge.CodeValidationError, "currency"},
		{"currency XAU (gold)", func(in *bridge.CreateSessionInput) { in.Currency = "XAU" }, bridge.CodeValidationError, "currency"},
		{"currency G1P", func(in *bridge.CreateSessionInput) { in.Currency = "G1P" }, bridge.CodeValidationError, "currency"},
		{"currency non-ASCII", func(in *bridge.CreateSessionInput) { in.Currency = "€" }, bridge.CodeValidationError, "currency"},
		{"currency JPY", func(in *bridge.CreateSessionInput) { in.Currency = "JPY" }, "", ""},

		// country
		{"country omitted", func(in *bridge.CreateSessionInput) { in.Country = "" }, "", ""},
		{"country GB", func(in *bridge.CreateSessionInput) { in.Country = "GB" }, "", ""},
		{"country G", func(in *bridge.CreateSessionInput) { in.Country = "G" }, bridge.CodeValidationError, "country"},
		{"country GBR", func(in *bridge.CreateSessionInput) { in.Country = "GBR" }, bridge.CodeValidationError, "country"},
		{"country G1", func(in *bridge.CreateSessionInput) { in.Country = "G1" }, bridge.CodeValidationError, "country"},
		{"country non-ASCII", func(in *bridge.CreateSessionInput) { in.Country = "é" }, bridge.CodeValidationError, "country"},

		// channel
		{"channel agent_assist", func(in *bridge.CreateSessionInput) { in.Channel = bridge.ChannelAgentAssist }, "", ""},
		{"channel digital", func(in *bridge.CreateSessionInput) { in.Channel = bridge.ChannelDigital }, "", ""},
		{"channel unknown", func(in *bridge.CreateSessionInput) { in.Channel = "phone" }, bridge.CodeValidationError, "channel"},
		{"channel wrong case", func(in *bridge.CreateSessionInput) { in.Channel = "DIGITAL" }, bridge.CodeValidationError, "channel"},

		// accountConfigurationId
		{"accountConfigurationId not given (default)", func(in *bridge.CreateSessionInput) { in.AccountConfigurationID = nil }, "", ""},
		{"accountConfigurationId 0, a real id", func(in *bridge.CreateSessionInput) { in.AccountConfigurationID = new(0) }, "", ""},
		{"accountConfigurationId 7", func(in *bridge.CreateSessionInput) { in.AccountConfigurationID = new(7) }, "", ""},
		{"accountConfigurationId -1", func(in *bridge.CreateSessionInput) { in.AccountConfigurationID = new(-1) }, bridge.CodeValidationError, "accountConfigurationId"},

		// text fields
		{"reference 255 runes", func(in *bridge.CreateSessionInput) { in.Reference = strings.Repeat("é", 255) }, "", ""},
		{"reference 256 chars", func(in *bridge.CreateSessionInput) { in.Reference = strings.Repeat("r", 256) }, bridge.CodeValidationError, "reference"},
		{"reference invalid UTF-8", func(in *bridge.CreateSessionInput) { in.Reference = "ref\xfe" }, bridge.CodeValidationError, "reference"},
		{"customer.firstName 256 chars", func(in *bridge.CreateSessionInput) { in.Customer.FirstName = strings.Repeat("a", 256) }, bridge.CodeValidationError, "customer.firstName"},
		{"customer.surname 256 chars", func(in *bridge.CreateSessionInput) { in.Customer.Surname = strings.Repeat("a", 256) }, bridge.CodeValidationError, "customer.surname"},
		{"customer.phone 256 chars", func(in *bridge.CreateSessionInput) { in.Customer.Phone = strings.Repeat("1", 256) }, bridge.CodeValidationError, "customer.phone"},
		{"customer.street1 256 chars", func(in *bridge.CreateSessionInput) { in.Customer.Street1 = strings.Repeat("a", 256) }, bridge.CodeValidationError, "customer.street1"},
		{"customer.city invalid UTF-8", func(in *bridge.CreateSessionInput) { in.Customer.City = "\xff" }, bridge.CodeValidationError, "customer.city"},
		{"customer.postcode 256 chars", func(in *bridge.CreateSessionInput) { in.Customer.Postcode = strings.Repeat("a", 256) }, bridge.CodeValidationError, "customer.postcode"},
		{"customer.email 256 chars", func(in *bridge.CreateSessionInput) { in.Customer.Email = strings.Repeat("a", 250) + "@x.com" }, bridge.CodeValidationError, "customer.email"},
		{"customer.email without @", func(in *bridge.CreateSessionInput) { in.Customer.Email = "ada.example.com" }, bridge.CodeValidationError, "customer.email"},
		{"customer all set", func(in *bridge.CreateSessionInput) {
			in.Customer = bridge.Customer{FirstName: "Ada", Surname: "Lovelace", Email: "ada@example.com", Phone: "+441234", Street1: "1 Road", City: "London", Postcode: "N1 1AA"}
		}, "", ""},

		// successUrl / cancelUrl
		{"successUrl https", func(in *bridge.CreateSessionInput) { in.SuccessURL = "https://shop.example/ok" }, "", ""},
		{"successUrl http", func(in *bridge.CreateSessionInput) { in.SuccessURL = "http://shop.example/ok" }, bridge.CodeValidationError, "successUrl"},
		{"successUrl http localhost, test", func(in *bridge.CreateSessionInput) { in.SuccessURL = "http://localhost:3000/ok" }, "", ""},
		{"successUrl http LOCALHOST, test", func(in *bridge.CreateSessionInput) { in.SuccessURL = "http://LOCALHOST/ok" }, "", ""},
		{"successUrl http 127.0.0.1, test", func(in *bridge.CreateSessionInput) { in.SuccessURL = "http://127.0.0.1:8080/ok" }, "", ""},
		{"successUrl http [::1], test", func(in *bridge.CreateSessionInput) { in.SuccessURL = "http://[::1]:8080/ok" }, "", ""},
		{"successUrl http localhost, live", func(in *bridge.CreateSessionInput) {
			in.Mode = bridge.ModeLive
			in.SuccessURL = "http://localhost:3000/ok"
		}, bridge.CodeValidationError, "successUrl"},
		{"successUrl http 127.0.0.1, live", func(in *bridge.CreateSessionInput) {
			in.Mode = bridge.ModeLive
			in.SuccessURL = "http://127.0.0.1/ok"
		}, bridge.CodeValidationError, "successUrl"},
		{"successUrl https, live", func(in *bridge.CreateSessionInput) {
			in.Mode = bridge.ModeLive
			in.SuccessURL = "https://shop.example/ok"
		}, "", ""},
		{"successUrl localhost look-alike", func(in *bridge.CreateSessionInput) { in.SuccessURL = "http://localhost.evil.example/ok" }, bridge.CodeValidationError, "successUrl"},
		{"successUrl ftp", func(in *bridge.CreateSessionInput) { in.SuccessURL = "ftp://shop.example/ok" }, bridge.CodeValidationError, "successUrl"},
		{"successUrl relative", func(in *bridge.CreateSessionInput) { in.SuccessURL = "/ok" }, bridge.CodeValidationError, "successUrl"},
		{"successUrl no host", func(in *bridge.CreateSessionInput) { in.SuccessURL = "https://" }, bridge.CodeValidationError, "successUrl"},
		{"successUrl javascript", func(in *bridge.CreateSessionInput) { in.SuccessURL = "javascript:alert(1)" }, bridge.CodeValidationError, "successUrl"},
		{"successUrl unparseable", func(in *bridge.CreateSessionInput) { in.SuccessURL = "https://shop.example/%zz" }, bridge.CodeValidationError, "successUrl"},
		{"successUrl over 2048", func(in *bridge.CreateSessionInput) {
			in.SuccessURL = "https://shop.example/" + strings.Repeat("a", 2048)
		}, bridge.CodeValidationError, "successUrl"},
		{"cancelUrl http", func(in *bridge.CreateSessionInput) { in.CancelURL = "http://shop.example/cancel" }, bridge.CodeValidationError, "cancelUrl"},
		{"cancelUrl http localhost, live", func(in *bridge.CreateSessionInput) {
			in.Mode = bridge.ModeLive
			in.CancelURL = "http://localhost/cancel"
		}, bridge.CodeValidationError, "cancelUrl"},
		{"cancelUrl https", func(in *bridge.CreateSessionInput) { in.CancelURL = "https://shop.example/cancel" }, "", ""},

		// lineItems
		{"lineItems 100", func(in *bridge.CreateSessionInput) { in.LineItems = lineItems(100) }, "", ""},
		{"lineItems 101", func(in *bridge.CreateSessionInput) { in.LineItems = lineItems(101) }, bridge.CodeValidationError, "lineItems"},
		{"lineItem name missing", func(in *bridge.CreateSessionInput) {
			in.LineItems = lineItems(3)
			in.LineItems[2].Name = ""
		}, bridge.CodeValidationMissingField, "lineItems[2].name"},
		{"lineItem name 256 chars", func(in *bridge.CreateSessionInput) {
			in.LineItems = lineItems(1)
			in.LineItems[0].Name = strings.Repeat("n", 256)
		}, bridge.CodeValidationError, "lineItems[0].name"},
		{"lineItem quantity 0", func(in *bridge.CreateSessionInput) {
			in.LineItems = lineItems(2)
			in.LineItems[1].Quantity = 0
		}, bridge.CodeValidationError, "lineItems[1].quantity"},
		{"lineItem quantity 10000", func(in *bridge.CreateSessionInput) {
			in.LineItems = lineItems(1)
			in.LineItems[0].Quantity = 10000
		}, bridge.CodeValidationError, "lineItems[0].quantity"},
		{"lineItem quantity 9999", func(in *bridge.CreateSessionInput) {
			in.LineItems = lineItems(1)
			in.LineItems[0].Quantity = 9999
		}, "", ""},
		{"lineItem unitAmount -1", func(in *bridge.CreateSessionInput) {
			in.LineItems = lineItems(1)
			in.LineItems[0].UnitAmount = -1
		}, bridge.CodeValidationError, "lineItems[0].unitAmount"},
		{"lineItem unitAmount 0", func(in *bridge.CreateSessionInput) {
			in.LineItems = lineItems(1)
			in.LineItems[0].UnitAmount = 0
		}, "", ""},
		{"lineItem unitAmount over max", func(in *bridge.CreateSessionInput) {
			in.LineItems = lineItems(1)
			in.LineItems[0].UnitAmount = bridge.MaxAmount + 1
		}, bridge.CodeValidationError, "lineItems[0].unitAmount"},

		// metadata
		{"metadata 50 keys", func(in *bridge.CreateSessionInput) { in.Metadata = metadata(50) }, "", ""},
		{"metadata 51 keys", func(in *bridge.CreateSessionInput) { in.Metadata = metadata(51) }, bridge.CodeValidationError, "metadata"},
		{"metadata value 500 chars", func(in *bridge.CreateSessionInput) { in.Metadata = map[string]string{"note": strings.Repeat("v", 500)} }, "", ""},
		{"metadata value 500 two-byte runes", func(in *bridge.CreateSessionInput) {
			in.Metadata = map[string]string{"note": strings.Repeat("é", 500)}
		}, "", ""},
		{"metadata value 500 four-byte runes", func(in *bridge.CreateSessionInput) {
			in.Metadata = map[string]string{"note": strings.Repeat("😀", 500)}
		}, "", ""},
		{"metadata value 501 chars", func(in *bridge.CreateSessionInput) { in.Metadata = map[string]string{"note": strings.Repeat("v", 501)} }, bridge.CodeValidationError, "metadata.note"},
		{"metadata value 501 two-byte runes", func(in *bridge.CreateSessionInput) {
			in.Metadata = map[string]string{"note": strings.Repeat("é", 501)}
		}, bridge.CodeValidationError, "metadata.note"},
		{"metadata empty value", func(in *bridge.CreateSessionInput) { in.Metadata = map[string]string{"note": ""} }, "", ""},
		{"metadata key 40 chars", func(in *bridge.CreateSessionInput) { in.Metadata = map[string]string{strings.Repeat("k", 40): "v"} }, "", ""},
		{"metadata key 41 chars", func(in *bridge.CreateSessionInput) { in.Metadata = map[string]string{strings.Repeat("k", 41): "v"} }, bridge.CodeValidationError, "metadata"},
		{"metadata empty key", func(in *bridge.CreateSessionInput) { in.Metadata = map[string]string{"": "v"} }, bridge.CodeValidationError, "metadata"},

		// expiresIn
		{"expiresIn default", func(in *bridge.CreateSessionInput) { in.ExpiresIn = 0 }, "", ""},
		{"expiresIn 299s", func(in *bridge.CreateSessionInput) { in.ExpiresIn = 299 * time.Second }, bridge.CodeValidationError, "expiresIn"},
		{"expiresIn 300s", func(in *bridge.CreateSessionInput) { in.ExpiresIn = 300 * time.Second }, "", ""},
		{"expiresIn 3600s", func(in *bridge.CreateSessionInput) { in.ExpiresIn = 3600 * time.Second }, "", ""},
		{"expiresIn 3601s", func(in *bridge.CreateSessionInput) { in.ExpiresIn = 3601 * time.Second }, bridge.CodeValidationError, "expiresIn"},
		{"expiresIn negative", func(in *bridge.CreateSessionInput) { in.ExpiresIn = -time.Second }, bridge.CodeValidationError, "expiresIn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := validInput()
			tt.edit(in)
			err := in.Validate()
			if tt.wantCode == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			var e *bridge.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.wantCode, e.Code)
			assert.Equal(t, tt.wantParam, e.Param)
			assert.NotEmpty(t, e.Message)
		})
	}
}

func TestValidateNormalises(t *testing.T) {
	in := validInput()
	in.Currency = "gbp"
	in.Country = "gb"
	in.Channel = ""
	require.NoError(t, in.Validate())
	assert.Equal(t, "GBP", in.Currency)
	assert.Equal(t, "GB", in.Country)
	assert.Equal(t, bridge.ChannelAgentAssist, in.Channel)

	in = validInput()
	in.Currency = "eUr"
	in.Channel = bridge.ChannelDigital
	require.NoError(t, in.Validate())
	assert.Equal(t, "EUR", in.Currency)
	assert.Equal(t, "", in.Country, "an omitted country stays omitted")
	assert.Equal(t, bridge.ChannelDigital, in.Channel)
}

func TestValidateMessageNamesTheValue(t *testing.T) {
	in := validInput()
	in.Amount = 0
	err := in.Validate()
	require.Error(t, err)
	assert.Contains(t, bridge.AsError(err).Message, "99999999")

	in = validInput()
	in.Metadata = map[string]string{"note": strings.Repeat("é", 501)}
	err = in.Validate()
	require.Error(t, err)
	assert.Contains(t, bridge.AsError(err).Message, "501", "the message counts characters, not bytes")
}

// TestCurrencyExponent: ISO 4217 minor units, not CLDR's digits; codes newer than x/text are
// known; what is not money a card is charged in is not.
func TestCurrencyExponent(t *testing.T) {
	for code, want := range map[string]int{
		"GBP": 2, "gbp": 2, "JPY": 0, "BHD": 3, "IDR": 2, "COP": 2, "IQD": 3, "CLF": 4,
		"MRU": 2, "VES": 2, "UYW": 4,
	} {
		got, ok := bridge.CurrencyExponent(code)
		assert.True(t, ok, code)
		assert.Equal(t, want, got, code)
	}
	for _, code := range []string{"XAU", "XTS", "XXX", "ZZZ", "GB", "GBPX", ""} {
		_, ok := bridge.CurrencyExponent(code)
		assert.False(t, ok, code)
	}
}

// TestListLimit: every store's page size, from a filter's Limit.
func TestListLimit(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{-1, bridge.DefaultListLimit}, {0, bridge.DefaultListLimit}, {1, 1}, {37, 37},
		{bridge.MaxListLimit, bridge.MaxListLimit}, {bridge.MaxListLimit + 1, bridge.MaxListLimit},
	} {
		assert.Equal(t, tc.want, bridge.ListLimit(tc.in), "Limit %d", tc.in)
	}
}
