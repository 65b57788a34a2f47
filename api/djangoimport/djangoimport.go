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
type isisState struct {
	ledger       map[string]map[string]string // kind → key → digest
	users        map[int64]string             // id → email
	profiles     map[int64]int64              // id → user_id
	userProfile  map[int64]int64              // user_id → profile id
	avatars      map[int64]string             // user_id → avatar key
	departments  map[string]string            // code → name
	munDept      map[string]string            // municipality code → department code
	tokens       map[string]bool              // outstanding jti → blacklisted
	maxUserID    int64
	maxProfileID int64
	// hasEmailKey: users has an email_key column (the normal form isis
	// compares addresses in), which the import must fill.
	hasEmailKey bool
}

func loadState(ctx context.Context, tx *sqlx.Tx) (*isisState, error) {
	st := &isisState{ledger: map[string]map[string]string{}, users: map[int64]string{}, profiles: map[int64]int64{},
		userProfile: map[int64]int64{}, avatars: map[int64]string{}, departments: map[string]string{}, munDept: map[string]string{}, tokens: map[string]bool{}}
	if err := tx.GetContext(ctx, &st.hasEmailKey, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'users' AND column_name = 'email_key')`); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT kind, key, digest FROM django_import`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k, key, d string
		if err := rows.Scan(&k, &key, &d); err != nil {
			rows.Close()
			return nil, err
		}
		if st.ledger[k] == nil {
			st.ledger[k] = map[string]string{}
		}
		st.ledger[k][key] = d
	}
	if err := rows.Close(); err != nil {
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
	if err := scan(`SELECT id, email FROM users`, func(r *sql.Rows) error {
		var id int64
		var e string
		err := r.Scan(&id, &e)
		st.users[id] = e
		st.maxUserID = max(st.maxUserID, id)
		return err
	}); err != nil {
		return nil, err
	}
	if err := scan(`SELECT id, user_id, avatar FROM profiles`, func(r *sql.Rows) error {
		var id, uid int64
		var avatar string
		err := r.Scan(&id, &uid, &avatar)
		st.profiles[id], st.userProfile[uid], st.avatars[uid] = uid, id, avatar
		st.maxProfileID = max(st.maxProfileID, id)
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
	if err := scan(`SELECT o.jti, b.id IS NOT NULL FROM token_outstanding o LEFT JOIN token_blacklisted b ON b.token_id = o.id`, func(r *sql.Rows) error {
		var jti string
		var black bool
		err := r.Scan(&jti, &black)
		st.tokens[jti] = black
		return err
	}); err != nil {
		return nil, err
	}
	return st, nil
}

// Import reads the Django database src and writes isis's database dst.
func Import(ctx context.Context, src, dst *sqlx.DB, opt Options) (*Summary, error) {
	start := time.Now()
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Progress == nil {
		opt.Progress = func(string, ...any) {}
	}
	now := opt.Now().UTC().Truncate(time.Microsecond)
	s, err := read(ctx, src, opt.UserTable, now, opt.Progress)
	if err != nil {
		return nil, fmt.Errorf("read the Django database: %w", err)
	}
	sum := &Summary{DryRun: opt.DryRun, Source: s.Schema, ExpiredTokens: s.ExpiredTokens, Conflicts: []Conflict{}}

	tx, err := dst.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("isis database: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
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
	if !opt.Merge && len(st.ledger[kindUser]) == 0 {
		var native []int64
		for id := range st.users {
			if _, ok := st.ledger[kindUser][strconv.FormatInt(id, 10)]; !ok {
				native = append(native, id)
			}
		}
		if len(native) > 0 {
			sort.Slice(native, func(i, j int) bool { return native[i] < native[j] })
			return nil, fmt.Errorf("isis already has %d user(s) that no import created (id=%d first): importing would mix Django's users with them "+
				"(a Django refresh token or permission meant for one user would apply to another); import into a fresh isis database, "+
				"or pass --merge to import next to them", len(native), native[0])
		}
	}
	p := &plan{src: s, st: st, sum: sum, now: now}
	if err := p.make(); err != nil {
		return nil, err
	}
	if len(sum.Conflicts) > 0 {
		sort.SliceStable(sum.Conflicts, func(i, j int) bool { return sum.Conflicts[i].Table < sum.Conflicts[j].Table })
		sum.Seconds = time.Since(start).Seconds()
		return sum, &ConflictError{Conflicts: sum.Conflicts}
	}
	opt.Progress("plan: %d users, %d profiles, %d departments, %d municipalities, %d refresh tokens to write",
		len(p.users), len(p.profiles), len(p.departments), len(p.municipalities), len(p.tokens))
	if err := p.write(ctx, tx, opt.Progress); err != nil {
		return nil, err
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

type ledgerRow struct{ kind, key, digest string }

type plan struct {
	src *Source
	st  *isisState
	sum *Summary
	now time.Time

	departments    []SourcePlace
	municipalities []SourcePlace
	users          []*SourceUser
	profiles       []*SourceProfile
	tokens         []*SourceToken
	ledger         []ledgerRow
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

func (p *plan) make() error {
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

	// Users: the same ids; the hash as it is, if isis can check it.
	t := s.Schema.UserTable
	sum.Users.Source = len(s.Users)
	finalEmail := map[int64]string{}
	for id, e := range st.users {
		finalEmail[id] = e
	}
	inSource := map[int64]bool{}
	for i := range s.Users {
		u := &s.Users[i]
		inSource[u.ID] = true
		bad := false
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
		key := strconv.FormatInt(u.ID, 10)
		_, inIsis := st.users[u.ID]
		_, imported := st.ledger[kindUser][key]
		if inIsis && !imported {
			p.conflict(t, u.ID, "isis already has a user with id %d (%s) that no import created: import into a fresh isis database",
				u.ID, st.users[u.ID])
			continue
		}
		if bad {
			continue
		}
		if p.changed(kindUser, key, digest(u.ID, u.Email, u.Password, u.FirstName, u.LastName, u.IsStaff, u.IsSuperuser,
			u.IsActive, u.DateJoined, u.LastLogin)) {
			p.users = append(p.users, u)
			finalEmail[u.ID] = storedEmail(u.Email)
		} else {
			sum.Users.Unchanged++
		}
	}
	for key := range st.ledger[kindUser] {
		if id, _ := strconv.ParseInt(key, 10, 64); !inSource[id] {
			sum.UsersGone++
		}
	}
	// Two rows that are one address in isis's normal form.
	byKey := map[string][]int64{}
	for id, e := range finalEmail {
		k := emailKey(e)
		byKey[k] = append(byKey[k], id)
	}
	for _, ids := range byKey {
		if len(ids) < 2 {
			continue
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		var native []int64
		var old []int64
		for _, id := range ids {
			if inSource[id] {
				old = append(old, id)
			} else {
				native = append(native, id)
			}
		}
		for i, id := range old {
			switch {
			case len(native) > 0:
				p.conflict(t, id, "email %q is the same address as isis user id=%d (%q) in isis's normal form",
					finalEmail[id], native[0], finalEmail[native[0]])
			case i > 0:
				p.conflict(t, id, "email %q is the same address as %s id=%d (%q) in isis's normal form",
					finalEmail[id], t, old[0], finalEmail[old[0]])
			}
		}
	}

	// Profiles.
	t = s.Schema.ProfileTable
	sum.Profiles.Source = len(s.Profiles)
	avatars := map[int64]string{} // user id → avatar key, once imported
	for uid, a := range st.avatars {
		avatars[uid] = a
	}
	avatarProfile := map[int64]int64{} // user id → Django profile id
	for i := range s.Profiles {
		pr := &s.Profiles[i]
		bad := false
		if len(pr.Phone) > 32 || len(pr.Avatar) > 512 {
			p.conflict(t, pr.ID, "phone longer than 32 or avatar key longer than 512 characters")
			bad = true
		} else if !validAvatarKey(pr.Avatar) {
			p.conflict(t, pr.ID, "avatar %q is not a key isis would store (avatars/ then letters, digits, '.', '_', '-' and '/', no '..')", truncate(pr.Avatar, 80))
			bad = true
		}
		if pr.DepartmentCode.Valid && !deps[pr.DepartmentCode.String] {
			p.conflict(t, pr.ID, "department %q does not exist in isis", pr.DepartmentCode.String)
			bad = true
		}
		if pr.MunicipalityCode.Valid {
			md, ok := munDept[pr.MunicipalityCode.String]
			switch {
			case !ok:
				p.conflict(t, pr.ID, "municipality %q does not exist in isis", pr.MunicipalityCode.String)
				bad = true
			case pr.DepartmentCode.Valid && md != pr.DepartmentCode.String:
				p.conflict(t, pr.ID, "municipality %s is not in department %s (it is in %s)", pr.MunicipalityCode.String, pr.DepartmentCode.String, md)
				bad = true
			}
		}
		// A user who has a profile in isis gets it updated in place (whatever
		// its id); a new one takes Django's id, which must be free.
		if uid, taken := st.profiles[pr.ID]; taken && uid != pr.UserID {
			if _, has := st.userProfile[pr.UserID]; !has {
				p.conflict(t, pr.ID, "isis already has a profile with id %d, of user %d, that no import created", pr.ID, uid)
				bad = true
			}
		}
		if bad {
			continue
		}
		avatars[pr.UserID] = pr.Avatar
		avatarProfile[pr.UserID] = pr.ID
		if p.changed(kindProfile, strconv.FormatInt(pr.ID, 10), digest(pr.ID, pr.UserID, pr.Phone, pr.Bio, pr.BirthDate,
			pr.DepartmentCode, pr.MunicipalityCode, pr.Avatar, pr.UpdatedAt)) {
			p.profiles = append(p.profiles, pr)
		} else {
			sum.Profiles.Unchanged++
		}
	}
	// An avatar's file is deleted when its user uploads another: two users
	// must not share one.
	byAvatar := map[string][]int64{}
	for uid, a := range avatars {
		if a != "" {
			byAvatar[a] = append(byAvatar[a], uid)
		}
	}
	for a, uids := range byAvatar {
		if len(uids) < 2 {
			continue
		}
		sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
		for _, uid := range uids {
			if id, ok := avatarProfile[uid]; ok {
				other := uids[0]
				if other == uid {
					other = uids[1]
				}
				p.conflict(t, id, "avatar %q is also user %d's (isis deletes an avatar's file when its user uploads a new one: each user needs a file of their own)",
					truncate(a, 80), other)
			}
		}
	}
	// Tokens are only ever added (and blacklisted): write those isis lacks.
	sum.OutstandingTokens.Source = len(s.Tokens)
	for i := range s.Tokens {
		tk := &s.Tokens[i]
		if tk.BlacklistedAt.Valid {
			sum.BlacklistedTokens.Source++
		}
		if tk.UserID.Valid && !inSource[tk.UserID.Int64] {
			// Not one of Django's users (deleted there): never another
			// user's in isis.
			tk.UserID = sql.NullInt64{}
		}
		black, ok := st.tokens[tk.JTI]
		if !ok || (tk.BlacklistedAt.Valid && !black) {
			p.tokens = append(p.tokens, tk)
		}
	}
	sum.OutstandingTokens.Unchanged = sum.OutstandingTokens.Source
	sum.BlacklistedTokens.Unchanged = sum.BlacklistedTokens.Source
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

func (p *plan) write(ctx context.Context, tx *sqlx.Tx, progress func(string, ...any)) error {
	sum := p.sum
	wrap := func(what string, err error) error { return fmt.Errorf("write %s: %w", what, err) }

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

	if len(p.users) > 0 {
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE import_users (id bigint, email text, password text,
			first_name text, last_name text, is_staff boolean, is_superuser boolean, is_active boolean,
			date_joined timestamptz, last_login timestamptz, search_text text, email_key text) ON COMMIT DROP`); err != nil {
			return wrap("users", err)
		}
		err := copyRows(ctx, tx, "import_users", []string{"id", "email", "password", "first_name", "last_name", "is_staff",
			"is_superuser", "is_active", "date_joined", "last_login", "search_text", "email_key"}, len(p.users), func(i int) []any {
			u := p.users[i]
			e := storedEmail(u.Email)
			// the same search text isis's store writes (postgres.userSearchText)
			return []any{u.ID, e, u.Password, u.FirstName, u.LastName, u.IsStaff, u.IsSuperuser, u.IsActive,
				u.DateJoined.UTC(), nullTime(u.LastLogin), api.Fold(e + " " + u.FirstName + " " + u.LastName), emailKey(e)}
		})
		if err != nil {
			return wrap("users", err)
		}
		cols := []string{"email", "password", "first_name", "last_name", "is_staff", "is_superuser", "is_active", "date_joined", "last_login"}
		if p.st.hasEmailKey {
			cols = append(cols, "email_key")
		}
		set := make([]string, len(cols))
		old := make([]string, len(cols))
		excluded := make([]string, len(cols))
		for i, c := range cols {
			set[i] = c + " = EXCLUDED." + c
			old[i] = "users." + c
			excluded[i] = "EXCLUDED." + c
		}
		list := strings.Join(cols, ", ")
		n, err := affected(tx.ExecContext(ctx, `INSERT INTO users (id, `+list+`, search_text)
			SELECT id, `+list+`, search_text FROM import_users ORDER BY id
			ON CONFLICT (id) DO UPDATE SET `+strings.Join(set, ", ")+`, search_text = EXCLUDED.search_text
			WHERE (`+strings.Join(old, ", ")+`) IS DISTINCT FROM (`+strings.Join(excluded, ", ")+`)`))
		if err != nil {
			return wrap("users", err)
		}
		created := 0
		for _, u := range p.users {
			if _, ok := p.st.users[u.ID]; !ok {
				created++
			}
		}
		sum.Users.Created, sum.Users.Updated = created, n-created
		sum.Users.Unchanged += len(p.users) - n
	}
	progress("users: %d created, %d updated, %d unchanged", sum.Users.Created, sum.Users.Updated, sum.Users.Unchanged)

	if len(p.profiles) > 0 {
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE import_profiles (id bigint, user_id bigint, phone text, bio text,
			birth_date date, department_code text, municipality_code text, avatar text, updated_at timestamptz) ON COMMIT DROP`); err != nil {
			return wrap("profiles", err)
		}
		err := copyRows(ctx, tx, "import_profiles", []string{"id", "user_id", "phone", "bio", "birth_date", "department_code",
			"municipality_code", "avatar", "updated_at"}, len(p.profiles), func(i int) []any {
			pr := p.profiles[i]
			var birth any
			if pr.BirthDate.Valid {
				birth = pr.BirthDate.Time.Format(time.DateOnly)
			}
			updated := p.now
			if pr.UpdatedAt.Valid {
				updated = pr.UpdatedAt.Time.UTC()
			}
			return []any{pr.ID, pr.UserID, pr.Phone, pr.Bio, birth, nullString(pr.DepartmentCode), nullString(pr.MunicipalityCode),
				pr.Avatar, updated}
		})
		if err != nil {
			return wrap("profiles", err)
		}
		n, err := affected(tx.ExecContext(ctx, `INSERT INTO profiles (id, user_id, phone, bio, birth_date, department_code,
				municipality_code, avatar, updated_at)
			SELECT id, user_id, phone, bio, birth_date, department_code, municipality_code, avatar, updated_at
			FROM import_profiles ORDER BY id
			ON CONFLICT (user_id) DO UPDATE SET phone = EXCLUDED.phone, bio = EXCLUDED.bio, birth_date = EXCLUDED.birth_date,
				department_code = EXCLUDED.department_code, municipality_code = EXCLUDED.municipality_code,
				avatar = EXCLUDED.avatar, updated_at = EXCLUDED.updated_at
			WHERE (profiles.phone, profiles.bio, profiles.birth_date, profiles.department_code, profiles.municipality_code,
				profiles.avatar, profiles.updated_at)
				IS DISTINCT FROM (EXCLUDED.phone, EXCLUDED.bio, EXCLUDED.birth_date, EXCLUDED.department_code,
				EXCLUDED.municipality_code, EXCLUDED.avatar, EXCLUDED.updated_at)`))
		if err != nil {
			return wrap("profiles", err)
		}
		created := 0
		for _, pr := range p.profiles {
			if _, ok := p.st.userProfile[pr.UserID]; !ok {
				created++
			}
		}
		sum.Profiles.Created, sum.Profiles.Updated = created, n-created
		sum.Profiles.Unchanged += len(p.profiles) - n
	}
	if p.src.Schema.ProfileTable != "" {
		progress("profiles: %d created, %d updated, %d unchanged", sum.Profiles.Created, sum.Profiles.Updated, sum.Profiles.Unchanged)
	}

	if len(p.tokens) > 0 {
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE import_tokens (jti text, user_id bigint, created_at timestamptz,
			expires_at timestamptz, blacklisted_at timestamptz) ON COMMIT DROP`); err != nil {
			return wrap("tokens", err)
		}
		toks := p.tokens
		err := copyRows(ctx, tx, "import_tokens", []string{"jti", "user_id", "created_at", "expires_at", "blacklisted_at"}, len(toks),
			func(i int) []any {
				var uid any
				if toks[i].UserID.Valid {
					uid = toks[i].UserID.Int64
				}
				return []any{toks[i].JTI, uid, nullTime(toks[i].CreatedAt), toks[i].ExpiresAt.UTC(), nullTime(toks[i].BlacklistedAt)}
			})
		if err != nil {
			return wrap("tokens", err)
		}
		n, err := affected(tx.ExecContext(ctx, `INSERT INTO token_outstanding (jti, user_id, created_at, expires_at)
			SELECT t.jti, u.id, t.created_at, t.expires_at FROM import_tokens t LEFT JOIN users u ON u.id = t.user_id
			ON CONFLICT (jti) DO NOTHING`))
		if err != nil {
			return wrap("outstanding tokens", err)
		}
		sum.OutstandingTokens.Created, sum.OutstandingTokens.Unchanged = n, sum.OutstandingTokens.Source-n
		n, err = affected(tx.ExecContext(ctx, `INSERT INTO token_blacklisted (token_id, blacklisted_at)
			SELECT o.id, t.blacklisted_at FROM import_tokens t JOIN token_outstanding o ON o.jti = t.jti
			WHERE t.blacklisted_at IS NOT NULL
			ON CONFLICT (token_id) DO NOTHING`))
		if err != nil {
			return wrap("blacklisted tokens", err)
		}
		sum.BlacklistedTokens.Created, sum.BlacklistedTokens.Unchanged = n, sum.BlacklistedTokens.Source-n
	}
	if p.src.Schema.OutstandingTable != "" {
		progress("refresh tokens: %d outstanding and %d blacklisted created", sum.OutstandingTokens.Created, sum.BlacklistedTokens.Created)
	}

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

// moveSequences puts isis's id sequences past every id Django used or would
// hand out next (plus headroom), so a new isis user never takes the id of an
// old one (an old token names its user by id, a deleted user's included).
func (p *plan) moveSequences(ctx context.Context, tx *sqlx.Tx, headroom int64, progress func(string, ...any)) error {
	for _, s := range []struct {
		table string
		last  int64
	}{{"users", p.src.UserSequence - 1}, {"profiles", p.src.ProfileSequence - 1}} {
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
