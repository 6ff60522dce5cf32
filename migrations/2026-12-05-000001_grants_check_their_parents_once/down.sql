DROP TRIGGER roles_keep_granted_updated ON roles;
DROP TRIGGER roles_keep_granted_deleted ON roles;
DROP TRIGGER service_areas_keep_granted_updated ON service_areas;
DROP TRIGGER service_areas_keep_granted_deleted ON service_areas;
DROP FUNCTION access_grants_keep_parents();
DROP TRIGGER access_grants_parents_updated ON access_grants;
DROP TRIGGER access_grants_parents_inserted ON access_grants;
DROP FUNCTION access_grants_parents_exist();
ALTER TABLE access_grants
    ADD CONSTRAINT access_grants_service_area_id_fkey
        FOREIGN KEY (service_area_id) REFERENCES service_areas (id) ON DELETE RESTRICT,
    ADD CONSTRAINT access_grants_role_id_fkey
        FOREIGN KEY (role_id) REFERENCES roles (id) ON DELETE RESTRICT;
