//! Every string of every request is checked as it is decoded, before any
//! handler, rate limit or hash runs: no control characters (line breaks only
//! where text may span lines) and a length limit per field. So a NUL byte
//! never reaches PostgreSQL, and a huge value is refused without being
//! quoted back. The walk over each message's strings is generated from the
//! protos by `build.rs`.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::ProstCodec;

use crate::error::{Error, FieldViolation};

/// The longest single-line value: ids, names, addresses, URLs, keys.
pub const MAX_LINE: usize = 2048;
/// The longest multi-line value: template bodies and terms.
pub const MAX_TEXT: usize = 200_000;
/// Violations reported at most; the rest add nothing a person can use.
const MAX_VIOLATIONS: usize = 10;

/// How one field's strings are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Line(usize),
    Text(usize),
    /// Checked entry by entry by their own parser, so that one bad entry is
    /// one refused recipient or row, never a refused request.
    Own,
}

fn rule(field: &str) -> Rule {
    match field {
        "onramp.v1.SendInvitationsRequest.recipients_text"
        | "onramp.v1.SendInvitationsRequest.emails"
        | "onramp.v1.InvitationRecipients.recipients_text"
        | "onramp.v1.InvitationRecipients.emails"
        | "onramp.v1.ImportUsersRequest.csv_chunk"
        | "onramp.v1.ImportUsersCsvRequest.csv" => Rule::Own,
        f if f.starts_with("onramp.v1.ImportRow.") => Rule::Own,
        "onramp.v1.Template.text_body" | "onramp.v1.Template.html_body" | "onramp.v1.Terms.text" => {
            Rule::Text(MAX_TEXT)
        }
        f if f.ends_with(".description") => Rule::Text(MAX_LINE),
        _ => Rule::Line(MAX_LINE),
    }
}

/// The problem with `value` under `rule`, if any, in words that never quote
/// the value.
fn problem(rule: Rule, value: &str) -> Option<String> {
    let (max, multi_line) = match rule {
        Rule::Own => return None,
        Rule::Line(max) => (max, false),
        Rule::Text(max) => (max, true),
    };
    // Bytes bound characters from above: most values never need counting.
    if value.len() > max {
        let chars = value.chars().count();
        if chars > max {
            return Some(format!("is {chars} characters long; at most {max} are allowed"));
        }
    }
    let allowed = |c: char| multi_line && matches!(c, '\n' | '\r' | '\t');
    value.chars().find(|c| c.is_control() && !allowed(*c)).map(|c| {
        format!(
            "must not contain control characters (found U+{:04X}){}",
            u32::from(c),
            if multi_line { "" } else { "; it is a single line" }
        )
    })
}

/// A message whose strings can be checked.
pub trait TextFields {
    fn visit_text(&self, v: &mut Visitor);
}

impl TextFields for () {
    fn visit_text(&self, _: &mut Visitor) {}
}

/// Walks a message's strings, remembering where it is and what is wrong.
#[derive(Default)]
pub struct Visitor {
    path: String,
    violations: Vec<FieldViolation>,
}

impl Visitor {
    pub fn text(&mut self, qualified: &str, name: &str, value: &str) {
        if self.violations.len() >= MAX_VIOLATIONS {
            return;
        }
        if let Some(description) = problem(rule(qualified), value) {
            self.violations.push(FieldViolation {
                field: format!("{}{name}", self.path),
                description,
            });
        }
    }

    pub fn text_at(&mut self, qualified: &str, name: &str, index: usize, value: &str) {
        self.text(qualified, &format!("{name}[{index}]"), value);
    }

    pub fn within(&mut self, name: &str, visit: impl FnOnce(&mut Visitor)) {
        let outer = self.path.len();
        self.path.push_str(name);
        self.path.push('.');
        visit(self);
        self.path.truncate(outer);
    }

    pub fn within_at(&mut self, name: &str, index: usize, visit: impl FnOnce(&mut Visitor)) {
        self.within(&format!("{name}[{index}]"), visit);
    }
}

/// The refusal of a message with bad strings, if it has any.
pub fn check(message: &impl TextFields) -> Result<(), Error> {
    let mut visitor = Visitor::default();
    message.visit_text(&mut visitor);
    if visitor.violations.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(visitor.violations))
    }
}

/// prost's codec, with every decoded message checked by `check`.
pub struct CheckedCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for CheckedCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for CheckedCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + TextFields + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = CheckedDecoder<<ProstCodec<T, U> as Codec>::Decoder>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        CheckedDecoder(ProstCodec::<T, U>::default().decoder())
    }
}

pub struct CheckedDecoder<D>(D);

impl<D> Decoder for CheckedDecoder<D>
where
    D: Decoder<Error = Status>,
    D::Item: TextFields,
{
    type Item = D::Item;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let message = self.0.decode(buf)?;
        if let Some(message) = &message {
            check(message)?;
        }
        Ok(message)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_refuse_every_control_character_and_texts_allow_line_breaks() {
        let line = Rule::Line(10);
        assert_eq!(problem(line, "plain"), None);
        for bad in ["a\0", "a\nb", "tab\there", "\u{7f}", "\u{85}"] {
            assert!(problem(line, bad).is_some(), "{bad:?}");
        }
        let text = Rule::Text(10);
        assert_eq!(problem(text, "a\r\nb\tc"), None);
        assert!(problem(text, "a\0").is_some());
        assert_eq!(problem(Rule::Own, "\0"), None);
    }

    #[test]
    fn every_field_the_rules_name_exists_in_the_api() {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET);
        assert!(set.is_ok(), "{set:?}");
        let Ok(set) = set else { return };
        let fields: Vec<String> = set
            .file
            .iter()
            .filter(|f| f.package() == "onramp.v1")
            .flat_map(|f| &f.message_type)
            .flat_map(|m| {
                m.field
                    .iter()
                    .map(move |f| format!("onramp.v1.{}.{}", m.name(), f.name()))
            })
            .collect();
        for named in [
            "onramp.v1.SendInvitationsRequest.recipients_text",
            "onramp.v1.SendInvitationsRequest.emails",
            "onramp.v1.InvitationRecipients.recipients_text",
            "onramp.v1.InvitationRecipients.emails",
            "onramp.v1.ImportUsersRequest.csv_chunk",
            "onramp.v1.ImportUsersCsvRequest.csv",
            "onramp.v1.ImportRow.email",
            "onramp.v1.Template.text_body",
            "onramp.v1.Template.html_body",
            "onramp.v1.Terms.text",
            "onramp.v1.CreateRoleRequest.description",
        ] {
            assert!(fields.iter().any(|f| f == named), "{named} is not a field");
            assert_ne!(
                rule(named),
                Rule::Line(MAX_LINE),
                "{named} has no rule of its own"
            );
        }
    }

    #[test]
    fn length_is_counted_in_characters_and_the_value_is_never_quoted() {
        assert_eq!(problem(Rule::Line(3), "ééé"), None);
        let long = "secret".repeat(100);
        let said = problem(Rule::Line(10), &long).unwrap_or_default();
        assert!(said.contains("600 characters"), "{said}");
        assert!(!said.contains("secret"));
    }
}
