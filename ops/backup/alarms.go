package backup

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/verify"
)

// backupGrace is how late a scheduled backup may be: the timer's
// RandomizedDelaySec (15 min), the dump itself, a slow upload.
const backupGrace = time.Hour

// scheduleInterval is how long backup.schedule (systemd OnCalendar=) leaves
// between two backups at most: systemd's shorthands, else a calendar event
// with a weekday (weekly), a day of the month (monthly), or daily.
func scheduleInterval(s string) time.Duration {
	const day = 24 * time.Hour
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "minutely":
		return time.Minute
	case "hourly":
		return time.Hour
	case "daily":
		return day
	case "weekly":
		return 7 * day
	case "monthly":
		return 31 * day
	case "quarterly":
		return 92 * day
	case "semiannually":
		return 184 * day
	case "yearly", "annually":
		return 366 * day
	}
	f := strings.Fields(s)
	if len(f) > 0 && len(f[0]) >= 3 && strings.Contains("mon tue wed thu fri sat sun", strings.ToLower(f[0][:3])) {
		return 7 * day // Mon *-*-* …
	}
	if len(f) > 0 && strings.Count(f[0], "-") == 2 {
		if ymd := strings.Split(f[0], "-"); ymd[2] != "*" && !strings.Contains(ymd[2], "/") {
			if ymd[1] != "*" {
				return 366 * day // a day of a month: once a year at most
			}
			return 31 * day
		}
	}
	return day
}

// checkBackupAge fails when the newest backup is older than backup.schedule
// allows (no backup at all: when the database has been up longer than
// that). pgStarted is when PostgreSQL last started (zero: unknown).
func checkBackupAge(l *Listing, c *config.Config, now, pgStarted time.Time) error {
	limit := scheduleInterval(c.Backup.Schedule) + backupGrace
	if len(l.Backups) == 0 {
		if !pgStarted.IsZero() && now.Sub(pgStarted) < limit {
			return nil
		}
		return fmt.Errorf("no backup in %s, and backup.schedule %q should have made one: see isisctl backup list", l.Location, c.Backup.Schedule)
	}
	age := now.Sub(l.Backups[0].Created)
	if age > limit {
		return fmt.Errorf("the newest backup, %s, is %s old; backup.schedule %q allows %s", l.Backups[0].Name,
			age.Round(time.Minute), c.Backup.Schedule, limit)
	}
	return nil
}

// minBackupFree is the free space backup.dir needs before any backup.
const minBackupFree = 64 << 20

// checkBackupDisk fails when backup.dir's file system has less room than
// two of the newest backup (the next one, and a margin for growth).
func checkBackupDisk(l *Listing, dir string) (string, error) {
	// A backup.dir not made yet (the first backup makes it) is on the file
	// system of its nearest existing parent.
	var st syscall.Statfs_t
	at := dir
	for {
		err := syscall.Statfs(at, &st)
		if err == nil {
			break
		}
		if err != syscall.ENOENT || filepath.Dir(at) == at {
			return "", fmt.Errorf("backup.dir %s: %v", dir, err)
		}
		at = filepath.Dir(at)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	need := int64(minBackupFree)
	if len(l.Backups) > 0 {
		need = max(need, 2*min(l.Backups[0].Size, math.MaxInt64/2))
	}
	detail := fmt.Sprintf("%s free in %s, %s needed (twice the newest backup)", mib(free), dir, mib(need))
	if free < need {
		return "", fmt.Errorf("only %s", detail)
	}
	return detail, nil
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// Check is verify's and status's look at the backups: their age against
// the schedule (verify.AlarmBackupStale), and backup.dir's room
// (verify.AlarmBackupDisk). Nothing when no backup target is set; no age
// check when backup.schedule is off. pgStarted is when PostgreSQL last
// started (zero: unknown).
func Check(ctx context.Context, c *config.Config, pgStarted time.Time, add func(alarm, name string, err error, detail string)) {
	if !c.Backup.Configured() {
		return
	}
	l, err := List(ctx, c)
	if err != nil {
		add(verify.AlarmBackupStale, "backups", err, "")
		return
	}
	if c.Backup.Timer() {
		detail := "none yet; the database is younger than backup.schedule"
		if len(l.Backups) > 0 {
			detail = "newest " + l.Backups[0].Name + ", " + time.Since(l.Backups[0].Created).Round(time.Minute).String() + " old"
		}
		add(verify.AlarmBackupStale, "backup age ("+c.Backup.Schedule+")", checkBackupAge(l, c, time.Now(), pgStarted), detail)
	}
	if c.Backup.Dir != "" {
		detail, err := checkBackupDisk(l, c.Backup.Dir)
		add(verify.AlarmBackupDisk, "backup disk", err, detail)
	}
}
