package djangoimport_test

import (
	"context"
	"strings"
	"testing"

	"github.com/isis-project/isis/api/djangoimport"
	"github.com/isis-project/isis/internal/djangotest"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/jmoiron/sqlx"
)

// TestSourceTablesMustBePlain: every table the import reads must be a plain
// table without row-level security, policies or rules, whose columns are of
// PostgreSQL's own types; anything else is one error naming the table and
// why, before any table is read.
func TestSourceTablesMustBePlain(t *testing.T) {
	const spy = `CREATE TABLE marker (at timestamptz);
		CREATE FUNCTION spy() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'spy ran'; RETURN true; END $$;`
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"plain", ``, ""},
		{"matview", `ALTER TABLE accounts_profile RENAME TO p0; CREATE MATERIALIZED VIEW accounts_profile AS SELECT * FROM p0;
			DROP TABLE p0 CASCADE`, ""}, // no foreign key leads to a view: no profile table found
		{"geography view", `ALTER TABLE geo_department RENAME TO d0; CREATE VIEW geo_department_v AS SELECT * FROM d0 WHERE spy()`, ""},
		{"user view", `ALTER TABLE accounts_user RENAME TO u0; CREATE VIEW accounts_user AS SELECT * FROM u0 WHERE spy()`,
			"accounts_user is a view, not a table: isis reads only plain tables (a view can run code)"},
		{"user matview", `CREATE MATERIALIZED VIEW accounts_user2 AS SELECT * FROM accounts_user`,
			"accounts_user2 is a materialized view, not a table"},
		{"partitioned", `CREATE TABLE accounts_user2 (LIKE accounts_user) PARTITION BY RANGE (id)`,
			"accounts_user2 is a partitioned table: isis reads only plain tables"},
		{"row-level security", `ALTER TABLE accounts_profile ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON accounts_profile USING (spy())`,
			"accounts_profile has row-level security: isis reads only tables without it (a policy can run code on SELECT)"},
		{"a policy, security off", `CREATE POLICY p ON token_blacklist_blacklistedtoken USING (spy())`,
			"token_blacklist_blacklistedtoken has row-level security"},
		{"rule", `CREATE RULE r AS ON INSERT TO geo_municipality DO ALSO SELECT spy()`,
			"geo_municipality has rules (pg_rewrite): isis reads only tables without them (a rule can run code)"},
		{"domain", `CREATE DOMAIN mail AS text CHECK (spy()); ALTER TABLE accounts_user ALTER email TYPE mail`,
			"accounts_user.email is of type mail, not a built-in type: isis reads only columns of PostgreSQL's own types (a domain or custom type can run code)"},
		{"enum", `CREATE TYPE colour AS ENUM ('red'); ALTER TABLE geo_department ADD COLUMN colour colour`,
			"geo_department.colour is of type colour, not a built-in type"},
		{"django_content_type view", `DROP TABLE token_blacklist_blacklistedtoken, token_blacklist_outstandingtoken;
			ALTER TABLE django_content_type RENAME TO c0; CREATE VIEW django_content_type AS SELECT * FROM c0 WHERE spy()`,
			"django_content_type is a view, not a table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
			defer src.Close()
			src.MustExec(djangotest.Schema + spy + tc.sql)
			userTable := ""
			if strings.Contains(tc.name, "user ") || tc.name == "partitioned" {
				userTable = strings.Fields(tc.want)[0]
			}
			dst := sqlx.MustOpen("postgres", testdb.DSN(t))
			defer dst.Close()
			for _, dry := range []bool{true, false} {
				_, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{UserTable: userTable, DryRun: dry})
				if tc.want == "" {
					if err != nil {
						t.Errorf("dry run %v: %v", dry, err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") > 0 {
					t.Errorf("dry run %v: %v, want %q", dry, err, tc.want)
				}
			}
		})
	}
}
