// Package emailaddr validates email addresses as Django 3.2 does (Validate,
// after Trim) and gives the one normal form in which isis compares them
// (Normalize: the users.email_key column, uniqueness and login).
package emailaddr

import (
	"errors"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// ErrInvalid is Validate's error; its text is Django's message.
var ErrInvalid = errors.New("Enter a valid email address.")

// Validate accepts exactly the addresses Django 3.2's EmailValidator
// accepts (the validator of the Django system isis replaces): a dot-atom or
// quoted local part, and a domain that is `localhost`, dotted labels with a
// TLD of two or more characters, an [IPv4] or [IPv6] literal, or an
// internationalized name that Python's IDNA 2003 codec turns into one. The
// caller trims the value first, as Django REST framework's EmailField does.
//
// Like Python's case-insensitive regular expressions, the local part and
// labels take four non-ASCII letters as their ASCII twins (U+212A KELVIN
// SIGN, U+017F LONG S, U+0130 and U+0131): such addresses are valid, and
// Normalize folds them onto the plain one. IDNA 2003 works on Unicode
// 3.2: the bidirectional classes and the set of code points it normalizes
// come from tables generated from Python's (tables.go); the mappings
// themselves are Go's, which differ only where Unicode corrected one since.
// TestValidateAgainstDjango compares the verdicts on 30,000 addresses.
func Validate(email string) error {
	if email == "" || !utf8.ValidString(email) || utf8.RuneCountInString(email) > 320 {
		return ErrInvalid
	}
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return ErrInvalid
	}
	user, domain := email[:at], email[at+1:]
	if !validUserPart(user) {
		return ErrInvalid
	}
	if domain == "localhost" || validDomainPart(domain) {
		return nil
	}
	if ace, ok := pythonIDNA(domain); ok && validDomainPart(ace) {
		return nil
	}
	return ErrInvalid
}

// Trim trims an address as Django REST framework's fields do (Python's
// str.strip: Unicode white space and U+001C..U+001F), before Validate.
func Trim(email string) string { return strings.TrimFunc(email, isPythonSpace) }

// Normalize is the one form in which isis compares addresses, for
// uniqueness and for login: two addresses with the same normal form are the
// same account. It is NFKC with case folding (Unicode's NFKC_Casefold, with
// default-ignorable code points such as zero-width spaces and bidirectional
// marks removed) of the whole address, after trimming; a quoted local part
// that is a plain dot-atom loses its quotes; in the domain, ideographic full stops become dots and each Punycode label ("xn--…") is
// decoded first, so "K\u212aIM@ＥＸＡＭＰＬＥ.com", "kim@example.com" and
// "kim@xn--exmple-cua.com" / "kim@exämple.com" pairs meet. It accepts any
// string (valid or not), never fails, and Normalize(Normalize(x))
// == Normalize(x). It is not a display form: isis shows the address as
// it was given.
func Normalize(email string) string {
	if k, ok := plainKey(email); ok {
		return k
	}
	return normalize(email)
}

// plainKey is Normalize of an address of ASCII letters, digits and
// ".@_+-" alone, with no Punycode label: its lowercase form (NFKC and
// case folding change no other of these characters, and none is white
// space, quoted or ignorable); ok is false for any other address.
func plainKey(email string) (key string, ok bool) {
	upper := false
	for i := 0; i < len(email); i++ {
		switch c := email[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '@', c == '_', c == '+', c == '-':
		case 'A' <= c && c <= 'Z':
			upper = true
		default:
			return "", false
		}
	}
	key = email
	if upper {
		key = strings.ToLower(email)
	}
	if strings.Contains(key, "xn--") {
		return "", false
	}
	return key, true
}

func normalize(email string) string {
	// Dropping invisible characters or NFKC can leave white space at an end
	// ("0 \u202e"): normalize again until nothing changes.
	for range 4 {
		n := normalizeOnce(email)
		if n == email {
			break
		}
		email = n
	}
	return email
}

func normalizeOnce(email string) string {
	email = strings.ToValidUTF8(strings.TrimFunc(email, isPythonSpace), "\uFFFD")
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return nfkcCasefold(email)
	}
	return nfkcCasefold(unquote(email[:at])) + "@" + domainKey(email[at+1:])
}

