-- RedFlag's PostgreSQL roles and database, made once per cluster by a superuser (or a role
-- with CREATEROLE and CREATEDB). Idempotent: re-running sets the passwords again.
--
--   psql -h HOST -U postgres -d postgres -v ON_ERROR_STOP=1 \
--     -v dbname=redflag -v owner_password=... -v auth_password=... \
--     -v agents_password=... -v updates_password=... -f deploy/postgres/bootstrap.sql
--
-- redflag_owner   owns the database and every RedFlag schema; used only by redflag-migrate
--                 (migrations and grants), never by a running service.
-- redflag_auth    redflag-auth: data rights on schema auth; insert-only on the audit trail.
-- redflag_agents  redflag-agents: the same on schema agents.
-- redflag_updates redflag-updates: the same on schema updates.
-- The grants themselves are applied by redflag-migrate after each migration run.
\set ON_ERROR_STOP 1

SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY['redflag_owner', 'redflag_auth',
  'redflag_agents', 'redflag_updates']) AS r
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec

ALTER ROLE redflag_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'owner_password';
ALTER ROLE redflag_auth LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  NOINHERIT PASSWORD :'auth_password';
ALTER ROLE redflag_agents LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  NOINHERIT PASSWORD :'agents_password';
ALTER ROLE redflag_updates LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  NOINHERIT PASSWORD :'updates_password';

SELECT format('CREATE DATABASE %I OWNER redflag_owner ENCODING ''UTF8''', :'dbname')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname') \gexec

-- Only RedFlag's roles connect; nobody creates objects in public or temporary tables.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'dbname') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO redflag_owner, redflag_auth, redflag_agents, '
              'redflag_updates', :'dbname') \gexec
SELECT format('GRANT CREATE ON DATABASE %I TO redflag_owner', :'dbname') \gexec
\connect :dbname
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
