//! Conversions between domain values and protobuf messages.

use chrono::{DateTime, Utc};
use prost_types::{Duration, Timestamp};

use crate::{
    domain::{
        api_keys::ApiKey,
        audit::AuditEvent,
        caller::Scope,
        catalog::Entry,
        organizations::OrganizationWithTerms,
        sign_in::RequiredAction,
        users::{Status, User},
    },
    passwords::MAX_PASSWORD_LENGTH,
    pb,
};

pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn opt_timestamp(t: Option<DateTime<Utc>>) -> Option<Timestamp> {
    t.map(timestamp)
}

/// The time of a `Timestamp` within its documented range, years 1 to 9999
/// (PostgreSQL and JSON clients agree on no other).
pub fn from_timestamp(t: &Timestamp) -> Option<DateTime<Utc>> {
    const FIRST: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if !(FIRST..=LAST).contains(&t.seconds) {
        return None;
    }
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

pub fn duration_secs(secs: i32) -> Duration {
    Duration {
        seconds: i64::from(secs),
        nanos: 0,
    }
}

pub fn status(s: Status) -> pb::UserStatus {
    match s {
        Status::Staged => pb::UserStatus::Staged,
        Status::Pending => pb::UserStatus::Pending,
        Status::Expired => pb::UserStatus::Expired,
        Status::Active => pb::UserStatus::Active,
        Status::Inactive => pb::UserStatus::Inactive,
    }
}

pub fn status_from_pb(s: pb::UserStatus) -> Option<Status> {
    match s {
        pb::UserStatus::Unspecified => None,
        pb::UserStatus::Staged => Some(Status::Staged),
        pb::UserStatus::Pending => Some(Status::Pending),
        pb::UserStatus::Expired => Some(Status::Expired),
        pb::UserStatus::Active => Some(Status::Active),
        pb::UserStatus::Inactive => Some(Status::Inactive),
    }
}

pub fn scope(s: Scope) -> pb::ApiKeyScope {
    match s {
        Scope::Platform => pb::ApiKeyScope::Platform,
        Scope::Admin => pb::ApiKeyScope::Admin,
        Scope::Read => pb::ApiKeyScope::Read,
        Scope::UsersWrite => pb::ApiKeyScope::UsersWrite,
        Scope::InvitationsWrite => pb::ApiKeyScope::InvitationsWrite,
        Scope::CredentialsWrite => pb::ApiKeyScope::CredentialsWrite,
        Scope::AuditRead => pb::ApiKeyScope::AuditRead,
    }
}

pub fn scope_from_pb(s: pb::ApiKeyScope) -> Option<Scope> {
    Scope::ALL.into_iter().find(|scope_| scope(*scope_) == s)
}

pub fn second_factor_method(name: &str) -> pb::SecondFactorMethod {
    match name {
        "totp" => pb::SecondFactorMethod::Totp,
        "email" => pb::SecondFactorMethod::Email,
        "sms" => pb::SecondFactorMethod::Sms,
        _ => pb::SecondFactorMethod::Unspecified,
    }
}

pub fn second_factor_method_name(m: pb::SecondFactorMethod) -> Option<&'static str> {
    match m {
        pb::SecondFactorMethod::Totp => Some("totp"),
        pb::SecondFactorMethod::Email => Some("email"),
        pb::SecondFactorMethod::Sms => Some("sms"),
        pb::SecondFactorMethod::Unspecified => None,
    }
}

pub fn organization(o: OrganizationWithTerms) -> pb::Organization {
    let org = o.organization;
    pb::Organization {
        id: org.id.to_string(),
        name: org.name,
        policy: Some(pb::OnboardingPolicy {
            invitation_ttl: Some(duration_secs(org.invitation_ttl_secs)),
            reset_link_ttl: Some(duration_secs(org.reset_link_ttl_secs)),
            temporary_password_ttl: Some(duration_secs(org.temporary_password_ttl_secs)),
            second_factor_required: org.second_factor_required,
            second_factor_methods: org
                .second_factor_methods
                .iter()
                .map(|m| second_factor_method(m) as i32)
                .collect(),
            password_min_length: org.password_min_length,
            password_max_length: i32::try_from(MAX_PASSWORD_LENGTH).unwrap_or(i32::MAX),
            terms: o.terms.map(terms),
        }),
        create_time: Some(timestamp(org.created_at)),
        update_time: Some(timestamp(org.updated_at)),
    }
}

