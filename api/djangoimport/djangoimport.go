// Package djangoimport brings the data of the Django system isis replaces
// into isis's tables: users with their ids and password hashes unchanged,
// profiles, the departments and municipalities the old system added,
// and SimpleJWT's outstanding and blacklisted refresh tokens, so nobody is
// logged out by the switch and a revoked token stays revoked.
//
// Everything is read in one snapshot of the old database and written in one
// transaction of isis's: an import that stops (a conflict, an error, a
// signal) leaves isis as it was. Each imported row is remembered with a
// digest of its values (table django_import), so a later import writes only
// what changed on Django since: run it again after more users signed up, or
// as the final import after the switch.
package djangoimport

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/auth"
	"github.com/isis-project/isis/api/emailaddr"
	"github.com/isis-project/isis/api/geo"
	"github.com/isis-project/isis/api/postgres"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Options tune an import.
type Options struct {
	// UserTable names Django's user table; "" finds it.
	UserTable string
	// DryRun computes everything, writes nothing.
	DryRun bool
	// Now is the clock (tokens expired by then are left behind).
	Now func() time.Time
	// Progress receives one line per step.
	Progress func(format string, args ...any)
	// Merge lets a first import write into an isis that has users of its
	// own (not created by an import): without it such an isis is refused.
	Merge bool
	// IDHeadroom is how far past Django's next id isis's sequences start, so
	// that a sign-up Django takes during the switch cannot get an id isis
	// has already given.
	IDHeadroom int64
}

// Counts says what happened to the rows of one kind.
type Counts struct {
	Source    int `json:"source"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// GeoCounts adds the rows whose official DANE data won over Django's.
type GeoCounts struct {
	Counts
	// OfficialKept counts Django rows with an official code whose name (or
	// department) differed: isis keeps the official one.
	OfficialKept int `json:"official_kept"`
}

// TokenCounts says what happened to SimpleJWT's token records.
type TokenCounts struct {
	Source    int `json:"source"`
	Created   int `json:"created"`
	Unchanged int `json:"unchanged"`
}

// Summary is the result of an import (or of a dry run).
type Summary struct {
	DryRun            bool        `json:"dry_run"`
	Source            Schema      `json:"source"`
	Users             Counts      `json:"users"`
	Profiles          Counts      `json:"profiles"`
	Departments       GeoCounts   `json:"departments"`
	Municipalities    GeoCounts   `json:"municipalities"`
	OutstandingTokens TokenCounts `json:"outstanding_tokens"`
	BlacklistedTokens TokenCounts `json:"blacklisted_tokens"`
	// ExpiredTokens are outstanding tokens past their expiry: useless, not imported.
	ExpiredTokens int `json:"expired_tokens_skipped"`
	// UsersGone were imported before and are no longer in Django: left as they are.
	UsersGone int `json:"users_gone_from_source"`
	// Changes is the number of rows written to isis (0: isis already had it all).
	Changes   int        `json:"changes"`
	Conflicts []Conflict `json:"conflicts"`
	Seconds   float64    `json:"seconds"`
}

// Conflict is one old row isis cannot take as it is.
type Conflict struct {
	Table   string `json:"table"`
	ID      string `json:"id"`
	Problem string `json:"problem"`
}

// String is the conflict on one line, its parts escaped where they hold
// anything unprintable (they come from the Django database).
func (c Conflict) String() string {
	return Printable(c.Table) + " id=" + Printable(c.ID) + ": " + Printable(c.Problem)
}

// Printable is s as it is when every character is printable (spaces
// included), else quoted with Go's escapes (strconv.Quote), so a control
// character from the Django database never reaches a terminal raw.
func Printable(s string) string {
	for _, r := range s {
		if r != ' ' && !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// ConflictError stops an import before anything is written.
type ConflictError struct{ Conflicts []Conflict }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("import stopped by %d conflict(s); nothing was written", len(e.Conflicts))
}

// importLockKey serializes imports ("isid").
const importLockKey = 0x69736964

// Ledger kinds.
const (
	kindUser         = "user"
	kindProfile      = "profile"
	kindDepartment   = "department"
	kindMunicipality = "municipality"
	// kindTokens has one row (key "all"): the digest of Django's tokens as
	// a whole (Source.tokenSet).
	kindTokens = "tokens"
)

var (
	departmentCode   = regexp.MustCompile(`^[0-9]{2}$`)
	municipalityCode = regexp.MustCompile(`^[0-9]{5}$`)
)

// digest fingerprints the imported values of one row.
func digest(fields ...any) string {
	h := sha256.New()
	for _, f := range fields {
		var s string
		switch v := f.(type) {
		case string:
			s = strconv.Quote(v)
		case bool:
			s = strconv.FormatBool(v)
		case int64:
			s = strconv.FormatInt(v, 10)
		case time.Time:
			s = v.UTC().Format(time.RFC3339Nano)
		case sql.NullTime:
			s = "null"
			if v.Valid {
				s = v.Time.UTC().Format(time.RFC3339Nano)
			}
		case sql.NullString:
			s = "null"
			if v.Valid {
				s = strconv.Quote(v.String)
			}
		default:
			panic(fmt.Sprintf("digest: %T", f))
		}
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// isis is what the target database holds before the import.
// isisState is the little the import keeps of isis's database in memory:
// the geography and its ledger rows. Users, profiles and tokens are compared
// in SQL, against what the import stages in temporary tables.
type isisState struct {
	ledger      map[string]map[string]string // kind → key → digest (departments and municipalities)
	departments map[string]string            // code → name
	munDept     map[string]string            // municipality code → department code
	// importedUsers, importedProfiles: an import brought users (profiles)
	// before (the ledger has some).
	importedUsers, importedProfiles bool
	// tokens is the ledger's digest of Django's tokens as a whole at the
	// last import (Source.tokenSet), "" if none.
	tokens string
	// hasEmailKey: users has an email_key column (the normal form isis
	// compares addresses in), which the import must fill.
	hasEmailKey bool
}

func loadState(ctx context.Context, tx *sqlx.Tx) (*isisState, error) {
	st := &isisState{ledger: map[string]map[string]string{}, departments: map[string]string{}, munDept: map[string]string{}}
	if err := tx.GetContext(ctx, &st.hasEmailKey, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'users' AND column_name = 'email_key')`); err != nil {
		return nil, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM django_import WHERE kind = 'user'),
		EXISTS (SELECT 1 FROM django_import WHERE kind = 'profile'),
		COALESCE((SELECT digest FROM django_import WHERE kind = '`+kindTokens+`' AND key = 'all'), '')`).Scan(
		&st.importedUsers, &st.importedProfiles, &st.tokens); err != nil {
		return nil, err
	}
	scan := func(q string, f func(r *sql.Rows) error) error {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := f(rows); err != nil {
				return err
			}
		}
		return rows.Close()
	}
	if err := scan(`SELECT kind, key, digest FROM django_import WHERE kind IN ('department', 'municipality')`, func(r *sql.Rows) error {
		var k, key, d string
		err := r.Scan(&k, &key, &d)
		if st.ledger[k] == nil {
			st.ledger[k] = map[string]string{}
		}
		st.ledger[k][key] = d
		return err
	}); err != nil {
		return nil, err
	}
	if err := scan(`SELECT code, name FROM departments`, func(r *sql.Rows) error {
		var c, n string
		err := r.Scan(&c, &n)
		st.departments[c] = n
		return err
	}); err != nil {
		return nil, err
	}
	if err := scan(`SELECT code, department_code FROM municipalities`, func(r *sql.Rows) error {
		var c, d string
		err := r.Scan(&c, &d)
		st.munDept[c] = d
		return err
	}); err != nil {
		return nil, err
	}
	return st, nil
}

// Import reads the Django database src and writes isis's database dst.
//
// It streams: pass 1 reads users, profiles and tokens once, checks each row
// on its own and stages a compact form of it (id, digest, email key, avatar)
// in temporary tables of isis's transaction, where the checks between rows
// (an email or avatar two users share, an id isis gave someone else) and the
// comparison with the last import run in SQL; every conflict is listed then,
// before any of isis's tables is written. Pass 2 reads again, from the same
// snapshot, only the rows that changed, and writes them with COPY. Memory
// stays flat in the number of users but for the ids of the changed rows
// (8 bytes each) and the conflicts.
func Import(ctx context.Context, src, dst *sqlx.DB, opt Options) (*Summary, error) {
	start := time.Now()
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Progress == nil {
		opt.Progress = func(string, ...any) {}
	}
	now := opt.Now().UTC().Truncate(time.Microsecond)
	s, err := openSource(ctx, src, opt.UserTable, now, opt.Progress)
	if err != nil {
		return nil, fmt.Errorf("read the Django database: %w", err)
	}
	defer s.close()
	sum := &Summary{DryRun: opt.DryRun, Source: s.Schema, ExpiredTokens: s.ExpiredTokens, Conflicts: []Conflict{}}

	// The import's transaction, on a connection of its own: a bulk import
	// COPYs rows it encoded itself through the driver's connection (copyRaw).
	conn, err := dst.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("isis database: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("isis database: %w", err)
	}
	defer tx.Rollback()
	// No time limit; sorts and hashes of a million staged rows in memory,
	// not temporary files; and no wait for the WAL's flush at commit (one
	// transaction: a crash loses it whole, and the import is run again).
	if _, err := tx.ExecContext(ctx, `SET LOCAL statement_timeout = 0; SET LOCAL work_mem = '64MB'; SET LOCAL synchronous_commit = off`); err != nil {
		return nil, fmt.Errorf("isis database: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, importLockKey); err != nil {
		return nil, fmt.Errorf("isis database: %w", err)
	}
	st, err := loadState(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("read isis's tables (is the database migrated? run isis migrate): %w", err)
	}
	// The first import into an isis that has users of its own: refused
	// unless Merge (later imports continue the first one: users who signed
	// up on isis since are expected).
	if !opt.Merge && !st.importedUsers {
		var n int
		var first sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT count(*), min(id) FROM users`).Scan(&n, &first); err != nil {
			return nil, fmt.Errorf("isis database: %w", err)
		}
		if n > 0 {
			return nil, fmt.Errorf("isis already has %d user(s) that no import created (id=%d first): importing would mix Django's users with them "+
				"(a Django refresh token or permission meant for one user would apply to another); import into a fresh isis database, "+
				"or pass --merge to import next to them", n, first.Int64)
		}
	}
	p := &plan{src: s, st: st, sum: sum, now: now, progress: opt.Progress, dst: dst, conn: conn}
	if err := p.geography(); err != nil {
		return nil, err
	}
	// A first import into an isis with no users, profiles or tokens (the
	// cutover) writes them in bulk; any other stages and compares.
	var b *bulk
	if !st.importedUsers && !st.importedProfiles && st.hasEmailKey {
		if b, err = beginBulk(ctx, tx); err != nil {
			return nil, fmt.Errorf("isis database: %w", err)
		}
	}
	if b != nil {
		opt.Progress("isis has no users, profiles or tokens: they are locked and written in bulk, their indexes and foreign keys made at the end")
		if err := p.bulkRead(ctx, tx, b); err != nil {
			return nil, stageError(err)
		}
	} else {
		if err := p.stageUsers(ctx, tx); err != nil {
			return nil, stageError(err)
		}
		if err := p.stageProfiles(ctx, tx); err != nil {
			return nil, stageError(err)
		}
		if err := p.stageTokens(ctx, tx); err != nil {
			return nil, stageError(err)
		}
	}
	if len(sum.Conflicts) > 0 {
		sort.SliceStable(sum.Conflicts, func(i, j int) bool { return sum.Conflicts[i].Table < sum.Conflicts[j].Table })
		sum.Seconds = time.Since(start).Seconds()
		return sum, &ConflictError{Conflicts: sum.Conflicts}
	}
	opt.Progress("plan: %d users, %d profiles, %d departments, %d municipalities to write",
		p.changedUsers, p.changedProfiles, len(p.departments), len(p.municipalities))
	if b != nil {
		err = p.bulkWrite(ctx, tx, b)
	} else {
		err = p.write(ctx, tx, opt.Progress)
	}
	if err != nil {
		return nil, stageError(err)
	}
	sum.Changes = sum.Users.Created + sum.Users.Updated + sum.Profiles.Created + sum.Profiles.Updated +
		sum.Departments.Created + sum.Departments.Updated + sum.Municipalities.Created + sum.Municipalities.Updated +
		sum.OutstandingTokens.Created + sum.BlacklistedTokens.Created
	if opt.DryRun {
		sum.Seconds = time.Since(start).Seconds()
		return sum, nil // rolled back
	}
	if err := p.moveSequences(ctx, tx, opt.IDHeadroom, opt.Progress); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	sum.Seconds = time.Since(start).Seconds()
	return sum, nil
}

