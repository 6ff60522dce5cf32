CREATE INDEX audit_events_organization ON audit_events (organization_id, id);
ALTER TABLE audit_events ADD PRIMARY KEY (id);
DROP INDEX audit_events_key_of_none;
DROP INDEX audit_events_key;
