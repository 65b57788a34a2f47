package api

import "context"

// Department is one of Colombia's 33 first-level divisions (DIVIPOLA).
type Department struct {
	Code              string `json:"code" db:"code"`
	Name              string `json:"name" db:"name"`
	MunicipalityCount int    `json:"municipality_count" db:"municipality_count"`
}

// Municipality is a municipality-level entity of DIVIPOLA.
type Municipality struct {
	Code           string `json:"code" db:"code"`
	Name           string `json:"name" db:"name"`
	DepartmentCode string `json:"department_code" db:"department_code"`
	DepartmentName string `json:"department_name" db:"department_name"`
}

// Place is the nested {code, name} form used inside other resources.
type Place struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// GeoFilter selects and orders departments or municipalities.
type GeoFilter struct {
	// Search is matched, accent- and case-insensitively, against name and
	// code; whitespace-separated terms must all match (DRF's SearchFilter).
	Search string
	// Ordering is a DRF ordering value ("name", "-code", "name,code");
	// unknown fields are ignored.
	Ordering string
	// DepartmentCode restricts municipalities to one department.
	DepartmentCode string

	Offset int
	Limit  int
}

// DepartmentUpdate holds the fields a staff PATCH may change.
type DepartmentUpdate struct {
	Name *string
}

// MunicipalityUpdate holds the fields a staff PATCH may change.
type MunicipalityUpdate struct {
	Name           *string
	DepartmentCode *string
}

// GeoService reads and writes the geography.
type GeoService interface {
	// FindDepartments returns one page of departments and the total count.
	FindDepartments(ctx context.Context, f GeoFilter) ([]*Department, int, error)
	// FindDepartmentByCode returns ENOTFOUND when there is no such department.
	FindDepartmentByCode(ctx context.Context, code string) (*Department, error)
	// FindMunicipalities returns one page of municipalities and the total count.
	FindMunicipalities(ctx context.Context, f GeoFilter) ([]*Municipality, int, error)
	// FindMunicipalityByCode returns ENOTFOUND when there is no such municipality.
	FindMunicipalityByCode(ctx context.Context, code string) (*Municipality, error)

	// CreateDepartment returns EINVALID or ECONFLICT (code taken).
	CreateDepartment(ctx context.Context, d *Department) error
	// UpdateDepartment returns ENOTFOUND or EINVALID.
	UpdateDepartment(ctx context.Context, code string, upd DepartmentUpdate) (*Department, error)
	// DeleteDepartment returns ENOTFOUND, or ECONFLICT while it has municipalities.
	DeleteDepartment(ctx context.Context, code string) error
	// CreateMunicipality returns EINVALID or ECONFLICT (code taken).
	CreateMunicipality(ctx context.Context, m *Municipality) error
	// UpdateMunicipality returns ENOTFOUND or EINVALID.
	UpdateMunicipality(ctx context.Context, code string, upd MunicipalityUpdate) (*Municipality, error)
	// DeleteMunicipality returns ENOTFOUND, or ECONFLICT while profiles use it.
	DeleteMunicipality(ctx context.Context, code string) error
}

// IsDigits reports whether s is exactly n ASCII digits (a DANE code: 2 for a
// department, 5 for a municipality).
func IsDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