// stageError keeps an error reading the old database as it is (it says
// so) and names isis's database in any other.
func stageError(err error) error {
	var se *sourceError
	if errors.As(err, &se) {
		return err
	}
	return fmt.Errorf("isis database: %w", err)
}

type ledgerRow struct{ kind, key, digest string }

type plan struct {
	src      *Source
	dst      *sqlx.DB   // a second connection, for reading alongside a COPY
	conn     *sqlx.Conn // the transaction's
	st       *isisState
	sum      *Summary
	now      time.Time
	progress func(string, ...any)

	departments    []SourcePlace
	municipalities []SourcePlace
	ledger         []ledgerRow // geography's
	// deps and munDept are isis's geography once imported.
	deps    map[string]bool
	munDept map[string]string
	// changedUsers and changedProfiles are the staged rows to write.
	changedUsers, changedProfiles int
	// tokens is the digest of Django's tokens as a whole, recorded in the
	// ledger once they are written ("" for none).
	tokens string
}

func (p *plan) conflict(table string, id any, format string, args ...any) {
	p.sum.Conflicts = append(p.sum.Conflicts, Conflict{Table: table, ID: fmt.Sprint(id), Problem: fmt.Sprintf(format, args...)})
}

// changed reports whether a row must be (re)written: Django's values differ
// from what the last import brought. It queues the ledger update.
func (p *plan) changed(kind, key, d string) bool {
	if p.st.ledger[kind][key] == d {
		return false
	}
	p.ledger = append(p.ledger, ledgerRow{kind, key, d})
	return true
}

