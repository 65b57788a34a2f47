package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/geo"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// loadGeography is migration 0002: the official DIVIPOLA lists.
func loadGeography(ctx context.Context, tx *sqlx.Tx) error {
	deps, err := geo.Departments()
	if err != nil {
		return fmt.Errorf("departments.csv: %w", err)
	}
	muns, err := geo.Municipalities()
	if err != nil {
		return fmt.Errorf("municipalities.csv: %w", err)
	}
	if err := CopyRows(ctx, tx, "departments", []string{"code", "name", "search_name"}, len(deps), func(i int) []any {
		return []any{deps[i].Code, deps[i].Name, api.Fold(deps[i].Name)}
	}); err != nil {
		return fmt.Errorf("load departments: %w", err)
	}
	if err := CopyRows(ctx, tx, "municipalities", []string{"code", "department_code", "name", "search_name"}, len(muns), func(i int) []any {
		return []any{muns[i].Code, muns[i].DepartmentCode, muns[i].Name, api.Fold(muns[i].Name)}
	}); err != nil {
		return fmt.Errorf("load municipalities: %w", err)
	}
	return nil
}

// CopyRows loads n rows into table with COPY FROM STDIN inside tx; row(i)
// gives the values of row i in the order of cols.
func CopyRows(ctx context.Context, tx *sqlx.Tx, table string, cols []string, n int, row func(i int) []any) error {
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn(table, cols...))
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if _, err := stmt.ExecContext(ctx, row(i)...); err != nil {
			stmt.Close()
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return err
	}
	return stmt.Close()
}

// GeoService implements api.GeoService.
type GeoService struct{ db *DB }

// NewGeoService returns the geography service over db.
func NewGeoService(db *DB) *GeoService { return &GeoService{db: db} }

var _ api.GeoService = (*GeoService)(nil)

// orderBy turns a DRF ordering value into an ORDER BY list over allowed
// fields; unknown fields are dropped, as DRF's OrderingFilter does.
func orderBy(ordering string, allowed map[string]string, def string) string {
	var parts []string
	seen := map[string]bool{}
	for _, f := range strings.Split(ordering, ",") {
		f = strings.TrimSpace(f)
		desc := strings.HasPrefix(f, "-")
		col, ok := allowed[strings.TrimPrefix(f, "-")]
		if !ok || seen[col] {
			continue
		}
		seen[col] = true
		if desc {
			parts = append(parts, col+" DESC")
		} else {
			parts = append(parts, col)
		}
	}
	if len(parts) == 0 {
		return def
	}
	return strings.Join(parts, ", ") + ", " + def
}

// searchTerms splits a search value the way DRF's SearchFilter does
// (whitespace and commas), folds each term and escapes it for LIKE.
func searchTerms(s string) []string {
	s = strings.ReplaceAll(s, "\x00", "")
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(fields) > 8 {
		fields = fields[:8]
	}
	out := make([]string, 0, len(fields))
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	for _, f := range fields {
		out = append(out, "%"+r.Replace(api.Fold(f))+"%")
	}
	return out
}

// where builds "WHERE …" with positional arguments for search and department.
func geoWhere(f api.GeoFilter, alias string, withDepartment bool) (string, []any) {
	var conds []string
	var args []any
	for _, t := range searchTerms(f.Search) {
		args = append(args, t)
		n := len(args)
		conds = append(conds, fmt.Sprintf("(%[1]s.search_name LIKE $%[2]d OR %[1]s.code LIKE $%[2]d)", alias, n))
	}
	if withDepartment && f.DepartmentCode != "" {
		args = append(args, f.DepartmentCode)
		conds = append(conds, fmt.Sprintf("%s.department_code = $%d", alias, len(args)))
	}
	if len(conds) == 0 {
		return "", args
	}
	return "WHERE " + strings.Join(conds, " AND "), args
}

var departmentOrdering = map[string]string{
	"code": "d.code", "name": "d.search_name", "municipality_count": "municipality_count",
}

// FindDepartments implements api.GeoService.
func (s *GeoService) FindDepartments(ctx context.Context, f api.GeoFilter) ([]*api.Department, int, error) {
	where, args := geoWhere(f, "d", false)
	args = append(args, f.Limit, f.Offset)
	q := `SELECT d.code, d.name,
		(SELECT count(*) FROM municipalities m WHERE m.department_code = d.code) AS municipality_count,
		count(*) OVER () AS total
		FROM departments d ` + where + `
		ORDER BY ` + orderBy(f.Ordering, departmentOrdering, "d.code") +
		fmt.Sprintf(` LIMIT $%d OFFSET $%d`, len(args)-1, len(args))
	var rows []struct {
		api.Department
		Total int `db:"total"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, 0, FormatError(err)
	}
	out := make([]*api.Department, len(rows))
	total := 0
	for i := range rows {
		out[i] = &rows[i].Department
		total = rows[i].Total
	}
	if len(rows) == 0 && f.Offset > 0 {
		n, err := s.countDepartments(ctx, f)
		return out, n, err
	}
	return out, total, nil
}

func (s *GeoService) countDepartments(ctx context.Context, f api.GeoFilter) (int, error) {
	where, args := geoWhere(f, "d", false)
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM departments d `+where, args...)
	return n, FormatError(err)
}

