package backup

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/image"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
	"github.com/isis-project/isis/ops/steps"
)

// RestoreSteps are a restore, in order (the command's help, its plan
// without --yes and docs/backups.md list them from here). Nothing is
// touched before "restore"; a step that fails undoes the ones before it:
// the new database is dropped, and after the switch the names are switched
// back.
var RestoreSteps = []steps.Def[*restoreRun]{
	{Name: "check", Summary: "the dump against its manifest (size, sha256, a full read with pg_restore) and the server that took it; nothing is touched yet",
		Plan: planRestoreCheck, Run: restoreCheck, Cleanup: restoreCleanup},
	{Name: "restore", Summary: "pg_restore, as the owner role, into a new database beside the live one (DB_restore_STAMP)",
		Plan: planRestoreInto, Run: restoreInto, Undo: dropRestored},
	{Name: "rows", Summary: "the restored database's rows equal the dump's", Run: restoreRows},
	{Name: "migrate", Summary: "the backend image's migrations: none it does not know, the pending ones applied; the application role's grants",
		Plan: planRestoreMigrate, Run: restoreMigrate},
	{Name: "switch", Summary: "the backends stop; the live database becomes DB_old_STAMP and the restored one DB",
		Plan: planRestoreSwitch, Run: restoreSwitch, Undo: switchBack},
	{Name: "start", Summary: "the backends start on the restored database and must become healthy", Run: restoreStart},
}

// RestoreHelp is the step list as the command's help prints it.
func RestoreHelp() string { return steps.Help(RestoreSteps, 1) }

// restoreRun is the state one restore's steps share.
type restoreRun struct {
	ctx              context.Context
	conn             podman.Engine
	c                *config.Config
	o                RestoreOptions
	out              func(string)
	store            backupStore
	m                *Manifest
	db, newDB, oldDB string
	r                *RestoreResult
	src              io.ReadCloser
	h                *host.PGHelper
	dump             *host.DumpContents
	img              string   // the backend image that checks the migrations
	backends         []string // stopped for the switch
}

// run runs RestoreSteps from index first; a failure's error says what is
// as it was after the undos.
func (rr *restoreRun) run(first int) error {
	run := &steps.Runner[*restoreRun]{Table: RestoreSteps, State: rr, Rec: &rr.r.Steps, Progress: rr.o.Progress}
	err := run.Run(first, len(RestoreSteps)-1)
	var ue *steps.UndoError
	if err == nil || (errors.As(err, &ue) && ue.Step == "switch") {
		return err
	}
	switch rr.r.Steps[len(rr.r.Steps)-1].Name {
	case "check":
		return err // nothing was touched, and the error says so
	case "start":
		return fmt.Errorf("%w; switched back, %s is as it was", err, rr.db)
	}
	return fmt.Errorf("%w; %s is as it was", err, rr.db)
}

func planRestoreCheck(rr *restoreRun) string {
	return fmt.Sprintf("%s (%d bytes, sha256 %.12s) in %s", rr.m.Dump, rr.m.Size, rr.m.SHA256, rr.store.Where())
}

func planRestoreInto(rr *restoreRun) string {
	return "into " + rr.newDB + " as " + rr.c.OwnerRole()
}

func planRestoreMigrate(rr *restoreRun) string {
	return "with " + backendImage(rr.conn, rr.c)
}

func planRestoreSwitch(rr *restoreRun) string {
	return fmt.Sprintf("the running backends stop; %s becomes %s, %s becomes %s", rr.db, rr.oldDB, rr.newDB, rr.db)
}

// backendImage is the image the backend runs (else the configured one).
func backendImage(conn podman.Engine, c *config.Config) string {
	img, _ := image.Current(conn, c)
	return cmp.Or(img, c.BackendImage(c.Backend.Tag))
}