func (p *plan) geography() error {
	officialDeps, err := geo.Departments()
	if err != nil {
		return err
	}
	officialMuns, err := geo.Municipalities()
	if err != nil {
		return err
	}
	official := map[string]geo.Row{}
	for _, r := range officialDeps {
		official["d"+r.Code] = r
	}
	for _, r := range officialMuns {
		official["m"+r.Code] = r
	}
	s, st, sum := p.src, p.st, p.sum

	// Geography: official codes keep DANE's name and department; the codes
	// Django added are imported (Django's name wins while it is the source).
	deps := map[string]bool{}
	for c := range st.departments {
		deps[c] = true
	}
	sum.Departments.Source = len(s.Departments)
	for _, d := range s.Departments {
		t := s.Schema.DepartmentTable
		if o, ok := official["d"+d.Code]; ok {
			sum.Departments.Unchanged++
			if o.Name != d.Name {
				sum.Departments.OfficialKept++
			}
			continue
		}
		if !departmentCode.MatchString(d.Code) {
			p.conflict(t, d.Code, "department code %q is not two digits", d.Code)
			continue
		}
		if strings.TrimSpace(d.Name) == "" || len(d.Name) > 100 {
			p.conflict(t, d.Code, "department name is empty or longer than 100 characters")
			continue
		}
		deps[d.Code] = true
		if p.changed(kindDepartment, d.Code, digest(d.Code, d.Name)) {
			p.departments = append(p.departments, d)
		} else {
			sum.Departments.Unchanged++
		}
	}
	munDept := map[string]string{}
	for c, d := range st.munDept {
		munDept[c] = d
	}
	sum.Municipalities.Source = len(s.Municipalities)
	for _, m := range s.Municipalities {
		t := s.Schema.MunicipalityTable
		if o, ok := official["m"+m.Code]; ok {
			sum.Municipalities.Unchanged++
			if o.Name != m.Name || o.DepartmentCode != m.DepartmentCode {
				sum.Municipalities.OfficialKept++
			}
			continue
		}
		switch {
		case !municipalityCode.MatchString(m.Code):
			p.conflict(t, m.Code, "municipality code %q is not five digits", m.Code)
			continue
		case m.Code[:2] != m.DepartmentCode:
			p.conflict(t, m.Code, "municipality %s is in department %s, but a DANE code starts with its department's (%s)", m.Code, m.DepartmentCode, m.Code[:2])
			continue
		case !deps[m.DepartmentCode]:
			p.conflict(t, m.Code, "municipality %s is in department %s, which isis does not have", m.Code, m.DepartmentCode)
			continue
		case strings.TrimSpace(m.Name) == "" || len(m.Name) > 100:
			p.conflict(t, m.Code, "municipality name is empty or longer than 100 characters")
			continue
		}
		munDept[m.Code] = m.DepartmentCode
		if p.changed(kindMunicipality, m.Code, digest(m.Code, m.DepartmentCode, m.Name)) {
			p.municipalities = append(p.municipalities, m)
		} else {
			sum.Municipalities.Unchanged++
		}
	}
	p.deps, p.munDept = deps, munDept
	return nil
}

// copier streams rows into a table with COPY.
type copier struct {
	ctx  context.Context
	stmt *sql.Stmt
}

func newCopier(ctx context.Context, tx *sqlx.Tx, table string, cols ...string) (*copier, error) {
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn(table, cols...))
	if err != nil {
		return nil, err
	}
	return &copier{ctx: ctx, stmt: stmt}, nil
}

func (c *copier) add(vals ...any) error {
	_, err := c.stmt.ExecContext(c.ctx, vals...)
	return err
}

// close ends the COPY; abort gives it up (the transaction is rolled back).
func (c *copier) close() error {
	if _, err := c.stmt.ExecContext(c.ctx); err != nil {
		c.stmt.Close()
		return err
	}
	return c.stmt.Close()
}

func (c *copier) abort() { c.stmt.Close() }

// stream runs each (a Source stream) with rows added to a COPY into table,
// then ANALYZEs the table so the joins that read it are planned on its
// real size.
func stream(ctx context.Context, tx *sqlx.Tx, table string, cols []string, each func(add func(vals ...any) error) error) error {
	c, err := newCopier(ctx, tx, table, cols...)
	if err != nil {
		return err
	}
	if err := each(c.add); err != nil {
		c.abort()
		return err
	}
	if err := c.close(); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `ANALYZE `+quote(table))
	return err
}

// checkUser lists what is wrong with one user on its own.
func (p *plan) checkUser(u *SourceUser) (bad bool) {
	t := p.src.Schema.UserTable
	switch {
	case strings.TrimSpace(u.Email) == "":
		p.conflict(t, u.ID, "no email (isis logs users in by email)")
		bad = true
	case len(storedEmail(u.Email)) > 254 || emailaddr.Validate(storedEmail(u.Email)) != nil:
		p.conflict(t, u.ID, "email %q is not a valid address (isis's sign-up would refuse it)", truncate(u.Email, 80))
		bad = true
	}
	if err := auth.CheckableHash(u.Password); err != nil {
		p.conflict(t, u.ID, "password: %v", err)
		bad = true
	} else if len(u.Password) > 255 {
		p.conflict(t, u.ID, "password hash longer than 255 characters")
		bad = true
	}
	if len(u.FirstName) > 150 || len(u.LastName) > 150 {
		p.conflict(t, u.ID, "first or last name longer than 150 characters")
		bad = true
	}
	return bad
}

// compare is pass 1 over users (users) or profiles: it reads (id, digest)
// of every row and returns, in order, the ids whose digest is not the
// ledger's (kind): the rows to read whole, check and write. gone are the
// ids the ledger has and the source no longer does (nil without a cursor).
// all: the ledger has no row of kind (a first import), so every row is to
// be read whole and there is no pass 1 (n is then 0: the caller counts).
func (p *plan) compare(ctx context.Context, tx *sqlx.Tx, users bool, kind string) (ids, gone []int64, n int, all bool, err error) {
	if imported := map[bool]bool{true: p.st.importedUsers, false: p.st.importedProfiles}[users]; !imported {
		return nil, []int64{}, 0, true, nil
	}
	if q := map[bool]string{true: p.src.userSumQ, false: p.src.profileSumQ}[users]; q == "" {
		ids, gone, n, err = p.compareDigests(ctx, tx, users, kind)
		return ids, gone, n, false, err
	}
	// Every row as the ledger has it: the same count and sum of digests,
	// each side summed by its server, both at once (a digest of another
	// form, from an older isis, is not a number: no sum then; the pattern
	// has no bounded repetition, {1,20}, which made it 8 times slower).
	var ln, lnum int
	var lsum string
	ledger := make(chan error, 1)
	go func() {
		ledger <- tx.QueryRowContext(ctx, `SELECT count(*), count(n), COALESCE(sum(n), 0)::text FROM
			(SELECT CASE WHEN digest ~ '^-?[0-9]+$' THEN digest::numeric END AS n FROM django_import WHERE kind = $1) d`, kind).Scan(&ln, &lnum, &lsum)
	}()
	n, sum, err := p.src.digestSum(ctx, users)
	if lerr := <-ledger; err == nil {
		err = lerr
	}
	if err != nil || (sum != "" && ln == n && lnum == n && lsum == sum) {
		return nil, []int64{}, n, false, err
	}
	ids, gone, n, err = p.compareDigests(ctx, tx, users, kind)
	return ids, gone, n, false, err
}

