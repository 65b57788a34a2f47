// Package djangotest makes Django-shaped databases (the reference Django's
// tables, trimmed to what isis import-django reads) for tests and benchmarks.
package djangotest

import (
	"testing"

	"github.com/isis-project/isis/api/geo"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Schema is the reference Django's tables (accounts, geo, SimpleJWT's
// blacklist) as its migrations create them, trimmed to what the import reads.
const Schema = `
CREATE TABLE django_content_type (id serial PRIMARY KEY, app_label varchar(100) NOT NULL, model varchar(100) NOT NULL);
INSERT INTO django_content_type (app_label, model) VALUES ('accounts', 'user'), ('accounts', 'profile'), ('geo', 'department'), ('geo', 'municipality');
CREATE TABLE accounts_user (id bigserial PRIMARY KEY, password varchar(128) NOT NULL, last_login timestamptz, is_superuser boolean NOT NULL,
	email varchar(254) NOT NULL UNIQUE, first_name varchar(150) NOT NULL, last_name varchar(150) NOT NULL, is_staff boolean NOT NULL,
	is_active boolean NOT NULL, date_joined timestamptz NOT NULL);
CREATE TABLE geo_department (code varchar(2) PRIMARY KEY, name varchar(100) NOT NULL);
CREATE TABLE geo_municipality (code varchar(5) PRIMARY KEY, name varchar(100) NOT NULL, department_id varchar(2) NOT NULL REFERENCES geo_department (code));
CREATE TABLE accounts_profile (id bigserial PRIMARY KEY, phone varchar(32) NOT NULL, bio text NOT NULL, birth_date date,
	avatar varchar(255) NOT NULL, updated_at timestamptz NOT NULL, user_id bigint NOT NULL UNIQUE REFERENCES accounts_user (id),
	department_id varchar(2) REFERENCES geo_department (code), municipality_id varchar(5) REFERENCES geo_municipality (code));
CREATE TABLE token_blacklist_outstandingtoken (id bigserial PRIMARY KEY, token text NOT NULL, created_at timestamptz, expires_at timestamptz NOT NULL,
	user_id bigint REFERENCES accounts_user (id), jti varchar(255) NOT NULL UNIQUE);
CREATE TABLE token_blacklist_blacklistedtoken (id bigserial PRIMARY KEY, blacklisted_at timestamptz NOT NULL,
	token_id bigint NOT NULL UNIQUE REFERENCES token_blacklist_outstandingtoken (id));
`

// Fill creates the Schema in db and writes n users, each with a profile (every other one with a
// municipality) and a live refresh token (every tenth blacklisted).
func Fill(tb testing.TB, db *sqlx.DB, n int) {
	tb.Helper()
	db.MustExec(Schema)
	deps, _ := geo.Departments()
	muns, _ := geo.Municipalities()
	for _, d := range deps {
		db.MustExec(`INSERT INTO geo_department VALUES ($1, $2)`, d.Code, d.Name)
	}
	var codes, names, depts []string
	for _, m := range muns {
		codes, names, depts = append(codes, m.Code), append(names, m.Name), append(depts, m.DepartmentCode)
	}
	db.MustExec(`INSERT INTO geo_municipality SELECT * FROM unnest($1::text[], $2::text[], $3::text[])`,
		pq.Array(codes), pq.Array(names), pq.Array(depts))
	db.MustExec(`INSERT INTO accounts_user (password, last_login, is_superuser, email, first_name, last_name, is_staff, is_active, date_joined)
		SELECT 'pbkdf2_sha256$260000$salt' || i || '$' || encode(sha256(i::text::bytea), 'base64'),
			CASE WHEN i % 3 = 0 THEN now() - i * interval '1 minute' END, i = 1, 'user' || i || '@example.com',
			'First' || i, 'Last' || i, i % 100 = 0, i % 50 <> 0, now() - i * interval '1 hour'
		FROM generate_series(1, $1) i`, n)
	db.MustExec(`INSERT INTO accounts_profile (phone, bio, birth_date, avatar, updated_at, user_id, department_id, municipality_id)
		SELECT '+57 300 ' || i, 'bio ' || i, date '1980-01-01' + i % 10000, 'avatars/' || i || '.jpg', now(), i,
			CASE WHEN i % 2 = 0 THEN '05' END, CASE WHEN i % 2 = 0 THEN '05001' END
		FROM generate_series(1, $1) i`, n)
	db.MustExec(`INSERT INTO token_blacklist_outstandingtoken (token, created_at, expires_at, user_id, jti)
		SELECT 'x', now(), now() + interval '1 day', i, md5(i::text) FROM generate_series(1, $1) i`, n)
	db.MustExec(`INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id)
		SELECT now(), id FROM token_blacklist_outstandingtoken WHERE id % 10 = 0`)
}
