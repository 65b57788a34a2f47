package djangoimport

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Schema is where the Django data lives in the old database.
type Schema struct {
	UserTable         string `json:"user_table"`
	ProfileTable      string `json:"profile_table,omitempty"`
	DepartmentTable   string `json:"department_table,omitempty"`
	MunicipalityTable string `json:"municipality_table,omitempty"`
	OutstandingTable  string `json:"outstanding_token_table,omitempty"`
	BlacklistedTable  string `json:"blacklisted_token_table,omitempty"`
}

// SourceUser is one row of Django's user table.
type SourceUser struct {
	ID          int64
	Email       string
	Password    string
	FirstName   string
	LastName    string
	IsStaff     bool
	IsSuperuser bool
	IsActive    bool
	DateJoined  time.Time
	LastLogin   sql.NullTime
	// Digest fingerprints the row (rowDigest).
	Digest string
}

// SourceProfile is one row of the profile table.
type SourceProfile struct {
	ID               int64
	UserID           int64
	Phone            string
	Bio              string
	BirthDate        sql.NullTime
	DepartmentCode   sql.NullString
	MunicipalityCode sql.NullString
	Avatar           string
	UpdatedAt        sql.NullTime
	// Digest fingerprints the row (rowDigest).
	Digest string
}

// SourcePlace is a department (DepartmentCode empty) or a municipality.
type SourcePlace struct {
	Code, DepartmentCode, Name string
}

// SourceToken is a SimpleJWT outstanding refresh token, with the time it
// was blacklisted, if it was.
type SourceToken struct {
	ID            int64
	JTI           string
	UserID        sql.NullInt64
	CreatedAt     sql.NullTime
	ExpiresAt     time.Time
	BlacklistedAt sql.NullTime
}

// Source is the old database, in one REPEATABLE READ, READ ONLY snapshot
// kept open for the whole import: the geography (a few thousand rows) is
// read into memory; users, profiles and tokens are streamed, as often as
// the import needs them (eachUser, eachProfile, eachToken), never held.
type Source struct {
	Schema         Schema
	Departments    []SourcePlace
	Municipalities []SourcePlace
	ExpiredTokens  int // outstanding tokens past their expiry, left behind
	// UserSequence is the next id Django would give a user (0 if unknown).
	UserSequence    int64
	ProfileSequence int64

	r                       *reader
	now                     time.Time
	userQ, profileQ, tokenQ string
	// tokenSetQ sums the hashes of every outstanding token's row (expired
	// ones too) and counts the live ones (PostgreSQL 14 and later; "" before).
	tokenSetQ string
	// userDigestQ and profileDigestQ read only (id, digest), by id.
	userDigestQ, profileDigestQ string
	// userTextQ, profileTextQ and tokenTextQ are userQ, profileQ and
	// tokenQ (unordered) with the times as text (tsText, dateText).
	userTextQ, profileTextQ, tokenTextQ string
	// userSumQ and profileSumQ count the rows and sum their digests
	// (PostgreSQL 14 and later, where a digest is a number; "" before).
	userSumQ, profileSumQ string
}

// rowDigest is the SQL of a fingerprint of every column of the row r, for
// the ledger (django_import.digest), computed in the snapshot by
// pg_catalog's own functions (the columns are of built-in types,
// checkTable), so a run with nothing changed moves a few bytes a row, not
// the row: the 64-bit hash of the row by its columns' own hash functions
// (PostgreSQL 14 and later), else md5 of the row's text form (the session's
// TimeZone and DateStyle are fixed).
func rowDigest(serverVersion int) string {
	if serverVersion >= 140000 {
		return `pg_catalog.hash_record_extended(r, 0)::pg_catalog.text`
	}
	return `pg_catalog.md5(r::pg_catalog.text)`
}

// byID wraps sel (a SELECT of one table whose first column is id) as the
// query of its rows with their digest d, or of (id, digest) alone, by id.
func byID(sel, d string) (rows, digests string) {
	return `SELECT r.*, ` + d + ` FROM (` + sel + `) r ORDER BY r.id`,
		`SELECT r.id, ` + d + ` FROM (` + sel + `) r ORDER BY r.id`
}

