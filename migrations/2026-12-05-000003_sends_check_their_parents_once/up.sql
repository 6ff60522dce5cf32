-- The rows a bulk send writes for each recipient named their parents by
-- foreign keys, each checked by a query and a lock per row: an invitation
-- its person, service area and role, an email its person, a result its
-- batch. 10,000 invitations and their results on a scratch copy: 180 to
-- 240 ms and 60 to 74 ms with the keys, 89 to 106 ms and 31 to 34 ms with
-- these checks. They are now checked once per statement by the previous
-- migration's functions, and their delete actions kept by triggers.
ALTER TABLE invitations
    DROP CONSTRAINT invitations_user_id_fkey,
    DROP CONSTRAINT invitations_service_area_id_fkey,
    DROP CONSTRAINT invitations_role_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_user_id_fkey;
ALTER TABLE batch_items DROP CONSTRAINT batch_items_batch_id_fkey;

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

SELECT foreign_key_per_statement('invitations', 'user_id', 'users', 'cascade');
SELECT foreign_key_per_statement('invitations', 'service_area_id', 'service_areas', 'set null');
SELECT foreign_key_per_statement('invitations', 'role_id', 'roles', 'set null');
SELECT foreign_key_per_statement('outbox', 'user_id', 'users', 'cascade');
SELECT foreign_key_per_statement('batch_items', 'batch_id', 'batches', 'cascade');