func (p *plan) compareDigests(ctx context.Context, tx *sqlx.Tx, users bool, kind string) (ids, gone []int64, n int, err error) {
	lc, err := p.openLedger(ctx, `SELECT key::bigint, digest FROM django_import WHERE kind = '`+kind+`' ORDER BY 1`)
	if err != nil {
		return nil, nil, 0, err
	}
	defer lc.close()
	if lc == nil {
		// No second connection: compare in SQL.
		tmp := "import_" + kind + "_digests"
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE `+tmp+` (id bigint, digest text) ON COMMIT DROP`); err != nil {
			return nil, nil, 0, err
		}
		if err := stream(ctx, tx, tmp, []string{"id", "digest"}, func(add func(...any) error) error {
			return p.src.eachDigest(ctx, users, func(id int64, d string) error {
				n++
				return add(id, d)
			})
		}); err != nil {
			return nil, nil, 0, err
		}
		err = tx.SelectContext(ctx, &ids, `SELECT id FROM `+tmp+` k WHERE NOT EXISTS (SELECT 1 FROM django_import l
			WHERE l.kind = $1 AND l.key = k.id::text AND l.digest = k.digest) ORDER BY id`, kind)
		return ids, nil, n, err
	}
	if err := p.src.eachDigest(ctx, users, func(id int64, d string) error {
		n++
		if ld, ok := lc.lookup(id); !ok || ld != d {
			ids = append(ids, id)
		}
		return nil
	}); err != nil {
		return nil, nil, 0, err
	}
	if err := lc.finish(); err != nil {
		return nil, nil, 0, err
	}
	if lc.gone == nil {
		lc.gone = []int64{}
	}
	return ids, lc.gone, n, nil
}

// userCols are the columns of import_user_keys the users are written from.
var userCols = []string{"email", "password", "first_name", "last_name", "is_staff", "is_superuser", "is_active", "date_joined", "last_login"}

// stageUsers reads whole, checks and stages the users whose digest changed
// (pass 2): the same ids; the hash as it is, if isis can check it; one
// address per user in isis's normal form.
func (p *plan) stageUsers(ctx context.Context, tx *sqlx.Tx) error {
	t, sum := p.src.Schema.UserTable, p.sum
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE import_user_keys (id bigint, digest text, email text, email_key text,
		bad boolean, changed boolean NOT NULL DEFAULT false, password text, first_name text, last_name text, is_staff boolean,
		is_superuser boolean, is_active boolean, date_joined timestamptz, last_login timestamptz, search_text text) ON COMMIT DROP`); err != nil {
		return err
	}
	ids, gone, n, all, err := p.compare(ctx, tx, true, kindUser)
	if err != nil {
		return err
	}
	same := n - len(ids)
	if all || len(ids) > 0 {
		if err := stream(ctx, tx, "import_user_keys", []string{"id", "digest", "email", "email_key", "bad", "changed", "password", "first_name",
			"last_name", "is_staff", "is_superuser", "is_active", "date_joined", "last_login", "search_text"}, func(add func(...any) error) error {
			return p.src.eachUser(ctx, func(u *SourceUser) error {
				if all {
					n++
				} else if !has(ids, u.ID) {
					return nil
				}
				bad := p.checkUser(u)
				e := storedEmail(u.Email)
				// the same search text isis's store writes (postgres.userSearchText)
				return add(u.ID, u.Digest, e, emailKey(e), bad, !bad, u.Password, u.FirstName, u.LastName, u.IsStaff, u.IsSuperuser,
					u.IsActive, u.DateJoined.UTC(), nullTime(u.LastLogin), api.Fold(e+" "+u.FirstName+" "+u.LastName))
			})
		}); err != nil {
			return err
		}
	}
	ids = nil
	sum.Users.Source = n
	p.progress("read %d users", n)
	// The users imported before that Django no longer has.
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE import_users_gone (id bigint) ON COMMIT DROP`); err != nil {
		return err
	}
	if gone != nil {
		if err := copyRows(ctx, tx, "import_users_gone", []string{"id"}, len(gone), func(i int) []any { return []any{gone[i]} }); err != nil {
			return err
		}
		sum.UsersGone = len(gone)
	} else if sum.UsersGone, err = affected(tx.ExecContext(ctx, `INSERT INTO import_users_gone
		SELECT l.key::bigint FROM django_import l WHERE l.kind = 'user'
		AND NOT EXISTS (SELECT 1 FROM import_user_digests k WHERE k.id::text = l.key)`)); err != nil {
		return err
	}

	// An id isis gave one of its own users.
	rows, err := tx.QueryxContext(ctx, `SELECT k.id, u.email FROM import_user_keys k JOIN users u ON u.id = k.id
		WHERE NOT EXISTS (SELECT 1 FROM django_import l WHERE l.kind = 'user' AND l.key = k.id::text) ORDER BY k.id`)
	if err != nil {
		return err
	}
	taken := 0
	for rows.Next() {
		var id int64
		var email string
		if err := rows.Scan(&id, &email); err != nil {
			rows.Close()
			return err
		}
		p.conflict(t, id, "isis already has a user with id %d (%s) that no import created: import into a fresh isis database", id, email)
		taken++
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if taken > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE import_user_keys k SET bad = true, changed = false FROM users u WHERE u.id = k.id
			AND NOT EXISTS (SELECT 1 FROM django_import l WHERE l.kind = 'user' AND l.key = k.id::text)`); err != nil {
			return err
		}
	}
	// Every row staged changed since the last import (compare), but a bad one.
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE changed), count(*) FILTER (WHERE NOT bad AND NOT changed)
		FROM import_user_keys`).Scan(&p.changedUsers, &sum.Users.Unchanged); err != nil {
		return err
	}
	sum.Users.Unchanged += same
	if p.changedUsers == 0 {
		return nil // every address is isis's already
	}

	// Two rows that are one address in isis's normal form, once imported:
	// isis's users as they are, but those the import rewrites.
	key, join, err := p.isisEmailKeys(ctx, tx)
	if err != nil {
		return err
	}
	rows, err = tx.QueryxContext(ctx, `WITH c AS MATERIALIZED (SELECT id, email, email_key FROM import_user_keys WHERE changed),
		f AS MATERIALIZED (
			SELECT id, email, email_key AS key, true AS src FROM c
			UNION ALL
			SELECT u.id, u.email, `+key+`, `+inSource+` FROM users u`+join+` LEFT JOIN import_user_keys k ON k.id = u.id
				LEFT JOIN django_import l ON l.kind = 'user' AND l.key = u.id::text LEFT JOIN import_users_gone g ON g.id = u.id
			WHERE k.changed IS NOT TRUE AND `+key+` IN (SELECT email_key FROM c))
		SELECT id, email, key, src FROM f WHERE key IN (SELECT key FROM f GROUP BY key HAVING count(*) > 1) ORDER BY key, id`)
	if err != nil {
		return err
	}
	return p.emailConflicts(rows)
}

// emailConflicts lists the rows (id, email, key, src: a row of Django's)
// that are one address in isis's normal form, grouped by key: a Django row
// that has the address of an isis user of its own, or of an earlier Django
// row in its group.
func (p *plan) emailConflicts(rows *sqlx.Rows) error {
	t := p.src.Schema.UserTable
	defer rows.Close()
	type member struct {
		id         int64
		email, key string
		src        bool
	}
	var group []member
	flush := func() {
		var native, old []member
		for _, m := range group {
			if m.src {
				old = append(old, m)
			} else {
				native = append(native, m)
			}
		}
		for i, m := range old {
			switch {
			case len(native) > 0:
				p.conflict(t, m.id, "email %q is the same address as isis user id=%d (%q) in isis's normal form", m.email, native[0].id, native[0].email)
			case i > 0:
				p.conflict(t, m.id, "email %q is the same address as %s id=%d (%q) in isis's normal form", m.email, t, old[0].id, old[0].email)
			}
		}
		group = group[:0]
	}
	for rows.Next() {
		var m member
		if err := rows.Scan(&m.id, &m.email, &m.key, &m.src); err != nil {
			return err
		}
		if len(group) > 0 && group[0].key != m.key {
			flush()
		}
		group = append(group, m)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	flush()
	return rows.Close()
}

// isisEmailKeys is the SQL expression of an isis user's (u) email key, and
// the join it needs: users.email_key where isis has it, else the key
// computed here (emailKey) and staged, a batch at a time.
func (p *plan) isisEmailKeys(ctx context.Context, tx *sqlx.Tx) (key, join string, err error) {
	where := ""
	if p.st.hasEmailKey {
		var missing bool
		if err := tx.GetContext(ctx, &missing, `SELECT EXISTS (SELECT 1 FROM users WHERE email_key IS NULL)`); err != nil || !missing {
			return "u.email_key", "", err
		}
		where = " AND email_key IS NULL"
	}
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE import_isis_keys (id bigint PRIMARY KEY, key text) ON COMMIT DROP`); err != nil {
		return "", "", err
	}
	type row struct {
		ID    int64  `db:"id"`
		Email string `db:"email"`
	}
	last := int64(math.MinInt64)
	for {
		var batch []row
		if err := tx.SelectContext(ctx, &batch, `SELECT id, email FROM users WHERE id > $1`+where+` ORDER BY id LIMIT 10000`, last); err != nil {
			return "", "", err
		}
		if len(batch) == 0 {
			break
		}
		if err := postgres.CopyRows(ctx, tx, "import_isis_keys", []string{"id", "key"}, len(batch), func(i int) []any {
			return []any{batch[i].ID, emailKey(batch[i].Email)}
		}); err != nil {
			return "", "", err
		}
		last = batch[len(batch)-1].ID
	}
	if _, err := tx.ExecContext(ctx, `ANALYZE import_isis_keys`); err != nil {
		return "", "", err
	}
	join = " LEFT JOIN import_isis_keys ik ON ik.id = u.id"
	if p.st.hasEmailKey {
		return "COALESCE(u.email_key, ik.key)", join, nil
	}
	return "ik.key", join, nil
}

