package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// exeRSS is the resident kB of the binary's read-only mappings.
func exeRSS(t *testing.T) int {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[5] == exe && !strings.Contains(fields[1], "w")
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			n, _ := strconv.Atoi(fields[1])
			total += n
		}
	}
	return total
}

// TestReleaseStartPages: the binary's code and read-only data leave the
// resident set, and the process runs on (what it uses faults back in).
func TestReleaseStartPages(t *testing.T) {
	before := exeRSS(t)
	n, err := releaseStartPages()
	if err != nil {
		t.Fatal(err)
	}
	after := exeRSS(t)
	t.Logf("released %d kB of mappings: resident %d kB -> %d kB", n>>10, before, after)
	if n == 0 || after >= before || after > before/2 {
		t.Errorf("resident read-only pages of the binary: %d kB -> %d kB (want at most half)", before, after)
	}
	var sb strings.Builder // code and data from the released pages still work
	for i := range 3 {
		sb.WriteString(strconv.Itoa(i))
	}
	if sb.String() != "012" {
		t.Fatal(sb.String())
	}
}

// TestPositionIndependent: go build's executable is not (its pages may be
// released); Debian's ls is (a PIE's relocated read-only data must stay).
func TestPositionIndependent(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{exe: false, "/bin/ls": true} {
		if got, err := positionIndependent(path); err != nil || got != want {
			t.Errorf("positionIndependent(%s) = %v, %v; want %v", path, got, err, want)
		}
	}
}