// timesAsText is byID's query of sel's rows (cols of r, the times among
// them written with tsText or dateText) with their digest d.
func timesAsText(sel, d, cols string) string {
	return `SELECT ` + cols + `, ` + d + ` FROM (` + sel + `) r ORDER BY r.id`
}

// tsText and dateText read a time or a date as text: the session's ISO
// form, in UTC (a time without a time zone taken as UTC, as lib/pq takes
// it), which COPY reads back as it is, so a bulk import neither parses nor
// formats a time.
const (
	tsText   = `::pg_catalog.timestamptz::pg_catalog.text`
	dateText = `::pg_catalog.date::pg_catalog.text`
)

// digestSum is the SQL of the count of sel's rows and the sum of their
// digests d (as text), when d is a number (PostgreSQL 14 and later).
func digestSum(sel string, serverVersion int) string {
	if serverVersion < 140000 {
		return ""
	}
	return `SELECT pg_catalog.count(*)::pg_catalog.int4, COALESCE(pg_catalog.sum(pg_catalog.hash_record_extended(r, 0)), 0)::pg_catalog.text FROM (` +
		sel + `) r`
}

func quote(name string) string { return pq.QuoteIdentifier(name) }

// The reader's SQL names every pg_catalog function and operator with its
// schema (CVE-2018-1058): the Django database's owner can create functions
// and operators in the Django schema that would otherwise match better.
const (
	opEq = ` OPERATOR(pg_catalog.=) `
	opNe = ` OPERATOR(pg_catalog.<>) `
	opGt = ` OPERATOR(pg_catalog.>) `
	opLe = ` OPERATOR(pg_catalog.<=) `
)

// reader reads the Django schema in one read-only transaction.
type reader struct {
	tx     *sqlx.Tx
	schema string
	// checked are the tables found plain (checkTable).
	checked map[string]bool
}

// rel is table, qualified with the Django schema.
func (r *reader) rel(table string) string { return quote(r.schema) + "." + quote(table) }

