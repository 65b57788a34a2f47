// Package geo embeds the official DIVIPOLA lists (DANE) of Colombia's
// departments and municipalities (provenance: docs/data.md), and parses them.
package geo

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"regexp"
)

//go:embed data/departments.csv
var departmentsCSV []byte

//go:embed data/municipalities.csv
var municipalitiesCSV []byte

// Row is one department (Code, Name) or municipality (Code, DepartmentCode, Name).
type Row struct {
	Code           string
	DepartmentCode string
	Name           string
}

var (
	departmentCode   = regexp.MustCompile(`^[0-9]{2}$`)
	municipalityCode = regexp.MustCompile(`^[0-9]{5}$`)
)

// Departments returns the official departments, sorted by code.
func Departments() ([]Row, error) {
	return parse(departmentsCSV, []string{"code", "name"}, func(rec []string) (Row, error) {
		if !departmentCode.MatchString(rec[0]) {
			return Row{}, fmt.Errorf("department code %q is not 2 digits", rec[0])
		}
		return Row{Code: rec[0], Name: rec[1]}, nil
	})
}

// Municipalities returns the official municipalities, sorted by code.
func Municipalities() ([]Row, error) {
	return parse(municipalitiesCSV, []string{"code", "department_code", "name"}, func(rec []string) (Row, error) {
		if !municipalityCode.MatchString(rec[0]) || rec[0][:2] != rec[1] {
			return Row{}, fmt.Errorf("municipality code %q does not belong to department %q", rec[0], rec[1])
		}
		return Row{Code: rec[0], DepartmentCode: rec[1], Name: rec[2]}, nil
	})
}

// Parse reads a DIVIPOLA CSV with the given header.
func parse(data []byte, header []string, row func([]string) (Row, error)) ([]Row, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = len(header)
	got, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	for i := range header {
		if got[i] != header[i] {
			return nil, fmt.Errorf("header %v, want %v", got, header)
		}
	}
	var out []Row
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		x, err := row(rec)
		if err != nil {
			return nil, err
		}
		if x.Name == "" {
			return nil, fmt.Errorf("code %s has no name", x.Code)
		}
		out = append(out, x)
	}
}
