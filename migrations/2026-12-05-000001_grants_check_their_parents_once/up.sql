-- An access grant's service area and role were foreign keys: PostgreSQL
-- looked each one up and locked it once per inserted grant, although an
-- import's grants all name the same few. For 100,000 grants that was 1.3 s
-- of a 1.7 s insert. They are now checked once per statement, with the same
-- lock a foreign key's check takes, and a service area or role that still
-- has grants cannot be deleted, as ON DELETE RESTRICT ensured. The grant's
-- person stays a foreign key (its grants go with it).
ALTER TABLE access_grants
    DROP CONSTRAINT access_grants_service_area_id_fkey,
    DROP CONSTRAINT access_grants_role_id_fkey;

-- Each service area and role the statement's grants name must exist. They
-- are locked FOR KEY SHARE, as a foreign key's check locks them, so that a
-- delete in another transaction waits for this one and then sees its
-- grants; a parent deleted meanwhile is skipped by the lock and so counted
-- missing.
CREATE FUNCTION access_grants_parents_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint;
    held bigint;
BEGIN
    SELECT count(DISTINCT service_area_id) INTO wanted FROM new_grants;
    SELECT count(*) INTO held FROM (
        SELECT 1 FROM service_areas a
        WHERE a.id IN (SELECT service_area_id FROM new_grants)
        FOR KEY SHARE) locked;
    IF held < wanted THEN
        RAISE EXCEPTION 'an access grant names a service area that does not exist'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'access_grants',
                  CONSTRAINT = 'access_grants_service_area_id_fkey';
    END IF;
    SELECT count(DISTINCT role_id) INTO wanted FROM new_grants;
    SELECT count(*) INTO held FROM (
        SELECT 1 FROM roles r
        WHERE r.id IN (SELECT role_id FROM new_grants)
        FOR KEY SHARE) locked;
    IF held < wanted THEN
        RAISE EXCEPTION 'an access grant names a role that does not exist'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'access_grants',
                  CONSTRAINT = 'access_grants_role_id_fkey';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER access_grants_parents_inserted
    AFTER INSERT ON access_grants REFERENCING NEW TABLE AS new_grants
    FOR EACH STATEMENT EXECUTE FUNCTION access_grants_parents_exist();
CREATE TRIGGER access_grants_parents_updated
    AFTER UPDATE ON access_grants REFERENCING NEW TABLE AS new_grants
    FOR EACH STATEMENT EXECUTE FUNCTION access_grants_parents_exist();

-- A service area or role gone (deleted, or its id changed) while grants
-- still name it. The check is a statement of its own, so under READ
-- COMMITTED it sees the grants of a transaction it waited for.
CREATE FUNCTION access_grants_keep_parents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'service_areas' THEN
        IF EXISTS (
            SELECT 1 FROM old_parents p JOIN access_grants g ON g.service_area_id = p.id
            WHERE NOT EXISTS (SELECT 1 FROM service_areas a WHERE a.id = p.id)) THEN
            RAISE EXCEPTION 'a service area cannot be deleted, nor its id changed, while access grants name it'
                USING ERRCODE = 'foreign_key_violation', TABLE = 'access_grants',
                      CONSTRAINT = 'access_grants_service_area_id_fkey';
        END IF;
    ELSIF EXISTS (
            SELECT 1 FROM old_parents p JOIN access_grants g ON g.role_id = p.id
            WHERE NOT EXISTS (SELECT 1 FROM roles r WHERE r.id = p.id)) THEN
        RAISE EXCEPTION 'a role cannot be deleted, nor its id changed, while access grants name it'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'access_grants',
                  CONSTRAINT = 'access_grants_role_id_fkey';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER service_areas_keep_granted_deleted
    AFTER DELETE ON service_areas REFERENCING OLD TABLE AS old_parents
    FOR EACH STATEMENT EXECUTE FUNCTION access_grants_keep_parents();
CREATE TRIGGER service_areas_keep_granted_updated
    AFTER UPDATE ON service_areas REFERENCING OLD TABLE AS old_parents
    FOR EACH STATEMENT EXECUTE FUNCTION access_grants_keep_parents();
CREATE TRIGGER roles_keep_granted_deleted
    AFTER DELETE ON roles REFERENCING OLD TABLE AS old_parents
    FOR EACH STATEMENT EXECUTE FUNCTION access_grants_keep_parents();
CREATE TRIGGER roles_keep_granted_updated
    AFTER UPDATE ON roles REFERENCING OLD TABLE AS old_parents
    FOR EACH STATEMENT EXECUTE FUNCTION access_grants_keep_parents();
