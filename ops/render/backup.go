package render

import (
	"path/filepath"
	"strings"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/templates"
)

// BackupUnitsDir is where render puts the backup timer and its service,
// under the output directory: they are systemd units, not quadlet units, so
// quadlet ignores them and systemd reads them once linked (systemctl link).
const BackupUnitsDir = "backup"

// renderBackupUnits adds the daily backup's timer and the service it starts
// (isisctl backup on the host) when a backup target is configured and
// backup.schedule is not off.
func renderBackupUnits(c *config.Config, files []File, o Options) ([]File, error) {
	if !c.Backup.Timer() {
		return files, nil
	}
	service, timer := c.BackupUnitNames()
	exec := []string{c.Backup.Isisctl}
	if c.File != "" {
		abs, err := filepath.Abs(c.File)
		if err != nil {
			return nil, err
		}
		exec = append(exec, "--config", quoteUnit(abs))
	}
	exec = append(exec, "backup")
	scope := " --user"
	if o.System {
		scope = ""
	}
	data := map[string]string{
		"Service": service, "Timer": timer, "Database": c.Postgres.Database, "Server": c.Postgres.Name,
		"After": ServiceName(c.PostgresUnit()) + " " + ServiceName(c.BackendUnit()), "Exec": strings.Join(exec, " "),
		"Schedule": c.Backup.Schedule, "Scope": scope,
	}
	for _, f := range []struct{ name, tmpl string }{{service, "backup.service.tmpl"}, {timer, "backup.timer.tmpl"}} {
		data["File"] = f.name
		s, err := templates.Execute(f.tmpl, data)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: BackupUnitsDir + "/" + f.name, Content: s, Mode: 0o644})
	}
	return files, nil
}
