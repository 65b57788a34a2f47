package backup

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/podman/podmantest"
	"github.com/isis-project/isis/ops/spec"
	"github.com/isis-project/isis/ops/steps"
)

// pgFake is a database server behind a Podman fake: the helper's psql and
// pg_restore commands change dbs (name → whose data), and fail when fail
// says so.
type pgFake struct {
	mu   sync.Mutex
	dbs  map[string]string
	fail func(cmd string) bool
}

var (
	createRE = regexp.MustCompile(`^CREATE DATABASE "([^"]+)"`)
	dropRE   = regexp.MustCompile(`^DROP DATABASE IF EXISTS "([^"]+)"`)
	renameRE = regexp.MustCompile(`ALTER DATABASE "([^"]+)" RENAME TO "([^"]+)"`)
)

func (p *pgFake) exec(_ string, cmd []string) (string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	all := strings.Join(cmd, " ")
	if p.fail != nil && p.fail(all) {
		return "", 1
	}
	for i, a := range cmd {
		if i == 0 || cmd[i-1] != "-c" || a == cmd[2] {
			continue
		}
		switch {
		case createRE.MatchString(a):
			p.dbs[createRE.FindStringSubmatch(a)[1]] = "restored"
		case dropRE.MatchString(a):
			delete(p.dbs, dropRE.FindStringSubmatch(a)[1])
		case strings.HasPrefix(a, "BEGIN;"):
			next := maps.Clone(p.dbs)
			for _, m := range renameRE.FindAllStringSubmatch(a, -1) {
				delete(next, m[1])
				next[m[2]] = p.dbs[m[1]]
			}
			p.dbs = next
		case strings.Contains(a, "count(*)"):
			return "public.users\t2\n", 0
		}
	}
	return "", 0
}

// restoreFake is a restore run just after its check step: the dump read,
// the helper started, two backend slots serving the live database "isis".
func restoreFake(t *testing.T) (*restoreRun, *podmantest.Fake, *pgFake) {
	t.Helper()
	c := opstest.ExampleConfig()
	f := podmantest.New()
	pg := &pgFake{dbs: map[string]string{c.Postgres.Database: "live"}}
	f.ExecOut = pg.exec
	f.Run(spec.Postgres(c), time.Now())
	f.Secrets[config.OwnerPasswordName] = "owner"
	f.Images["img:1"] = &podman.Image{ID: "id1"}
	for _, sl := range c.Slots() {
		f.Run(spec.ForSlot(c, sl, "img:1"), time.Now())
	}
	// isis migrate status: everything applied.
	f.RunOut = func(string) (int, []string, []string) {
		return 0, []string{"{", `  "migrations": [{"version": "0001_init", "applied_at": "2026-01-01T00:00:00Z"}],`, `  "unknown": []`, "}"}, nil
	}
	h, err := host.StartPGHelper(f, c, "restore")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Remove)
	db := c.Postgres.Database
	rr := &restoreRun{ctx: t.Context(), conn: f, c: c, out: func(string) {}, m: &Manifest{Name: "isis-1", Dump: "isis-1.dump"},
		db: db, newDB: db + "_restore_1", oldDB: db + "_old_1", h: h, img: "img:1",
		dump: &host.DumpContents{Tables: map[string]int64{"public.users": 2}}, r: &RestoreResult{}}
	f.Calls = nil
	return rr, f, pg
}

