package djangoimport

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
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

// Source is everything read from the old database, in one snapshot.
type Source struct {
	Schema         Schema
	Users          []SourceUser
	Profiles       []SourceProfile
	Departments    []SourcePlace
	Municipalities []SourcePlace
	Tokens         []SourceToken // live ones only (not expired)
	ExpiredTokens  int           // outstanding tokens past their expiry, left behind
	// UserSequence is the next id Django would give a user (0 if unknown).
	UserSequence    int64
	ProfileSequence int64
}

func quote(name string) string { return pq.QuoteIdentifier(name) }

// columns lists the columns of table in the current schema.
func columns(ctx context.Context, tx *sqlx.Tx, table string) (map[string]bool, error) {
	var names []string
	err := tx.SelectContext(ctx, &names, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1`, table)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

func tableExists(ctx context.Context, tx *sqlx.Tx, table string) (bool, error) {
	var ok bool
	err := tx.GetContext(ctx, &ok, `SELECT to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1)) IS NOT NULL`, table)
	return ok, err
}

// fkTarget is the table that table.column references ("" when none).
func fkTarget(ctx context.Context, tx *sqlx.Tx, table, column string) (string, error) {
	var targets []string
	err := tx.SelectContext(ctx, &targets, `SELECT DISTINCT t.relname FROM pg_constraint c
		JOIN pg_class s ON s.oid = c.conrelid
		JOIN pg_class t ON t.oid = c.confrelid
		JOIN pg_namespace n ON n.oid = s.relnamespace AND n.nspname = current_schema()
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
		WHERE c.contype = 'f' AND s.relname = $1 AND a.attname = $2`, table, column)
	if err != nil || len(targets) != 1 {
		return "", err
	}
	return targets[0], nil
}

// detectSchema finds the user table (the one SimpleJWT's outstanding tokens
// point at, else the one model in django_content_type whose table has
// email, password and last_login columns), the profile table (a *_profile
// table pointing at the users) and the geography tables it points at.
func detectSchema(ctx context.Context, tx *sqlx.Tx, userTable string) (Schema, error) {
	var s Schema
	for _, t := range []struct {
		name string
		dst  *string
	}{{"token_blacklist_outstandingtoken", &s.OutstandingTable}, {"token_blacklist_blacklistedtoken", &s.BlacklistedTable}} {
		ok, err := tableExists(ctx, tx, t.name)
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
		t, err := fkTarget(ctx, tx, s.OutstandingTable, "user_id")
		if err != nil {
			return s, err
		}
		userTable = t
	}
	if userTable == "" {
		ok, err := tableExists(ctx, tx, "django_content_type")
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
		if err := tx.SelectContext(ctx, &models, `SELECT app_label, model FROM django_content_type ORDER BY app_label, model`); err != nil {
			return s, err
		}
		var found []string
		for _, m := range models {
			t := m.App + "_" + m.Model // Django's default db_table
			cols, err := columns(ctx, tx, t)
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
	cols, err := columns(ctx, tx, userTable)
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
	err = tx.SelectContext(ctx, &profiles, `SELECT DISTINCT s.relname FROM pg_constraint c
		JOIN pg_class s ON s.oid = c.conrelid
		JOIN pg_class t ON t.oid = c.confrelid
		JOIN pg_namespace n ON n.oid = s.relnamespace AND n.nspname = current_schema()
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
		WHERE c.contype = 'f' AND t.relname = $1 AND a.attname = 'user_id' AND s.relname LIKE '%\_profile'
		ORDER BY 1`, userTable)
	if err != nil {
		return s, err
	}
	if len(profiles) > 1 {
		return s, fmt.Errorf("several profile tables point at %s (%s)", userTable, strings.Join(profiles, ", "))
	}
	if len(profiles) == 1 {
		s.ProfileTable = profiles[0]
		if s.DepartmentTable, err = fkTarget(ctx, tx, s.ProfileTable, "department_id"); err != nil {
			return s, err
		}
		if s.MunicipalityTable, err = fkTarget(ctx, tx, s.ProfileTable, "municipality_id"); err != nil {
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

// read reads everything in one REPEATABLE READ snapshot.
func read(ctx context.Context, src *sqlx.DB, userTable string, now time.Time, progress func(string, ...any)) (*Source, error) {
	tx, err := src.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
		return nil, err
	}
	schema, err := detectSchema(ctx, tx, userTable)
	if err != nil {
		return nil, err
	}
	out := &Source{Schema: schema}
	progress("source: users in %s, profiles in %s, geography in %s/%s, tokens in %s",
		schema.UserTable, orNone(schema.ProfileTable), orNone(schema.DepartmentTable), orNone(schema.MunicipalityTable), orNone(schema.OutstandingTable))

	cols, err := columns(ctx, tx, schema.UserTable)
	if err != nil {
		return nil, err
	}
	q := `SELECT id, COALESCE(email, '') AS email, COALESCE(password, '') AS password, ` +
		col(cols, "first_name", "''") + `, ` + col(cols, "last_name", "''") + `, ` +
		col(cols, "is_staff", "false") + `, ` + col(cols, "is_superuser", "false") + `, ` +
		col(cols, "is_active", "true") + `, ` + col(cols, "date_joined", pq.QuoteLiteral(now.Format(time.RFC3339Nano))+"::timestamptz") + `, ` +
		col(cols, "last_login", "NULL::timestamptz") + ` FROM ` + quote(schema.UserTable) + ` ORDER BY id`
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", schema.UserTable, err)
	}
	for rows.Next() {
		var u SourceUser
		var first, last sql.NullString
		if err := rows.Scan(&u.ID, &u.Email, &u.Password, &first, &last, &u.IsStaff, &u.IsSuperuser, &u.IsActive, &u.DateJoined, &u.LastLogin); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read %s: %w", schema.UserTable, err)
		}
		u.FirstName, u.LastName = first.String, last.String
		out.Users = append(out.Users, u)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if out.UserSequence, err = nextID(ctx, tx, schema.UserTable); err != nil {
		return nil, err
	}
	progress("read %d users", len(out.Users))

	if schema.DepartmentTable != "" {
		if err := tx.SelectContext(ctx, &out.Departments, `SELECT code AS "code", '' AS "departmentcode", name AS "name" FROM `+
			quote(schema.DepartmentTable)+` ORDER BY code`); err != nil {
			return nil, fmt.Errorf("read %s: %w", schema.DepartmentTable, err)
		}
	}
	if schema.MunicipalityTable != "" {
		mc, err := columns(ctx, tx, schema.MunicipalityTable)
		if err != nil {
			return nil, err
		}
		dept := "left(code, 2)" // a DANE code starts with its department's
		if mc["department_id"] {
			dept = "department_id"
		}
		if err := tx.SelectContext(ctx, &out.Municipalities, `SELECT code AS "code", `+dept+` AS "departmentcode", name AS "name" FROM `+
			quote(schema.MunicipalityTable)+` ORDER BY code`); err != nil {
			return nil, fmt.Errorf("read %s: %w", schema.MunicipalityTable, err)
		}
	}
	if schema.ProfileTable != "" {
		pc, err := columns(ctx, tx, schema.ProfileTable)
		if err != nil {
			return nil, err
		}
		q := `SELECT id, user_id, ` + col(pc, "phone", "''") + `, ` + col(pc, "bio", "''") + `, ` +
			col(pc, "birth_date", "NULL::date") + `, ` + col(pc, "department_id", "NULL::text") + `, ` +
			col(pc, "municipality_id", "NULL::text") + `, ` + col(pc, "avatar", "''") + `, ` +
			col(pc, "updated_at", "NULL::timestamptz") + ` FROM ` + quote(schema.ProfileTable) + ` ORDER BY id`
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", schema.ProfileTable, err)
		}
		for rows.Next() {
			var p SourceProfile
			var phone, bio, avatar sql.NullString
			if err := rows.Scan(&p.ID, &p.UserID, &phone, &bio, &p.BirthDate, &p.DepartmentCode, &p.MunicipalityCode, &avatar, &p.UpdatedAt); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read %s: %w", schema.ProfileTable, err)
			}
			p.Phone, p.Bio, p.Avatar = phone.String, bio.String, avatar.String
			out.Profiles = append(out.Profiles, p)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if out.ProfileSequence, err = nextID(ctx, tx, schema.ProfileTable); err != nil {
			return nil, err
		}
		progress("read %d profiles, %d departments, %d municipalities", len(out.Profiles), len(out.Departments), len(out.Municipalities))
	}
	if schema.OutstandingTable != "" {
		black := `NULL::timestamptz`
		join := ""
		if schema.BlacklistedTable != "" {
			black = `b.blacklisted_at`
			join = ` LEFT JOIN ` + quote(schema.BlacklistedTable) + ` b ON b.token_id = o.id`
		}
		rows, err := tx.QueryContext(ctx, `SELECT o.id, o.jti, o.user_id, o.created_at, o.expires_at, `+black+
			` FROM `+quote(schema.OutstandingTable)+` o`+join+` WHERE o.expires_at > $1 ORDER BY o.id`, now)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", schema.OutstandingTable, err)
		}
		for rows.Next() {
			var t SourceToken
			if err := rows.Scan(&t.ID, &t.JTI, &t.UserID, &t.CreatedAt, &t.ExpiresAt, &t.BlacklistedAt); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read %s: %w", schema.OutstandingTable, err)
			}
			out.Tokens = append(out.Tokens, t)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := tx.GetContext(ctx, &out.ExpiredTokens, `SELECT count(*) FROM `+quote(schema.OutstandingTable)+` WHERE expires_at <= $1`, now); err != nil {
			return nil, err
		}
		progress("read %d live refresh tokens (%d expired ones left behind)", len(out.Tokens), out.ExpiredTokens)
	}
	sort.Slice(out.Users, func(i, j int) bool { return out.Users[i].ID < out.Users[j].ID })
	return out, tx.Commit()
}

// nextID is the id Django's sequence for table.id would hand out next (0
// when the column has no sequence).
func nextID(ctx context.Context, tx *sqlx.Tx, table string) (int64, error) {
	var seq sql.NullString
	if err := tx.GetContext(ctx, &seq, `SELECT pg_get_serial_sequence(quote_ident($1), 'id')`, table); err != nil || !seq.Valid {
		return 0, err
	}
	var r struct {
		Last   int64 `db:"last_value"`
		Called bool  `db:"is_called"`
	}
	if err := tx.GetContext(ctx, &r, `SELECT last_value, is_called FROM `+seq.String); err != nil {
		return 0, err
	}
	if r.Called {
		return r.Last + 1, nil
	}
	return r.Last, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
