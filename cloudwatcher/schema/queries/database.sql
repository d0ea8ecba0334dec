-- name: emptiness_query
SELECT coalesce(current_schema(), ''),
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S'));

-- name: server_version
SHOW server_version;

-- name: ping
-- Does the server answer at all (the cheapest round trip)?
SELECT 1;

-- name: analyze
-- Planner statistics are not part of a dump; without them the first queries crawl.
ANALYZE;

-- name: create_app_role
-- Run by psql as the superuser on the embedded server; {app_role} is embedded.APP_ROLE (str.format).
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{app_role}') THEN
    CREATE ROLE "{app_role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
  END IF;
END $$;

-- name: hand_over_objects
-- Objects an earlier version created as the superuser in the public schema: tables, views and
-- sequences not owned by a column (those follow their table), routines and types.
-- Run by psql as the superuser; {app_role} is embedded.APP_ROLE (str.format).
DO $$
DECLARE item record;
BEGIN
  FOR item IN
    SELECT c.oid::regclass AS name FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND pg_get_userbyid(c.relowner) <> '{app_role}'
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i'))
  LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO "{app_role}"', item.name);
  END LOOP;
  FOR item IN
    SELECT p.oid::regprocedure AS name FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace AND pg_get_userbyid(p.proowner) <> '{app_role}'
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO "{app_role}"', item.name);
  END LOOP;
  FOR item IN
    SELECT t.oid::regtype AS name FROM pg_type t
    WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm') AND t.typelem = 0
      AND pg_get_userbyid(t.typowner) <> '{app_role}'
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO "{app_role}"', item.name);
  END LOOP;
END $$;

-- name: database_owner
-- Who owns the embedded database ({database} is embedded.DATABASE_NAME; str.format). Run by psql.
SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{database}';

-- name: create_database
-- Run by psql as the superuser (CREATE DATABASE cannot run in a transaction or a function).
CREATE DATABASE "{database}" OWNER "{app_role}";

-- name: hand_over_database
-- A database an earlier version made as the superuser goes to the application role. Run by psql.
ALTER DATABASE "{database}" OWNER TO "{app_role}";
