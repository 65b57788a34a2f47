package deploy

import (
	"testing"
	"time"
)

// TestServingAt: the time of isis's "isis serving" line (slog's JSON, as
// cmd/isis writes it), and nothing for any other line.
func TestServingAt(t *testing.T) {
	at := time.Date(2026, 12, 7, 4, 0, 3, 716000000, time.UTC)
	for _, tc := range []struct {
		name, line string
		want       time.Time
	}{
		{"serving", `{"time":"2026-12-07T04:00:03.716Z","level":"INFO","msg":"isis serving","addr":"[::]:3003","version":"e2e","settings":{"DEBUG":false}}` + "\n", at},
		{"in another zone", `{"time":"2026-12-07T05:00:03.716+01:00","level":"INFO","msg":"isis serving","addr":"[::]:3003"}`, at},
		{"a request", `{"time":"2026-12-07T04:00:04Z","level":"INFO","msg":"request","path":"/api/health/"}`, time.Time{}},
		{"the words elsewhere", `{"time":"2026-12-07T04:00:04Z","level":"INFO","msg":"request","path":"/\"msg\":\"isis serving\""}`, time.Time{}},
		{"not JSON", `isis serving`, time.Time{}},
		{"no time", `{"level":"INFO","msg":"isis serving"}`, time.Time{}},
	} {
		if got := servingAt(tc.line); !got.Equal(tc.want) {
			t.Errorf("%s: servingAt = %v, want %v", tc.name, got, tc.want)
		}
	}
}
