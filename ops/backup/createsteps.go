package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/steps"
)

// CreateSteps are a backup, in order (the command's help lists them from
// here). A step that fails half way removes what it stored; a failed
// rotation keeps the new backup, which is complete.
var CreateSteps = []steps.Def[*backupRun]{
	{Name: "dump", Summary: "pg_dump --format=custom as the owner role, in a one-off container of the server's image on the private network",
		Run: backupDump, Cleanup: func(br *backupRun) {
			if br.h != nil {
				br.h.Remove()
			}
		}},
	{Name: "read back", Summary: "the whole dump read back with pg_restore: every table's rows, the applied migrations", Run: backupReadBack},
	{Name: "store", Summary: "the dump streamed to backup.dir or the bucket, then its manifest (sha256, size, image, migration level, rows, HMAC)", Run: backupPut},
	{Name: "rotate", Summary: "keep the newest backup.keep backups", Run: backupRotate},
}

// CreateHelp is the step list as the command's help prints it.
func CreateHelp() string { return steps.Help(CreateSteps, 1) }

// backupRun is the state one backup's steps share.
type backupRun struct {
	ctx   context.Context
	conn  podman.Engine
	c     *config.Config
	store backupStore
	r     *Result
	h     *host.PGHelper
	key   string // the manifest's HMAC key
	tmp   string // the dump in the helper
}

func backupDump(br *backupRun) (string, string, error) {
	c, m := br.c, &br.r.Manifest
	var err error
	if br.h, err = host.StartPGHelper(br.conn, c, "backup"); err != nil {
		return "", "", err
	}
	if br.h.Owner == "" {
		return "", "", host.RolesMissing(c, host.ErrNoOwnerRole)
	}
	if br.key, err = c.ManifestKey(); err != nil {
		return "", "", err
	}
	if m.ServerID, err = serverID(br.h); err != nil {
		return "", "", err
	}
	if v, err := br.h.Sh(`pg_dump --version`); err == nil {
		m.PgDump = strings.TrimSpace(v)
	}
	// As the owner role, which owns every object: no superuser reads the
	// application's data.
	if _, err := br.h.ShOwner(`pg_dump --format=custom --file="$1"`, br.tmp); err != nil {
		return "", "", fmt.Errorf("pg_dump: %w", err)
	}
	return "ok", fmt.Sprintf("%s on %s as %s (%s)", c.Postgres.Database, c.Postgres.Name, br.h.Owner, m.PgDump), nil
}

func backupReadBack(br *backupRun) (string, string, error) {
	m := &br.r.Manifest
	dc, err := br.h.InspectDump(br.tmp)
	if err != nil {
		return "", "", fmt.Errorf("the new dump does not read back: %w", err)
	}
	m.Tables, m.Applied = dc.Tables, dc.Migrations
	sort.Strings(m.Applied)
	if n := len(m.Applied); n > 0 {
		m.Level = m.Applied[n-1]
	}
	out, err := br.h.Sh(`wc -c <"$1"`, br.tmp)
	if err != nil {
		return "", "", err
	}
	if m.Size, err = strconv.ParseInt(strings.TrimSpace(out), 10, 64); err != nil {
		return "", "", fmt.Errorf("size of the dump: %q", out)
	}
	return "ok", fmt.Sprintf("%d bytes, %d tables, migration %s", m.Size, len(m.Tables), m.Level), nil
}

// backupPut streams the dump out of the helper into the store (its
// sha256 on the way), then writes the manifest; when either fails, the
// dump is deleted again.
func backupPut(br *backupRun) (string, string, error) {
	ctx, m := br.ctx, &br.r.Manifest
	pr, pw := io.Pipe()
	sum := sha256.New()
	copied := make(chan error, 1)
	go func() {
		_, err := br.h.CopyOut(br.tmp, io.MultiWriter(pw, sum))
		pw.CloseWithError(err)
		copied <- err
	}()
	err := br.store.Put(ctx, m.Dump, pr, m.Size)
	pr.CloseWithError(errors.New("upload ended"))
	if cerr := <-copied; err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		m.SHA256 = hex.EncodeToString(sum.Sum(nil))
		m.HMAC = m.manifestMAC(br.key)
		b, _ := json.MarshalIndent(m, "", "  ")
		b = append(b, '\n')
		err = br.store.Put(ctx, m.Name+".json", strings.NewReader(string(b)), int64(len(b)))
	}
	if err != nil {
		_ = br.store.Delete(context.WithoutCancel(ctx), m.Dump)
		return "", "", err
	}
	return "changed", fmt.Sprintf("%s and %s.json in %s (sha256 %.12s)", m.Dump, m.Name, br.store.Where(), m.SHA256), nil
}

func backupRotate(br *backupRun) (string, string, error) {
	r := br.r
	var err error
	r.Removed, r.Kept, err = rotateBackups(br.ctx, br.c, br.store)
	if len(r.Removed) == 0 {
		return "unchanged", fmt.Sprintf("%d kept", r.Kept), err
	}
	return "changed", fmt.Sprintf("%d kept, removed %s", r.Kept, strings.Join(r.Removed, ", ")), err
}
