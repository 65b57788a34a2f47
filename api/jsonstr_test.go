package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestAppendJSONString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"/api/health/", `"/api/health/"`},
		{`say "hi"\`, `"say \"hi\"\\"`},
		{"a\nb\rc\td\x00\x1f\x7f\b\f", `"a\nb\rc\td\u0000\u001f` + "\x7f" + `\b\f"`},
		{"Bogotá, D.C.", `"Bogotá, D.C."`},
		{"bad \xff\xfe utf8", `"bad \ufffd\ufffd utf8"`},
		{"line\u2028sep\u2029", `"line\u2028sep\u2029"`},
		{"<script>&", `"<script>&"`},
	} {
		if got := string(AppendJSONString(nil, tc.in)); got != tc.want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzAppendJSONString: whatever a client puts in a path or header, the log
// line stays valid JSON and decodes to what encoding/json would have written.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "/api/x", "\"\\\n\x00", "\xff\xc3", "é\u2028", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want string
		out := AppendJSONString([]byte("x"), s)[1:]
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, out, err)
		}
		std, _ := json.Marshal(s)
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q decodes to %q, encoding/json gives %q", s, got, want)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if exact := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(out, exact) {
			t.Fatalf("%q encodes to %s, encoding/json writes %s", s, out, exact)
		}
	})
}

// userJSONReflect is a User as encoding/json writes it from the struct
// tags, times in UTC, without HTML escaping (as the API's encoder and DRF).
func userJSONReflect(u User) []byte {
	type plain User
	p := plain(u)
	p.DateJoined = p.DateJoined.UTC()
	if p.LastLogin != nil {
		t := p.LastLogin.UTC()
		p.LastLogin = &t
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(p)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestUserAppendJSON(t *testing.T) {
	bogota := time.FixedZone("COT", -5*3600)
	last := time.Date(2026, 11, 26, 1, 2, 3, 450000000, bogota)
	for _, u := range []User{
		{},
		{ID: 1, Email: "ana@example.com", FirstName: "Ana María", LastName: "Pérez \"la <jefa>\"", IsStaff: true, IsActive: true,
			DateJoined: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), LastLogin: &last, Password: "argon2$secret", IsSuperuser: true},
		{ID: 1 << 62, Email: "x@y.z", FirstName: "\x00\n\u2028", LastName: "\xff", DateJoined: last},
	} {
		got, want := string(u.AppendJSON(nil)), string(userJSONReflect(u))
		if got != want {
			t.Errorf("AppendJSON = %s\nreflection gives %s", got, want)
		}
		var a, b any
		m, err := json.Marshal(u) // through MarshalJSON, as in a list
		if err != nil || json.Unmarshal(m, &a) != nil || json.Unmarshal([]byte(want), &b) != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("json.Marshal = %s, %v\nwant %s", m, err, want)
		}
	}
}

// FuzzUserJSON: whatever a user typed into their names, the hand encoding
// is what encoding/json would have written.
func FuzzUserJSON(f *testing.F) {
	f.Add(int64(1), "ana@example.com", "Ana", "Pérez", int64(1700000000123456789), true)
	f.Add(int64(-1), "\xff", "\u2028\"", "\x00", int64(0), false)
	f.Fuzz(func(t *testing.T, id int64, email, first, last string, ns int64, staff bool) {
		when := time.Unix(0, ns)
		u := User{ID: id, Email: email, FirstName: first, LastName: last, IsStaff: staff, IsActive: !staff, DateJoined: when}
		if staff {
			u.LastLogin = &when
		}
		if got, want := string(u.AppendJSON(nil)), string(userJSONReflect(u)); got != want {
			t.Fatalf("AppendJSON = %s\nreflection gives %s", got, want)
		}
	})
}
