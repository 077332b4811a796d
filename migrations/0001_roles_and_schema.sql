-- Two roles: training_owner owns every object; training_app is what the running service
-- logs in as. training_app has no BYPASSRLS and owns nothing, so row-level security always
-- applies to it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'training_owner') THEN
        CREATE ROLE training_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'training_app') THEN
        CREATE ROLE training_app LOGIN NOBYPASSRLS;
    END IF;
END
$$;

-- The migrating user must be able to act as the owner (SET ROLE below and in later files).
GRANT training_owner TO CURRENT_USER;

CREATE SCHEMA IF NOT EXISTS training AUTHORIZATION training_owner;
GRANT USAGE ON SCHEMA training TO training_app;

SET LOCAL ROLE training_owner;

-- The tenant of the current transaction, set with set_config('app.tenant_id', ..., true).
-- NULLIF: once a custom setting was touched in a session it reads '' rather than NULL.
CREATE FUNCTION training.current_tenant() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

-- True only inside a transaction of the platform operator (set_config('app.platform', 'on', true)).
CREATE FUNCTION training.is_platform() RETURNS boolean
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(current_setting('app.platform', true), '') = 'on' $$;
