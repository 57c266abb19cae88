package config

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/paybridge/paybridge/bridge"
)

// Gateway says how VCC's result data reads for a merchant's PCI Pal flow: its keys depend on the
// flow's payment gateway. Profile names a built-in (cybersource, chase_orbital) whose keys the
// other fields may override, or custom, where they must all be given.
type Gateway struct {
	Profile          string   `yaml:"profile"`          // cybersource (default) | chase_orbital | custom
	StatusKey        string   `yaml:"statusKey"`        // the key holding the gateway's verdict
	Approved         []string `yaml:"approved"`         // its values that mean approved
	Declined         []string `yaml:"declined"`         // ... declined
	Errored          []string `yaml:"errored"`          // ... a gateway error
	TransactionIDKey string   `yaml:"transactionIdKey"` // the gateway transaction, for reconciliation
	ReasonKey        string   `yaml:"reasonKey"`        // the gateway's reason code
	AmountKey        string   `yaml:"amountKey"`        // what was charged ...
	AmountFormat     string   `yaml:"amountFormat"`     // ... as minor units or a decimal (minor | decimal)
	CurrencyKey      string   `yaml:"currencyKey"`      // ... in which currency
	// VerifyAmount false takes an approval as a payment whatever its amount: only for a flow that
	// reports no amount, and at the merchant's risk. Default true.
	VerifyAmount *bool           `yaml:"verifyAmount"`
	PaymentData  PaymentDataKeys `yaml:"paymentData"`
}

// PaymentDataKeys names the paymentData keys paybridge sends VCC for a flow. An unset key keeps
// VCC's documented name; an empty one leaves the field out.
type PaymentDataKeys struct {
	AmountFormat string  `yaml:"amountFormat"` // decimal (default, "12.40") | minor ("1240")
	Amount       *string `yaml:"amount"`
	Currency     *string `yaml:"currency"`
	Country      *string `yaml:"country"`
	Reference    *string `yaml:"reference"`
	FirstName    *string `yaml:"firstName"`
	Surname      *string `yaml:"surname"`
	Email        *string `yaml:"email"`
	Phone        *string `yaml:"phone"`
	Street1      *string `yaml:"street1"`
	City         *string `yaml:"city"`
	Postcode     *string `yaml:"postcode"`
}

// FrameAnnouncement is the message the merchant's PCI Pal flow posts to the agent desktop once
// its page has loaded (a PostMessage step Vonage / PCI Pal configure on request). Only with one
// does the widget count a frame that stays silent as refused.
type FrameAnnouncement struct {
	Origin string         `yaml:"origin"` // scheme://host[:port]; default the iframe URL's origin
	Data   map[string]any `yaml:"data"`   // required: every key must come with this value
}

