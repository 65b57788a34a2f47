package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openEmpty(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(pgtest.NewDatabase(t, "", nil), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	db := openEmpty(t)

	n, err := db.PendingMigrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(postgres.Migrations()); n != want {
		t.Fatalf("pending before migrate = %d, want %d", n, want)
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(postgres.Migrations()) {
		t.Fatalf("applied %v, want all %d", applied, len(postgres.Migrations()))
	}
	again, err := db.Migrate(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate = %v, %v; want no-op", again, err)
	}
	if n, _ := db.PendingMigrations(ctx); n != 0 {
		t.Fatalf("pending after migrate = %d", n)
	}
	sts, err := db.MigrationStatuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if !st.Applied() {
			t.Errorf("%s not applied", st.Version)
		}
	}
}

// TestMigrateConcurrent runs several migrations at once on one database: the
// advisory lock must make exactly one of them apply each version.
func TestMigrateConcurrent(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t, "", nil)
	const runs = 4
	var wg sync.WaitGroup
	results := make([][]string, runs)
	errs := make([]error, runs)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := postgres.Open(dsn, postgres.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			results[i], errs[i] = db.Migrate(ctx)
		}()
	}
	wg.Wait()
	total := 0
	for i := range runs {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		total += len(results[i])
	}
	if want := len(postgres.Migrations()); total != want {
		t.Fatalf("versions applied across runs = %d, want %d: %v", total, want, results)
	}
}

func TestGeographyLoaded(t *testing.T) {
	db := testdb.Open(t)
	var deps, muns int
	if err := db.Get(&deps, `SELECT count(*) FROM departments`); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&muns, `SELECT count(*) FROM municipalities`); err != nil {
		t.Fatal(err)
	}
	if deps != 33 || muns != 1122 {
		t.Fatalf("got %d departments and %d municipalities, want 33 and 1122", deps, muns)
	}
	var name string
	if err := db.Get(&name, `SELECT name FROM municipalities WHERE code = '05001'`); err != nil || name != "Medellín" {
		t.Fatalf("05001 = %q, %v; want Medellín", name, err)
	}
}
