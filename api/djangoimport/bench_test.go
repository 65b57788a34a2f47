package djangoimport_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/api/djangoimport"
	"github.com/isis-project/isis/internal/djangotest"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/isis-project/isis/internal/testenv"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// BenchmarkImport100k: 100,000 users with profiles and tokens, imported
// into an empty isis (first-s), then again with nothing changed (again-s);
// IMPORT_BENCH_USERS sets another number.
func BenchmarkImport100k(b *testing.B) {
	n := 100_000
	if v, _ := strconv.Atoi(os.Getenv("IMPORT_BENCH_USERS")); v > 0 {
		n = v
	}
	benchImport(b, n)
}

// BenchmarkImport1M: the same with a million users (docs/cutover.md has
// the figures); minutes long, so make bench skips it unless
// IMPORT_BENCH_1M=1.
func BenchmarkImport1M(b *testing.B) {
	if os.Getenv("IMPORT_BENCH_1M") == "" {
		b.Skip("a million users takes minutes: set IMPORT_BENCH_1M=1")
	}
	benchImport(b, 1_000_000)
}

func benchImport(b *testing.B, n int) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(b, "", nil))
	defer src.Close()
	djangotest.Fill(b, src, n)
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		dst := sqlx.MustOpen("postgres", testdb.DSN(b))
		b.StartTimer()
		peak := testenv.PeakRSS()
		goCPU, pgCPU := processCPU(os.Getpid(), false), serverCPU(b, dst)
		start := time.Now()
		progress := func(f string, a ...any) {
			if testing.Verbose() { // with the CPU seconds spent so far
				b.Logf("%6.2fs (cpu go %5.2fs, pg %5.2fs) "+f, append([]any{time.Since(start).Seconds(),
					processCPU(os.Getpid(), false) - goCPU, serverCPU(b, dst) - pgCPU}, a...)...)
			}
		}
		s, err := djangoimport.Import(ctx, src, dst, djangoimport.Options{IDHeadroom: 1000, Progress: progress})
		if err != nil {
			b.Fatal(err)
		}
		first := time.Since(start)
		if s.Users.Created != n || s.Profiles.Created != n || s.OutstandingTokens.Created != n {
			b.Fatalf("summary: %+v", s)
		}
		b.ReportMetric(peak(), "peak-RSS-MiB")
		b.ReportMetric(first.Seconds(), "first-s")
		// CPU seconds spent, by the import and by the database server (the
		// source's and isis's backends): figures a busy machine changes less.
		b.ReportMetric(processCPU(os.Getpid(), false)-goCPU, "first-go-cpu-s")
		b.ReportMetric(serverCPU(b, dst)-pgCPU, "first-pg-cpu-s")
		start = time.Now()
		s, err = djangoimport.Import(ctx, src, dst, djangoimport.Options{IDHeadroom: 1000, Progress: progress})
		if err != nil || s.Changes != 0 {
			b.Fatalf("second import: %v, %+v", err, s)
		}
		b.ReportMetric(time.Since(start).Seconds(), "again-s")
		dst.Close()
	}
}

// processCPU is the user and system CPU seconds of process pid, with those
// of its children it has waited for when children.
func processCPU(pid int, children bool) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	_, rest, _ := strings.Cut(string(b), ") ") // the name may hold spaces
	f := strings.Fields(rest)                  // f[0] is field 3 (state)
	n := 2
	if children {
		n = 4
	}
	var ticks float64
	for _, v := range f[11 : 11+n] { // utime, stime, cutime, cstime
		t, _ := strconv.ParseFloat(v, 64)
		ticks += t
	}
	return ticks / 100 // USER_HZ
}

// serverCPU is the CPU seconds the PostgreSQL server of db has spent: its
// postmaster's, its exited children's and its live children's.
func serverCPU(b *testing.B, db *sqlx.DB) float64 {
	var backend int
	if err := db.Get(&backend, `SELECT pg_backend_pid()`); err != nil {
		b.Fatal(err)
	}
	st, _ := os.ReadFile("/proc/" + strconv.Itoa(backend) + "/stat")
	_, rest, _ := strings.Cut(string(st), ") ")
	f := strings.Fields(rest)
	if len(f) < 2 {
		return 0
	}
	postmaster, _ := strconv.Atoi(f[1])
	total := processCPU(postmaster, true)
	children, _ := os.ReadFile("/proc/" + strconv.Itoa(postmaster) + "/task/" + strconv.Itoa(postmaster) + "/children")
	for _, c := range strings.Fields(string(children)) {
		pid, _ := strconv.Atoi(c)
		total += processCPU(pid, false)
	}
	return total
}
