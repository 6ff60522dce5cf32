//! One import row: from CSV fields or a structured row to a validated user,
//! with every reason a row is refused.

use std::collections::HashMap;

use uuid::Uuid;

use crate::{
    domain::{catalog::Entry, validate},
    error::{FieldViolation, Violations},
};

/// Names and free text on a user.
const MAX_PERSON_NAME_LENGTH: usize = 200;

/// The columns an import understands.
pub const COLUMNS: [&str; 7] = [
    "email",
    "username",
    "first_name",
    "last_name",
    "mobile",
    "service_area",
    "role",
];

#[derive(Clone, Debug, Default)]
pub struct RawRow {
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub mobile: String,
    pub service_area: String,
    pub role: String,
}

/// A row that passed validation.
#[derive(Clone, Debug)]
pub struct ValidRow {
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub mobile: String,
    pub grant: Option<(Uuid, Uuid)>,
}

impl ValidRow {
    pub fn email_key(&self) -> String {
        self.email.to_lowercase()
    }

    pub fn username_key(&self) -> String {
        self.username.to_lowercase()
    }
}

/// Where each CSV column sits, from the header row.
#[derive(Debug)]
pub struct Header {
    positions: HashMap<&'static str, usize>,
}

impl Header {
    /// Reads the header; names are matched in any case, with spaces or
    /// dashes for underscores.
    pub fn parse(fields: &[String]) -> Result<Header, String> {
        let mut positions = HashMap::new();
        let mut unknown = Vec::new();
        for (i, raw) in fields.iter().enumerate() {
            let name = raw.trim().to_lowercase().replace([' ', '-'], "_");
            match COLUMNS.iter().find(|c| **c == name) {
                Some(column) if positions.contains_key(column) => {
                    return Err(format!(
                        "the header names the column {} twice",
                        validate::quote(column)
                    ));
                }
                Some(column) => {
                    positions.insert(*column, i);
                }
                None if name.is_empty() => {}
                None => unknown.push(raw.trim().to_owned()),
            }
        }
        if !unknown.is_empty() {
            return Err(format!(
                "the header has unknown columns: {}; the columns are {}",
                unknown.join(", "),
                COLUMNS.join(", ")
            ));
        }
        if !positions.contains_key("email") {
            return Err(format!(
                "the header has no 'email' column; the columns are {}",
                COLUMNS.join(", ")
            ));
        }
        Ok(Header { positions })
    }

    pub fn row(&self, fields: &[String]) -> RawRow {
        let get = |column: &str| {
            self.positions
                .get(column)
                .and_then(|i| fields.get(*i))
                .cloned()
                .unwrap_or_default()
        };
        RawRow {
            email: get("email"),
            username: get("username"),
            first_name: get("first_name"),
            last_name: get("last_name"),
            mobile: get("mobile"),
            service_area: get("service_area"),
            role: get("role"),
        }
    }
}

/// The organisation's service areas and roles, by id and by lower-cased name.
#[derive(Debug, Default)]
pub struct Catalogs {
    areas: HashMap<String, Uuid>,
    roles: HashMap<String, Uuid>,
}

impl Catalogs {
    pub fn new(areas: Vec<Entry>, roles: Vec<Entry>) -> Catalogs {
        let index = |entries: Vec<Entry>| {
            let mut map = HashMap::new();
            for e in entries {
                map.insert(e.id.to_string(), e.id);
                map.insert(e.name.to_lowercase(), e.id);
            }
            map
        };
        Catalogs {
            areas: index(areas),
            roles: index(roles),
        }
    }

    pub fn area(&self, key: &str) -> Option<Uuid> {
        self.areas.get(&key.trim().to_lowercase()).copied()
    }

    pub fn role(&self, key: &str) -> Option<Uuid> {
        self.roles.get(&key.trim().to_lowercase()).copied()
    }
}

/// Checks a row; service area and role fall back to the import's defaults.
pub fn validate(
    row: &RawRow,
    catalogs: &Catalogs,
    default_area: &str,
    default_role: &str,
) -> Result<ValidRow, Vec<FieldViolation>> {
    let mut v = Violations::new();
    let email = v.check("email", validate::email(&row.email));
    let username = if row.username.trim().is_empty() {
        email.clone()
    } else {
        v.check("username", validate::username(&row.username))
    };
    let first_name = v.check(
        "first_name",
        validate::line(&row.first_name, MAX_PERSON_NAME_LENGTH),
    );
    let last_name = v.check(
        "last_name",
        validate::line(&row.last_name, MAX_PERSON_NAME_LENGTH),
    );
    let mobile = v.check("mobile", validate::optional_mobile(&row.mobile));
    let area_key = if row.service_area.trim().is_empty() {
        default_area
    } else {
        row.service_area.as_str()
    };
    let role_key = if row.role.trim().is_empty() {
        default_role
    } else {
        row.role.as_str()
    };
    let grant = match (area_key.trim(), role_key.trim()) {
        ("", "") => None,
        ("", _) => {
            v.add("service_area", "is required with a role");
            None
        }
        (_, "") => {
            v.add("role", "is required with a service area");
            None
        }
        (area, role) => {
            let area_id = catalogs.area(area);
            let role_id = catalogs.role(role);
            if area_id.is_none() {
                v.add(
                    "service_area",
                    format!(
                        "{} is not a service area of this organisation",
                        validate::quote(area)
                    ),
                );
            }
            if role_id.is_none() {
                v.add(
                    "role",
                    format!("{} is not a role of this organisation", validate::quote(role)),
                );
            }
            area_id.zip(role_id)
        }
    };
    if !v.is_empty() {
        return Err(v.into_vec());
    }
    Ok(ValidRow {
        email: email.unwrap_or_default(),
        username: username.unwrap_or_default(),
        first_name: first_name.unwrap_or_default(),
        last_name: last_name.unwrap_or_default(),
        mobile: mobile.unwrap_or_default(),
        grant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_of_a_bad_row_is_reported() {
        let catalogs = Catalogs::default();
        let row = RawRow {
            email: "nope".into(),
            mobile: "123".into(),
            service_area: "Mars".into(),
            role: "Pilot".into(),
            ..Default::default()
        };
        let errors = validate(&row, &catalogs, "", "").err().unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "mobile", "service_area", "role"]);
    }

    #[test]
    fn headers_are_forgiving_about_case_and_strict_about_names() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let header =
            Header::parse(&names(&["Email", "First Name", "service-area"])).map_err(|e| e.to_string());
        let row = header
            .as_ref()
            .map(|h| h.row(&names(&["a@b.io", "Ann", "North"])).first_name);
        assert_eq!(row, Ok("Ann".to_owned()));
        assert!(Header::parse(&names(&["first_name"])).is_err_and(|e| e.contains("no 'email'")));
        assert!(Header::parse(&names(&["email", "shoe_size"])).is_err_and(|e| e.contains("shoe_size")));
    }
}
