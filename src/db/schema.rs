// Kept in step with migrations/ by hand: a column added there is added here.

diesel::table! {
    organizations (id) {
        id -> Uuid,
        name -> Text,
        invitation_ttl_secs -> Int4,
        reset_link_ttl_secs -> Int4,
        temporary_password_ttl_secs -> Int4,
        second_factor_required -> Bool,
        second_factor_methods -> Array<Text>,
        password_min_length -> Int4,
        terms_version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    terms_versions (organization_id, version) {
        organization_id -> Uuid,
        version -> Int4,
        title -> Text,
        body -> Text,
        url -> Text,
        published_at -> Timestamptz,
    }
}

diesel::table! {
    service_areas (id) {
        id -> Uuid,
        organization_id -> Uuid,
        name -> Text,
        description -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    roles (id) {
        id -> Uuid,
        organization_id -> Uuid,
        name -> Text,
        description -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        organization_id -> Uuid,
        name -> Text,
        scopes -> Array<Text>,
        secret_hash -> Bytea,
        prefix -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        organization_id -> Uuid,
        email -> Text,
        username -> Text,
        first_name -> Text,
        last_name -> Text,
        mobile -> Text,
        lifecycle -> Text,
        deactivated_at -> Nullable<Timestamptz>,
        invitation_expires_at -> Nullable<Timestamptz>,
        password_hash -> Nullable<Text>,
        must_change_password -> Bool,
        password_expires_at -> Nullable<Timestamptz>,
        failed_sign_ins -> Int4,
        locked_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        activated_at -> Nullable<Timestamptz>,
        last_sign_in_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    access_grants (user_id, service_area_id, role_id) {
        user_id -> Uuid,
        service_area_id -> Uuid,
        role_id -> Uuid,
    }
}

diesel::table! {
    batches (id) {
        id -> Uuid,
        organization_id -> Uuid,
        kind -> Text,
        actor -> Text,
        idempotency_key -> Nullable<Text>,
        total -> Int4,
        recognized -> Int4,
        invalid -> Int4,
        duplicates -> Int4,
        outstanding -> Int4,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    batch_items (batch_id, position) {
        batch_id -> Uuid,
        position -> Int4,
        input -> Text,
        email -> Text,
        user_id -> Nullable<Uuid>,
        invitation_id -> Nullable<Uuid>,
        outcome -> Nullable<Text>,
        reason -> Text,
        finished_at -> Nullable<Timestamptz>,
        finished_seq -> Nullable<Int8>,
    }
}

diesel::table! {
    invitations (id) {
        id -> Uuid,
        organization_id -> Uuid,
        user_id -> Uuid,
        batch_id -> Nullable<Uuid>,
        email -> Text,
        service_area_id -> Nullable<Uuid>,
        role_id -> Nullable<Uuid>,
        token_hash -> Nullable<Bytea>,
        state -> Text,
        send_count -> Int4,
        last_error -> Text,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        opened_at -> Nullable<Timestamptz>,
        accepted_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        outbox_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    action_tokens (id) {
        id -> Uuid,
        organization_id -> Uuid,
        user_id -> Nullable<Uuid>,
        invitation_id -> Nullable<Uuid>,
        kind -> Text,
        token_hash -> Nullable<Bytea>,
        attempts -> Int4,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        consumed_at -> Nullable<Timestamptz>,
        outbox_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Uuid,
        organization_id -> Uuid,
        kind -> Text,
        recipient -> Text,
        user_id -> Nullable<Uuid>,
        batch_id -> Nullable<Uuid>,
        batch_position -> Nullable<Int4>,
        invitation_id -> Nullable<Uuid>,
        action_token_id -> Nullable<Uuid>,
        state -> Text,
        attempts -> Int4,
        next_attempt_at -> Nullable<Timestamptz>,
        lease_until -> Nullable<Timestamptz>,
        leased_by -> Nullable<Text>,
        last_error -> Text,
        message_id -> Text,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        traceparent -> Nullable<Text>,
        opened_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        finished_seq -> Nullable<Int8>,
        batch_input -> Nullable<Text>,
    }
}

diesel::table! {
    templates (organization_id, kind, locale) {
        organization_id -> Uuid,
        kind -> Text,
        locale -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Uuid,
        organization_id -> Nullable<Uuid>,
        actor -> Text,
        action -> Text,
        target_type -> Text,
        target_id -> Text,
        client_address -> Text,
        details -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    terms_acceptances (user_id, version) {
        user_id -> Uuid,
        organization_id -> Uuid,
        version -> Int4,
        accepted_at -> Timestamptz,
        client_address -> Text,
    }
}

diesel::table! {
    second_factors (user_id) {
        user_id -> Uuid,
        method -> Text,
        secret_ciphertext -> Nullable<Bytea>,
        created_at -> Timestamptz,
        last_totp_step -> Nullable<Int8>,
    }
}

diesel::table! {
    second_factor_enrollments (user_id) {
        user_id -> Uuid,
        method -> Text,
        secret_ciphertext -> Nullable<Bytea>,
        attempts -> Int4,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    /// Hashes of the links sent before links named their invitation.
    invitation_links_before_selectors (token_hash) {
        token_hash -> Bytea,
        invitation_id -> Uuid,
    }
}

diesel::joinable!(access_grants -> users (user_id));
diesel::joinable!(access_grants -> service_areas (service_area_id));
diesel::joinable!(access_grants -> roles (role_id));
diesel::joinable!(service_areas -> organizations (organization_id));
diesel::joinable!(roles -> organizations (organization_id));
diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(invitations -> users (user_id));
diesel::joinable!(api_keys -> organizations (organization_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    terms_versions,
    service_areas,
    roles,
    api_keys,
    users,
    access_grants,
    batches,
    batch_items,
    invitations,
    invitation_links_before_selectors,
    action_tokens,
    outbox,
    templates,
    audit_events,
    terms_acceptances,
    second_factors,
    second_factor_enrollments,
);

diesel::table! {
    rate_limits (bucket) {
        bucket -> Text,
        window_started_at -> Timestamptz,
        hits -> Int4,
    }
}