// columns lists the columns of table in the Django schema.
func (r *reader) columns(ctx context.Context, table string) (map[string]bool, error) {
	var names []string
	err := r.tx.SelectContext(ctx, &names, `SELECT a.attname::text FROM pg_catalog.pg_attribute a
		JOIN pg_catalog.pg_class c ON c.oid`+opEq+`a.attrelid
		JOIN pg_catalog.pg_namespace n ON n.oid`+opEq+`c.relnamespace
		WHERE n.nspname`+opEq+`$1::pg_catalog.name AND c.relname`+opEq+`$2::pg_catalog.name
			AND a.attnum`+opGt+`0::pg_catalog.int2 AND NOT a.attisdropped`, r.schema, table)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

func (r *reader) tableExists(ctx context.Context, table string) (bool, error) {
	var ok bool
	err := r.tx.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid`+opEq+`c.relnamespace
		WHERE n.nspname`+opEq+`$1::pg_catalog.name AND c.relname`+opEq+`$2::pg_catalog.name)`, r.schema, table)
	return ok, err
}

// fkTarget is the table that table.column references ("" when none).
func (r *reader) fkTarget(ctx context.Context, table, column string) (string, error) {
	var targets []string
	err := r.tx.SelectContext(ctx, &targets, `SELECT DISTINCT t.relname::text FROM pg_catalog.pg_constraint c
		JOIN pg_catalog.pg_class s ON s.oid`+opEq+`c.conrelid
		JOIN pg_catalog.pg_class t ON t.oid`+opEq+`c.confrelid
		JOIN pg_catalog.pg_namespace n ON n.oid`+opEq+`s.relnamespace AND n.nspname`+opEq+`$1::pg_catalog.name
		JOIN pg_catalog.pg_attribute a ON a.attrelid`+opEq+`c.conrelid AND a.attnum`+opEq+`c.conkey[1]
		WHERE c.contype`+opEq+`'f'::pg_catalog.char AND s.relname`+opEq+`$2::pg_catalog.name AND a.attname`+opEq+`$3::pg_catalog.name`,
		r.schema, table, column)
	if err != nil || len(targets) != 1 {
		return "", err
	}
	return targets[0], nil
}

// relkinds names what pg_class.relkind says a relation is, and why isis
// does not read it.
var relkinds = map[string]string{
	"v": "a view, not a table: isis reads only plain tables (a view can run code)",
	"m": "a materialized view, not a table: isis reads only plain tables (its contents come from a query isis cannot check)",
	"f": "a foreign table, not a table: isis reads only plain tables (reading it runs a foreign-data wrapper)",
	"p": "a partitioned table: isis reads only plain tables (each partition would be read unchecked)",
	"S": "a sequence, not a table",
	"i": "an index, not a table",
	"I": "an index, not a table",
	"c": "a composite type, not a table",
	"t": "a TOAST table, not a table",
}

// checkTable refuses a table reading which could run code the Django
// database's owner wrote: anything but a plain table (relkind r), a table
// with row-level security or policies (a policy's expression runs on
// SELECT), with rules, or with a column whose type is not a built-in one
// (a domain or a custom type brings functions of its own). Triggers are
// left alone: none fires on SELECT, and the transaction is read-only.
func (r *reader) checkTable(ctx context.Context, table string) error {
	if r.checked[table] {
		return nil
	}
	var info struct {
		Kind     string         `db:"kind"`
		RLS      bool           `db:"rls"`
		Policies int            `db:"policies"`
		Rules    int            `db:"rules"`
		Foreign  pq.StringArray `db:"foreign_types"`
	}
	err := r.tx.GetContext(ctx, &info, `SELECT c.relkind::text AS kind, c.relrowsecurity AS rls,
		(SELECT pg_catalog.count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid`+opEq+`c.oid)::int AS policies,
		(SELECT pg_catalog.count(*) FROM pg_catalog.pg_rewrite w WHERE w.ev_class`+opEq+`c.oid)::int AS rules,
		ARRAY(SELECT a.attname::text || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
			FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type y ON y.oid`+opEq+`a.atttypid
			WHERE a.attrelid`+opEq+`c.oid AND a.attnum`+opGt+`0::pg_catalog.int2 AND NOT a.attisdropped
				AND (y.typnamespace`+opNe+`'pg_catalog'::pg_catalog.regnamespace OR y.typtype`+opEq+`'d'::pg_catalog.char)
			ORDER BY a.attnum) AS foreign_types
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid`+opEq+`c.relnamespace
		WHERE n.nspname`+opEq+`$1::pg_catalog.name AND c.relname`+opEq+`$2::pg_catalog.name`, r.schema, table)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("table %q does not exist in schema %q", table, r.schema)
	}
	if err != nil {
		return err
	}
	if info.Kind != "r" {
		why := relkinds[info.Kind]
		if why == "" {
			why = "not a plain table (relkind " + strconv.Quote(info.Kind) + "): isis reads only plain tables"
		}
		return fmt.Errorf("%s is %s", table, why)
	}
	if info.RLS || info.Policies > 0 {
		return fmt.Errorf("%s has row-level security: isis reads only tables without it (a policy can run code on SELECT); disable it and drop its policies, or copy the data to a plain table", table)
	}
	if info.Rules > 0 {
		return fmt.Errorf("%s has rules (pg_rewrite): isis reads only tables without them (a rule can run code)", table)
	}
	if len(info.Foreign) > 0 {
		name, typ, _ := strings.Cut(info.Foreign[0], " ")
		return fmt.Errorf("%s.%s is of type %s, not a built-in type: isis reads only columns of PostgreSQL's own types (a domain or custom type can run code); ALTER it to a built-in type, e.g. text",
			table, name, typ)
	}
	r.checked[table] = true
	return nil
}

// detectSchema finds the user table (the one SimpleJWT's outstanding tokens
// point at, else the one model in django_content_type whose table has
// email, password and last_login columns), the profile table (a *_profile
// table pointing at the users) and the geography tables it points at.
func (r *reader) detectSchema(ctx context.Context, userTable string) (Schema, error) {
	var s Schema
	for _, t := range []struct {
		name string
		dst  *string
	}{{"token_blacklist_outstandingtoken", &s.OutstandingTable}, {"token_blacklist_blacklistedtoken", &s.BlacklistedTable}} {
		ok, err := r.tableExists(ctx, t.name)
		if err != nil {
			return s, err
		}
		if ok {
			*t.dst = t.name
		}
	}
	if s.BlacklistedTable != "" && s.OutstandingTable == "" {
		s.BlacklistedTable = ""
	}
	if userTable == "" && s.OutstandingTable != "" {
		t, err := r.fkTarget(ctx, s.OutstandingTable, "user_id")
		if err != nil {
			return s, err
		}
		userTable = t
	}
	if userTable == "" {
		ok, err := r.tableExists(ctx, "django_content_type")
		if err != nil {
			return s, err
		}
		if !ok {
			return s, errors.New("no django_content_type table: this does not look like a Django database (or name the user table with --user-table)")
		}
		var models []struct {
			App   string `db:"app_label"`
			Model string `db:"model"`
		}
		if err := r.checkTable(ctx, "django_content_type"); err != nil {
			return s, err
		}
		if err := r.tx.SelectContext(ctx, &models, `SELECT app_label::text, model::text FROM `+r.rel("django_content_type")+` ORDER BY 1, 2`); err != nil {
			return s, err
		}
		var found []string
		for _, m := range models {
			t := m.App + "_" + m.Model // Django's default db_table
			cols, err := r.columns(ctx, t)
			if err != nil {
				return s, err
			}
			if cols["email"] && cols["password"] && cols["last_login"] && cols["id"] {
				found = append(found, t)
			}
		}
		switch len(found) {
		case 0:
			return s, errors.New("cannot find the user table (no model in django_content_type has email, password and last_login): name it with --user-table")
		case 1:
			userTable = found[0]
		default:
			return s, fmt.Errorf("several tables look like the user table (%s): name one with --user-table", strings.Join(found, ", "))
		}
	}
	cols, err := r.columns(ctx, userTable)
	if err != nil {
		return s, err
	}
	if len(cols) == 0 {
		return s, fmt.Errorf("user table %q does not exist", userTable)
	}
	for _, c := range []string{"id", "email", "password"} {
		if !cols[c] {
			return s, fmt.Errorf("user table %q has no %s column (isis logs users in by email)", userTable, c)
		}
	}
	s.UserTable = userTable

	// The profile table: one table named *_profile whose user_id points at the users.
	var profiles []string
	err = r.tx.SelectContext(ctx, &profiles, `SELECT DISTINCT s.relname::text FROM pg_catalog.pg_constraint c
		JOIN pg_catalog.pg_class s ON s.oid`+opEq+`c.conrelid
		JOIN pg_catalog.pg_class t ON t.oid`+opEq+`c.confrelid
		JOIN pg_catalog.pg_namespace n ON n.oid`+opEq+`s.relnamespace AND n.nspname`+opEq+`$1::pg_catalog.name
		JOIN pg_catalog.pg_attribute a ON a.attrelid`+opEq+`c.conrelid AND a.attnum`+opEq+`c.conkey[1]
		WHERE c.contype`+opEq+`'f'::pg_catalog.char AND t.relname`+opEq+`$2::pg_catalog.name AND a.attname`+opEq+`'user_id'::pg_catalog.name
			AND s.relname::text OPERATOR(pg_catalog.~~) '%\_profile'::text
		ORDER BY 1`, r.schema, userTable)
	if err != nil {
		return s, err
	}
	if len(profiles) > 1 {
		return s, fmt.Errorf("several profile tables point at %s (%s)", userTable, strings.Join(profiles, ", "))
	}
	if len(profiles) == 1 {
		s.ProfileTable = profiles[0]
		if s.DepartmentTable, err = r.fkTarget(ctx, s.ProfileTable, "department_id"); err != nil {
			return s, err
		}
		if s.MunicipalityTable, err = r.fkTarget(ctx, s.ProfileTable, "municipality_id"); err != nil {
			return s, err
		}
	}
	return s, nil
}

// col selects column name when table has it, else the default expression.
func col(cols map[string]bool, name, def string) string {
	if cols[name] {
		return quote(name)
	}
	return def + " AS " + quote(name)
}

// openSource opens one REPEATABLE READ, READ ONLY snapshot, with
// search_path fixed to pg_catalog then the Django schema (the connection's
// current schema), checks every table it will read (checkTable) and reads
// the small ones; close ends the snapshot.
func openSource(ctx context.Context, src *sqlx.DB, userTable string, now time.Time, progress func(string, ...any)) (_ *Source, err error) {
	tx, err := src.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var who struct {
		Schema    sql.NullString `db:"schema"`
		User      string         `db:"usr"`
		Superuser bool           `db:"superuser"`
	}
	if err := tx.GetContext(ctx, &who, `SELECT pg_catalog.current_schema()::text AS schema, current_user::text AS usr,
		COALESCE((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user), false) AS superuser`); err != nil {
		return nil, err
	}
	if !who.Schema.Valid {
		return nil, errors.New("no schema on the search path of the Django database's connection (is it the right database?)")
	}
	r := &reader{tx: tx, schema: who.Schema.String, checked: map[string]bool{}}
	// TimeZone and DateStyle fix the text of timestamps, which rowDigest reads.
	if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.set_config('search_path', $1, true), pg_catalog.set_config('statement_timeout', '0', true),
		pg_catalog.set_config('TimeZone', 'UTC', true), pg_catalog.set_config('DateStyle', 'ISO, YMD', true)`,
		"pg_catalog, "+quote(r.schema)+", pg_temp"); err != nil {
		return nil, err
	}
	role := "role " + who.User
	if who.Superuser {
		role += " (a superuser: give the import a read-only role of its own, as isisctl import-django does)"
	}
	progress("source: schema %s, read-only, as %s", r.schema, role)
	schema, err := r.detectSchema(ctx, userTable)
	if err != nil {
		return nil, err
	}
	// Every table the import reads, checked before any is read.
	for _, t := range []string{schema.UserTable, schema.ProfileTable, schema.DepartmentTable, schema.MunicipalityTable,
		schema.OutstandingTable, schema.BlacklistedTable} {
		if t == "" {
			continue
		}
		if err := r.checkTable(ctx, t); err != nil {
			return nil, err
		}
	}
	out := &Source{Schema: schema, r: r, now: now}
	var version int
	if err := tx.GetContext(ctx, &version, `SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4`); err != nil {
		return nil, err
	}
	progress("source: users in %s, profiles in %s, geography in %s/%s, tokens in %s",
		schema.UserTable, orNone(schema.ProfileTable), orNone(schema.DepartmentTable), orNone(schema.MunicipalityTable), orNone(schema.OutstandingTable))

	cols, err := r.columns(ctx, schema.UserTable)
	if err != nil {
		return nil, err
	}
	out.userQ = `SELECT id, COALESCE(email, '') AS email, COALESCE(password, '') AS password, ` +
		col(cols, "first_name", "''") + `, ` + col(cols, "last_name", "''") + `, ` +
		col(cols, "is_staff", "false") + `, ` + col(cols, "is_superuser", "false") + `, ` +
		col(cols, "is_active", "true") + `, ` + col(cols, "date_joined", pq.QuoteLiteral(now.Format(time.RFC3339Nano))+"::pg_catalog.timestamptz") + `, ` +
		col(cols, "last_login", "NULL::pg_catalog.timestamptz") + ` FROM ` + r.rel(schema.UserTable)
	out.userSumQ = digestSum(out.userQ, version)
	out.userTextQ = timesAsText(out.userQ, rowDigest(version),
		`r.id, r.email, r.password, r.first_name, r.last_name, r.is_staff, r.is_superuser, r.is_active, r.date_joined`+tsText+`, r.last_login`+tsText)
	out.userQ, out.userDigestQ = byID(out.userQ, rowDigest(version))
	if out.UserSequence, err = r.nextID(ctx, schema.UserTable); err != nil {
		return nil, err
	}
	if schema.DepartmentTable != "" {
		if err := tx.SelectContext(ctx, &out.Departments, `SELECT code::text AS "code", '' AS "departmentcode", name::text AS "name" FROM `+
			r.rel(schema.DepartmentTable)+` ORDER BY code`); err != nil {
			return nil, fmt.Errorf("read %s: %w", schema.DepartmentTable, err)
		}
	}
	if schema.MunicipalityTable != "" {
		mc, err := r.columns(ctx, schema.MunicipalityTable)
		if err != nil {
			return nil, err
		}
		dept := "pg_catalog.left(code::text, 2)" // a DANE code starts with its department's
		if mc["department_id"] {
			dept = "department_id::text"
		}
		if err := tx.SelectContext(ctx, &out.Municipalities, `SELECT code::text AS "code", `+dept+` AS "departmentcode", name::text AS "name" FROM `+
			r.rel(schema.MunicipalityTable)+` ORDER BY code`); err != nil {
			return nil, fmt.Errorf("read %s: %w", schema.MunicipalityTable, err)
		}
	}
	if schema.ProfileTable != "" {
		pc, err := r.columns(ctx, schema.ProfileTable)
		if err != nil {
			return nil, err
		}
		out.profileQ = `SELECT id, user_id, ` + col(pc, "phone", "''") + `, ` + col(pc, "bio", "''") + `, ` +
			col(pc, "birth_date", "NULL::pg_catalog.date") + `, ` + col(pc, "department_id", "NULL::pg_catalog.text") + `, ` +
			col(pc, "municipality_id", "NULL::pg_catalog.text") + `, ` + col(pc, "avatar", "''") + `, ` +
			col(pc, "updated_at", "NULL::pg_catalog.timestamptz") + ` FROM ` + r.rel(schema.ProfileTable)
		out.profileSumQ = digestSum(out.profileQ, version)
		out.profileTextQ = timesAsText(out.profileQ, rowDigest(version),
			`r.id, r.user_id, r.phone, r.bio, r.birth_date`+dateText+`, r.department_id, r.municipality_id, r.avatar, r.updated_at`+tsText)
		out.profileQ, out.profileDigestQ = byID(out.profileQ, rowDigest(version))
		if out.ProfileSequence, err = r.nextID(ctx, schema.ProfileTable); err != nil {
			return nil, err
		}
	}
	if schema.OutstandingTable != "" {
		black := `NULL::pg_catalog.timestamptz`
		join := ""
		if schema.BlacklistedTable != "" {
			black = `b.blacklisted_at`
			join = ` LEFT JOIN ` + r.rel(schema.BlacklistedTable) + ` b ON b.token_id` + opEq + `o.id`
		}
		out.tokenTextQ = `SELECT o.id, o.jti, o.user_id, o.created_at` + tsText + `, o.expires_at` + tsText + `, (` + black + `)` + tsText +
			` FROM ` + r.rel(schema.OutstandingTable) + ` o` + join + ` WHERE o.expires_at` + opGt + `$1::pg_catalog.timestamptz`
		out.tokenQ = `SELECT o.id, o.jti, o.user_id, o.created_at, o.expires_at, ` + black +
			` FROM ` + r.rel(schema.OutstandingTable) + ` o` + join + ` WHERE o.expires_at` + opGt + `$1::pg_catalog.timestamptz`
		if version >= 140000 {
			out.tokenSetQ = `SELECT pg_catalog.count(*)::pg_catalog.int4 AS "all",
				(pg_catalog.count(*) FILTER (WHERE r.expires_at` + opGt + `$1::pg_catalog.timestamptz))::pg_catalog.int4 AS live,
				(pg_catalog.count(*) FILTER (WHERE r.expires_at` + opGt + `$1::pg_catalog.timestamptz AND r.black IS NOT NULL))::pg_catalog.int4 AS black,
				COALESCE(pg_catalog.sum(pg_catalog.hash_record_extended(r, 0)), 0)::pg_catalog.text AS sum
				FROM (SELECT o.id, o.jti, o.user_id, o.created_at, o.expires_at, ` + black + ` AS black FROM ` +
				r.rel(schema.OutstandingTable) + ` o` + join + `) r`
		}
		if err := tx.GetContext(ctx, &out.ExpiredTokens, `SELECT pg_catalog.count(*) FROM `+r.rel(schema.OutstandingTable)+
			` WHERE expires_at`+opLe+`$1::pg_catalog.timestamptz`, now); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// close ends the snapshot.
func (s *Source) close() { s.r.tx.Rollback() }

// each streams the rows of one query to fn; the error names table.
func (s *Source) each(ctx context.Context, table, q string, args []any, scan func(*sql.Rows) error) error {
	rows, err := s.r.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return &sourceError{fmt.Errorf("read %s: %w", table, err)}
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return &sourceError{fmt.Errorf("read %s: %w", table, err)}
	}
	return nil
}

