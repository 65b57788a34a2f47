// Package auth holds isis's credentials logic: password hashing (argon2id,
// with Django's pbkdf2_sha256, pbkdf2_sha1, argon2 and bcrypt_sha256 hashes
// accepted and upgraded), Django's
// password rules, SimpleJWT-compatible JWTs and Google ID-token checks.
package auth

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/semaphore"
)

// Argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1
// lane). Hashing is limited to one per CPU at a time, so memory stays bounded
// under a burst of logins.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16

	// MaxPasswordBytes bounds what is hashed at all.
	MaxPasswordBytes = 4096
)

// The work a stored (imported) hash may ask for: Django's defaults times
// two at most. A hash beyond is a conflict at import and, at login, refused
// like a wrong password without being computed.
const (
	// MaxArgon2Memory is 2 × Django's memory_cost (102400 KiB since Django 4.0).
	MaxArgon2Memory = 204800 // KiB
	// MaxArgon2Time is 2 × Django's time_cost (2).
	MaxArgon2Time = 4
	// MaxArgon2Threads is 2 × Django's parallelism (8 since Django 4.0).
	MaxArgon2Threads = 16
	// MaxPBKDF2Iterations is 2 × Django 5.2's 1,000,000 (Django 3.2 used
	// 260,000, 4.2 600,000, 5.0 720,000, 5.1 870,000).
	MaxPBKDF2Iterations = 2_000_000
	// MaxBcryptCost is Django's 12 plus one (bcrypt's cost is a power of two:
	// twice the work).
	MaxBcryptCost = 13
	// HashMemoryBudget bounds the memory of the password hashes running at
	// once (argon2's memory_cost; pbkdf2 and bcrypt need next to none): a
	// burst of logins on Django's default argon2 (100 MiB each) runs two at
	// a time, whatever the number of CPUs.
	HashMemoryBudget = 256 << 20 // bytes
)

// hashSlots bounds the hashes running at once to one per CPU; hashMemory
// bounds their memory to HashMemoryBudget.
var (
	hashSlots  = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	hashMemory = semaphore.NewWeighted(HashMemoryBudget)
)

// withSlot runs f, which needs mem bytes, once a CPU slot and mem bytes of
// the budget are free. After a large hash the garbage collector runs before
// the memory is given back to the budget, so the budget is what the heap
// holds, not what it held plus what the next hash allocates.
func withSlot(mem int64, f func()) {
	mem = min(max(mem, 0), HashMemoryBudget)
	_ = hashMemory.Acquire(context.Background(), mem) // never fails without a deadline
	defer hashMemory.Release(mem)
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	f()
	if mem >= 16<<20 {
		runtime.GC()
	}
}

var b64 = base64.RawStdEncoding

// HashPassword returns an argon2id hash in Django's format:
// argon2$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string) (string, error) {
	if len(password) > MaxPasswordBytes {
		return "", errors.New("password too long")
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	var key []byte
	withSlot(argonMemory<<10, func() { key = argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen) })
	return fmt.Sprintf("argon2$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// UnusablePassword marks an account that cannot log in with a password
// (Django's "!" prefix), e.g. one created by Google sign-in.
func UnusablePassword() string {
	b := make([]byte, 20)
	rand.Read(b)
	return "!" + base64.RawURLEncoding.EncodeToString(b)
}

// UsablePassword reports whether encoded could let anyone log in with a
// password (Django's has_usable_password): false for UnusablePassword's "!"
// marks and an empty value.
func UsablePassword(encoded string) bool {
	return encoded != "" && !strings.HasPrefix(encoded, "!")
}

// CheckPassword reports whether password matches encoded, and whether the
// hash should be replaced by a fresh HashPassword (an imported Django hash or
// older parameters). Malformed or unusable hashes never match.
func CheckPassword(password, encoded string) (ok, upgrade bool) {
	if len(password) > MaxPasswordBytes {
		return false, false
	}
	v, err := parseHash(encoded)
	if err != nil {
		return false, false
	}
	ok = v.verify(password)
	return ok, ok && !v.current
}

// CheckableHash says whether CheckPassword can verify encoded, a hash in
// Django's format: nil for the formats it checks (argon2id and argon2i v19,
// pbkdf2_sha256, pbkdf2_sha1, bcrypt_sha256, bcrypt) within the work bounds
// isis accepts, and for unusable passwords ("!…", which never match); else an
// error naming the problem (never the hash itself).
func CheckableHash(encoded string) error {
	if strings.HasPrefix(encoded, "!") {
		return nil
	}
	_, err := parseHash(encoded)
	return err
}

// verifier checks one password against a parsed hash.
type verifier struct {
	verify  func(password string) bool
	current bool // isis's own algorithm and parameters: no upgrade
}

func parseHash(encoded string) (*verifier, error) {
	if encoded == "" {
		return nil, errors.New("empty password hash")
	}
	if strings.HasPrefix(encoded, "!") {
		return nil, errors.New("unusable password")
	}
	algo, _, found := strings.Cut(encoded, "$")
	if !found {
		return nil, errors.New("not a Django password hash (no algorithm$ prefix)")
	}
	switch algo {
	case "argon2":
		return parseArgon2(encoded)
	case "pbkdf2_sha256":
		return parsePBKDF2(encoded, sha256.New, sha256.Size)
	case "pbkdf2_sha1":
		return parsePBKDF2(encoded, sha1.New, sha1.Size)
	case "bcrypt_sha256", "bcrypt":
		return parseBcrypt(encoded, algo == "bcrypt_sha256")
	}
	if len(algo) > 40 {
		algo = algo[:40]
	}
	return nil, fmt.Errorf("password hash algorithm %q is not supported", algo)
}

// dummyHash is verified against when a login names no known user, so the
// answer takes as long as a wrong password does.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("dummy password for timing")
	return h
})

