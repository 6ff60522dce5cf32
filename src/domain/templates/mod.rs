//! Email templates: system defaults for each kind of email, per-organisation
//! overrides (`store`), editing them (`edit`), and a small renderer for
//! `{{ name }}` placeholders that escapes values in the HTML part.

pub mod edit;
mod store;

pub use store::{load, reset, save};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::error::{FieldViolation, Result};

pub const DEFAULT_LOCALE: &str = "en";
const MAX_SUBJECT_CHARS: usize = 200;
const MAX_BODY_CHARS: usize = 100_000;

pub use crate::lifecycle::email_kind::EmailKind as Kind;

/// Placeholders every kind offers.
const COMMON: &[&str] = &[
    "organization_name",
    "first_name",
    "last_name",
    "greeting_name",
    "email",
    "username",
    "expires_at",
];

impl Kind {
    /// The placeholders a template of this kind must use in both bodies: the
    /// thing the email exists to deliver.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            Kind::Invitation | Kind::PasswordReset | Kind::Welcome => &["link"],
            Kind::Credentials => &["username", "password"],
            Kind::EmailCode => &["code"],
        }
    }

    fn specific(self) -> &'static [&'static str] {
        match self {
            Kind::Invitation => &["link", "access_phrase", "service_area", "role"],
            Kind::Credentials => &["password", "sign_in_url"],
            Kind::PasswordReset | Kind::Welcome => &["link"],
            Kind::EmailCode => &["code"],
        }
    }

    /// Every placeholder this kind offers.
    pub fn placeholders(self) -> Vec<&'static str> {
        COMMON.iter().chain(self.specific()).copied().collect()
    }

    fn default_source(self) -> &'static str {
        match self {
            Kind::Invitation => include_str!("../../templates/invitation.txt"),
            Kind::Credentials => include_str!("../../templates/credentials.txt"),
            Kind::PasswordReset => include_str!("../../templates/password_reset.txt"),
            Kind::Welcome => include_str!("../../templates/welcome.txt"),
            Kind::EmailCode => include_str!("../../templates/email_code.txt"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// `None` for a system default.
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub type Vars = BTreeMap<&'static str, String>;

/// The system default: a file of subject line, text body and HTML body
/// separated by lines of `---`.
pub fn default_template(kind: Kind) -> Template {
    let source = kind.default_source();
    let mut parts = source.splitn(3, "\n---\n");
    let subject = parts.next().unwrap_or_default();
    Template {
        subject: subject.trim_start_matches("subject:").trim().to_owned(),
        text_body: parts.next().unwrap_or_default().trim().to_owned() + "\n",
        html_body: parts.next().unwrap_or_default().trim().to_owned() + "\n",
        updated_at: None,
    }
}

/// The placeholder names a text uses, or why it cannot be read.
fn placeholders(text: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "has a '{{' that is never closed with '}}'".to_owned())?;
        names.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    Ok(names)
}

fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn fill(text: &str, vars: &Vars, escape: bool) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let value = vars
            .get(after[..end].trim())
            .map(String::as_str)
            .unwrap_or_default();
        if escape {
            out.push_str(&escape_html(value));
        } else {
            out.push_str(value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Renders a template that `validate` accepted. The subject is kept to one
/// line whatever the values hold.
pub fn render(template: &Template, vars: &Vars) -> Rendered {
    let subject = fill(&template.subject, vars, false).replace(['\r', '\n'], " ");
    Rendered {
        subject,
        text: fill(&template.text_body, vars, false),
        html: fill(&template.html_body, vars, true),
    }
}

/// Checks that a template can render and carries what its kind must.
pub fn validate(kind: Kind, template: &Template) -> Result<(), Vec<FieldViolation>> {
    let allowed = kind.placeholders();
    let mut violations = Vec::new();
    let mut add = |field: &str, description: String| {
        violations.push(FieldViolation {
            field: format!("template.{field}"),
            description,
        })
    };
    for (field, text, max) in [
        ("subject", &template.subject, MAX_SUBJECT_CHARS),
        ("text_body", &template.text_body, MAX_BODY_CHARS),
        ("html_body", &template.html_body, MAX_BODY_CHARS),
    ] {
        if text.trim().is_empty() {
            add(field, "is required".into());
            continue;
        }
        if text.chars().count() > max {
            add(field, format!("is longer than {max} characters"));
            continue;
        }
        match placeholders(text) {
            Err(problem) => add(field, problem),
            Ok(names) => {
                let unknown: Vec<&str> = names.iter().copied().filter(|n| !allowed.contains(n)).collect();
                if !unknown.is_empty() {
                    add(
                        field,
                        format!(
                            "uses unknown placeholders {}; a {} email offers {}",
                            unknown
                                .iter()
                                .map(|n| format!("{{{{ {n} }}}}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            kind.name().replace('_', " "),
                            allowed.join(", ")
                        ),
                    );
                }
                if field != "subject" {
                    for required in kind.required() {
                        if !names.contains(required) {
                            add(
                                field,
                                format!("must contain {{{{ {required} }}}}: it is what this email delivers"),
                            );
                        }
                    }
                }
            }
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

/// The placeholders about the person every kind of email offers.
pub fn person_vars(
    organization_name: &str,
    first_name: &str,
    last_name: &str,
    email: &str,
    username: &str,
    expires_at: DateTime<Utc>,
) -> Vars {
    let mut vars = Vars::new();
    vars.insert("organization_name", organization_name.to_owned());
    vars.insert("first_name", first_name.to_owned());
    vars.insert("last_name", last_name.to_owned());
    vars.insert(
        "greeting_name",
        if first_name.is_empty() {
            String::new()
        } else {
            format!(" {first_name}")
        },
    );
    vars.insert("email", email.to_owned());
    vars.insert("username", username.to_owned());
    vars.insert("expires_at", human_time(expires_at));
    vars
}

/// Sample values for previews.
pub fn sample_vars(kind: Kind, organization_name: &str) -> Vars {
    let mut vars = Vars::new();
    vars.insert("organization_name", organization_name.to_owned());
    vars.insert("first_name", "Ada".into());
    vars.insert("last_name", "Lovelace".into());
    vars.insert("greeting_name", " Ada".into());
    vars.insert("email", "ada.lovelace@example.com".into());
    vars.insert("username", "ada.lovelace@example.com".into());
    vars.insert("expires_at", "28 November 2026 at 09:00 UTC".into());
    match kind {
        Kind::Invitation => {
            vars.insert("link", "https://example.com/register?token=SAMPLE".into());
            vars.insert("service_area", "North ward".into());
            vars.insert("role", "Nurse".into());
            vars.insert("access_phrase", " (North ward, Nurse)".into());
        }
        Kind::Credentials => {
            vars.insert("password", "SAMPLE-PASSWORD".into());
            vars.insert("sign_in_url", "https://example.com/sign-in".into());
        }
        Kind::PasswordReset | Kind::Welcome => {
            vars.insert("link", "https://example.com/reset-password?token=SAMPLE".into());
        }
        Kind::EmailCode => {
            vars.insert("code", "123456".into());
        }
    }
    vars
}

/// A time as people read it in an email.
pub fn human_time(t: DateTime<Utc>) -> String {
    t.format("%-d %B %Y at %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_validates_and_renders_with_sample_values() {
        for &kind in Kind::ALL {
            let template = default_template(kind);
            assert_eq!(validate(kind, &template), Ok(()), "{kind:?}");
            let rendered = render(&template, &sample_vars(kind, "Acme"));
            assert!(
                rendered.subject.contains("Acme"),
                "{kind:?}: {}",
                rendered.subject
            );
            assert!(!rendered.text.contains("{{"), "{kind:?}: {}", rendered.text);
            assert!(rendered.html.starts_with("<p>"), "{kind:?}");
        }
    }

    #[test]
    fn html_is_escaped_and_the_subject_stays_one_line() {
        let template = Template {
            subject: "Hi {{ first_name }}".into(),
            text_body: "{{ first_name }} {{ link }}".into(),
            html_body: "<p>{{ first_name }} {{ link }}</p>".into(),
            updated_at: None,
        };
        let mut vars = Vars::new();
        vars.insert("first_name", "<script>\"x\"</script>\nBcc: evil".into());
        vars.insert("link", "https://e.com/?a=1&b=2".into());
        let out = render(&template, &vars);
        assert_eq!(out.subject, "Hi <script>\"x\"</script> Bcc: evil");
        assert!(out.html.contains("&lt;script&gt;&quot;x&quot;"), "{}", out.html);
        assert!(out.html.contains("a=1&amp;b=2"), "{}", out.html);
        assert!(out.text.contains("<script>"), "the text part is not HTML");
    }

    #[test]
    fn a_template_without_its_link_or_with_unknown_placeholders_is_refused() {
        let template = Template {
            subject: "Join {{ organisation }}".into(),
            text_body: "Welcome!".into(),
            html_body: "<p>{{ link </p>".into(),
            updated_at: None,
        };
        let errors = validate(Kind::Invitation, &template).err().unwrap_or_default();
        let described: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.description))
            .collect();
        assert_eq!(errors.len(), 3, "{described:?}");
        assert!(described[0].starts_with("template.subject: uses unknown placeholders {{ organisation }}"));
        assert!(described[1].starts_with("template.text_body: must contain {{ link }}"));
        assert!(described[2].starts_with("template.html_body: has a '{{' that is never closed"));
    }

    proptest::proptest! {
        #[test]
        fn values_never_break_out_of_the_html(value in "\\PC{0,60}", text in "\\PC{0,80}") {
            let template = Template {
                subject: text.clone(),
                text_body: text.clone(),
                html_body: "<p>{{ first_name }}</p>".into(),
                updated_at: None,
            };
            let mut vars = Vars::new();
            vars.insert("first_name", value.clone());
            let out = render(&template, &vars);
            let inner = out.html.trim_start_matches("<p>").trim_end_matches("</p>");
            proptest::prop_assert!(!inner.contains('<') && !inner.contains('>') && !inner.contains('"'));
            proptest::prop_assert!(!out.subject.contains('\n'));
            let _ = validate(Kind::Invitation, &template);
        }
    }
}
