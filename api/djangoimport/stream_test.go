package djangoimport_test

import (
	"context"
	"testing"

	"github.com/isis-project/isis/api/djangoimport"
	"github.com/isis-project/isis/internal/djangotest"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/jmoiron/sqlx"
)

// TestImportStreams: the import holds no table in memory. 12,000 users
// whose profiles carry an 8 KiB bio each (96 MiB of bios) are imported with
// the process's peak RSS under 64 MiB (an import that reads every row
// into memory first needs about twice the bios); the no-op rerun too.
func TestImportStreams(t *testing.T) {
	const n = 12_000
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	djangotest.Fill(t, src, n)
	// Bios that do not compress (TOAST would shrink a repeated one, not the import's copy of it).
	src.MustExec(`ALTER TABLE accounts_profile ALTER bio SET STORAGE EXTERNAL;
		UPDATE accounts_profile SET bio = (SELECT string_agg(md5(id::text || ':' || g::text), '') FROM generate_series(1, 256) g)`)
	dst := sqlx.MustOpen("postgres", testdb.DSN(t))
	defer dst.Close()
	for _, run := range []string{"first", "again"} {
		peak := peakRSS()
		s, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{})
		if err != nil {
			t.Fatalf("%s import: %v", run, err)
		}
		mib := peak()
		t.Logf("%s import: peak RSS %.1f MiB, %d changes", run, mib, s.Changes)
		if run == "first" && (s.Users.Created != n || s.Profiles.Created != n) || run == "again" && s.Changes != 0 {
			t.Errorf("%s import: %+v", run, s)
		}
		if mib >= 64 {
			t.Errorf("%s import: peak RSS %.1f MiB, want under 64 MiB for %d users with 8 KiB bios", run, mib, n)
		}
	}
	var bio int
	dst.Get(&bio, `SELECT length(bio) FROM profiles WHERE id = 7`)
	if bio != 8192 {
		t.Errorf("bio of profile 7: %d bytes, want 8192", bio)
	}
}