// CheckDummy spends the time of one password check.
func CheckDummy(password string) { CheckPassword(password, dummyHash()) }

// parseArgon2 reads Django's argon2$argon2id$v=19$m=…,t=…,p=…$salt$hash
// (argon2-cffi's encoding after "argon2"); argon2i is accepted too. argon2d
// and the pre-1.3 version (no v=19) are not: Go's argon2 has neither.
func parseArgon2(encoded string) (*verifier, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 {
		return nil, errors.New("argon2 hash: want argon2$<variety>$v=19$m=…,t=…,p=…$<salt>$<hash>")
	}
	variety := parts[1]
	if variety != "argon2id" && variety != "argon2i" {
		return nil, fmt.Errorf("argon2 hash: variety %.20q is not supported (argon2id and argon2i are)", variety)
	}
	if parts[2] != "v=19" {
		return nil, fmt.Errorf("argon2 hash: version %.20q is not supported (v=19 is)", parts[2])
	}
	// argon2-cffi writes exactly m=…,t=…,p=… (decimal, in that order).
	var m, t, p uint64
	kvs := strings.Split(parts[3], ",")
	if len(kvs) != 3 {
		return nil, errors.New("argon2 hash: bad parameters (want m=…,t=…,p=…)")
	}
	for i, dst := range []*uint64{&m, &t, &p} {
		k, v, _ := strings.Cut(kvs[i], "=")
		n, ok := decimal(v)
		if k != "mtp"[i:i+1] || !ok {
			return nil, errors.New("argon2 hash: bad parameters (want m=…,t=…,p=…)")
		}
		*dst = n
	}
	switch {
	case m > MaxArgon2Memory:
		return nil, fmt.Errorf("argon2 hash: memory_cost m=%d out of bounds (at most %d KiB)", m, MaxArgon2Memory)
	case t > MaxArgon2Time:
		return nil, fmt.Errorf("argon2 hash: time_cost t=%d out of bounds (at most %d)", t, MaxArgon2Time)
	case p > MaxArgon2Threads:
		return nil, fmt.Errorf("argon2 hash: parallelism p=%d out of bounds (at most %d)", p, MaxArgon2Threads)
	case t == 0 || p == 0 || m < 8*p:
		return nil, errors.New("argon2 hash: bad parameters (t and p at least 1, m at least 8×p)")
	}
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 128 {
		return nil, errors.New("argon2 hash: bad salt or hash encoding")
	}
	key := argon2.IDKey
	if variety == "argon2i" {
		key = argon2.Key
	}
	return &verifier{
		verify: func(password string) bool {
			var got []byte
			withSlot(int64(m)<<10, func() { got = key([]byte(password), salt, uint32(t), uint32(m), uint8(p), uint32(len(want))) })
			return subtle.ConstantTimeCompare(got, want) == 1
		},
		current: variety == "argon2id" && m == argonMemory && t == argonTime && p == argonThreads && len(want) == argonKeyLen,
	}, nil
}

// parsePBKDF2 reads Django's pbkdf2_sha256$iterations$salt$base64(hash) (and
// pbkdf2_sha1$…).
func parsePBKDF2(encoded string, h func() hash.Hash, size int) (*verifier, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 {
		return nil, fmt.Errorf("%s hash: want %s$<iterations>$<salt>$<hash>", parts[0], parts[0])
	}
	n, ok := decimal(parts[1])
	if !ok || n < 1 {
		return nil, fmt.Errorf("%s hash: bad iterations", parts[0])
	}
	if n > MaxPBKDF2Iterations {
		return nil, fmt.Errorf("%s hash: iterations=%d out of bounds (at most %d)", parts[0], n, MaxPBKDF2Iterations)
	}
	iter := int(n)
	if parts[2] == "" {
		return nil, fmt.Errorf("%s hash: empty salt", parts[0])
	}
	want, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(want) != size {
		return nil, fmt.Errorf("%s hash: bad hash encoding", parts[0])
	}
	salt := []byte(parts[2])
	return &verifier{verify: func(password string) bool {
		var got []byte
		var err error
		withSlot(0, func() { got, err = pbkdf2.Key(h, password, salt, iter, len(want)) })
		return err == nil && subtle.ConstantTimeCompare(got, want) == 1
	}}, nil
}

