package verify

import (
	"fmt"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// The conditions isisctl verify and status report, each with an entry in
// docs/runbook.md under a heading that is its id (what it means, the
// command that shows more, the command that fixes it). A failed check
// prints "runbook: docs/runbook.md#<id>". TestRunbookMatchesAlarms keeps
// Alarms and the page's headings equal.
const (
	AlarmPodmanUnreachable   = "podman-unreachable"
	AlarmNetworkMissing      = "network-missing"
	AlarmPostgresDown        = "postgres-down"
	AlarmPostgresExposed     = "postgres-exposed"
	AlarmSlotDown            = "slot-down"
	AlarmSlotExposed         = "slot-exposed"
	AlarmRestartLoop         = "restart-loop"
	AlarmSecretInEnv         = "secret-in-env"
	AlarmAPIDown             = "api-down"
	AlarmDatabaseUnavailable = "database-unavailable"
	AlarmMigrationsPending   = "migrations-pending"
	AlarmProxyUpstreams      = "proxy-upstreams"
	AlarmPublicURL           = "public-url"
	AlarmBackupStale         = "backup-stale"
	AlarmBackupDisk          = "backup-disk"
	AlarmThrottleFailClosed  = "throttle-fail-closed"
)

// Alarms is every condition, in the order of docs/runbook.md.
var Alarms = []string{AlarmPodmanUnreachable, AlarmNetworkMissing, AlarmPostgresDown, AlarmPostgresExposed,
	AlarmSlotDown, AlarmSlotExposed, AlarmRestartLoop, AlarmSecretInEnv, AlarmAPIDown, AlarmDatabaseUnavailable,
	AlarmMigrationsPending, AlarmProxyUpstreams, AlarmPublicURL, AlarmBackupStale, AlarmBackupDisk, AlarmThrottleFailClosed}

// RunbookPage is the runbook, relative to the repository and the docs site.
const RunbookPage = "docs/runbook.md"

// RunbookLink is where the entry of alarm id is.
func RunbookLink(id string) string { return RunbookPage + "#" + id }

// alarmFor is the alarm a failed check raises: its own, unless the answer
// of /api/ready/ says why (a database down, migrations pending).
func alarmFor(alarm string, err error) string {
	if alarm != AlarmAPIDown && alarm != AlarmPublicURL {
		return alarm
	}
	s := strings.ReplaceAll(err.Error(), " ", "")
	switch {
	case strings.Contains(s, `"database":"unavailable"`), strings.Contains(s, "databaseunavailable"):
		return AlarmDatabaseUnavailable
	case strings.Contains(s, `"migrations":"pending"`), strings.Contains(s, "migrationspending"):
		return AlarmMigrationsPending
	}
	return alarm
}

// Alarm is a condition status found.
type Alarm struct {
	ID      string `json:"id"`
	Detail  string `json:"detail"`
	Runbook string `json:"runbook"`
}

// NewAlarm is alarm id raised by err.
func NewAlarm(id string, err error) Alarm {
	return Alarm{ID: id, Detail: err.Error(), Runbook: RunbookLink(id)}
}

// checkThrottleStore fails while the backend's shared throttle store fails
// (its metrics say so): every throttled request is refused. It needs the
// backend's metrics (METRICS_ADDRESS); ok false when they are off or the
// throttles are in memory (no such check).
func checkThrottleStore(conn podman.Engine, c *config.Config, be *podman.ContainerState) (detail string, ok bool, err error) {
	if be == nil || !be.Running {
		return "", false, nil
	}
	addr := MetricsAddress(be.Env)
	if addr == "" {
		return "", false, nil
	}
	m, err := FetchMetrics(conn, c, addr, time.Now())
	if err != nil {
		return "", true, fmt.Errorf("metrics unavailable: %v", err)
	}
	return throttleStoreState(m)
}

func throttleStoreState(m *MetricsSummary) (string, bool, error) {
	if !m.ThrottleShared {
		return "", false, nil
	}
	if m.ThrottleFailing {
		return "", true, fmt.Errorf("the throttle store (PostgreSQL) is failing: throttled requests are refused (%s since start); see isisctl logs", count(m.ThrottleFailures))
	}
	return fmt.Sprintf("answering (%s failures since start)", count(m.ThrottleFailures)), true, nil
}

// StatusAlarms are the conditions status reports: the containers (down, a
// restart loop), the backend's readiness (database, migrations) and the
// throttle store (from metrics, when read); backup.Check adds the backups'.
func StatusAlarms(conn podman.Engine, c *config.Config, sts []*podman.ContainerState, m *MetricsSummary) []Alarm {
	alarms := []Alarm{}
	add := func(alarm, _ string, err error, _ string) {
		if err != nil {
			alarms = append(alarms, NewAlarm(alarmFor(alarm, err), err))
		}
	}
	for _, st := range sts {
		alarm := AlarmSlotDown
		if st.Name == c.Postgres.Name {
			alarm = AlarmPostgresDown
		}
		switch {
		case !st.Exists:
			add(alarm, "", fmt.Errorf("%s is missing", st.Name), "")
			continue
		case !st.Running:
			add(alarm, "", fmt.Errorf("%s is not running", st.Name), "")
		case st.Health != "" && st.Health != "healthy" && st.Health != "starting":
			add(alarm, "", fmt.Errorf("%s is %s", st.Name, st.Health), "")
		}
		if err := restartLoop(st, time.Now()); err != nil {
			add(AlarmRestartLoop, "", fmt.Errorf("%s: %v", st.Name, err), "")
		}
	}
	if be := sts[1]; be.Running {
		if err := execCheck(conn, c, "GET", "/api/ready/", ReadyOK); err != nil {
			add(AlarmAPIDown, "", fmt.Errorf("GET /api/ready/ in %s: %v", be.Name, err), "")
		}
	}
	if m != nil {
		_, _, err := throttleStoreState(m)
		add(AlarmThrottleFailClosed, "", err, "")
	}
	return alarms
}