// FindDepartmentByCode implements api.GeoService.
func (s *GeoService) FindDepartmentByCode(ctx context.Context, code string) (*api.Department, error) {
	if !api.IsDigits(code, 2) {
		return nil, notFound(api.Errorf(api.ENOTFOUND, ""), "department", code)
	}
	var d api.Department
	err := s.db.GetContext(ctx, &d, `SELECT d.code, d.name,
		(SELECT count(*) FROM municipalities m WHERE m.department_code = d.code) AS municipality_count
		FROM departments d WHERE d.code = $1`, code)
	if err != nil {
		return nil, notFound(FormatError(err), "department", code)
	}
	return &d, nil
}

var municipalityOrdering = map[string]string{
	"code": "m.code", "name": "m.search_name", "department_code": "m.department_code", "department": "m.department_code",
}

const municipalityColumns = `m.code, m.name, m.department_code, d.name AS department_name`

// FindMunicipalities implements api.GeoService.
func (s *GeoService) FindMunicipalities(ctx context.Context, f api.GeoFilter) ([]*api.Municipality, int, error) {
	where, args := geoWhere(f, "m", true)
	args = append(args, f.Limit, f.Offset)
	q := `SELECT ` + municipalityColumns + `, count(*) OVER () AS total
		FROM municipalities m JOIN departments d ON d.code = m.department_code ` + where + `
		ORDER BY ` + orderBy(f.Ordering, municipalityOrdering, "m.code") +
		fmt.Sprintf(` LIMIT $%d OFFSET $%d`, len(args)-1, len(args))
	var rows []struct {
		api.Municipality
		Total int `db:"total"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, 0, FormatError(err)
	}
	out := make([]*api.Municipality, len(rows))
	total := 0
	for i := range rows {
		out[i] = &rows[i].Municipality
		total = rows[i].Total
	}
	if len(rows) == 0 && f.Offset > 0 {
		where, args := geoWhere(f, "m", true)
		var n int
		err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM municipalities m `+where, args...)
		return out, n, FormatError(err)
	}
	return out, total, nil
}

// FindMunicipalityByCode implements api.GeoService.
func (s *GeoService) FindMunicipalityByCode(ctx context.Context, code string) (*api.Municipality, error) {
	if !api.IsDigits(code, 5) {
		return nil, notFound(api.Errorf(api.ENOTFOUND, ""), "municipality", code)
	}
	return findMunicipality(ctx, s.db, code)
}

func findMunicipality(ctx context.Context, q sqlx.QueryerContext, code string) (*api.Municipality, error) {
	var m api.Municipality
	err := sqlx.GetContext(ctx, q, &m, `SELECT `+municipalityColumns+`
		FROM municipalities m JOIN departments d ON d.code = m.department_code WHERE m.code = $1`, code)
	if err != nil {
		return nil, notFound(FormatError(err), "municipality", code)
	}
	return &m, nil
}

// notFound rewrites an ENOTFOUND into a message naming what was missing.
func notFound(err error, what, code string) error {
	if api.ErrorCode(err) == api.ENOTFOUND {
		return api.Errorf(api.ENOTFOUND, "No %s matches the given query.", what)
	}
	return err
}

// validName checks a department or municipality name.
func validName(fe *api.FieldErrors, name string) string {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		fe.Add("name", "This field may not be blank.")
	case len([]rune(name)) > 100:
		fe.Add("name", "Ensure this field has no more than 100 characters.")
	}
	return name
}

// CreateDepartment implements api.GeoService.
func (s *GeoService) CreateDepartment(ctx context.Context, d *api.Department) error {
	var fe api.FieldErrors
	if !api.IsDigits(d.Code, 2) {
		fe.Add("code", "Enter a 2-digit DANE code.")
	}
	d.Name = validName(&fe, d.Name)
	if err := fe.Err(); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO departments (code, name, search_name) VALUES ($1, $2, $3)`,
		d.Code, d.Name, api.Fold(d.Name))
	if err := FormatError(err); err != nil {
		if api.ErrorCode(err) == api.ECONFLICT {
			return fieldConflict("code", "department with this code already exists.")
		}
		return err
	}
	d.MunicipalityCount = 0
	return nil
}

// UpdateDepartment implements api.GeoService.
func (s *GeoService) UpdateDepartment(ctx context.Context, code string, upd api.DepartmentUpdate) (*api.Department, error) {
	if upd.Name != nil {
		var fe api.FieldErrors
		name := validName(&fe, *upd.Name)
		if err := fe.Err(); err != nil {
			return nil, err
		}
		res, err := s.db.ExecContext(ctx, `UPDATE departments SET name = $2, search_name = $3 WHERE code = $1`,
			code, name, api.Fold(name))
		if err != nil {
			return nil, FormatError(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil, api.Errorf(api.ENOTFOUND, "No department matches the given query.")
		}
	}
	return s.FindDepartmentByCode(ctx, code)
}

// DeleteDepartment implements api.GeoService.
func (s *GeoService) DeleteDepartment(ctx context.Context, code string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM departments WHERE code = $1`, code)
	if err != nil {
		if api.ErrorCode(FormatError(err)) == api.ECONFLICT {
			return s.departmentHeld(ctx, code)
		}
		return FormatError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.Errorf(api.ENOTFOUND, "No department matches the given query.")
	}
	return nil
}

