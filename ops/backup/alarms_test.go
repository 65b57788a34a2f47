package backup

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/ops/config"
)

func TestScheduleInterval(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		schedule string
		want     time.Duration
	}{
		{"daily", day}, {"Daily", day}, {"hourly", time.Hour}, {"weekly", 7 * day}, {"monthly", 31 * day},
		{"*-*-* 03:30:00", day}, {"*-*-* 03,15:00", day}, {"*-*-* *:00:00", day},
		{"Mon *-*-* 02:00", 7 * day}, {"Sat,Sun 04:00", 7 * day},
		{"*-*-01 02:00", 31 * day}, {"*-06-01 02:00", 366 * day}, {"*-*-1/2 02:00", day},
		{"yearly", 366 * day}, {"something odd", day},
	} {
		if got := scheduleInterval(tc.schedule); got != tc.want {
			t.Errorf("scheduleInterval(%q) = %s, want %s", tc.schedule, got, tc.want)
		}
	}
}

// TestCheckBackupAge: stale when the newest backup is older than the
// schedule and its grace, or when there is none and the database has run
// longer than that.
func TestCheckBackupAge(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	c := config.Default()
	c.Backup.Dir = "/var/backups/isis"
	list := func(age time.Duration) *Listing {
		l := &Listing{Location: c.Backup.Dir}
		if age >= 0 {
			l.Backups = []Manifest{{Name: "isis-x", Created: now.Add(-age)}}
		}
		return l
	}
	for _, tc := range []struct {
		schedule  string
		age       time.Duration // -1: no backup
		pgStarted time.Time
		stale     bool
	}{
		{"daily", 23 * time.Hour, time.Time{}, false},
		{"daily", 24*time.Hour + 59*time.Minute, time.Time{}, false},
		{"daily", 25*time.Hour + time.Minute, time.Time{}, true},
		{"hourly", 2*time.Hour + time.Minute, time.Time{}, true},
		{"weekly", 3 * 24 * time.Hour, time.Time{}, false},
		{"daily", -1, now.Add(-time.Hour), false},     // a new database: the first backup is not due
		{"daily", -1, now.Add(-48 * time.Hour), true}, // up two days, never backed up
		{"daily", -1, time.Time{}, true},              // PostgreSQL not running: unknown, so said
	} {
		c.Backup.Schedule = tc.schedule
		err := checkBackupAge(list(tc.age), c, now, tc.pgStarted)
		if (err != nil) != tc.stale {
			t.Errorf("schedule %s, age %s, pg started %s: %v, want stale %v", tc.schedule, tc.age, tc.pgStarted, err, tc.stale)
		}
		if err != nil && !strings.Contains(err.Error(), tc.schedule) {
			t.Errorf("%v does not name the schedule", err)
		}
	}
}

// TestCheckBackupDisk asks the real file system of a temporary directory.
func TestCheckBackupDisk(t *testing.T) {
	dir := t.TempDir()
	if _, err := checkBackupDisk(&Listing{}, dir); err != nil {
		t.Errorf("an empty backup dir with room: %v", err)
	}
	huge := &Listing{Backups: []Manifest{{Name: "isis-x", Size: 1 << 62}}}
	if _, err := checkBackupDisk(huge, dir); err == nil || !strings.Contains(err.Error(), "twice the newest backup") {
		t.Errorf("no room for two of a 4 EiB backup: %v", err)
	}
	if _, err := checkBackupDisk(&Listing{}, filepath.Join(dir, "not", "made", "yet")); err != nil {
		t.Errorf("a backup.dir the first backup will make: %v", err)
	}
	if _, err := checkBackupDisk(huge, filepath.Join(dir, "not", "made", "yet")); err == nil {
		t.Errorf("no room under a backup.dir not made yet: no alarm")
	}
}
