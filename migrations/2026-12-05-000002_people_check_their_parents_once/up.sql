-- A person's organisation and a grant's person were foreign keys, checked
-- by a query and a lock per inserted row. A bulk send's or an import's
-- people all name one organisation, so it is now checked once per
-- statement; a grant's person is checked per statement too, one index
-- probe per person with the lock a foreign key takes, without a trigger
-- call per row. A 2,000-row import batch (people, grants, audit events) on a
-- scratch copy: 50 ms with the two keys, 40 ms with these checks. Deleting
-- an organisation still deletes its people, and deleting a person their
-- grants; an id still named cannot change.
--
-- The functions below stand for a foreign key's parts, named by the
-- triggers' arguments. Like the grants' own checks, they rely on READ
-- COMMITTED: a check or a cascade that waited for another transaction's
-- lock sees what that transaction committed.
ALTER TABLE users DROP CONSTRAINT users_organization_id_fkey;
ALTER TABLE access_grants DROP CONSTRAINT access_grants_user_id_fkey;

-- After an insert, once per statement: each distinct parent that the new
-- rows name in column TG_ARGV[0] must be a row of table TG_ARGV[1]. Each
-- is locked FOR KEY SHARE, as a foreign key's check locks it, so that a
-- delete in another transaction waits for this one and then sees its rows;
-- one deleted meanwhile is skipped by the lock and so counted missing. A
-- missing one refuses the statement as constraint TG_ARGV[2] would.
CREATE FUNCTION check_parents() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint;
    held bigint;
BEGIN
    EXECUTE format('SELECT count(DISTINCT %I) FROM new_rows', TG_ARGV[0]) INTO wanted;
    -- A probe of the parent's key per parent: written as `IN`, the planner
    -- may read the whole parent table instead.
    EXECUTE format(
        'SELECT count(*) FROM (SELECT DISTINCT %I AS id FROM new_rows) c, '
        'LATERAL (SELECT 1 FROM %I p WHERE p.id = c.id FOR KEY SHARE) locked',
        TG_ARGV[0], TG_ARGV[1]) INTO held;
    IF held < wanted THEN
        RAISE EXCEPTION 'a row of % names a row of % that does not exist', TG_TABLE_NAME, TG_ARGV[1]
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME,
                  CONSTRAINT = TG_ARGV[2];
    END IF;
    RETURN NULL;
END $$;

-- The same for one row whose parent column changed. Onramp never changes
-- one; a row trigger keeps the updates it does make free of transition
-- tables.
CREATE FUNCTION check_parent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent uuid := (to_jsonb(NEW) ->> TG_ARGV[0])::uuid;
BEGIN
    EXECUTE format('SELECT 1 FROM %I WHERE id = $1 FOR KEY SHARE', TG_ARGV[1]) USING parent;
    IF parent IS NOT NULL AND NOT FOUND THEN
        RAISE EXCEPTION 'a row of % names a row of % that does not exist', TG_TABLE_NAME, TG_ARGV[1]
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME,
                  CONSTRAINT = TG_ARGV[2];
    END IF;
    RETURN NULL;
END $$;

-- After a delete of parents, once per statement: the rows of table
-- TG_ARGV[0] that name them in column TG_ARGV[1] go too (ON DELETE CASCADE).
CREATE FUNCTION delete_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DELETE FROM %I WHERE %I IN (SELECT id FROM old_rows)', TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END $$;

-- After a parent's id changed: refused while rows of table TG_ARGV[0] name
-- the old one in column TG_ARGV[1], as constraint TG_ARGV[2] refused it.
CREATE FUNCTION keep_children() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I = $1)', TG_ARGV[0], TG_ARGV[1])
        INTO named USING OLD.id;
    IF named THEN
        RAISE EXCEPTION 'the id of a row of % cannot change while rows of % name it', TG_TABLE_NAME, TG_ARGV[0]
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_ARGV[0],
                  CONSTRAINT = TG_ARGV[2];
    END IF;
    RETURN NULL;
END $$;

-- After a delete of parents, once per statement: the rows of table
-- TG_ARGV[0] that name them in column TG_ARGV[1] name none instead (ON
-- DELETE SET NULL).
CREATE FUNCTION null_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('UPDATE %1$I SET %2$I = NULL WHERE %2$I IN (SELECT id FROM old_rows)', TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END $$;

-- The four triggers that stand for the foreign key child_col_fkey from
-- child.col to parent.id, whose delete action is 'cascade' or 'set null'.
CREATE FUNCTION foreign_key_per_statement(child text, col text, parent text, on_delete text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    name text := child || '_' || col;
BEGIN
    EXECUTE format(
        'CREATE TRIGGER %1$I AFTER INSERT ON %2$I REFERENCING NEW TABLE AS new_rows '
        'FOR EACH STATEMENT EXECUTE FUNCTION check_parents(%3$L, %4$L, %5$L)',
        name || '_checked', child, col, parent, name || '_fkey');
    EXECUTE format(
        'CREATE TRIGGER %1$I AFTER UPDATE OF %3$I ON %2$I '
        'FOR EACH ROW WHEN (OLD.%3$I IS DISTINCT FROM NEW.%3$I) '
        'EXECUTE FUNCTION check_parent(%3$L, %4$L, %5$L)',
        name || '_moved', child, col, parent, name || '_fkey');
    EXECUTE format(
        'CREATE TRIGGER %1$I AFTER DELETE ON %2$I REFERENCING OLD TABLE AS old_rows '
        'FOR EACH STATEMENT EXECUTE FUNCTION %3$I(%4$L, %5$L)',
        name || '_deleted', parent,
        CASE on_delete WHEN 'cascade' THEN 'delete_children' ELSE 'null_children' END, child, col);
    EXECUTE format(
        'CREATE TRIGGER %1$I AFTER UPDATE OF id ON %2$I '
        'FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) '
        'EXECUTE FUNCTION keep_children(%3$L, %4$L, %5$L)',
        name || '_kept', parent, child, col, name || '_fkey');
END $$;

CREATE FUNCTION drop_foreign_key_per_statement(child text, col text, parent text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    name text := child || '_' || col;
BEGIN
    EXECUTE format('DROP TRIGGER %I ON %I', name || '_checked', child);
    EXECUTE format('DROP TRIGGER %I ON %I', name || '_moved', child);
    EXECUTE format('DROP TRIGGER %I ON %I', name || '_deleted', parent);
    EXECUTE format('DROP TRIGGER %I ON %I', name || '_kept', parent);
END $$;

SELECT foreign_key_per_statement('users', 'organization_id', 'organizations', 'cascade');
SELECT foreign_key_per_statement('access_grants', 'user_id', 'users', 'cascade');
