package vccstub

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Token fault values.
const (
	FaultInvalidClient = "invalid_client" // the token endpoint refuses the credentials
)

// Create fault values, applied to both create endpoints.
const (
	FaultInvalidClientKey            = "invalid_client_key"            // VCC holds wrong PCI provider credentials
	FaultProviderPermissions         = "provider_permissions"          // VCC's API user lacks permission at the provider
	FaultUnknownAccountConfiguration = "unknown_account_configuration" // any accountConfigurationId is unknown
	FaultHTTP503                     = "http_503"                      // 503 with a plain-text body
	FaultTimeout                     = "timeout"                       // the request hangs until the client gives up
)

// maxLatencyMs bounds injected latency to something a test can live with.
const maxLatencyMs = 10 * 60 * 1000

// Faults is what goes wrong with the stub until cleared.
type Faults struct {
	Token        string `json:"token"`        // "" or FaultInvalidClient
	Create       string `json:"create"`       // "" or one of the create fault values
	LatencyMs    int    `json:"latencyMs"`    // every token and Payment API request waits this long first
	DropWebhooks bool   `json:"dropWebhooks"` // outcomes are not posted
	// Times > 0 makes the token and the create fault each fire only that many times, then clear
	// themselves; 0 keeps them until cleared.
	Times int `json:"times"`
}

// Validate reports the first unknown value in f.
func (f Faults) Validate() error {
	if f.Token != "" && f.Token != FaultInvalidClient {
		return fmt.Errorf("unknown token fault %q", f.Token)
	}
	creates := []string{"", FaultInvalidClientKey, FaultProviderPermissions, FaultUnknownAccountConfiguration, FaultHTTP503, FaultTimeout}
	if !slices.Contains(creates, f.Create) {
		return fmt.Errorf("unknown create fault %q", f.Create)
	}
	if f.LatencyMs < 0 || f.LatencyMs > maxLatencyMs {
		return fmt.Errorf("latencyMs must be between 0 and %d", maxLatencyMs)
	}
	if f.Times < 0 {
		return fmt.Errorf("times must not be negative")
	}
	return nil
}

// SetFaults replaces the active faults with f, or returns an error naming an unknown value.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.tokenLeft, s.createLeft = f.Times, f.Times
	s.log.Info("vccstub: faults set", "token", f.Token, "create", f.Create, "latencyMs", f.LatencyMs, "dropWebhooks", f.DropWebhooks, "times", f.Times)
	return nil
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = Faults{}
	s.log.Info("vccstub: faults cleared")
}

// Faults returns the active faults; a token or create fault that has fired its Times is gone.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// faultKind says which fault takeFault consumes.
type faultKind int

const (
	faultToken faultKind = iota
	faultCreate
)

// takeFault returns the active fault of kind if it is one of only (any, when only is empty), and
// counts it as fired; "" when none applies.
func (s *Server) takeFault(kind faultKind, only ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	value, left := &s.faults.Token, &s.tokenLeft
	if kind == faultCreate {
		value, left = &s.faults.Create, &s.createLeft
	}
	if *value == "" || len(only) > 0 && !slices.Contains(only, *value) {
		return ""
	}
	fired := *value
	if s.faults.Times > 0 {
		*left--
		if *left <= 0 {
			*value = ""
		}
	}
	return fired
}

// delay holds a request for the injected latency. It reports false, having answered 503, when
// the client gave up or the stub closed first.
func (s *Server) delay(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	latency := time.Duration(s.faults.LatencyMs) * time.Millisecond
	s.mu.Unlock()
	if s.wait(r, latency) {
		return true
	}
	writeText(w, http.StatusServiceUnavailable, "Service Unavailable")
	return false
}

// handleGetFaults is GET /_control/faults.
func (s *Server) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

// handlePutFaults is PUT /_control/faults: replace the faults.
func (s *Server) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, 64<<10), &f); err != nil {
		writeMessage(w, http.StatusBadRequest, "Invalid faults: "+err.Error())
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeMessage(w, http.StatusBadRequest, "Invalid faults: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.Faults())
}

// handleDeleteFaults is DELETE /_control/faults: clear them.
func (s *Server) handleDeleteFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	writeJSON(w, http.StatusOK, s.Faults())
}