// unquote returns a quoted local part without its quotes and escapes when
// what is left is a plain dot-atom (`"kim"` and `"k\im"` are the mailbox
// kim, RFC 5321 section 4.1.2); anything else is returned as it is.
func unquote(local string) string {
	if len(local) < 2 || local[0] != '"' || local[len(local)-1] != '"' {
		return local
	}
	var b strings.Builder
	in := local[1 : len(local)-1]
	for i := 0; i < len(in); i++ {
		if in[i] == '\\' && i+1 < len(in) {
			i++
		}
		b.WriteByte(in[i])
	}
	if u := b.String(); u != "" && !strings.Contains(u, "\"") && validUserPart(u) {
		return u
	}
	return local
}

// domainKey is the domain's part of Normalize.
func domainKey(domain string) string {
	d := strings.Map(func(r rune) rune {
		if r == '\u3002' || r == '\uFF0E' || r == '\uFF61' {
			return '.'
		}
		return r
	}, nfkcCasefold(domain))
	if !strings.Contains(d, "xn--") {
		return d
	}
	labels := strings.Split(d, ".")
	for i, l := range labels {
		if strings.HasPrefix(l, "xn--") {
			if u, err := idna.Punycode.ToUnicode(l); err == nil && u != l {
				labels[i] = strings.Map(func(r rune) rune {
					if r == '.' || r == '\u3002' || r == '\uFF0E' || r == '\uFF61' {
						return -1 // a decoded label never adds a label
					}
					return r
				}, nfkcCasefold(u))
			}
		}
	}
	return strings.Join(labels, ".")
}

// fold is full Unicode case folding. A cases.Caser keeps state, so each
// call makes its own (they must not be shared between goroutines).
func fold(s string) string { return cases.Fold().String(s) }

// nfkcCasefold is NFKC_Casefold: default ignorables dropped, NFKC, full
// case folding, NFKC again; repeated until stable (at most a few rounds).
func nfkcCasefold(s string) string {
	for range 4 {
		t := norm.NFKC.String(strings.Map(dropIgnorable, s))
		t = norm.NFKC.String(fold(t))
		t = strings.Map(dropIgnorable, t)
		if t == s {
			break
		}
		s = t
	}
	return s
}

// dropIgnorable removes Unicode default-ignorable code points: format
// characters (zero-width spaces and joiners, bidirectional marks and
// overrides, the soft hyphen, the BOM), variation selectors and the other
// invisible ones (Hangul fillers, tags).
func dropIgnorable(r rune) rune {
	if unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || unicode.Is(unicode.Variation_Selector, r) ||
		(unicode.Is(unicode.Cf, r) && !unicode.Is(unicode.Prepended_Concatenation_Mark, r) &&
			!(r >= 0xFFF9 && r <= 0xFFFB) && !(r >= 0x13430 && r <= 0x1343F)) {
		return -1
	}
	return r
}

// isPythonSpace is Python's str.isspace, which str.strip (and so DRF's
// trim_whitespace) uses: Go's unicode.IsSpace plus the ASCII separators
// U+001C..U+001F.
func isPythonSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1C && r <= 0x1F)
}

// asciiTwin maps the four non-ASCII letters Python's re.IGNORECASE matches
// against [A-Z] to the ASCII letter they match.
func asciiTwin(r rune) rune {
	switch r {
	case '\u212A':
		return 'k'
	case '\u017F':
		return 's'
	case '\u0130', '\u0131':
		return 'i'
	}
	return r
}

func isAlnum(r rune) bool {
	r = asciiTwin(r)
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// isAtext is [-!#$%&'*+/=?^_`{}|~0-9A-Z] under re.IGNORECASE.
func isAtext(r rune) bool {
	return isAlnum(r) || (r < utf8.RuneSelf && strings.IndexByte("-!#$%&'*+/=?^_`{}|~", byte(r)) >= 0)
}

// validUserPart is Django's user_regex: a dot-atom, or a quoted string
// `^"([\001-\010\013\014\016-\037!#-\[\]-\177]|\\[\001-\011\013\014\016-\177])*"\Z`.
func validUserPart(s string) bool {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && quotedOK(s[1:len(s)-1]) {
		return true
	}
	if s == "" {
		return false
	}
	for _, atom := range strings.Split(s, ".") {
		if atom == "" {
			return false
		}
		for _, r := range atom {
			if !isAtext(r) {
				return false
			}
		}
	}
	return true
}

func quotedOK(s string) bool {
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := asciiTwin(rs[i])
		switch {
		case r == '\\' && i+1 < len(rs) && escapedOK(asciiTwin(rs[i+1])):
			i++ // an escaped pair; a lone \ is taken by the class below, as the regex's backtracking does
		case (r >= 1 && r <= 8) || r == 11 || r == 12 || (r >= 14 && r <= 31) || r == '!' ||
			(r >= '#' && r <= '[') || (r >= ']' && r <= 127):
		default:
			return false
		}
	}
	return true
}