// bcryptFormat is the modular crypt format bcrypt writes ($2b$12$…).
var bcryptFormat = regexp.MustCompile(`^\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

// parseBcrypt reads Django's bcrypt_sha256$$2b$12$… (bcrypt over the hex
// SHA-256 of the password, so long passwords are not truncated) and plain
// bcrypt$$2b$12$… (bcrypt over the password's first 72 bytes, as the Python
// library did).
func parseBcrypt(encoded string, sha bool) (*verifier, error) {
	algo, data, _ := strings.Cut(encoded, "$")
	if !bcryptFormat.MatchString(data) {
		return nil, fmt.Errorf("%s hash: want %s$$2b$<cost>$<53 characters of salt and hash>", algo, algo)
	}
	cost, err := bcrypt.Cost([]byte(data))
	if err != nil {
		return nil, fmt.Errorf("%s hash: %s", algo, strings.TrimPrefix(err.Error(), "crypto/bcrypt: "))
	}
	if cost > MaxBcryptCost {
		return nil, fmt.Errorf("%s hash: cost %d out of bounds (at most %d)", algo, cost, MaxBcryptCost)
	}
	stored := []byte(data)
	return &verifier{verify: func(password string) bool {
		pw := []byte(password)
		if sha {
			sum := sha256.Sum256(pw)
			pw = []byte(hex.EncodeToString(sum[:]))
		} else if len(pw) > 72 {
			pw = pw[:72]
		}
		var err error
		withSlot(0, func() { err = bcrypt.CompareHashAndPassword(stored, pw) })
		return err == nil
	}}, nil
}

// decimal parses a work parameter: 1 to 10 ASCII digits, nothing else.
func decimal(s string) (uint64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// DjangoPBKDF2 encodes a password the way Django's PBKDF2PasswordHasher does
// (for tests and for importing).
func DjangoPBKDF2(password, salt string, iterations int) string {
	key, _ := pbkdf2.Key(sha256.New, password, []byte(salt), iterations, sha256.Size)
	return fmt.Sprintf("pbkdf2_sha256$%d$%s$%s", iterations, salt, base64.StdEncoding.EncodeToString(key))
}

//go:embed data/common-passwords.txt.gz
var commonPasswordsGz []byte

// commonPasswords is Django's list of 20,000 common passwords (lower case).
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	zr, err := gzip.NewReader(bytes.NewReader(commonPasswordsGz))
	if err != nil {
		panic(err)
	}
	set := make(map[string]struct{}, 20000)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" {
			set[strings.ToLower(w)] = struct{}{}
		}
	}
	return set
})

// UserAttributes are what a password must not resemble.
type UserAttributes struct {
	Email, FirstName, LastName string
}

// ValidatePassword applies Django's default validators and returns every
// message that applies, in Django's words.
func ValidatePassword(password string, u UserAttributes) []string {
	var msgs []string
	if msg := similarity(password, u); msg != "" {
		msgs = append(msgs, msg)
	}
	if len([]rune(password)) < 8 {
		msgs = append(msgs, "This password is too short. It must contain at least 8 characters.")
	}
	if len(password) > MaxPasswordBytes {
		msgs = append(msgs, fmt.Sprintf("Ensure this field has no more than %d characters.", MaxPasswordBytes))
	}
	if _, ok := commonPasswords()[strings.ToLower(strings.TrimSpace(password))]; ok {
		msgs = append(msgs, "This password is too common.")
	}
	if password != "" && isNumeric(password) {
		msgs = append(msgs, "This password is entirely numeric.")
	}
	return msgs
}

func isNumeric(s string) bool {
	for _, r := range s {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

var nonWord = regexp.MustCompile(`\W+`)

// similarity is Django's UserAttributeSimilarityValidator (max 0.7).
func similarity(password string, u UserAttributes) string {
	const maxSimilarity = 0.7
	pw := []rune(strings.ToLower(password))
	for _, attr := range []struct{ value, name string }{
		{u.FirstName, "first name"}, {u.LastName, "last name"}, {u.Email, "email address"},
	} {
		if attr.value == "" {
			continue
		}
		lower := strings.ToLower(attr.value)
		parts := append(nonWord.Split(lower, -1), lower)
		for _, part := range parts {
			pr := []rune(part)
			// Django's exceeds_maximum_length_ratio: skip parts much shorter than the password.
			if len(pw) >= 10*len(pr) && float64(len(pr)) < maxSimilarity/2*float64(len(pw)) {
				continue
			}
			if quickRatio(pw, pr) >= maxSimilarity {
				return "The password is too similar to the " + attr.name + "."
			}
		}
	}
	return ""
}

// quickRatio is difflib.SequenceMatcher.quick_ratio: 2*M/T where M counts
// the characters the two strings share (as multisets).
func quickRatio(a, b []rune) float64 {
	if len(a)+len(b) == 0 {
		return 1
	}
	counts := map[rune]int{}
	for _, r := range b {
		counts[r]++
	}
	matches := 0
	for _, r := range a {
		if counts[r] > 0 {
			counts[r]--
			matches++
		}
	}
	return 2 * float64(matches) / float64(len(a)+len(b))
}
