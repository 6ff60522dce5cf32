//! Who is calling, and what their API key allows.

use uuid::Uuid;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Platform,
    Admin,
    Read,
    UsersWrite,
    InvitationsWrite,
    CredentialsWrite,
    AuditRead,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::Platform,
        Scope::Admin,
        Scope::Read,
        Scope::UsersWrite,
        Scope::InvitationsWrite,
        Scope::CredentialsWrite,
        Scope::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Platform => "platform",
            Scope::Admin => "admin",
            Scope::Read => "read",
            Scope::UsersWrite => "users.write",
            Scope::InvitationsWrite => "invitations.write",
            Scope::CredentialsWrite => "credentials.write",
            Scope::AuditRead => "audit.read",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

/// The caller's address, as seen by the server or given by a trusted gateway.
#[derive(Clone, Debug, Default)]
pub struct ClientAddress(pub String);

/// An authenticated API key.
#[derive(Clone, Debug)]
pub struct Caller {
    /// `None` for the bootstrap key from configuration.
    pub api_key_id: Option<Uuid>,
    /// `None` for the bootstrap key, which belongs to no organisation.
    pub organization_id: Option<Uuid>,
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match self.api_key_id {
            Some(id) => format!("api_key:{id}"),
            None => "api_key:bootstrap".into(),
        }
    }

    pub fn is_platform(&self) -> bool {
        self.scopes.contains(&Scope::Platform)
    }

    fn allows(&self, needed: Scope) -> bool {
        self.is_platform()
            || (needed != Scope::Platform && self.scopes.contains(&Scope::Admin))
            || self.scopes.contains(&needed)
    }

    pub fn require(&self, needed: Scope) -> Result<()> {
        if self.allows(needed) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "this API key lacks the '{}' scope",
                needed.as_str()
            )))
        }
    }

    /// The organisation a request acts on: the one it names, or the key's own
    /// when it names none or `-` (a REST path has no empty segment:
    /// `/v1/organizations/-/users`). A key may only act on its own
    /// organisation, unless it is a platform key.
    pub fn organization(&self, requested: &str, needed: Scope) -> Result<Uuid> {
        self.require(needed)?;
        let requested = requested.trim();
        if requested.is_empty() || requested == "-" {
            return self
                .organization_id
                .ok_or_else(|| Error::invalid("organization_id", "is required with a platform key"));
        }
        let id =
            Uuid::parse_str(requested).map_err(|_| Error::invalid("organization_id", "is not a valid id"))?;
        if self.organization_id == Some(id) || self.is_platform() {
            Ok(id)
        } else {
            Err(Error::PermissionDenied(
                "this API key belongs to another organisation".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(org: Uuid, scopes: &[Scope]) -> Caller {
        Caller {
            api_key_id: Some(Uuid::now_v7()),
            organization_id: Some(org),
            scopes: scopes.to_vec(),
        }
    }

    #[test]
    fn a_key_acts_only_on_its_own_organisation_within_its_scopes() {
        let org = Uuid::now_v7();
        let other = Uuid::now_v7();
        let reader = key(org, &[Scope::Read]);
        assert_eq!(reader.organization("", Scope::Read).ok(), Some(org));
        assert!(matches!(
            reader.organization("", Scope::UsersWrite),
            Err(Error::PermissionDenied(_))
        ));
        assert!(matches!(
            reader.organization(&other.to_string(), Scope::Read),
            Err(Error::PermissionDenied(_))
        ));
        let admin = key(org, &[Scope::Admin]);
        assert!(admin.require(Scope::AuditRead).is_ok());
        assert!(admin.require(Scope::Platform).is_err());
        let platform = Caller {
            api_key_id: None,
            organization_id: None,
            scopes: vec![Scope::Platform],
        };
        assert_eq!(
            platform.organization(&other.to_string(), Scope::UsersWrite).ok(),
            Some(other)
        );
        assert!(matches!(
            platform.organization("", Scope::Read),
            Err(Error::InvalidArgument(_))
        ));
    }
}
