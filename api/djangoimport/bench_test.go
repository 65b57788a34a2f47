package djangoimport_test

import (
	"context"
	"os"
	"strconv"
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
		start := time.Now()
		progress := func(f string, a ...any) {
			if testing.Verbose() {
				b.Logf("%6.2fs "+f, append([]any{time.Since(start).Seconds()}, a...)...)
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
		start = time.Now()
		s, err = djangoimport.Import(ctx, src, dst, djangoimport.Options{IDHeadroom: 1000, Progress: progress})
		if err != nil || s.Changes != 0 {
			b.Fatalf("second import: %v, %+v", err, s)
		}
		b.ReportMetric(time.Since(start).Seconds(), "again-s")
		dst.Close()
	}
}
