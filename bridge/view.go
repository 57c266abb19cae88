package bridge

import "time"

// SessionView is the public session object: what the REST API answers, what merchant webhooks
// carry and what agent events describe. It never holds a token or card data.
type SessionView struct {
	ID                     string            `json:"id"`
	Object                 string            `json:"object"`
	Status                 Status            `json:"status"`
	Livemode               bool              `json:"livemode"`
	AgentID                string            `json:"agentId"`
	Amount                 int64             `json:"amount"`
	Currency               string            `json:"currency"`
	Country                string            `json:"country,omitempty"`
	Channel                Channel           `json:"channel"`
	AccountConfigurationID *int              `json:"accountConfigurationId,omitempty"`
	Reference              string            `json:"reference,omitempty"`
	Attempt                int               `json:"attempt"`
	CreatedAt              time.Time         `json:"createdAt"`
	UpdatedAt              time.Time         `json:"updatedAt"`
	ExpiresAt              time.Time         `json:"expiresAt"`
	Metadata               map[string]string `json:"metadata"`
	Result                 *Result           `json:"result,omitempty"`
	Failure                *Failure          `json:"failure,omitempty"`
	VCC                    *VCCRef           `json:"vcc,omitempty"`
}

// VCCRef names the current attempt's VCC and provider sessions, for reconciliation.
type VCCRef struct {
	SessionGUID         string `json:"sessionGuid"`
	ProviderSessionGUID string `json:"providerSessionGuid,omitempty"`
}

// View returns the public form of s.
func (s *Session) View() *SessionView {
	v := &SessionView{
		ID:                     s.ID,
		Object:                 "session",
		Status:                 s.Status,
		Livemode:               s.Mode == ModeLive,
		AgentID:                s.AgentID,
		Amount:                 s.Amount,
		Currency:               s.Currency,
		Country:                s.Country,
		Channel:                s.Channel,
		AccountConfigurationID: cloneInt(s.AccountConfigurationID),
		Reference:              s.Reference,
		Attempt:                len(s.Attempts),
		CreatedAt:              s.CreatedAt,
		UpdatedAt:              s.UpdatedAt,
		ExpiresAt:              s.ExpiresAt,
		Metadata:               s.Metadata,
		Result:                 s.Result,
		Failure:                s.Failure,
	}
	if v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	if a := s.Current(); a != nil {
		v.VCC = &VCCRef{SessionGUID: a.SessionGUID, ProviderSessionGUID: a.ProviderSessionGUID}
	}
	return v
}
