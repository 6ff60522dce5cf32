-- An audit event is found only through its organisation (listed newest
-- first, or by its target), never by its id alone, so its key is the
-- organisation and the id together: one index where there were two, one
-- entry fewer for every event written (an import writes one per person).
-- The few events of no organisation keep their ids unique in an index of
-- their own, which the others never enter.
CREATE UNIQUE INDEX audit_events_key ON audit_events (organization_id, id);
CREATE UNIQUE INDEX audit_events_key_of_none ON audit_events (id) WHERE organization_id IS NULL;
ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey;
DROP INDEX audit_events_organization;