// escapedOK is [\001-\011\013\014\016-\177], what may follow a backslash.
func escapedOK(r rune) bool {
	return (r >= 1 && r <= 9) || r == 11 || r == 12 || (r >= 14 && r <= 127)
}

// validDomainPart is Django's validate_domain_part: domain_regex or a
// literal_regex match holding an IPv4 or IPv6 address.
func validDomainPart(d string) bool {
	if len(d) > 2 && d[0] == '[' && d[len(d)-1] == ']' {
		inner := d[1 : len(d)-1]
		for _, r := range inner {
			// [A-f0-9:.] under re.IGNORECASE
			if !(isAlnum(r) || (r >= 'A' && r <= 'f') || r == ':' || r == '.') {
				return false
			}
		}
		return validIPv4(inner) || validIPv6(inner)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels[:len(labels)-1] {
		rs := []rune(l)
		if len(rs) < 1 || len(rs) > 63 || !isAlnum(rs[0]) || !isAlnum(rs[len(rs)-1]) {
			return false
		}
		for _, r := range rs {
			if !isAlnum(r) && r != '-' {
				return false
			}
		}
	}
	tld := []rune(labels[len(labels)-1])
	if len(tld) < 2 || len(tld) > 63 || tld[len(tld)-1] == '-' {
		return false
	}
	for _, r := range tld {
		if !isAlnum(r) && r != '-' {
			return false
		}
	}
	return true
}

// validIPv4 is Python's ipaddress.IPv4Address with Django's ban on leading
// zeros: four decimal octets, each 0..255.
func validIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || (len(p) > 1 && p[0] == '0') {
			return false
		}
		n := 0
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
			n = n*10 + int(p[i]-'0')
		}
		if n > 255 {
			return false
		}
	}
	return true
}

// validIPv6 is Django's is_valid_ipv6_address: at most 39 characters that
// Python's ipaddress.IPv6Address takes (no zone here: the literal's
// character class has no %).
func validIPv6(s string) bool {
	if len(s) > 39 || !strings.Contains(s, ":") {
		return false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return false
	}
	return true
}

// pythonIDNA is Python's domain.encode("idna") (IDNA 2003 ToASCII per label,
// what Django's punycode() calls): false where Python raises UnicodeError.
func pythonIDNA(domain string) (string, bool) {
	if domain == "" {
		return "", true
	}
	ascii := true
	for i := 0; i < len(domain); i++ {
		ascii = ascii && domain[i] < utf8.RuneSelf
	}
	if ascii {
		labels := strings.Split(domain, ".")
		for _, l := range labels[:len(labels)-1] {
			if len(l) == 0 || len(l) > 63 {
				return "", false
			}
		}
		return domain, len(labels[len(labels)-1]) < 64
	}
	labels := strings.Split(strings.NewReplacer("\u3002", ".", "\uFF0E", ".", "\uFF61", ".").Replace(domain), ".")
	trailing := ""
	if len(labels) > 0 && labels[len(labels)-1] == "" {
		trailing = "."
		labels = labels[:len(labels)-1]
	}
	out := make([]string, 0, len(labels))
	for _, l := range labels {
		a, ok := toASCII(l)
		if !ok {
			return "", false
		}
		out = append(out, a)
	}
	return strings.Join(out, ".") + trailing, true
}

// toASCII is IDNA 2003's ToASCII of one label (AllowUnassigned, no STD3
// rules), as Python's encodings.idna.ToASCII.
func toASCII(label string) (string, bool) {
	if isASCII(label) {
		return label, len(label) > 0 && len(label) < 64
	}
	label, ok := nameprep(label)
	if !ok {
		return "", false
	}
	if isASCII(label) {
		return label, len(label) > 0 && len(label) < 64
	}
	if strings.HasPrefix(label, "xn--") {
		return "", false
	}
	a := "xn--" + punycode(label)
	return a, len(a) < 64
}

