package config

import "testing"

// TestMetricsAddress: off by default; any interface is allowed (a scraper
// often runs elsewhere; isis check --deploy warns when it is not loopback).
func TestMetricsAddress(t *testing.T) {
	if c, err := load(base(nil)); err != nil || c.MetricsAddress != "" {
		t.Fatalf("default METRICS_ADDRESS = %q, %v; want off", c.MetricsAddress, err)
	}
	for _, addr := range []string{"127.0.0.1:9100", "localhost:9100", "[::1]:9100", "0.0.0.0:9100", ":9100", "10.88.0.5:9100", "[::]:9100"} {
		c, err := load(base(map[string]string{"METRICS_ADDRESS": " " + addr + " "}))
		if err != nil || c.MetricsAddress != addr {
			t.Errorf("METRICS_ADDRESS=%q: %v, %v", addr, c, err)
		}
	}
}
