//! The domain's one error type. `grpc::status` turns it into a gRPC status.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// A field that failed validation, and why, in words a person understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", describe_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    AlreadyExists { message: String, field: Option<String> },
    #[error("{0}")]
    FailedPrecondition(String),
    /// A precondition with a machine-readable reason (`google.rpc.ErrorInfo`),
    /// for clients that must tell, say, an expired link from a used one.
    #[error("{message}")]
    Refused { reason: &'static str, message: String },
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Unavailable(String),
    /// The client ended the call early.
    #[error("{0}")]
    Cancelled(String),
    /// Anything the caller cannot act on. The detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn describe_violations(violations: &[FieldViolation]) -> String {
    match violations {
        [one] => format!("{}: {}", one.field, one.description),
        many => format!(
            "{} fields are invalid: {}",
            many.len(),
            many.iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

impl Error {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }

    pub fn exists(field: &str, message: impl Into<String>) -> Self {
        Error::AlreadyExists {
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }
}

/// Collects every problem of a request, so one answer lists them all.
#[derive(Default, Debug)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records the error of `result` under `field` and passes its value on.
    pub fn check<T>(&mut self, field: &str, result: std::result::Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(description) => {
                self.add(field, description);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }

    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }
}

impl From<DieselError> for Error {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => Error::NotFound("not found".into()),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                let (field, message) = match info.constraint_name().unwrap_or_default() {
                    "users_email_key" => (
                        "email",
                        "a user with this email already exists in the organisation",
                    ),
                    "users_username_key" => (
                        "username",
                        "a user with this username already exists in the organisation",
                    ),
                    "service_areas_name_key" => ("name", "a service area with this name already exists"),
                    "roles_name_key" => ("name", "a role with this name already exists"),
                    _ => ("", "it already exists"),
                };
                Error::AlreadyExists {
                    message: message.into(),
                    field: (!field.is_empty()).then(|| field.to_owned()),
                }
            }
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                Error::Unavailable("the database was busy with a conflicting change; try again".into())
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => Error::Unavailable("the database connection was lost; try again".into()),
            // A restart or failover ends sessions with one of these (SQLSTATE
            // 57P01 to 57P03), which diesel does not classify.
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) if is_shutdown(info.message()) => {
                Error::Unavailable("the database is restarting; try again".into())
            }
            // ONRAMP_DB_STATEMENT_TIMEOUT_MS passed (SQLSTATE 57014).
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info
                    .message()
                    .starts_with("canceling statement due to statement timeout") =>
            {
                crate::metrics::get().statement_timeouts.add(1, &[]);
                Error::Unavailable("the database took too long to answer; try again".into())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

fn is_shutdown(message: &str) -> bool {
    message.starts_with("terminating connection due to")
        || message.starts_with("the database system is shutting down")
        || message.starts_with("the database system is starting up")
}

impl From<crate::db::PoolError> for Error {
    fn from(e: crate::db::PoolError) -> Self {
        Error::Unavailable(format!("the database is unavailable: {e}"))
    }
}