// checkProfile lists what is wrong with one profile on its own.
func (p *plan) checkProfile(pr *SourceProfile) (bad bool) {
	t := p.src.Schema.ProfileTable
	if len(pr.Phone) > 32 || len(pr.Avatar) > 512 {
		p.conflict(t, pr.ID, "phone longer than 32 or avatar key longer than 512 characters")
		bad = true
	} else if !validAvatarKey(pr.Avatar) {
		p.conflict(t, pr.ID, "avatar %q is not a key isis would store (avatars/ then letters, digits, '.', '_', '-' and '/', no '..')", truncate(pr.Avatar, 80))
		bad = true
	}
	if pr.DepartmentCode.Valid && !p.deps[pr.DepartmentCode.String] {
		p.conflict(t, pr.ID, "department %q does not exist in isis", pr.DepartmentCode.String)
		bad = true
	}
	if pr.MunicipalityCode.Valid {
		md, ok := p.munDept[pr.MunicipalityCode.String]
		switch {
		case !ok:
			p.conflict(t, pr.ID, "municipality %q does not exist in isis", pr.MunicipalityCode.String)
			bad = true
		case pr.DepartmentCode.Valid && md != pr.DepartmentCode.String:
			p.conflict(t, pr.ID, "municipality %s is not in department %s (it is in %s)", pr.MunicipalityCode.String, pr.DepartmentCode.String, md)
			bad = true
		}
	}
	return bad
}