// sourceError is an error reading the old database (while streaming).
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read the Django database: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// eachUser streams the users, by id; fn must not keep u.
func (s *Source) eachUser(ctx context.Context, fn func(u *SourceUser) error) error {
	var u SourceUser
	return s.each(ctx, s.Schema.UserTable, s.userQ, nil, func(rows *sql.Rows) error {
		u = SourceUser{}
		var first, last sql.NullString
		if err := rows.Scan(&u.ID, &u.Email, &u.Password, &first, &last, &u.IsStaff, &u.IsSuperuser, &u.IsActive, &u.DateJoined, &u.LastLogin, &u.Digest); err != nil {
			return &sourceError{fmt.Errorf("read %s: %w", s.Schema.UserTable, err)}
		}
		u.FirstName, u.LastName = first.String, last.String
		return fn(&u)
	})
}

// eachUserText streams the users as eachUser does, but for date_joined
// and last_login, as text (tsText; nil for NULL) and valid until fn
// returns.
func (s *Source) eachUserText(ctx context.Context, fn func(u *SourceUser, joined, login sql.RawBytes) error) error {
	var u SourceUser
	var joined, login sql.RawBytes
	return s.each(ctx, s.Schema.UserTable, s.userTextQ, nil, func(rows *sql.Rows) error {
		u = SourceUser{}
		var first, last sql.NullString
		if err := rows.Scan(&u.ID, &u.Email, &u.Password, &first, &last, &u.IsStaff, &u.IsSuperuser, &u.IsActive, &joined, &login, &u.Digest); err != nil {
			return &sourceError{fmt.Errorf("read %s: %w", s.Schema.UserTable, err)}
		}
		u.FirstName, u.LastName = first.String, last.String
		return fn(&u, joined, login)
	})
}

