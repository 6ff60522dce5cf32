//! The `Registration` service (public: the invitation token is the
//! credential; each client address is rate-limited).

use chrono::TimeDelta;
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        accounts,
        audit::{self, Actor},
        catalog::{self, Catalog},
        invitations::manage,
        rate_limit,
        registration::{self, Completion},
        second_factor, validate,
    },
    error::{Error, Violations},
    grpc::{client_address, convert, invitations::send::message_domain, limit_client},
    outbox,
    pb::{self, registration_server::Registration},
    sms,
    state::AppState,
};

/// Codes one invitation may be sent per hour.
const CODES_PER_HOUR: i32 = 5;
/// Fresh invitations one expired link may ask for per day.
const RENEWALS_PER_DAY: i32 = 3;
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

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn get_registration(
        &self,
        request: Request<pb::GetRegistrationRequest>,
    ) -> Rpc<pb::RegistrationInfo> {
        let state = &self.state;
        limit_client(state, "registration", &client_address(&request))?;
        let now = state.clock.now();
        let mut conn = state.pool.get().await.map_err(Error::from)?;
        let invited = registration::find(&mut conn, &request.get_ref().token, now).await?;
        registration::mark_opened(&mut conn, invited.invitation.id, now).await?;
        let service_area_name = catalog::name(
            &mut conn,
            Catalog::ServiceAreas,
            invited.invitation.service_area_id,
        )
        .await?;
        let role_name = catalog::name(&mut conn, Catalog::Roles, invited.invitation.role_id).await?;
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
                // An authenticator's secret is sealed with ONRAMP_SECRET_KEY:
                // without one, it is not offered rather than refused later.
                methods: invited
                    .methods()
                    .iter()
                    .filter(|m| state.secrets.is_some() || m.as_str() != "totp")
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
        let now = state.clock.now();
        let mut conn = state.pool.get().await.map_err(Error::from)?;
        let invited = registration::find(&mut conn, &req.token, now).await?;
        let method = method_name(req.method)
            .ok_or_else(|| Error::invalid("method", "choose SECOND_FACTOR_METHOD_TOTP, _EMAIL or _SMS"))?;
        let allowed = invited.methods();
        if !allowed.iter().any(|m| m == method) {
            return Err(Error::invalid(
                "method",
                format!("the organisation allows {}", allowed.join(", ")),
            )
            .into());
        }
        let bucket = format!("codes:{}", invited.invitation.id);
        if method != "totp"
            && !rate_limit::allow(&mut conn, &bucket, CODES_PER_HOUR, TimeDelta::hours(1), now).await?
        {
            return Err(Status::resource_exhausted(
                "too many codes were sent for this invitation; wait an hour",
            ));
        }
        let user = &invited.user;
        let mut answer = pb::BeginSecondFactorResponse {
            method: req.method,
            ..Default::default()
        };
        match method {
            "totp" => {
                let secrets = state.secrets.as_deref().ok_or_else(|| {
                    Error::FailedPrecondition(
                        "authenticator apps need ONRAMP_SECRET_KEY on the server".into(),
                    )
                })?;
                let secret = second_factor::new_totp_secret();
                second_factor::enroll(
                    &mut conn,
                    user.id,
                    "totp",
                    Some(secrets.seal(&secret)?),
                    None,
                    now,
                )
                .await?;
                answer.totp_secret = second_factor::base32(&secret);
                answer.otpauth_uri =
                    second_factor::otpauth_uri(&invited.organization.organization.name, &user.email, &secret);
            }
            "email" => {
                let email = outbox::Email {
                    organization_id: user.organization_id,
                    kind: crate::lifecycle::email_kind::EmailKind::EmailCode,
                    recipient: &user.email,
                    user_id: user.id,
                    invitation_id: Some(invited.invitation.id),
                    batch: None,
                };
                outbox::enqueue(&mut conn, &[email], &message_domain(state), now).await?;
                answer.code_sent_to = mask_email(&user.email);
                answer.code_expire_time = Some(convert::timestamp(now + second_factor::CODE_TTL));
            }
            _ => {
                let mobile = if req.mobile.trim().is_empty() {
                    user.mobile.clone()
                } else {
                    req.mobile.clone()
                };
                let mobile = validate::mobile(&mobile).map_err(|e| Error::invalid("mobile", e))?;
                let (code, expires_at) = second_factor::issue_code(
                    &mut conn,
                    state.secrets.as_deref(),
                    user,
                    Some(invited.invitation.id),
                    "sms_code",
                    now,
                )
                .await?;
                drop(conn);
                sms::send_verification_code(
                    state.config.sms_webhook_url.as_deref(),
                    &mobile,
                    &code,
                    &invited.organization.organization.name,
                )
                .await?;
                answer.code_sent_to = sms::mask(&mobile);
                answer.code_expire_time = Some(convert::timestamp(expires_at));
            }
        }
        Ok(Response::new(answer))
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
        let verified = accounts::verify(state, org, &req.username, &req.password, &address).await?;
        // Without a second factor the right password completes this call;
        // with one, its attempt stays counted until a sign-in presents it.
        if verified.second_factor.is_none() {
            let mut conn = state.pool.get().await.map_err(Error::from)?;
            accounts::settle(&mut conn, verified.user.id).await?;
        }
        let current = verified.organization.terms_version;
        if current == 0 || req.terms_version != current {
            return Err(Error::invalid(
                "terms_version",
                format!("the current terms are version {current}"),
            )
            .into());
        }
        let now = state.clock.now();
        let mut conn = state.pool.get().await.map_err(Error::from)?;
        registration::accept_terms(&mut conn, &verified.user, current, &address, now).await?;
        let actor = Actor {
            name: format!("user:{}", verified.user.id),
            client_address: address,
        };
        audit::record(
            &mut conn,
            &actor,
            org,
            "terms.accept",
            ("user", verified.user.id),
            json!({"version": current}),
            now,
        )
        .await?;
        Ok(Response::new(()))
    }

    async fn request_new_invitation(&self, request: Request<pb::RequestNewInvitationRequest>) -> Rpc<()> {
        let state = &self.state;
        let address = client_address(&request);
        limit_client(state, "registration", &address)?;
        let token = request.into_inner().token;
        let now = state.clock.now();
        let mut conn = state.pool.get().await.map_err(Error::from)?;
        // The same answer whether or not anything is sent.
        if let Some(invitation) = registration::renewable(&mut conn, &token, now).await? {
            let bucket = format!("renew:{}", invitation.id);
            if rate_limit::allow(&mut conn, &bucket, RENEWALS_PER_DAY, TimeDelta::days(1), now).await? {
                let actor = Actor {
                    name: "public".into(),
                    client_address: address,
                };
                manage::resend(
                    &mut conn,
                    invitation.organization_id,
                    invitation.id,
                    &message_domain(state),
                    &actor,
                    now,
                )
                .await?;
            }
        }
        Ok(Response::new(()))
    }
}