func restoreCheck(rr *restoreRun) (string, string, error) {
	m := rr.m
	src, size, err := rr.store.Get(rr.ctx, m.Dump)
	if err != nil {
		return "", "", fmt.Errorf("read %s from %s: %w", m.Dump, rr.store.Where(), err)
	}
	rr.src = src
	if size != m.Size {
		return "", "", &CorruptBackupError{m.Name, fmt.Sprintf("the dump has %d bytes, its manifest says %d (truncated?)", size, m.Size)}
	}
	if rr.h, err = host.StartPGHelper(rr.conn, rr.c, "restore"); err != nil {
		return "", "", err
	}
	if rr.h.Owner == "" {
		return "", "", host.RolesMissing(rr.c, host.ErrNoOwnerRole)
	}
	if err := rr.checkServer(); err != nil {
		return "", "", err
	}
	if err := rr.checkDump(); err != nil {
		return "", "", err
	}
	rr.img = backendImage(rr.conn, rr.c)
	if ok, _ := image.Exists(rr.conn, rr.img); !ok {
		return "", "", fmt.Errorf("the backend image %s is missing: the restored database's migrations cannot be checked (isisctl build)", rr.img)
	}
	return "ok", fmt.Sprintf("%s: %d bytes, sha256 %.12s, %d tables read back", m.Dump, m.Size, m.SHA256, len(rr.dump.Tables)), nil
}

// checkServer: the server that took the backup is this one, unless
// --allow-foreign.
func (rr *restoreRun) checkServer() error {
	id, err := serverID(rr.h)
	if err != nil {
		return err
	}
	if rr.m.ServerID != id {
		why := fmt.Sprintf("it was taken on another database server (system identifier %s; this one is %s: another deployment, or this one's data volume was made anew)", cmp.Or(rr.m.ServerID, "none"), id)
		if !rr.o.AllowForeign {
			return &ForeignBackupError{Name: rr.m.Name, Reason: why}
		}
		rr.out("--allow-foreign: " + why)
	}
	return nil
}

// checkDump copies the dump into the helper, checking its sha256 on the
// way, and reads it in full: its rows must be the manifest's.
func (rr *restoreRun) checkDump() error {
	m := rr.m
	sum := sha256.New()
	if err := rr.h.CopyIn("/tmp", m.Dump, io.TeeReader(rr.src, sum), m.Size); err != nil {
		return err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != m.SHA256 {
		return &CorruptBackupError{m.Name, fmt.Sprintf("its sha256 is %s, its manifest says %s (corrupted)", got, m.SHA256)}
	}
	dc, err := rr.h.InspectDump("/tmp/" + m.Dump)
	if err != nil {
		return &CorruptBackupError{m.Name, err.Error()}
	}
	if diff := diffCounts(m.Tables, dc.Tables); diff != "" {
		return &CorruptBackupError{m.Name, "its rows differ from its manifest: " + diff}
	}
	rr.dump = dc
	return nil
}

// restoreCleanup closes the dump and removes the helper container.
func restoreCleanup(rr *restoreRun) {
	if rr.src != nil {
		rr.src.Close()
	}
	if rr.h != nil {
		rr.h.Remove()
	}
}

func restoreInto(rr *restoreRun) (string, string, error) {
	h, c, newDB := rr.h, rr.c, rr.newDB
	exists, err := h.Psql("postgres", "SELECT datname FROM pg_database WHERE datname IN ("+host.QuoteLiteral(newDB)+", "+host.QuoteLiteral(rr.oldDB)+")")
	if err != nil {
		return "", "", fmt.Errorf("database server: %w", err)
	}
	if strings.TrimSpace(exists) != "" {
		return "", "", fmt.Errorf("database %s already exists; wait a second and try again", strings.TrimSpace(exists))
	}
	// Created by the superuser for the owner role, which alone then reads
	// and runs the dump's content: whatever the dump's functions, checks,
	// defaults or triggers try, they can do no more than the owner role.
	if _, err := h.Psql("postgres", "CREATE DATABASE "+host.QuoteIdent(newDB)+" OWNER "+host.QuoteIdent(c.OwnerRole())+" TEMPLATE template0"); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", newDB, err)
	}
	if _, err := h.Sh(host.RunScript, newDB, "SET search_path = pg_catalog, pg_temp;\n"+host.SchemaSQL(c)); err != nil {
		return "", "", rr.dropNew(fmt.Errorf("schema public of %s: %w", newDB, err))
	}
	if _, err := h.ShOwner(`pg_restore --dbname="$1" --no-owner --no-privileges --exit-on-error --single-transaction "$2"`, newDB, "/tmp/"+rr.m.Dump); err != nil {
		return "", "", rr.dropNew(fmt.Errorf("pg_restore as %s: %w", c.OwnerRole(), err))
	}
	return "changed", newDB + " as " + c.OwnerRole(), nil
}

// dropNew drops the new database after cause, a failure of the step that
// made it (the steps after it undo it with dropRestored).
func (rr *restoreRun) dropNew(cause error) error {
	if err := dropRestored(rr); err != nil {
		return fmt.Errorf("%w (and %v)", cause, err)
	}
	return cause
}

