package config

import _ "embed"

//go:embed example.yaml
var example string

// Example returns a commented example configuration file that documents every key. Parse
// accepts it once ACME_VCC_SECRET, ACME_WEBHOOK_SECRET and ACME_VCC_WEBHOOK_SECRET are set.
func Example() string { return example }
