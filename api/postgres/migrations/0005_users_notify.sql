-- Every change to a user row notifies channel isis_users with the user's id
-- (empty after a TRUNCATE: everyone), so servers can keep the rows that
-- authentication reads cached and drop one at once, whoever changed it
-- (`isis changepassword`, another server, psql).
CREATE FUNCTION isis_users_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_LEVEL = 'STATEMENT' THEN
		PERFORM pg_notify('isis_users', '');
	ELSE
		PERFORM pg_notify('isis_users', OLD.id::text);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER users_notify AFTER UPDATE OR DELETE ON users
	FOR EACH ROW EXECUTE FUNCTION isis_users_notify();
CREATE TRIGGER users_truncate_notify AFTER TRUNCATE ON users
	FOR EACH STATEMENT EXECUTE FUNCTION isis_users_notify();