// punycode is RFC 3492's encoding of s (Python's "punycode" codec): the
// basic code points, a hyphen if there were any, then the deltas. Dots are
// basic code points like any other (nameprep can make them inside a label).
func punycode(s string) string {
	const base, tmin, tmax = 36, 1, 26
	rs := []rune(s)
	var out []byte
	for _, r := range rs {
		if r < 0x80 {
			out = append(out, byte(r))
		}
	}
	b := len(out)
	h := b
	if b > 0 {
		out = append(out, '-')
	}
	digit := func(d int) byte {
		if d < 26 {
			return byte('a' + d)
		}
		return byte('0' + d - 26)
	}
	n, delta, bias := rune(0x80), 0, 72
	for h < len(rs) {
		m := rune(unicode.MaxRune + 1)
		for _, r := range rs {
			if r >= n && r < m {
				m = r
			}
		}
		delta += int(m-n) * (h + 1)
		n = m
		for _, r := range rs {
			if r < n {
				delta++
			}
			if r != n {
				continue
			}
			q := delta
			for k := base; ; k += base {
				t := min(max(k-bias, tmin), tmax)
				if q < t {
					break
				}
				out = append(out, digit(t+(q-t)%(base-t)))
				q = (q - t) / (base - t)
			}
			out = append(out, digit(q))
			bias = punyAdapt(delta, h+1, h == b)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return string(out)
}

func punyAdapt(delta, points int, first bool) int {
	if first {
		delta /= 700
	} else {
		delta /= 2
	}
	delta += delta / points
	k := 0
	for delta > ((36-1)*26)/2 {
		delta /= 36 - 1
		k += 36
	}
	return k + (36-1+1)*delta/(delta+38)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// nameprep is RFC 3491's profile of stringprep as Python implements it:
// table B.1 removed, B.2 case folding, NFKC, the prohibited tables, and the
// bidirectional rule.
func nameprep(label string) (string, bool) {
	// Unicode 3.2's NFKC leaves code points it does not know alone (Python
	// lower-cases them, with today's tables): normalize only the runs of
	// ones it knows.
	var b, run strings.Builder
	flush := func() {
		b.WriteString(norm.NFKC.String(fold(norm.NFKC.String(run.String()))))
		run.Reset()
	}
	for _, r := range label {
		switch {
		case inB1(r):
		case unicode.Is(unicode32, r):
			run.WriteRune(r)
		default:
			flush()
			b.WriteString(strings.ToLower(string(r)))
		}
	}
	flush()
	s := b.String()
	randAL, l := false, false
	rs := []rune(s)
	for _, r := range rs {
		if prohibited(r) {
			return "", false
		}
		randAL = randAL || unicode.Is(stringprepD1, r)
		l = l || unicode.Is(stringprepD2, r)
	}
	if randAL && (l || !unicode.Is(stringprepD1, rs[0]) || !unicode.Is(stringprepD1, rs[len(rs)-1])) {
		return "", false
	}
	return s, true
}

// inB1 is stringprep table B.1, commonly mapped to nothing.
func inB1(r rune) bool {
	switch {
	case r == 0xAD, r == 0x34F, r == 0x1806, r >= 0x180B && r <= 0x180D, r >= 0x200B && r <= 0x200D,
		r == 0x2060, r >= 0xFE00 && r <= 0xFE0F, r == 0xFEFF:
		return true
	}
	return false
}

// prohibited is nameprep's prohibited output: stringprep tables C.1.2,
// C.2.2, C.3 to C.9.
func prohibited(r rune) bool {
	switch {
	case r == 0xA0, r == 0x1680, r >= 0x2000 && r <= 0x200B, r == 0x202F, r == 0x205F, r == 0x3000: // C.1.2
		return true
	case r >= 0x80 && r <= 0x9F, r == 0x6DD, r == 0x70F, r == 0x180E, r == 0x200C, r == 0x200D, r == 0x2028,
		r == 0x2029, r >= 0x2060 && r <= 0x2063, r >= 0x206A && r <= 0x206F, r == 0xFEFF, r >= 0xFFF9 && r <= 0xFFFC,
		r >= 0x1D173 && r <= 0x1D17A: // C.2.2
		return true
	case r >= 0xE000 && r <= 0xF8FF, r >= 0xF0000 && r <= 0xFFFFD, r >= 0x100000 && r <= 0x10FFFD: // C.3
		return true
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE: // C.4
		return true
	case r >= 0xD800 && r <= 0xDFFF, r == 0xFFFD: // C.5, C.6
		return true
	case r >= 0x2FF0 && r <= 0x2FFB: // C.7
		return true
	case r == 0x340, r == 0x341, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E: // C.8
		return true
	case r == 0xE0001, r >= 0xE0020 && r <= 0xE007F: // C.9
		return true
	}
	return false
}