// eachDigest streams the (id, digest) of every user (users) or profile,
// by id: what a run compares with the ledger before reading any row whole.
func (s *Source) eachDigest(ctx context.Context, users bool, fn func(id int64, digest string) error) error {
	table, q := s.Schema.UserTable, s.userDigestQ
	if !users {
		table, q = s.Schema.ProfileTable, s.profileDigestQ
	}
	if q == "" {
		return nil
	}
	var id int64
	var d string
	return s.each(ctx, table, q, nil, func(rows *sql.Rows) error {
		if err := rows.Scan(&id, &d); err != nil {
			return &sourceError{fmt.Errorf("read %s: %w", table, err)}
		}
		return fn(id, d)
	})
}

// digestSum counts the users (users) or profiles and sums their digests;
// sum is "" when the server cannot (before 14).
func (s *Source) digestSum(ctx context.Context, users bool) (n int, sum string, err error) {
	table, q := s.Schema.UserTable, s.userSumQ
	if !users {
		table, q = s.Schema.ProfileTable, s.profileSumQ
	}
	if q == "" {
		return 0, "", nil
	}
	if err := s.r.tx.QueryRowContext(ctx, q).Scan(&n, &sum); err != nil {
		return 0, "", &sourceError{fmt.Errorf("read %s: %w", table, err)}
	}
	return n, sum, nil
}