pub fn service_area(e: Entry) -> pb::ServiceArea {
    pb::ServiceArea {
        id: e.id.to_string(),
        organization_id: e.organization_id.to_string(),
        name: e.name,
        description: e.description,
        create_time: Some(timestamp(e.created_at)),
    }
}

pub fn role(e: Entry) -> pb::Role {
    pb::Role {
        id: e.id.to_string(),
        organization_id: e.organization_id.to_string(),
        name: e.name,
        description: e.description,
        create_time: Some(timestamp(e.created_at)),
    }
}

pub fn api_key(k: ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: k.id.to_string(),
        organization_id: k.organization_id.to_string(),
        scopes: k.scopes().into_iter().map(|s| scope(s) as i32).collect(),
        name: k.name,
        prefix: k.prefix,
        create_time: Some(timestamp(k.created_at)),
        expire_time: opt_timestamp(k.expires_at),
        revoke_time: opt_timestamp(k.revoked_at),
    }
}

pub fn user(u: User) -> pb::User {
    let row = u.row;
    let pending = matches!(u.status, Status::Pending | Status::Expired);
    pb::User {
        id: row.id.to_string(),
        organization_id: row.organization_id.to_string(),
        email: row.email,
        username: row.username,
        first_name: row.first_name,
        last_name: row.last_name,
        mobile: row.mobile,
        status: status(u.status) as i32,
        access_grants: u
            .grants
            .into_iter()
            .map(|g| pb::AccessGrant {
                service_area_id: g.service_area_id.to_string(),
                role_id: g.role_id.to_string(),
                service_area_name: g.service_area_name,
                role_name: g.role_name,
            })
            .collect(),
        must_change_password: row.must_change_password,
        has_password: row.password_hash.is_some(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        activate_time: opt_timestamp(row.activated_at),
        deactivate_time: opt_timestamp(row.deactivated_at),
        invitation_expire_time: if pending {
            opt_timestamp(row.invitation_expires_at)
        } else {
            None
        },
        last_sign_in_time: opt_timestamp(row.last_sign_in_at),
    }
}

pub fn audit_event(e: AuditEvent) -> pb::AuditEvent {
    let details = match e.details {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        _ => Default::default(),
    };
    pb::AuditEvent {
        id: e.id.to_string(),
        organization_id: e.organization_id.map(|o| o.to_string()).unwrap_or_default(),
        actor: e.actor,
        action: e.action,
        target_type: e.target_type,
        target_id: e.target_id,
        client_address: e.client_address,
        details,
        create_time: Some(timestamp(e.created_at)),
    }
}

/// The rules a new password must meet, shown before a person types one.
pub fn password_rules(min_length: i32) -> pb::PasswordRules {
    pb::PasswordRules {
        min_length,
        max_length: i32::try_from(MAX_PASSWORD_LENGTH).unwrap_or(i32::MAX),
        rules: vec![
            "not be one of the most commonly used passwords".into(),
            "not contain your username or email address".into(),
        ],
    }
}

pub fn terms(t: crate::domain::organizations::TermsVersion) -> pb::Terms {
    pb::Terms {
        version: t.version,
        title: t.title,
        text: t.body,
        url: t.url,
        publish_time: Some(timestamp(t.published_at)),
    }
}

pub fn required_action(a: RequiredAction) -> pb::RequiredAction {
    match a {
        RequiredAction::ChangePassword => pb::RequiredAction::ChangePassword,
        RequiredAction::AcceptTerms => pb::RequiredAction::AcceptTerms,
        RequiredAction::EnrollSecondFactor => pb::RequiredAction::EnrollSecondFactor,
        RequiredAction::SecondFactor => pb::RequiredAction::SecondFactor,
    }
}