// stageProfiles is pass 1 over the profiles.
func (p *plan) stageProfiles(ctx context.Context, tx *sqlx.Tx) error {
	if p.src.Schema.ProfileTable == "" {
		return nil
	}
	t, sum := p.src.Schema.ProfileTable, p.sum
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE import_profile_keys (id bigint, user_id bigint, digest text, avatar text,
		bad boolean, changed boolean NOT NULL DEFAULT false, phone text, bio text, birth_date date, department_code text,
		municipality_code text, updated_at timestamptz) ON COMMIT DROP`); err != nil {
		return err
	}
	ids, _, n, all, err := p.compare(ctx, tx, false, kindProfile)
	if err != nil {
		return err
	}
	same := n - len(ids)
	if all || len(ids) > 0 {
		if err := stream(ctx, tx, "import_profile_keys", []string{"id", "user_id", "digest", "avatar", "bad", "changed", "phone", "bio",
			"birth_date", "department_code", "municipality_code", "updated_at"}, func(add func(...any) error) error {
			return p.src.eachProfile(ctx, func(pr *SourceProfile) error {
				if all {
					n++
				} else if !has(ids, pr.ID) {
					return nil
				}
				bad := p.checkProfile(pr)
				birth, updated := profileDates(pr, p.now)
				return add(pr.ID, pr.UserID, pr.Digest, pr.Avatar, bad, !bad, pr.Phone, pr.Bio, birth, nullString(pr.DepartmentCode),
					nullString(pr.MunicipalityCode), updated)
			})
		}); err != nil {
			return err
		}
	}
	ids = nil
	sum.Profiles.Source = n
	p.progress("read %d profiles, %d departments, %d municipalities", n, len(p.src.Departments), len(p.src.Municipalities))

	// A user who has a profile in isis gets it updated in place (whatever
	// its id); a new one takes Django's id, which must be free.
	const takenQ = `FROM import_profile_keys k JOIN profiles p ON p.id = k.id
		WHERE p.user_id <> k.user_id AND NOT EXISTS (SELECT 1 FROM profiles q WHERE q.user_id = k.user_id)`
	rows, err := tx.QueryxContext(ctx, `SELECT k.id, p.user_id `+takenQ+` ORDER BY k.id`)
	if err != nil {
		return err
	}
	taken := 0
	for rows.Next() {
		var id, uid int64
		if err := rows.Scan(&id, &uid); err != nil {
			rows.Close()
			return err
		}
		p.conflict(t, id, "isis already has a profile with id %d, of user %d, that no import created", id, uid)
		taken++
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if taken > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE import_profile_keys SET bad = true, changed = false WHERE id IN (SELECT k.id `+takenQ+`)`); err != nil {
			return err
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE changed), count(*) FILTER (WHERE NOT bad AND NOT changed)
		FROM import_profile_keys`).Scan(&p.changedProfiles, &sum.Profiles.Unchanged); err != nil {
		return err
	}
	sum.Profiles.Unchanged += same

	// An avatar's file is deleted when its user uploads another: two users
	// must not share one (isis's avatars as they are, but those of the users
	// whose profile the import brings).
	rows, err = tx.QueryxContext(ctx, `WITH g AS MATERIALIZED (SELECT user_id, avatar, id FROM import_profile_keys WHERE NOT bad),
		f AS MATERIALIZED (
			SELECT user_id, avatar, id AS profile FROM g WHERE avatar <> ''
			UNION ALL
			SELECT p.user_id, p.avatar, NULL FROM profiles p WHERE p.avatar <> '' AND NOT EXISTS (SELECT 1 FROM g WHERE g.user_id = p.user_id))
		SELECT user_id, avatar, profile FROM f WHERE avatar IN (SELECT avatar FROM g)
			AND avatar IN (SELECT avatar FROM f GROUP BY avatar HAVING count(*) > 1) ORDER BY avatar, user_id`)
	if err != nil {
		return err
	}
	return p.avatarConflicts(rows)
}

// avatarConflicts lists the profiles among rows (user id, avatar, profile
// id: null for a profile isis has) that share an avatar, grouped by it.
func (p *plan) avatarConflicts(rows *sqlx.Rows) error {
	t := p.src.Schema.ProfileTable
	defer rows.Close()
	type member struct {
		uid     int64
		avatar  string
		profile sql.NullInt64
	}
	var group []member
	flush := func() {
		for _, m := range group {
			if !m.profile.Valid || len(group) < 2 {
				continue
			}
			other := group[0].uid
			if other == m.uid {
				other = group[1].uid
			}
			p.conflict(t, m.profile.Int64, "avatar %q is also user %d's (isis deletes an avatar's file when its user uploads a new one: each user needs a file of their own)",
				truncate(m.avatar, 80), other)
		}
		group = group[:0]
	}
	for rows.Next() {
		var m member
		if err := rows.Scan(&m.uid, &m.avatar, &m.profile); err != nil {
			return err
		}
		if len(group) > 0 && group[0].avatar != m.avatar {
			flush()
		}
		group = append(group, m)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	flush()
	return rows.Close()
}

// stageTokens reads the live refresh tokens into a temporary table: they
// are only ever added (and blacklisted), so nothing to compare.
func (p *plan) stageTokens(ctx context.Context, tx *sqlx.Tx) error {
	if p.src.Schema.OutstandingTable == "" {
		return nil
	}
	sum := p.sum
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE import_tokens (jti text, user_id bigint, created_at timestamptz,
		expires_at timestamptz, blacklisted_at timestamptz) ON COMMIT DROP`); err != nil {
		return err
	}
	// Django's tokens as they were at the last import: isis has them.
	d, live, black, err := p.src.tokenSet(ctx)
	if err != nil {
		return err
	}
	if d != "" && d == p.st.tokens {
		sum.OutstandingTokens.Source, sum.BlacklistedTokens.Source = live, black
		sum.OutstandingTokens.Unchanged, sum.BlacklistedTokens.Unchanged = live, black
		p.progress("read %d live refresh tokens (%d expired ones left behind): as at the last import", live, sum.ExpiredTokens)
		return nil
	}
	p.tokens = d
	// isis's tokens, by jti (as the source's are streamed), to skip those
	// isis has as they are.
	lc, err := p.openTokens(ctx)
	if err != nil {
		return err
	}
	defer lc.close()
	if err := stream(ctx, tx, "import_tokens", []string{"jti", "user_id", "created_at", "expires_at", "blacklisted_at"}, func(add func(...any) error) error {
		return p.src.eachToken(ctx, true, func(tk *SourceToken) error {
			sum.OutstandingTokens.Source++
			if tk.BlacklistedAt.Valid {
				sum.BlacklistedTokens.Source++
			}
			if black, ok := lc.lookupJTI(tk.JTI); ok && (black || !tk.BlacklistedAt.Valid) {
				return nil
			}
			var uid any
			if tk.UserID.Valid {
				uid = tk.UserID.Int64
			}
			return add(tk.JTI, uid, nullTime(tk.CreatedAt), tk.ExpiresAt.UTC(), nullTime(tk.BlacklistedAt))
		})
	}); err != nil {
		return err
	}
	if err := lc.finish(); err != nil {
		return err
	}
	sum.OutstandingTokens.Unchanged = sum.OutstandingTokens.Source
	sum.BlacklistedTokens.Unchanged = sum.BlacklistedTokens.Source
	p.progress("read %d live refresh tokens (%d expired ones left behind)", sum.OutstandingTokens.Source, sum.ExpiredTokens)
	return nil
}

