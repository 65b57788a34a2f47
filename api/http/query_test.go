package apihttp

import (
	"net/url"
	"testing"
)

func TestPlainQueryValue(t *testing.T) {
	for _, tc := range []struct {
		raw, name, want string
		ok              bool
	}{
		{"", "department", "", true},
		{"department=05", "department", "05", true},
		{"search=san&department=05&department=08", "department", "05", true},
		{"department_code=05", "department", "", true},
		{"department", "department", "", true},
		{"department=", "department", "", true},
		{"&&department=a=b&", "department", "a=b", true},
		{"department=0%35", "department", "", false},
		{"search=san+juan", "department", "", false},
		{"department=05;x=1", "department", "", false},
		{"a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&a&department=05", "department", "", false},
	} {
		v, ok := plainQueryValue(tc.raw, tc.name)
		if v != tc.want || ok != tc.ok {
			t.Errorf("plainQueryValue(%q, %q) = %q, %v; want %q, %v", tc.raw, tc.name, v, ok, tc.want, tc.ok)
		}
	}
}

// FuzzPlainQueryValue: where plainQueryValue answers, net/url (as Echo's
// QueryParam calls it) answers the same.
func FuzzPlainQueryValue(f *testing.F) {
	f.Add("department=05", "department")
	f.Add("search=san&department_code=05&page=2", "department_code")
	f.Add("department=0%35&department=06", "department")
	f.Add("a;b=c&department=07", "department")
	f.Add("department=san+juan", "department")
	f.Fuzz(func(t *testing.T, raw, name string) {
		if name == "" || url.QueryEscape(name) != name {
			return // names with something to escape are not asked
		}
		v, ok := plainQueryValue(raw, name)
		if !ok {
			return
		}
		u := url.URL{RawQuery: raw}
		if want := u.Query().Get(name); v != want {
			t.Fatalf("plainQueryValue(%q, %q) = %q; net/url: %q", raw, name, v, want)
		}
	})
}
