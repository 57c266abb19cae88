package pcipalstub_test

import (
	"time"

	"github.com/paybridge/paybridge/bridge/bridgetest"
)

// newManualClock returns the tests' clock, moved only by hand.
func newManualClock() *bridgetest.ManualClock {
	return bridgetest.NewManualClock(time.Date(2026, 3, 2, 9, 27, 37, 561413000, time.UTC))
}