// departmentHeld is the 409 for a department a foreign key keeps: it says
// what holds it, municipalities, profiles or both.
func (s *GeoService) departmentHeld(ctx context.Context, code string) error {
	var held struct {
		Municipalities bool `db:"municipalities"`
		Profiles       bool `db:"profiles"`
	}
	err := s.db.GetContext(ctx, &held, `SELECT
		EXISTS (SELECT 1 FROM municipalities WHERE department_code = $1) AS municipalities,
		EXISTS (SELECT 1 FROM profiles WHERE department_code = $1) AS profiles`, code)
	switch {
	case err != nil:
		return FormatError(err)
	case held.Municipalities && held.Profiles:
		return api.Errorf(api.ECONFLICT, "Department %s still has municipalities and profiles that use it; delete or move them first.", code)
	case held.Profiles:
		return api.Errorf(api.ECONFLICT, "Department %s is still used by profiles; move them to another department first.", code)
	}
	return api.Errorf(api.ECONFLICT, "Department %s still has municipalities; delete or move them first.", code)
}

// CreateMunicipality implements api.GeoService.
func (s *GeoService) CreateMunicipality(ctx context.Context, m *api.Municipality) error {
	var fe api.FieldErrors
	if !api.IsDigits(m.Code, 5) {
		fe.Add("code", "Enter a 5-digit DANE code.")
	}
	if !api.IsDigits(m.DepartmentCode, 2) {
		fe.Add("department_code", "Enter a 2-digit DANE code.")
	} else if api.IsDigits(m.Code, 5) && m.Code[:2] != m.DepartmentCode {
		fe.Add("code", "A municipality code starts with its department code.")
	}
	m.Name = validName(&fe, m.Name)
	if err := fe.Err(); err != nil {
		return err
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return FormatError(err)
	}
	defer tx.Rollback()
	var exists bool
	if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM departments WHERE code = $1)`, m.DepartmentCode); err != nil {
		return FormatError(err)
	}
	if !exists {
		return fieldInvalid("department_code", "Unknown department code "+m.DepartmentCode+".")
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO municipalities (code, department_code, name, search_name) VALUES ($1, $2, $3, $4)`,
		m.Code, m.DepartmentCode, m.Name, api.Fold(m.Name))
	if err := FormatError(err); err != nil {
		if api.ErrorCode(err) == api.ECONFLICT {
			return fieldConflict("code", "municipality with this code already exists.")
		}
		return err
	}
	got, err := findMunicipality(ctx, tx, m.Code)
	if err != nil {
		return err
	}
	*m = *got
	return FormatError(tx.Commit())
}

// UpdateMunicipality implements api.GeoService. A municipality cannot move to
// another department: its DANE code encodes the department.
func (s *GeoService) UpdateMunicipality(ctx context.Context, code string, upd api.MunicipalityUpdate) (*api.Municipality, error) {
	var fe api.FieldErrors
	if upd.DepartmentCode != nil && (len(code) < 2 || *upd.DepartmentCode != code[:2]) {
		fe.Add("department_code", "A municipality's department is fixed by its code.")
	}
	var name string
	if upd.Name != nil {
		name = validName(&fe, *upd.Name)
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	if upd.Name != nil {
		res, err := s.db.ExecContext(ctx, `UPDATE municipalities SET name = $2, search_name = $3 WHERE code = $1`,
			code, name, api.Fold(name))
		if err != nil {
			return nil, FormatError(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil, api.Errorf(api.ENOTFOUND, "No municipality matches the given query.")
		}
	}
	return s.FindMunicipalityByCode(ctx, code)
}

// DeleteMunicipality implements api.GeoService.
func (s *GeoService) DeleteMunicipality(ctx context.Context, code string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM municipalities WHERE code = $1`, code)
	if err != nil {
		if api.ErrorCode(FormatError(err)) == api.ECONFLICT {
			return api.Errorf(api.ECONFLICT, "Municipality %s is still referenced by profiles.", code)
		}
		return FormatError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.Errorf(api.ENOTFOUND, "No municipality matches the given query.")
	}
	return nil
}

func fieldInvalid(field, msg string) error {
	var fe api.FieldErrors
	fe.Add(field, msg)
	return fe.Err()
}

// fieldConflict reports a taken unique key as DRF does: 400 with the field.
func fieldConflict(field, msg string) error { return fieldInvalid(field, msg) }
