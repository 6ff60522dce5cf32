//! The one place a domain error becomes a gRPC status, with field violations
//! as rich error details so a gateway can point at the wrong field.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::Error;

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::AlreadyExists {
                field: Some(field), ..
            } => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field, message.clone());
                Status::with_error_details(Code::AlreadyExists, message, details)
            }
            Error::AlreadyExists { field: None, .. } => Status::already_exists(message),
            Error::NotFound(_) => Status::not_found(message),
            Error::FailedPrecondition(_) => Status::failed_precondition(message),
            Error::Refused { reason, .. } => {
                let details =
                    ErrorDetails::with_error_info(reason, "onramp", std::collections::HashMap::new());
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            Error::PermissionDenied(_) => Status::permission_denied(message),
            Error::Unauthenticated(_) => Status::unauthenticated(message),
            Error::ResourceExhausted(_) => Status::resource_exhausted(message),
            Error::Unavailable(detail) => {
                tracing::warn!(error = %detail, "unavailable");
                Status::unavailable(message)
            }
            Error::Cancelled(_) => Status::cancelled(message),
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Status::internal("internal error; the server log has the details")
            }
        }
    }
}
