//! The `Registration` service (public: the invitation token is the
//! credential; each client address is rate-limited).

use tonic::{Request, Response, Status};

use crate::{
    domain::{
        enrollment::Begun,
        registration::{self, Completion},
        second_factor, validate,
    },
    error::{Error, Violations},
    grpc::{client_address, convert, limit_client},
    pb::{self, registration_server::Registration},
    sms,
    state::AppState,
};

const MAX_PERSON_NAME_LENGTH: usize = 200;

pub struct RegistrationService {
    state: AppState,
}

impl RegistrationService {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

type Rpc<T> = Result<Response<T>, Status>;

pub(crate) fn method_name(raw: i32) -> Option<&'static str> {
    pb::SecondFactorMethod::try_from(raw)
        .ok()
        .and_then(convert::second_factor_method_name)
}

/// An address with most of its local part hidden.
pub(crate) fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}•••@{domain}", local.chars().next().unwrap_or('•')),
        None => "•••".into(),
    }
}

/// Where a second factor's set-up code went, or the authenticator's secret.
pub(crate) fn begun_pb(method: i32, begun: Begun) -> pb::BeginSecondFactorResponse {
    let mut answer = pb::BeginSecondFactorResponse {
        method,
        ..Default::default()
    };
    match begun {
        Begun::Totp {
            secret,
            issuer,
            account,
        } => {
            answer.totp_secret = second_factor::base32(&secret);
            answer.otpauth_uri = second_factor::otpauth_uri(&issuer, &account, &secret);
        }
        Begun::Email { to, expires_at } => {
            answer.code_sent_to = mask_email(&to);
            answer.code_expire_time = Some(convert::timestamp(expires_at));
        }
        Begun::Sms { to, expires_at } => {
            answer.code_sent_to = sms::mask(&to);
            answer.code_expire_time = Some(convert::timestamp(expires_at));
        }
    }
    answer
}

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn get_registration(
        &self,
        request: Request<pb::GetRegistrationRequest>,
    ) -> Rpc<pb::RegistrationInfo> {
        let state = &self.state;
        limit_client(state, "registration", &client_address(&request))?;
        let registration::Offer {
            invited,
            service_area_name,
            role_name,
            methods,
        } = registration::offer(state, &request.get_ref().token).await?;
        let org = &invited.organization.organization;
        let policy = convert::organization(invited.organization.clone())
            .policy
            .unwrap_or_default();
        Ok(Response::new(pb::RegistrationInfo {
            email: invited.invitation.email.clone(),
            organization_id: org.id.to_string(),
            organization_name: org.name.clone(),
            service_area_id: invited
                .invitation
                .service_area_id
                .map(|i| i.to_string())
                .unwrap_or_default(),
            service_area_name,
            role_id: invited
                .invitation
                .role_id
                .map(|i| i.to_string())
                .unwrap_or_default(),
            role_name,
            first_name: invited.user.first_name.clone(),
            last_name: invited.user.last_name.clone(),
            mobile: invited.user.mobile.clone(),
            password: Some(convert::password_rules(org.password_min_length)),
            second_factor: Some(pb::SecondFactorStep {
                required: org.second_factor_required,
                methods: methods
                    .iter()
                    .map(|m| convert::second_factor_method(m) as i32)
                    .collect(),
            }),
            terms: policy.terms,
            expire_time: convert::opt_timestamp(invited.invitation.expires_at),
            continue_url: state.config.links.app_for(org.id),
        }))
    }

    async fn begin_second_factor(
        &self,
        request: Request<pb::BeginSecondFactorRequest>,
    ) -> Rpc<pb::BeginSecondFactorResponse> {
        let state = &self.state;
        limit_client(state, "registration", &client_address(&request))?;
        let req = request.into_inner();
        let method = method_name(req.method)
            .ok_or_else(|| Error::invalid("method", "choose SECOND_FACTOR_METHOD_TOTP, _EMAIL or _SMS"))?;
        let begun = registration::begin_second_factor(state, &req.token, method, &req.mobile).await?;
        Ok(Response::new(begun_pb(req.method, begun)))
    }

    async fn complete_registration(
        &self,
        request: Request<pb::CompleteRegistrationRequest>,
    ) -> Rpc<pb::User> {
        let state = &self.state;
        let address = client_address(&request);
        limit_client(state, "registration", &address)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let required = |field: &str, value: &str, v: &mut Violations| {
            if value.trim().is_empty() {
                v.add(field, "is required");
                None
            } else {
                v.check(field, validate::line(value, MAX_PERSON_NAME_LENGTH))
            }
        };
        let first_name = required("first_name", &req.first_name, &mut v);
        let last_name = required("last_name", &req.last_name, &mut v);
        let mobile = v.check("mobile", validate::mobile(&req.mobile));
        if req.password.is_empty() {
            v.add("password", "is required");
        }
        let second_factor = match (
            method_name(req.second_factor_method),
            req.second_factor_code.trim(),
        ) {
            (None, _) => None,
            (Some(_), "") => {
                v.add("second_factor_code", "is required with a second-factor method");
                None
            }
            (Some(method), code) => Some((method.to_owned(), code.to_owned())),
        };
        v.into_result()?;
        let form = Completion {
            first_name: first_name.unwrap_or_default(),
            last_name: last_name.unwrap_or_default(),
            mobile: mobile.unwrap_or_default(),
            password: req.password,
            second_factor,
            accepted_terms_version: req.accepted_terms_version,
        };
        let user = registration::complete(state, &req.token, form, &address).await?;
        Ok(Response::new(convert::user(user)))
    }

    async fn accept_terms(&self, request: Request<pb::AcceptTermsRequest>) -> Rpc<()> {
        let state = &self.state;
        let address = client_address(&request);
        limit_client(state, "sign-in", &address)?;
        let req = request.into_inner();
        let org = validate::id(&req.organization_id).map_err(|e| Error::invalid("organization_id", e))?;
        registration::accept_current_terms(
            state,
            org,
            &req.username,
            &req.password,
            req.terms_version,
            &address,
        )
        .await?;
        Ok(Response::new(()))
    }

    async fn request_new_invitation(&self, request: Request<pb::RequestNewInvitationRequest>) -> Rpc<()> {
        let state = &self.state;
        let address = client_address(&request);
        limit_client(state, "registration", &address)?;
        let token = request.into_inner().token;
        // The same answer whether or not anything is sent.
        registration::request_new_invitation(state, &token, &address).await?;
        Ok(Response::new(()))
    }
}