// dropRestored drops the new database (after a signal too).
func dropRestored(rr *restoreRun) error {
	rr.h.Conn = rr.h.Conn.WithoutCancel()
	if _, err := rr.h.Psql("postgres", "DROP DATABASE IF EXISTS "+host.QuoteIdent(rr.newDB)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping %s failed: %v", rr.newDB, err)
	}
	return nil
}

func restoreRows(rr *restoreRun) (string, string, error) {
	tables := make([]string, 0, len(rr.dump.Tables))
	for t := range rr.dump.Tables {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	got, err := rr.h.CountRows(rr.newDB, tables)
	if err != nil {
		return "", "", fmt.Errorf("count the restored rows: %w", err)
	}
	if diff := diffCounts(rr.dump.Tables, got); diff != "" {
		return "", "", fmt.Errorf("the restored database differs from the dump: %s", diff)
	}
	rr.r.Tables = got
	var rows int64
	for _, n := range got {
		rows += n
	}
	return "ok", fmt.Sprintf("%d rows in %d tables, as in the dump", rows, len(got)), nil
}

func restoreMigrate(rr *restoreRun) (string, string, error) {
	c, newDB := rr.c, rr.newDB
	st, err := MigrationState(rr.conn, c, rr.img, newDB)
	if err != nil {
		return "", "", err
	}
	if len(st.Unknown) > 0 {
		return "", "", fmt.Errorf("the backup has migrations %s that %s does not know: deploy the release it was taken with (%s) first",
			strings.Join(st.Unknown, ", "), rr.img, cmp.Or(rr.m.Image, "none"))
	}
	status, detail := "unchanged", "none pending for "+rr.img
	if len(st.Pending) > 0 {
		rr.out(fmt.Sprintf("applying %d migration(s) of %s to the restored database", len(st.Pending), rr.img))
		if err := runJobOn(rr.conn, c, rr.img, newDB, rr.out, "migrate"); err != nil {
			return "", "", err
		}
		rr.r.Migrated = st.Pending
		rr.r.Migration = st.Pending[len(st.Pending)-1]
		status, detail = "changed", fmt.Sprintf("%d applied with %s", len(st.Pending), rr.img)
	}
	// The application role's grants, by the owner role.
	if _, err := rr.h.ShOwner(host.RunScript, newDB, host.AppGrantSQL(c)); err != nil {
		return "", "", fmt.Errorf("grant %s on %s: %w", c.AppRole(), newDB, err)
	}
	return status, detail, nil
}

func restoreSwitch(rr *restoreRun) (string, string, error) {
	backends, err := runningBackends(rr.conn, rr.c)
	if err != nil {
		return "", "", err
	}
	rr.backends = backends
	for _, b := range backends {
		if err := rr.conn.Stop(b, 30); err != nil {
			startAll(rr.conn, backends)
			return "", "", err
		}
	}
	if err := renameDatabases(rr.h, rr.db, rr.newDB, rr.oldDB); err != nil {
		startAll(rr.conn, backends)
		return "", "", err
	}
	return "changed", fmt.Sprintf("%s stopped; %s is now %s, %s is %s", cmp.Or(strings.Join(backends, ", "), "no backend"), rr.db, rr.oldDB, rr.newDB, rr.db), nil
}

// switchBack undoes the switch: the backends stop, the names go back, the
// backends start on the database they ran on.
func switchBack(rr *restoreRun) error {
	conn := rr.conn.WithoutCancel()
	rr.h.Conn = rr.h.Conn.WithoutCancel()
	for _, b := range rr.backends {
		_ = conn.Stop(b, 10)
	}
	if err := renameDatabases(rr.h, rr.db, rr.oldDB, rr.newDB); err != nil {
		return err
	}
	startAll(conn, rr.backends)
	return nil
}

func restoreStart(rr *restoreRun) (string, string, error) {
	health := spec.Backend(rr.c, "").Health
	for _, b := range rr.backends {
		err := rr.conn.Start(b)
		if err == nil {
			err = rr.conn.WaitHealthy(rr.ctx, b, 90*time.Second, health)
		}
		if err != nil {
			return "", "", fmt.Errorf("backend %s on the restored database: %w", b, err)
		}
	}
	rr.r.Restarted = rr.backends
	return "ok", fmt.Sprintf("%s healthy on the restored database", cmp.Or(strings.Join(rr.backends, ", "), "no backend")), nil
}