// eachProfile streams the profiles (none without a profile table), by id.
func (s *Source) eachProfile(ctx context.Context, fn func(p *SourceProfile) error) error {
	if s.profileQ == "" {
		return nil
	}
	var p SourceProfile
	return s.each(ctx, s.Schema.ProfileTable, s.profileQ, nil, func(rows *sql.Rows) error {
		p = SourceProfile{}
		var phone, bio, avatar sql.NullString
		if err := rows.Scan(&p.ID, &p.UserID, &phone, &bio, &p.BirthDate, &p.DepartmentCode, &p.MunicipalityCode, &avatar, &p.UpdatedAt, &p.Digest); err != nil {
			return &sourceError{fmt.Errorf("read %s: %w", s.Schema.ProfileTable, err)}
		}
		p.Phone, p.Bio, p.Avatar = phone.String, bio.String, avatar.String
		return fn(&p)
	})
}

// eachProfileText streams the profiles as eachProfile does, but for
// birth_date and updated_at, as text (dateText, tsText; nil for NULL) and
// valid until fn returns.
func (s *Source) eachProfileText(ctx context.Context, fn func(p *SourceProfile, birth, updated sql.RawBytes) error) error {
	if s.profileTextQ == "" {
		return nil
	}
	var p SourceProfile
	var birth, updated sql.RawBytes
	return s.each(ctx, s.Schema.ProfileTable, s.profileTextQ, nil, func(rows *sql.Rows) error {
		p = SourceProfile{}
		var phone, bio, avatar sql.NullString
		if err := rows.Scan(&p.ID, &p.UserID, &phone, &bio, &birth, &p.DepartmentCode, &p.MunicipalityCode, &avatar, &updated, &p.Digest); err != nil {
			return &sourceError{fmt.Errorf("read %s: %w", s.Schema.ProfileTable, err)}
		}
		p.Phone, p.Bio, p.Avatar = phone.String, bio.String, avatar.String
		return fn(&p, birth, updated)
	})
}