// validAvatarKey says whether key ("" for none) looks like a media key isis
// writes itself (api/media: avatars/<user id>/<hex>.<ext>) or Django's
// storage does (avatars/<name>): under avatars/, clean (no "..", no empty or
// dot-led segment, no scheme), of letters, digits, '.', '_', '-' and '/'.
func validAvatarKey(key string) bool {
	if key == "" {
		return true
	}
	rest, ok := strings.CutPrefix(key, "avatars/")
	if !ok || rest == "" || path.Clean("/"+key) != "/"+key {
		return false
	}
	for _, seg := range strings.Split(rest, "/") {
		if seg == "" || seg[0] == '.' {
			return false
		}
	}
	for _, r := range key {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("._-/", r) {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// copyRows loads rows into a temporary table with COPY, then ANALYZEs it so
// the joins that read it are planned on its real size.
func copyRows(ctx context.Context, tx *sqlx.Tx, table string, cols []string, n int, row func(i int) []any) error {
	if err := postgres.CopyRows(ctx, tx, table, cols, n, row); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `ANALYZE `+quote(table))
	return err
}

func affected(res sql.Result, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func nullTime(t sql.NullTime) any {
	if !t.Valid {
		return nil
	}
	return t.Time.UTC()
}

func nullString(s sql.NullString) any {
	if !s.Valid {
		return nil
	}
	return s.String
}

func has(ids []int64, id int64) bool {
	i := sort.Search(len(ids), func(i int) bool { return ids[i] >= id })
	return i < len(ids) && ids[i] == id
}

// wrapWrite names what was being written in err, but in an error reading
// the old database (it says so).
func wrapWrite(what string, err error) error {
	var se *sourceError
	if errors.As(err, &se) {
		return err
	}
	return fmt.Errorf("write %s: %w", what, err)
}

func (p *plan) write(ctx context.Context, tx *sqlx.Tx, progress func(string, ...any)) error {
	sum, wrap := p.sum, wrapWrite
	if err := p.writeGeography(ctx, tx); err != nil {
		return err
	}

	// The users that changed, as staged.
	if p.changedUsers > 0 {
		cols := append([]string{}, userCols...)
		if p.st.hasEmailKey {
			cols = append(cols, "email_key")
		}
		set := make([]string, len(cols))
		old := make([]string, len(cols))
		staged := make([]string, len(cols))
		for i, c := range cols {
			set[i] = c + " = k." + c
			old[i] = "u." + c
			staged[i] = "k." + c
		}
		list := strings.Join(cols, ", ")
		updated, err := affected(tx.ExecContext(ctx, `UPDATE users u SET `+strings.Join(set, ", ")+`, search_text = k.search_text
			FROM import_user_keys k WHERE k.changed AND u.id = k.id
			AND (`+strings.Join(old, ", ")+`) IS DISTINCT FROM (`+strings.Join(staged, ", ")+`)`))
		if err != nil {
			return wrap("users", err)
		}
		created, err := affected(tx.ExecContext(ctx, `INSERT INTO users (id, `+list+`, search_text)
			SELECT id, `+list+`, search_text FROM import_user_keys k
			WHERE changed AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = k.id) ORDER BY id`))
		if err != nil {
			return wrap("users", err)
		}
		sum.Users.Created, sum.Users.Updated = created, updated
		sum.Users.Unchanged += p.changedUsers - created - updated
		if err := p.writeLedger(ctx, tx, kindUser, "import_user_keys"); err != nil {
			return wrap("ledger", err)
		}
	}
	progress("users: %d created, %d updated, %d unchanged", sum.Users.Created, sum.Users.Updated, sum.Users.Unchanged)

	if p.changedProfiles > 0 {
		// A user who has a profile in isis gets it updated in place (whatever its id).
		updated, err := affected(tx.ExecContext(ctx, `UPDATE profiles p SET phone = k.phone, bio = k.bio, birth_date = k.birth_date,
				department_code = k.department_code, municipality_code = k.municipality_code, avatar = k.avatar, updated_at = k.updated_at
			FROM import_profile_keys k WHERE k.changed AND p.user_id = k.user_id
			AND (p.phone, p.bio, p.birth_date, p.department_code, p.municipality_code, p.avatar, p.updated_at)
				IS DISTINCT FROM (k.phone, k.bio, k.birth_date, k.department_code, k.municipality_code, k.avatar, k.updated_at)`))
		if err != nil {
			return wrap("profiles", err)
		}
		created, err := affected(tx.ExecContext(ctx, `INSERT INTO profiles (id, user_id, phone, bio, birth_date, department_code,
				municipality_code, avatar, updated_at)
			SELECT id, user_id, phone, bio, birth_date, department_code, municipality_code, avatar, updated_at
			FROM import_profile_keys k WHERE changed AND NOT EXISTS (SELECT 1 FROM profiles p WHERE p.user_id = k.user_id) ORDER BY id`))
		if err != nil {
			return wrap("profiles", err)
		}
		sum.Profiles.Created, sum.Profiles.Updated = created, updated
		sum.Profiles.Unchanged += p.changedProfiles - created - updated
		if err := p.writeLedger(ctx, tx, kindProfile, "import_profile_keys"); err != nil {
			return wrap("ledger", err)
		}
	}
	if p.src.Schema.ProfileTable != "" {
		progress("profiles: %d created, %d updated, %d unchanged", sum.Profiles.Created, sum.Profiles.Updated, sum.Profiles.Unchanged)
	}

	// Tokens: in the order of their users, so that the foreign key's check
	// (which locks each token's user) walks users' pages once, not at
	// random; no ON CONFLICT: a jti of Django's is never one isis makes.
	// Tokens: those isis lacks, each with its user when that user is one of
	// Django's (a token of a user deleted there is never another user's in
	// isis); then the blacklisting isis lacks.
	if p.src.Schema.OutstandingTable != "" {
		n, err := affected(tx.ExecContext(ctx, `INSERT INTO token_outstanding (jti, user_id, created_at, expires_at)
			SELECT t.jti, CASE WHEN `+inSource+` THEN u.id END, t.created_at, t.expires_at FROM import_tokens t
				LEFT JOIN import_user_keys k ON k.id = t.user_id
				LEFT JOIN django_import l ON l.kind = 'user' AND l.key = t.user_id::text LEFT JOIN import_users_gone g ON g.id = t.user_id
				LEFT JOIN users u ON u.id = t.user_id
			WHERE NOT EXISTS (SELECT 1 FROM token_outstanding o WHERE o.jti = t.jti) ORDER BY t.user_id`))
		if err != nil {
			return wrap("outstanding tokens", err)
		}
		sum.OutstandingTokens.Created, sum.OutstandingTokens.Unchanged = n, sum.OutstandingTokens.Source-n
		n, err = affected(tx.ExecContext(ctx, `INSERT INTO token_blacklisted (token_id, blacklisted_at)
			SELECT o.id, t.blacklisted_at FROM import_tokens t JOIN token_outstanding o ON o.jti = t.jti
			WHERE t.blacklisted_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM token_blacklisted b WHERE b.token_id = o.id)
			ON CONFLICT (token_id) DO NOTHING`))
		if err != nil {
			return wrap("blacklisted tokens", err)
		}
		sum.BlacklistedTokens.Created, sum.BlacklistedTokens.Unchanged = n, sum.BlacklistedTokens.Source-n
		progress("refresh tokens: %d outstanding and %d blacklisted created", sum.OutstandingTokens.Created, sum.BlacklistedTokens.Created)
	}
	if err := p.writeTokenSet(ctx, tx); err != nil {
		return wrap("ledger", err)
	}

	return p.writeGeoLedger(ctx, tx)
}

// writeGeography writes the departments and municipalities that changed.
func (p *plan) writeGeography(ctx context.Context, tx *sqlx.Tx) error {
	sum, wrap := p.sum, wrapWrite
	for _, d := range p.departments {
		n, err := affected(tx.ExecContext(ctx, `INSERT INTO departments (code, name, search_name) VALUES ($1, $2, $3)
			ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, search_name = EXCLUDED.search_name
			WHERE departments.name IS DISTINCT FROM EXCLUDED.name`, d.Code, d.Name, api.Fold(d.Name)))
		if err != nil {
			return wrap("departments", err)
		}
		_, existed := p.st.departments[d.Code]
		switch {
		case n == 0:
			sum.Departments.Unchanged++
		case existed:
			sum.Departments.Updated++
		default:
			sum.Departments.Created++
		}
	}
	for _, m := range p.municipalities {
		n, err := affected(tx.ExecContext(ctx, `INSERT INTO municipalities (code, department_code, name, search_name) VALUES ($1, $2, $3, $4)
			ON CONFLICT (code) DO UPDATE SET department_code = EXCLUDED.department_code, name = EXCLUDED.name, search_name = EXCLUDED.search_name
			WHERE (municipalities.department_code, municipalities.name) IS DISTINCT FROM (EXCLUDED.department_code, EXCLUDED.name)`,
			m.Code, m.DepartmentCode, m.Name, api.Fold(m.Name)))
		if err != nil {
			return wrap("municipalities", err)
		}
		_, existed := p.st.munDept[m.Code]
		switch {
		case n == 0:
			sum.Municipalities.Unchanged++
		case existed:
			sum.Municipalities.Updated++
		default:
			sum.Municipalities.Created++
		}
	}
	return nil
}

// writeGeoLedger records the digests of the geography written.
func (p *plan) writeGeoLedger(ctx context.Context, tx *sqlx.Tx) error {
	wrap := wrapWrite
	if len(p.ledger) > 0 {
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE import_ledger (kind text, key text, digest text) ON COMMIT DROP`); err != nil {
			return wrap("ledger", err)
		}
		if err := copyRows(ctx, tx, "import_ledger", []string{"kind", "key", "digest"}, len(p.ledger), func(i int) []any {
			return []any{p.ledger[i].kind, p.ledger[i].key, p.ledger[i].digest}
		}); err != nil {
			return wrap("ledger", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO django_import (kind, key, digest, imported_at)
			SELECT kind, key, digest, $1 FROM import_ledger
			ON CONFLICT (kind, key) DO UPDATE SET digest = EXCLUDED.digest, imported_at = EXCLUDED.imported_at`, p.now); err != nil {
			return wrap("ledger", err)
		}
	}
	return nil
}

// writeTokenSet records the digest of Django's tokens as a whole, once
// they are all written (no ON CONFLICT: the ledger's key may be dropped).
func (p *plan) writeTokenSet(ctx context.Context, tx *sqlx.Tx) error {
	if p.tokens == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM django_import WHERE kind = $1`, kindTokens); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO django_import (kind, key, digest, imported_at) VALUES ($1, 'all', $2, $3)`, kindTokens, p.tokens, p.now)
	return err
}

// writeLedger records the digests of the rows of table (staged) written
// or found as they are: an update of those the ledger has, then an insert
// of the others (no ON CONFLICT: the import's lock keeps other writers out
// of the ledger, and a plain insert spares a probe of the index per row).
func (p *plan) writeLedger(ctx context.Context, tx *sqlx.Tx, kind, table string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE django_import l SET digest = k.digest, imported_at = $2
		FROM `+table+` k WHERE k.changed AND l.kind = $1 AND l.key = k.id::text`, kind, p.now); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO django_import (kind, key, digest, imported_at)
		SELECT $1, id::text, digest, $2 FROM `+table+` k
		WHERE changed AND NOT EXISTS (SELECT 1 FROM django_import l WHERE l.kind = $1 AND l.key = k.id::text)`, kind, p.now)
	return err
}