// TestRestoreUndo: a restore that fails at any point after the check leaves
// the live database as it was, under its name, the backends running on it
// and the new database dropped; after the switch, the names go back.
func TestRestoreUndo(t *testing.T) {
	healthy := errors.New("injected: unhealthy")
	for _, tc := range []struct {
		name      string
		failCmd   string // a helper command holding this fails
		failOp    string // or a Podman operation on the second slot
		wantErr   string
		wantSteps string // the statuses of restore, rows, migrate, switch, start
		wantDBs   map[string]string
		stopped   bool // the backends were stopped (and started again)
	}{
		{name: "ok", wantSteps: "changed ok unchanged changed ok", stopped: true,
			wantDBs: map[string]string{"isis": "restored", "isis_old_1": "live"}},
		{name: "pg_restore fails", failCmd: "pg_restore --dbname", wantErr: "restore failed: pg_restore as isis_owner: exit code 1: no message; isis is as it was",
			wantSteps: "failed", wantDBs: map[string]string{"isis": "live"}},
		{name: "counting fails", failCmd: "count(*)", wantErr: "rows failed: count the restored rows", wantSteps: "changed failed",
			wantDBs: map[string]string{"isis": "live"}},
		{name: "grants fail", failCmd: "GRANT CONNECT, TEMPORARY", wantErr: "migrate failed: grant isis_app", wantSteps: "changed ok failed",
			wantDBs: map[string]string{"isis": "live"}},
		{name: "a backend does not stop", failOp: "stop", wantErr: "switch failed: stop container", wantSteps: "changed ok unchanged failed",
			wantDBs: map[string]string{"isis": "live"}, stopped: true},
		{name: "the rename fails", failCmd: "BEGIN;", wantErr: "switch failed: rename the databases", wantSteps: "changed ok unchanged failed",
			wantDBs: map[string]string{"isis": "live"}, stopped: true},
		{name: "a backend is unhealthy on the restored database", failOp: "healthy",
			wantErr:   "start failed: backend isis-backend-b on the restored database: container \"isis-backend-b\" is unhealthy (injected: unhealthy); switched back, isis is as it was",
			wantSteps: "changed ok unchanged changed failed", wantDBs: map[string]string{"isis": "live"}, stopped: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr, f, pg := restoreFake(t)
			if tc.failCmd != "" {
				pg.fail = func(cmd string) bool { return strings.Contains(cmd, tc.failCmd) }
			}
			second := rr.c.Slots()[1].Name
			if tc.failOp != "" {
				f.Fail = func(op, name string) error {
					if op == tc.failOp && name == second {
						return healthy
					}
					return nil
				}
			}
			err := rr.run(1)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if got := stepStatuses(rr.r.Steps); got != tc.wantSteps {
				t.Errorf("steps = %q, want %q", got, tc.wantSteps)
			}
			if !maps.Equal(pg.dbs, tc.wantDBs) {
				t.Errorf("databases = %v, want %v", pg.dbs, tc.wantDBs)
			}
			f.Fail = nil
			for _, sl := range rr.c.Slots() {
				if st, _ := f.Inspect(sl.Name); !st.Running {
					t.Errorf("%s is not running after the restore (calls %v)", sl.Name, f.Calls)
				}
			}
			if stopped := slices.Contains(f.Calls, "stop "+rr.c.Slots()[0].Name); stopped != tc.stopped {
				t.Errorf("calls %v: backends stopped %v, want %v", f.Calls, stopped, tc.stopped)
			}
		})
	}
}

// TestRestoreSwitchBackFails: when the names cannot go back, the error says
// so, and not that the database is as it was.
func TestRestoreSwitchBackFails(t *testing.T) {
	rr, f, pg := restoreFake(t)
	renames := 0
	pg.fail = func(cmd string) bool {
		if strings.Contains(cmd, "BEGIN;") {
			renames++
			return renames == 2
		}
		return false
	}
	f.Fail = func(op, name string) error {
		if op == "healthy" {
			return errors.New("injected: unhealthy")
		}
		return nil
	}
	err := rr.run(1)
	var ue *steps.UndoError
	if !errors.As(err, &ue) || ue.Step != "switch" || strings.Contains(err.Error(), "as it was") || !strings.Contains(err.Error(), "undoing switch failed too: rename the databases") {
		t.Errorf("err = %v, want the switch's undo named", err)
	}
	if want := map[string]string{"isis": "restored", "isis_old_1": "live"}; !maps.Equal(pg.dbs, want) {
		t.Errorf("databases = %v, want %v (the restored one left in place, the live one kept)", pg.dbs, want)
	}
}

func stepStatuses(rec []steps.Step) string {
	var s []string
	for _, st := range rec {
		s = append(s, st.Status)
	}
	return strings.Join(s, " ")
}