// eachTokenText streams the live outstanding tokens, in no order, with
// their times as text (tsText; nil for NULL), valid until fn returns.
func (s *Source) eachTokenText(ctx context.Context, fn func(t *SourceToken, created, expires, black sql.RawBytes) error) error {
	if s.tokenTextQ == "" {
		return nil
	}
	var t SourceToken
	var created, expires, black sql.RawBytes
	return s.each(ctx, s.Schema.OutstandingTable, s.tokenTextQ, []any{s.now}, func(rows *sql.Rows) error {
		t = SourceToken{}
		if err := rows.Scan(&t.ID, &t.JTI, &t.UserID, &created, &expires, &black); err != nil {
			return &sourceError{fmt.Errorf("read %s: %w", s.Schema.OutstandingTable, err)}
		}
		return fn(&t, created, expires, black)
	})
}

// eachToken streams the live outstanding tokens, by jti (bytewise, as Go
// compares strings) when byJTI, else in no order (no sort).
func (s *Source) eachToken(ctx context.Context, byJTI bool, fn func(t *SourceToken) error) error {
	if s.tokenQ == "" {
		return nil
	}
	q := s.tokenQ
	if byJTI {
		q += ` ORDER BY o.jti COLLATE pg_catalog."C"`
	}
	var t SourceToken
	return s.each(ctx, s.Schema.OutstandingTable, q, []any{s.now}, func(rows *sql.Rows) error {
		t = SourceToken{}
		if err := rows.Scan(&t.ID, &t.JTI, &t.UserID, &t.CreatedAt, &t.ExpiresAt, &t.BlacklistedAt); err != nil {
			return &sourceError{fmt.Errorf("read %s: %w", s.Schema.OutstandingTable, err)}
		}
		return fn(&t)
	})
}