// bridgeProfile builds the domain's profile from g, or says what is wrong, naming the field.
func (g Gateway) bridgeProfile() (bridge.GatewayProfile, string, error) {
	name := g.Profile
	if name == "" {
		name = bridge.ProfileCyberSource
	}
	p, builtin := bridge.BuiltinProfile(name)
	switch {
	case name == bridge.ProfileCustom:
		p = bridge.GatewayProfile{Name: name, AmountFormat: bridge.AmountMinor, VerifyAmount: true, PaymentData: bridge.DefaultPaymentDataKeys}
	case !builtin:
		return p, "profile", fmt.Errorf("must be %s, %s or %s, got %q", bridge.ProfileCyberSource, bridge.ProfileChaseOrbital, bridge.ProfileCustom, name)
	}
	for _, f := range []struct {
		to   *string
		from string
	}{{&p.StatusKey, g.StatusKey}, {&p.TransactionIDKey, g.TransactionIDKey}, {&p.ReasonKey, g.ReasonKey}, {&p.AmountKey, g.AmountKey}, {&p.CurrencyKey, g.CurrencyKey}} {
		if f.from != "" {
			*f.to = f.from
		}
	}
	for _, f := range []struct {
		to   *[]string
		from []string
	}{{&p.Approved, g.Approved}, {&p.Declined, g.Declined}, {&p.Errored, g.Errored}} {
		if f.from != nil {
			*f.to = slices.Clone(f.from)
		}
	}
	if g.AmountFormat != "" {
		p.AmountFormat = bridge.AmountFormat(g.AmountFormat)
	}
	if g.VerifyAmount != nil {
		p.VerifyAmount = *g.VerifyAmount
	}
	if name == bridge.ProfileCustom && g.VerifyAmount == nil && g.AmountKey == "" {
		return p, "amountKey", fmt.Errorf("required for a custom profile, or say verifyAmount: false (approvals are then taken whatever their amount, at the merchant's risk)")
	}
	pd := &p.PaymentData
	if g.PaymentData.AmountFormat != "" {
		pd.AmountFormat = bridge.AmountFormat(g.PaymentData.AmountFormat)
	}
	for _, f := range []struct {
		to   *string
		from *string
	}{
		{&pd.Amount, g.PaymentData.Amount}, {&pd.Currency, g.PaymentData.Currency}, {&pd.Country, g.PaymentData.Country},
		{&pd.Reference, g.PaymentData.Reference}, {&pd.FirstName, g.PaymentData.FirstName}, {&pd.Surname, g.PaymentData.Surname},
		{&pd.Email, g.PaymentData.Email}, {&pd.Phone, g.PaymentData.Phone}, {&pd.Street1, g.PaymentData.Street1},
		{&pd.City, g.PaymentData.City}, {&pd.Postcode, g.PaymentData.Postcode},
	} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	if err := p.Check(); err != nil {
		return p, "", err // Check names the field itself
	}
	return p, "", nil
}

// validateGateways checks a merchant's gateway profiles.
func validateGateways(p *problems, path string, v MerchantVCC) {
	check := func(at string, g Gateway) {
		if _, field, err := g.bridgeProfile(); err != nil {
			msg := err.Error()
			if field == "" {
				field, msg, _ = strings.Cut(msg, ": ") // Check says "field: problem"
			}
			p.add(at+"."+field, "%s", msg)
		}
	}
	check(path+".gateway", v.Gateway)
	ids := slices.Sorted(maps.Keys(v.Gateways))
	for _, id := range ids {
		at := fmt.Sprintf("%s.gateways[%d]", path, id)
		if len(v.AccountConfigurationIDs) > 0 && !slices.Contains(v.AccountConfigurationIDs, id) {
			p.add(at, "%d is not one of accountConfigurationIds %v", id, v.AccountConfigurationIDs)
		}
		check(at, v.Gateways[id])
	}
}

// validateAnnouncement checks a merchant's frame announcement.
func validateAnnouncement(p *problems, path string, a *FrameAnnouncement) {
	if a == nil {
		return
	}
	if len(a.Data) == 0 {
		p.add(path+".data", "required: the keys and values the flow's PostMessage step posts (an announcement of nothing would match any message)")
	}
	if a.Origin != "" {
		validateOrigin(p, path+".origin", a.Origin)
	}
}

// bridgeGateways converts a merchant's profiles; validation has passed.
func bridgeGateways(v MerchantVCC) (bridge.GatewayProfile, map[int]bridge.GatewayProfile) {
	def, _, _ := v.Gateway.bridgeProfile()
	var by map[int]bridge.GatewayProfile
	keys := make([]int, 0, len(v.Gateways))
	for id := range v.Gateways {
		keys = append(keys, id)
	}
	sort.Ints(keys)
	for _, id := range keys {
		if by == nil {
			by = make(map[int]bridge.GatewayProfile, len(keys))
		}
		by[id], _, _ = v.Gateways[id].bridgeProfile()
	}
	return def, by
}

func bridgeAnnouncement(a *FrameAnnouncement) *bridge.FrameAnnouncement {
	if a == nil {
		return nil
	}
	return &bridge.FrameAnnouncement{Origin: a.Origin, Data: maps.Clone(a.Data)}
}