// moveSequences puts isis's id sequences past every id Django used or would
// hand out next (plus headroom), so a new isis user never takes the id of an
// old one (an old token names its user by id, a deleted user's included).
func (p *plan) moveSequences(ctx context.Context, tx *sqlx.Tx, headroom int64, progress func(string, ...any)) error {
	for _, s := range []struct {
		table string
		last  int64
	}{{"users", p.src.UserSequence - 1}, {"profiles", p.src.ProfileSequence - 1}, {"token_outstanding", -1}} {
		var seq string
		if err := tx.GetContext(ctx, &seq, `SELECT pg_get_serial_sequence($1, 'id')`, s.table); err != nil {
			return fmt.Errorf("sequence of %s: %w", s.table, err)
		}
		var maxID int64
		if err := tx.GetContext(ctx, &maxID, `SELECT COALESCE(max(id), 0) FROM `+quote(s.table)); err != nil {
			return fmt.Errorf("sequence of %s: %w", s.table, err)
		}
		target := maxID
		if s.last >= 0 {
			target = max(target, s.last+headroom)
		}
		var r struct {
			Last   int64 `db:"last_value"`
			Called bool  `db:"is_called"`
		}
		if err := tx.GetContext(ctx, &r, `SELECT last_value, is_called FROM `+seq); err != nil {
			return fmt.Errorf("sequence of %s: %w", s.table, err)
		}
		next := r.Last
		if r.Called {
			next++
		}
		if target >= next {
			if _, err := tx.ExecContext(ctx, `SELECT setval($1, $2, true)`, seq, target); err != nil {
				return fmt.Errorf("sequence of %s: %w", s.table, err)
			}
			progress("%s: the next id is %d", s.table, target+1)
		}
	}
	return nil
}

// IsConflict reports whether err is an import stopped by conflicts.
func IsConflict(err error) bool {
	var ce *ConflictError
	return errors.As(err, &ce)
}

// inSource is the SQL condition that a user id is one of Django's: staged
// (k, the row of import_user_keys joined on it), or imported before (l, the
// ledger's row joined on it) and not gone (g, import_users_gone's).
const inSource = `(k.id IS NOT NULL OR (l.key IS NOT NULL AND g.id IS NULL))`

// cursor reads isis's ledger (id, digest) or tokens (jti, blacklisted) in
// the order the source's rows are streamed, on a connection of its own (the
// transaction's is busy with the COPY), so that a row isis has as it is
// is neither staged nor written. The ledger and the tokens it skips change
// only under the import's lock. A nil cursor finds nothing: every row is
// staged (when dst allows a single connection).
type cursor struct {
	rows   *sql.Rows
	ledger bool // else tokens
	ok     bool
	id     int64
	jti    string
	digest string
	black  bool
	err    error
	// gone are the ledger's ids passed over (ids Django no longer has).
	gone []int64
}

func (p *plan) openCursor(ctx context.Context, q string) (*cursor, error) {
	if p.dst == nil || p.dst.Stats().MaxOpenConnections == 1 {
		return nil, nil
	}
	rows, err := p.dst.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c := &cursor{rows: rows}
	return c, nil
}

func (p *plan) openLedger(ctx context.Context, q string) (*cursor, error) {
	c, err := p.openCursor(ctx, q)
	if c != nil {
		c.ledger = true
		c.next(c.scanLedger)
	}
	return c, err
}

func (p *plan) openTokens(ctx context.Context) (*cursor, error) {
	c, err := p.openCursor(ctx, `SELECT o.jti, b.id IS NOT NULL FROM token_outstanding o
		LEFT JOIN token_blacklisted b ON b.token_id = o.id ORDER BY o.jti COLLATE "C"`)
	if c != nil {
		c.next(c.scanToken)
	}
	return c, err
}

func (c *cursor) scanToken() error { return c.rows.Scan(&c.jti, &c.black) }

func (c *cursor) scanLedger() error { return c.rows.Scan(&c.id, &c.digest) }

func (c *cursor) next(scan func() error) {
	c.ok = c.err == nil && c.rows.Next()
	if c.ok {
		if c.err = scan(); c.err != nil {
			c.ok = false
		}
	}
}

// lookup is the ledger's digest for id (ids asked in ascending order).
func (c *cursor) lookup(id int64) (string, bool) {
	if c == nil {
		return "", false
	}
	for c.ok && c.id < id {
		c.gone = append(c.gone, c.id)
		c.next(c.scanLedger)
	}
	if c.ok && c.id == id {
		d := c.digest
		c.next(c.scanLedger)
		return d, true
	}
	return "", false
}

// lookupJTI says whether isis has the token, and whether blacklisted (jtis
// asked in ascending bytewise order).
func (c *cursor) lookupJTI(jti string) (black, ok bool) {
	if c == nil {
		return false, false
	}
	for c.ok && c.jti < jti {
		c.next(c.scanToken)
	}
	if c.ok && c.jti == jti {
		return c.black, true
	}
	return false, false
}

// finish reads the ledger to its end (the rest is gone from Django) and
// reports any error reading it.
func (c *cursor) finish() error {
	if c == nil {
		return nil
	}
	for c.ok && c.ledger {
		c.gone = append(c.gone, c.id)
		c.next(c.scanLedger)
	}
	if c.err == nil {
		c.err = c.rows.Err()
	}
	c.close()
	return c.err
}

func (c *cursor) close() {
	if c != nil {
		c.rows.Close()
	}
}

// profileDates are a profile's birth date as isis stores it (NULL when
// Django has none) and its updated_at (now when Django has none).
func profileDates(pr *SourceProfile, now time.Time) (birth any, updated time.Time) {
	if pr.BirthDate.Valid {
		birth = pr.BirthDate.Time.Format(time.DateOnly)
	}
	updated = now
	if pr.UpdatedAt.Valid {
		updated = pr.UpdatedAt.Time.UTC()
	}
	return birth, updated
}
