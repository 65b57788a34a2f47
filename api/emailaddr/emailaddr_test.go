package emailaddr

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/isis-project/isis/internal/testenv"
)

// The attack addresses of issue 11 and the corners of Django's rules.
var emailRules = []struct {
	email string
	valid bool
}{
	{"kim@example.com", true},
	{"Kim.Lee+tag@Example.COM", true},
	{"\u212aim@example.com", true}, // Kelvin sign: valid in Django (re.IGNORECASE), same account as kim@
	{"ſam@example.com", true},
	{"kim@ｅｘａｍｐｌｅ.com", true},  // fullwidth domain: IDNA maps it to example.com
	{"ｋｉｍ@example.com", false}, // fullwidth local part
	{"k\u200bim@example.com", false},
	{"kim@ex\u200bample.com", true}, // IDNA 2003 maps zero-width space to nothing
	{"ki\u202em@example.com", false},
	{"kim@ex\u202eample.com", false}, // RTL override: prohibited by nameprep
	{"ki\x01m@example.com", false},
	{"kim@exa\u0301mple.com", true}, // NFD domain, same as NFC exámple.com
	{"kim@exámple.com", true},
	{"kim@ex_ample.com", false},
	{"kim@1.2.3.4", false},
	{"kim@1.2.3.44", true}, // a two-character TLD, as far as Django can tell
	{"kim@[1.2.3.4]", true},
	{"kim@[01.2.3.4]", false},
	{"kim@[::1]", true},
	{"kim@[IPv6:::1]", false},
	{"kim@localhost", true},
	{"kim@LOCALHOST", false},
	{"kim@example", false},
	{"kim@example.com.", false},
	{"kim@example..com", false},
	{"kim@-example.com", false},
	{"kim@example.c", false},
	{"kim@example.co-", false},
	{"kim@example.-co", true},
	{".kim@example.com", false},
	{"kim.@example.com", false},
	{"k..im@example.com", false},
	{`"kim lee"@example.com`, false}, // a space is not in the quoted-string class
	{`"kim"@example.com`, true},
	{`"k\"im"@example.com`, true},
	{`"k\"@example.com`, false},
	{"\"k\x01m\"@example.com", true},
	{"kim@exam\x00ple.com", false},
	{"kim@example.com\n", false},
	{"kim", false},
	{"", false},
	{"@example.com", false},
	{"kim@", false},
	{"a@b@example.com", false},
	{"kim@xn--exmple-cua.com", true},
	{"kim@☃.net", true},
	{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + ".com", true},
	{"kim@" + strings.Repeat("b", 64) + ".com", false},
	{strings.Repeat("a", 320) + "@example.com", false},
}

func TestValidate(t *testing.T) {
	for _, r := range emailRules {
		if got := Validate(r.email) == nil; got != r.valid {
			t.Errorf("Validate(%q) valid = %v, want %v", r.email, got, r.valid)
		}
	}
}

func TestNormalize(t *testing.T) {
	same := [][]string{
		{"kim@example.com", "KIM@EXAMPLE.COM", "\u212aim@example.com", "ｋｉｍ@ｅｘａｍｐｌｅ.com", "k\u200bim@ex\u200bample.com",
			"ki\u202em@example.com", "  kim@example.com\t", "kim@example\u3002com", "kim@example\uFF0Ecom", `"kim"@example.com`, `"k\im"@example.com`},
		{"sam@example.com", "ſam@example.com", "SAM@example.com"},
		{"kim@exámple.com", "kim@exa\u0301mple.com", "KIM@EXÁMPLE.COM", "kim@xn--exmple-qta.com", "kim@XN--EXMPLE-QTA.COM"},
		{"straße@example.com", "STRASSE@example.com"},
	}
	for _, group := range same {
		want := Normalize(group[0])
		for _, e := range group[1:] {
			if got := Normalize(e); got != want {
				t.Errorf("Normalize(%q) = %q, want %q (as %q)", e, got, want, group[0])
			}
		}
	}
	distinct := []string{"kim@example.com", "kim@example.co", "kim.lee@example.com", "kim@ex-ample.com", "kím@example.com",
		`"kim lee"@example.com`, "kim@[1.2.3.4]", "kim@1.2.3.44"}
	seen := map[string]string{}
	for _, e := range distinct {
		k := Normalize(e)
		if other, ok := seen[k]; ok {
			t.Errorf("%q and %q share the normal form %q", e, other, k)
		}
		seen[k] = e
	}
	if got := Normalize("Kim.Lee@Example.COM"); got != "kim.lee@example.com" {
		t.Errorf("normal form = %q", got)
	}
}

