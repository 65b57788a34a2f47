package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// BackupConfig says where `isisctl backup` puts the database dumps.
type BackupConfig struct {
	// Dir is a directory on the machine isisctl runs on (the Podman host when
	// the timer runs it).
	Dir string `yaml:"dir"`
	// S3Prefix puts the dumps in the deployment's S3/R2 bucket (backend.env's
	// AWS_STORAGE_BUCKET_NAME, AWS_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
	// AWS_S3_REGION_NAME; secrets.aws_secret_access_key) under this prefix.
	S3Prefix string `yaml:"s3_prefix"`
	// Keep is how many backups are kept (the newest).
	Keep string `yaml:"keep"`
	// Schedule is the timer's OnCalendar= (off: no timer).
	Schedule string `yaml:"schedule"`
	// Isisctl is where the timer's service finds isisctl on the host.
	Isisctl string `yaml:"isisctl"`
}

func defaultBackupConfig() BackupConfig {
	return BackupConfig{Keep: "7", Schedule: "daily", Isisctl: "/usr/local/bin/isisctl"}
}

// Configured reports whether a backup target is set.
func (b BackupConfig) Configured() bool { return b.Dir != "" || b.S3Prefix != "" }

// KeepN is backup.keep as a number.
func (b BackupConfig) KeepN() int {
	n, _ := strconv.Atoi(b.Keep)
	return n
}

// Timer reports whether render writes the backup timer.
func (b BackupConfig) Timer() bool {
	return b.Configured() && b.Schedule != "" && b.Schedule != "off"
}

func (b BackupConfig) validate() (key, msg string) {
	if b.Dir != "" && b.S3Prefix != "" {
		return "backup.dir", "set either backup.dir or backup.s3_prefix, not both"
	}
	if b.Dir != "" && !filepath.IsAbs(b.Dir) {
		return "backup.dir", fmt.Sprintf("%q is not an absolute path", b.Dir)
	}
	if p := b.S3Prefix; p != "" && (strings.HasPrefix(p, "/") || strings.Contains(p, "..") || strings.ContainsAny(p, " \\\n")) {
		return "backup.s3_prefix", fmt.Sprintf("%q is not a key prefix like backups/", p)
	}
	if n, err := strconv.Atoi(b.Keep); err != nil || n < 1 || n > 10000 {
		return "backup.keep", fmt.Sprintf("%q is not a number of backups from 1 to 10000", b.Keep)
	}
	if strings.ContainsAny(b.Schedule, "\n\r\\\"") {
		return "backup.schedule", fmt.Sprintf("%q is not a systemd OnCalendar= expression (daily, *-*-* 03:00:00, off)", b.Schedule)
	}
	if !filepath.IsAbs(b.Isisctl) || strings.ContainsAny(b.Isisctl, " \n\t\"'\\") {
		return "backup.isisctl", fmt.Sprintf("%q is not an absolute path without spaces", b.Isisctl)
	}
	return "", ""
}
