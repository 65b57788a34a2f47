-- Every change to the geography notifies channel isis_geo, so servers can
-- keep the public geography answers cached and drop them at once on a write,
-- whoever makes it (another server, a migration, psql).
CREATE FUNCTION isis_geo_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('isis_geo', TG_TABLE_NAME);
	RETURN NULL;
END
$$;

CREATE TRIGGER departments_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON departments
	FOR EACH STATEMENT EXECUTE FUNCTION isis_geo_notify();
CREATE TRIGGER municipalities_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON municipalities
	FOR EACH STATEMENT EXECUTE FUNCTION isis_geo_notify();
