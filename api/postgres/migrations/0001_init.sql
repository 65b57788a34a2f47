-- Geography: Colombia's departments and municipalities (DIVIPOLA, DANE codes).
-- search_name holds the name folded to lower case without accents (api.Fold),
-- written by the application, so search needs no extension.
CREATE TABLE departments (
	code        varchar(2)   PRIMARY KEY CHECK (code ~ '^[0-9]{2}$'),
	name        varchar(100) NOT NULL CHECK (name <> ''),
	search_name text         NOT NULL
);

CREATE TABLE municipalities (
	code            varchar(5)   PRIMARY KEY CHECK (code ~ '^[0-9]{5}$'),
	department_code varchar(2)   NOT NULL REFERENCES departments (code) ON DELETE RESTRICT,
	name            varchar(100) NOT NULL CHECK (name <> ''),
	search_name     text         NOT NULL,
	CHECK (left(code, 2) = department_code)
);

CREATE INDEX municipalities_department_code_idx ON municipalities (department_code, code);
