-- What `isis import-django` last brought from the old Django database, one
-- row per source row (kind: user, profile, department, municipality; key: the
-- old primary key), with a digest of the values it imported. A later import
-- rewrites a row only when Django's values changed since (Django is the
-- source of truth until the switch), so changes made on isis in between
-- (a login upgrading a hash) are kept and a repeated import writes nothing.
CREATE TABLE django_import (
	kind        text        NOT NULL,
	key         text        NOT NULL,
	digest      text        NOT NULL,
	imported_at timestamptz NOT NULL,
	PRIMARY KEY (kind, key)
);
