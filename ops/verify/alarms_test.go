package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"
	"github.com/isis-project/isis/ops/podman/podmantest"
)

// TestAlarmFor: a failed readiness check is the database's or the
// migrations' alarm when the answer says so, in both shapes it comes in.
func TestAlarmFor(t *testing.T) {
	for _, tc := range []struct {
		alarm, err, want string
	}{
		{AlarmAPIDown, `status 503: {"database":"ok","migrations":"pending","status":"unavailable"}`, AlarmMigrationsPending},
		{AlarmAPIDown, `database ok, migrations pending`, AlarmMigrationsPending},
		{AlarmAPIDown, `status 503: {"database":"unavailable","migrations":"unavailable","status":"unavailable"}`, AlarmDatabaseUnavailable},
		{AlarmAPIDown, `database unavailable, migrations unavailable`, AlarmDatabaseUnavailable},
		{AlarmPublicURL, `status 503: {"database":"ok","migrations":"pending","status":"unavailable"}`, AlarmMigrationsPending},
		{AlarmAPIDown, `dial tcp 127.0.0.1:3003: connect: connection refused`, AlarmAPIDown},
		{AlarmAPIDown, `status 503: {"status":"draining"}`, AlarmAPIDown},
		{AlarmSlotDown, `not running`, AlarmSlotDown},
	} {
		if got := alarmFor(tc.alarm, errors.New(tc.err)); got != tc.want {
			t.Errorf("alarmFor(%s, %q) = %s, want %s", tc.alarm, tc.err, got, tc.want)
		}
	}
}

func TestThrottleStoreState(t *testing.T) {
	for _, tc := range []struct {
		m      MetricsSummary
		ok     bool
		failed bool
	}{
		{MetricsSummary{}, false, false}, // in memory: no such check
		{MetricsSummary{ThrottleShared: true, ThrottleFailures: 3}, true, false},
		{MetricsSummary{ThrottleShared: true, ThrottleFailures: 3, ThrottleFailing: true}, true, true},
	} {
		_, ok, err := throttleStoreState(&tc.m)
		if ok != tc.ok || (err != nil) != tc.failed {
			t.Errorf("%+v: ok %v, err %v", tc.m, ok, err)
		}
	}
}

// TestParseMetricsThrottleStore: the two series isis writes (api/metrics).
func TestParseMetricsThrottleStore(t *testing.T) {
	scrape := "# TYPE isis_build_info gauge\nisis_build_info{version=\"x\",goversion=\"go\"} 1\n" +
		"# TYPE isis_throttle_store_failures_total counter\nisis_throttle_store_failures_total 7\n" +
		"# TYPE isis_throttle_store_failing gauge\nisis_throttle_store_failing 1\n"
	m, err := ParseMetrics(strings.NewReader(scrape), time.Now())
	if err != nil || !m.ThrottleShared || !m.ThrottleFailing || m.ThrottleFailures != 7 {
		t.Fatalf("%+v, %v", m, err)
	}
}

// TestVerifyAlarms: every failed check names its alarm and runbook entry
// (here: nothing deployed on an empty Podman).
func TestVerifyAlarms(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	c := opstest.ExampleConfig()
	r := Run(context.Background(), podmantest.New(), c, Options{BaseURL: "http://" + closed, ProxyConfigs: []string{},
		Standing: true})
	raised := map[string]bool{}
	for _, ch := range r.Checks {
		if ch.OK {
			if ch.Alarm != "" || ch.Runbook != "" {
				t.Errorf("%s passed with alarm %s", ch.Name, ch.Alarm)
			}
			continue
		}
		if !slices.Contains(Alarms, ch.Alarm) || ch.Runbook != "docs/runbook.md#"+ch.Alarm {
			t.Errorf("%s failed with alarm %q, runbook %q", ch.Name, ch.Alarm, ch.Runbook)
		}
		raised[ch.Alarm] = true
	}
	for _, want := range []string{AlarmNetworkMissing, AlarmPostgresDown, AlarmSlotDown, AlarmAPIDown} {
		if !raised[want] {
			t.Errorf("no %s alarm: %s", want, fmt.Sprint(r.Checks))
		}
	}
}