// emailCorpus is the table above, every local part with every domain seen in
// it, random addresses drawn from characters that matter to the rules, and
// random ones with characters from all of Unicode.
func emailCorpus() []string {
	var out, locals, domains []string
	for _, r := range emailRules {
		out = append(out, r.email)
		if i := strings.LastIndexByte(r.email, '@'); i >= 0 {
			locals = append(locals, r.email[:i])
			domains = append(domains, r.email[i+1:])
		}
	}
	domains = append(domains, "[1:2:3:4:5:6:7::]", "[::1:2:3:4:5:6:7]", "[1::2::3]", "[::ffff:1.2.3.4]", "[1:2:3:4:5:6:1.2.3.4]",
		"[1:2:3:4:5:6:7:1.2.3.4]", "[12345::]", "[1:2:3:4:5:6:7:8]", "[1:2:3:4:5:6:7:8:9]", "[::]", "[:]", "[:::]", "[1.2.3]",
		"[ab]", "[]", "[1.2.3.4", "[１.2.3.4]", "[aaaa:bbbb:cccc:dddd:eeee:ffff:1111:2222]", "[0000:0000:0000:0000:0000:0000:0000:00001]",
		"straße.de", "ſtraße.de", "exampl\u212a.com", "xn--n3h.net", "مثال.إختبار", "ex\u0645.com", "\u05d0\u05d1.com",
		"\u05d0a\u05d1.com", "a\u0080b.com", "a\ue000.com", "a\u2488com", "a\u2024com", "xn--.com", "\u2168.com",
		"ex\u00adample.com", "ex\ufe0fample.com", "example.com\u200b", "ex\u3000ample.com", "例え.テスト", "ｘｎ－－ｅｘｍｐｌｅ－ｃｕａ.com",
		"a_b.cém", "é.é", "\U0001F600.com", "\U000E0041.com", "e\u0301.co", "ab\u0301", "ex\u061Cample.com", "ex\u180Eample.com",
		"İstanbul.com", "ıstanbul.com", "\u0130.com", strings.Repeat("é", 60)+".com", strings.Repeat("é", 20)+".com",
		"ex\u2060ample.com", "ex\u200dample.com", "ex\ufffdample.com", "ex\uFDD0ample.com", "ex\u2ff0ample.com", "xn--exmple-cua.xn--",
		"\u3002com", "com\u3002", "a\uff61b.cc", "localhost\u3002", "ex.com\u3002", "\u0660\u0661.com", "\u05d0\u0661.com")
	locals = append(locals, "ı", "İ", "\"İ\"", "\"\\\"", "\"\\\\\"", "\"\"", "\"é\"", "a\x00b", "é", "{x}", "a\tb", "\"", "'", "ki\u0301m",
		"\"\\é\"", "\"a\\\x7f\"", "\"\x7f\"", "\"\x0b\"", "\"\x0d\"")
	for _, l := range locals {
		for _, d := range domains {
			out = append(out, l+"@"+d)
		}
	}
	alphabet := []rune("aZ09.-_@\"\\[]:+ \t\x00\x01\x7f\u212a\u017f\u0130\u0131é\u0301\u200b\u202e\uff41\uff0e\u3002\u05d0\u0645ßİ⒈")
	rng := rand.New(rand.NewPCG(11, 5))
	for range 3000 {
		n := 1 + rng.IntN(12)
		rs := make([]rune, n)
		for i := range rs {
			rs[i] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(rs)
		if rng.IntN(2) == 0 {
			s = "kim@" + s
		} else if rng.IntN(2) == 0 {
			s += "@example.com"
		}
		out = append(out, s)
	}
	// And anywhere in Unicode, around a plain local part or domain.
	pick := func() rune {
		for {
			var r rune
			switch rng.IntN(6) {
			case 0:
				r = rune(rng.IntN(0x80))
			case 1:
				r = rune(0x80 + rng.IntN(0x780))
			case 2:
				r = rune(0x800 + rng.IntN(0xF800))
			case 3:
				r = rune(0x10000 + rng.IntN(0x100000))
			default:
				r = rune("abcxyz09-."[rng.IntN(10)])
			}
			if r < 0xD800 || r > 0xDFFF {
				return r
			}
		}
	}
	for range 20000 {
		rs := make([]rune, 1+rng.IntN(10))
		for i := range rs {
			rs[i] = pick()
		}
		switch s := string(rs); rng.IntN(3) {
		case 0:
			out = append(out, "kim@"+s+".com")
		case 1:
			out = append(out, "kim@ab"+s)
		default:
			out = append(out, s+"@example.com")
		}
	}
	return out
}

// TestValidateAgainstDjango runs Django's own validate_email (Debian's
// python3-django, 3.2 as in the system isis replaces) on the corpus and
// wants the same verdict for every address.
func TestValidateAgainstDjango(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import django.core.validators").Run(); err != nil {
		testenv.Missing(t, "python3-django ("+err.Error()+")", "scripts/setup.sh test installs it")
	}
	corpus := emailCorpus()
	var in strings.Builder
	for _, e := range corpus {
		b, _ := json.Marshal(e)
		in.Write(b)
		in.WriteByte('\n')
	}
	cmd := exec.Command(py, "testdata/django_validate_email.py")
	cmd.Stdin = strings.NewReader(in.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	verdicts := strings.Fields(string(out))
	if len(verdicts) != len(corpus) {
		t.Fatalf("%d verdicts for %d addresses", len(verdicts), len(corpus))
	}
	bad := 0
	for i, e := range corpus {
		if got, want := Validate(e) == nil, verdicts[i] == "1"; got != want {
			if bad++; bad <= 40 {
				t.Errorf("Validate(%+q) valid = %v, Django says %v", e, got, want)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d addresses judged unlike Django", bad, len(corpus))
	}
}

// FuzzEmail: the validator and the normal form never panic, the normal form
// is stable, and upper-casing a valid address does not change its normal
// form.
func FuzzEmail(f *testing.F) {
	for _, r := range emailRules {
		f.Add(r.email)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := Validate(s)
		k := Normalize(s)
		if k2 := Normalize(k); k2 != k {
			t.Fatalf("Normalize not stable: %+q -> %+q -> %+q", s, k, k2)
		}
		if err == nil && Normalize(strings.ToUpper(s)) != k && !strings.ContainsAny(s, "\"\u0130\u0131") {
			t.Fatalf("case changes the normal form of %+q: %+q vs %+q", s, k, Normalize(strings.ToUpper(s)))
		}
	})
}

// FuzzPlainKey: the shortcut for plain ASCII addresses gives the normal
// form the whole computation gives, whenever it answers.
func FuzzPlainKey(f *testing.F) {
	for _, r := range emailRules {
		f.Add(r.email)
	}
	for _, s := range []string{"", "Kim@Example.COM", "kim@xn--exmple-cua.com", "KIM@XN--EXMPLE-CUA.COM", "a.b+c_d-e@f.g", "@", "a@b@c", ".", "Kim@Xn--x.com", "k\u00edm@a.b", " kim@a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if k, ok := plainKey(s); ok && k != normalize(s) {
			t.Fatalf("plainKey(%+q) = %+q, Normalize %+q", s, k, normalize(s))
		}
	})
}

func TestPlainKey(t *testing.T) {
	for in, want := range map[string]bool{"Kim@Example.COM": true, "kim@a.b": true, "": true, "kim@xn--exmple-cua.com": false,
		"KIM@XN--EXMPLE-CUA.COM": false, " kim@a.b": false, "kím@a.b": false, `"kim"@a.b`: false} {
		if _, ok := plainKey(in); ok != want {
			t.Errorf("plainKey(%q) answers %v, want %v", in, ok, want)
		}
	}
}

func TestPunycode(t *testing.T) {
	// Python's str.encode("punycode") gives these.
	for in, want := range map[string]string{"exámple": "exmple-qta", "例え": "r8jz45g", "ıas1.": "as1.-kza", "☃": "n3h", "ü": "tda", "bücher-straße": "bcher-strae-46a18a"} {
		if got := punycode(in); got != want {
			t.Errorf("punycode(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNormalizeConcurrent: the normal form is safe to compute from
// many goroutines at once (run under -race).
func TestNormalizeConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if Normalize("\u212aim@ＥＸＡＭＰＬＥ.com") != "kim@example.com" || Validate("kim@exámple.com") != nil {
					t.Error("wrong answer under concurrency")
					return
				}
			}
		}()
	}
	wg.Wait()
}