// tokenSet fingerprints SimpleJWT's tokens as a whole (every row, expired
// ones too, with its blacklisting) and counts the live ones and the live
// blacklisted ones: the same digest as at the last import means isis has
// them all already. digest is "" when the server cannot say (before 14).
func (s *Source) tokenSet(ctx context.Context) (digest string, live, black int, err error) {
	if s.tokenSetQ == "" {
		return "", 0, 0, nil
	}
	var r struct {
		All   int    `db:"all"`
		Live  int    `db:"live"`
		Black int    `db:"black"`
		Sum   string `db:"sum"`
	}
	if err := s.r.tx.GetContext(ctx, &r, s.tokenSetQ, s.now); err != nil {
		return "", 0, 0, &sourceError{fmt.Errorf("read %s: %w", s.Schema.OutstandingTable, err)}
	}
	return strconv.Itoa(r.All) + ":" + r.Sum, r.Live, r.Black, nil
}

// nextID is the id Django's sequence for table.id would hand out next (0
// when the column has no sequence).
func (r *reader) nextID(ctx context.Context, table string) (int64, error) {
	var seq sql.NullString
	if err := r.tx.GetContext(ctx, &seq, `SELECT pg_catalog.pg_get_serial_sequence($1, 'id')`, r.rel(table)); err != nil || !seq.Valid {
		return 0, err
	}
	var v struct {
		Last   int64 `db:"last_value"`
		Called bool  `db:"is_called"`
	}
	if err := r.tx.GetContext(ctx, &v, `SELECT last_value, is_called FROM `+seq.String); err != nil {
		return 0, err
	}
	if v.Called {
		return v.Last + 1, nil
	}
	return v.Last, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
