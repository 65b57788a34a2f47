package cutover

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
	"github.com/isis-project/isis/ops/steps"
)

// ImportSteps are an import, in order (the command's help lists them from
// here). What they make for the import's time (the read-only role, the
// secret, the container) is removed when it ends, failed, interrupted or
// not; what a killed isisctl left behind, the next import removes first.
var ImportSteps = []steps.Def[*importRun]{
	{Name: "leftovers", Summary: "remove the container and the secret an interrupted import left behind", Run: importLeftovers},
	{Name: "source", Summary: "with --from-database, a temporary read-only role to read it as (dropped at the end)", Run: importSource, Cleanup: dropSource},
	{Name: "secret", Summary: "the source's connection string in a temporary Podman secret (removed at the end)", Run: importSecret,
		Cleanup: func(ir *importRun) { _ = ir.conn.WithoutCancel().SecretRemove(ImportSourceSecret) }},
	{Name: "import", Summary: "isis import-django in a one-off container of the backend image on the private network, in one transaction (removed at the end)",
		Run: importJob, Cleanup: func(ir *importRun) { _ = ir.conn.WithoutCancel().Remove(ir.cs.Name, 0) }},
}

// ImportHelp is the step list as the command's help prints it.
func ImportHelp() string { return steps.Help(ImportSteps, 1) }

// importRun is the state one import's steps share.
type importRun struct {
	ctx  context.Context
	conn podman.Engine
	c    *config.Config
	o    ImportDjangoOptions
	cs   *podman.ContainerSpec
	out  func(string)
	res  *ImportDjangoResult
	h    *host.PGHelper // with --from-database
	role bool           // the read-only role was made
	dsn  string
}

// importLeftovers removes what an isisctl killed mid-import (SIGKILL, a lost
// session) left behind: the container (maybe still importing) and the secret.
func importLeftovers(ir *importRun) (string, string, error) {
	var removed []string
	if st, err := ir.conn.Inspect(ir.cs.Name); err == nil && st.Exists {
		if err := ir.conn.Remove(ir.cs.Name, 0); err != nil {
			return "", "", err
		}
		ir.out(fmt.Sprintf("isisctl: removed the container %s an interrupted import left behind", ir.cs.Name))
		removed = append(removed, "container "+ir.cs.Name)
	}
	if ok, err := ir.conn.SecretExists(ImportSourceSecret); err == nil && ok {
		if err := ir.conn.SecretRemove(ImportSourceSecret); err != nil {
			return "", "", fmt.Errorf("remove the secret %s an interrupted import left behind: %w", ImportSourceSecret, err)
		}
		ir.out(fmt.Sprintf("isisctl: removed the secret %s an interrupted import left behind", ImportSourceSecret))
		removed = append(removed, "secret "+ImportSourceSecret)
	}
	if len(removed) == 0 {
		return "unchanged", "none", nil
	}
	return "changed", "removed " + strings.Join(removed, ", "), nil
}

// importSource is the connection string the job reads: --from as given, or
// to --from-database as a temporary read-only role (a role an interrupted
// import left is dropped first).
func importSource(ir *importRun) (string, string, error) {
	o := ir.o
	if o.FromDatabase == "" {
		ir.dsn = o.FromDSN
		return "ok", "a connection string (--from/--from-file)", nil
	}
	var err error
	if ir.h, err = host.StartPGHelper(ir.conn, ir.c, "import"); err != nil {
		return "", "", err
	}
	if left, err := dropImportRole(ir.h, ir.c, o.FromDatabase); err != nil {
		return "", "", err
	} else if left {
		ir.out("isisctl: dropped the role " + ImportRole + " an interrupted import left behind")
	}
	ir.role = true // made or half made: dropped at the end
	if ir.dsn, err = createImportRole(ir.h, ir.c, o.FromDatabase); err != nil {
		return "", "", err
	}
	ir.out(fmt.Sprintf("isisctl: reading %s as %s, a temporary read-only role", o.FromDatabase, ImportRole))
	return "changed", o.FromDatabase + " as " + ImportRole, nil
}

// dropSource drops the read-only role and removes the helper (after a
// signal too).
func dropSource(ir *importRun) {
	if ir.h == nil {
		return
	}
	ir.h.Conn = ir.h.Conn.WithoutCancel()
	if ir.role {
		if _, err := dropImportRole(ir.h, ir.c, ir.o.FromDatabase); err != nil {
			ir.out("isisctl: could not drop the role " + ImportRole + " (the next import drops it): " + err.Error())
		}
	}
	ir.h.Remove()
}

func importSecret(ir *importRun) (string, string, error) {
	if err := ir.conn.SecretCreate(ImportSourceSecret, ir.dsn, map[string]string{spec.LabelManaged: "true"}); err != nil {
		return "", "", fmt.Errorf("create secret %q: %w", ImportSourceSecret, err)
	}
	return "changed", ImportSourceSecret, nil
}

// importJob creates and starts the job, follows its logs (standard error is
// progress, standard output the JSON summary) and waits for it.
func importJob(ir *importRun) (string, string, error) {
	if err := ir.conn.Create(ir.cs); err != nil {
		return "", "", err
	}
	if err := ir.conn.Start(ir.cs.Name); err != nil {
		return "", "", err
	}
	last, err := ir.follow()
	if err != nil {
		return "", "", err
	}
	res := ir.res
	if res.ExitCode != 0 {
		if ce := conflictError(res.Summary); ce != nil {
			return "", "", ce
		}
		return "", "", fmt.Errorf("isis import-django exited with code %d: %s", res.ExitCode, last)
	}
	return "ok", importSummaryDetail(res.Summary), nil
}

// follow streams the job's log lines until it exits and its logs end; it
// returns the last progress line. An interruption stops the job.
func (ir *importRun) follow() (string, error) {
	conn, name, res := ir.conn, ir.cs.Name, ir.res
	stdout, stderr := make(chan string, 1000), make(chan string, 1000)
	logsDone := make(chan error, 1)
	go func() {
		logsDone <- conn.Logs(name, podman.LogOptions{Follow: true}, stdout, stderr)
	}()
	waitDone := make(chan error, 1)
	go func() {
		code, err := conn.Wait(name)
		res.ExitCode = code
		waitDone <- err
	}()
	var last string
	handle := func(l string, out bool) {
		l = strings.TrimRight(l, "\r\n")
		if out && strings.HasPrefix(strings.TrimSpace(l), "{") {
			res.Summary = json.RawMessage(strings.TrimSpace(l))
			return
		}
		if strings.TrimSpace(l) != "" {
			last = strings.TrimSpace(l)
			ir.out(l)
		}
	}
	var waitErr error
	for exited, logsEnded := false, false; !exited || !logsEnded; {
		select {
		case l := <-stdout:
			handle(l, true)
		case l := <-stderr:
			handle(l, false)
		case waitErr = <-waitDone:
			exited = true
		case <-logsDone:
			logsEnded = true
		case <-ir.ctx.Done():
			_ = conn.WithoutCancel().Stop(name, 10)
			return last, fmt.Errorf("import-django interrupted (the import runs in one transaction: isis is as it was): %w", ir.ctx.Err())
		}
	}
	for drained := false; !drained; {
		select {
		case l := <-stdout:
			handle(l, true)
		case l := <-stderr:
			handle(l, false)
		default:
			drained = true
		}
	}
	if waitErr != nil {
		return last, fmt.Errorf("wait for %q: %w", name, waitErr)
	}
	return last, nil
}
