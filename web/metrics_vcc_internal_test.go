package web

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/vcc"
)

// TestVCCMetricsLabels: every endpoint × outcome series exists at 0 from the start, and a label
// value from outside vcc's fixed sets is counted as other / error, never as a new series.
func TestVCCMetricsLabels(t *testing.T) {
	v := NewVCCMetrics()
	reg := prometheus.NewRegistry()
	v.register(reg)

	v.Observe(vcc.EndpointCreate, vcc.OutcomeOK, 30*time.Millisecond)
	v.Observe(vcc.EndpointCreate, vcc.OutcomeOK, 7*time.Second)
	v.Observe("/v1/session/4f0c-guid", vcc.Outcome4xx, time.Millisecond)
	v.Observe(vcc.EndpointStatus, "teapot", time.Millisecond)

	families, err := reg.Gather()
	require.NoError(t, err)
	counts := map[string]float64{}
	histograms := map[string]uint64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "paybridge_vcc_requests_total":
				counts[labels["endpoint"]+" "+labels["outcome"]] = m.GetCounter().GetValue()
			case "paybridge_vcc_request_duration_seconds":
				histograms[labels["endpoint"]] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	assert.Len(t, counts, len(vcc.Endpoints)*len(vcc.Outcomes), "no series beyond the fixed sets")
	assert.Len(t, histograms, len(vcc.Endpoints))
	assert.Equal(t, 2.0, counts["create ok"])
	assert.Equal(t, 1.0, counts["other 4xx"])
	assert.Equal(t, 1.0, counts["status error"])
	assert.Equal(t, 0.0, counts["token timeout"])
	assert.Equal(t, uint64(2), histograms["create"])
	assert.Equal(t, uint64(1), histograms["other"])
}
