//! Field rules shared by every RPC. Each answers the normalised value or a
//! description of what is wrong, for a field violation.

use uuid::Uuid;

pub const MAX_NAME_LENGTH: usize = 200;
const MAX_EMAIL_LENGTH: usize = 254;
const MAX_LOCAL_PART_LENGTH: usize = 64;

/// Checks an email address and lower-cases its domain. The local part keeps
/// its case (it is the mailbox owner's), but uniqueness ignores case.
pub fn email(input: &str) -> Result<String, String> {
    let address = input.trim();
    if address.is_empty() {
        return Err("is required".into());
    }
    if address.len() > MAX_EMAIL_LENGTH {
        return Err(format!("is longer than {MAX_EMAIL_LENGTH} characters"));
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(format!("{} is not an email address: it has no @", quote(address)));
    };
    if local.is_empty() || local.len() > MAX_LOCAL_PART_LENGTH {
        return Err(format!(
            "{} is not an email address: the part before @ must be 1 to {MAX_LOCAL_PART_LENGTH} characters",
            quote(address)
        ));
    }
    let local_ok = local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return Err(format!(
            "{} is not an email address: the part before @ has characters not allowed there",
            quote(address)
        ));
    }
    let domain = domain.to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if !domain_ok {
        return Err(format!(
            "{} is not an email address: {} is not a valid domain",
            quote(address),
            quote(&domain)
        ));
    }
    Ok(format!("{local}@{domain}"))
}

/// A mobile number in E.164 (`+` and 7 to 15 digits). Spaces, dashes, dots
/// and parentheses are dropped first, as people type them.
pub fn mobile(input: &str) -> Result<String, String> {
    let compact: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or("");
    let ok = (7..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(compact)
    } else {
        Err(format!(
            "{} is not a mobile number in international form, such as +447700900123",
            quote(input.trim())
        ))
    }
}

/// An optional mobile: empty stays empty.
pub fn optional_mobile(input: &str) -> Result<String, String> {
    if input.trim().is_empty() {
        Ok(String::new())
    } else {
        mobile(input)
    }
}

/// A username: 1 to 254 characters without spaces or control characters.
pub fn username(input: &str) -> Result<String, String> {
    let name = input.trim();
    if name.is_empty() {
        return Err("is required".into());
    }
    if name.chars().count() > MAX_EMAIL_LENGTH {
        return Err(format!("is longer than {MAX_EMAIL_LENGTH} characters"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(name.to_owned())
}

/// A required display name (organisation, service area, role).
pub fn name(input: &str) -> Result<String, String> {
    let name = input.trim();
    if name.is_empty() {
        return Err("is required".into());
    }
    line(name, MAX_NAME_LENGTH)
}

/// One line of text of at most `max` characters, without any control
/// character: names, which every client shows on one line (and which the
/// request check refuses with line breaks in them too).
pub fn line(input: &str, max: usize) -> Result<String, String> {
    let text = optional_text(input, max)?;
    if text.chars().any(char::is_control) {
        return Err("must be one line, without tabs or line breaks".into());
    }
    Ok(text)
}

/// Free text of at most `max` characters, without control characters other
/// than line breaks.
pub fn optional_text(input: &str, max: usize) -> Result<String, String> {
    let text = input.trim();
    if text.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    Ok(text.to_owned())
}

pub fn id(input: &str) -> Result<Uuid, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("is required".into());
    }
    Uuid::parse_str(trimmed).map_err(|_| format!("{} is not a valid id", quote(trimmed)))
}

/// Characters of a bad value an error message quotes at most.
const QUOTED_CHARACTERS: usize = 64;

/// A bad value as an error message shows it: in quotes, at most a short
/// prefix, control characters as U+FFFD. A message never carries a large or
/// binary value back to the caller, into a log or into the database.
pub fn quote(value: &str) -> String {
    let mut shown: String = value
        .chars()
        .take(QUOTED_CHARACTERS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if value.chars().nth(QUOTED_CHARACTERS).is_some() {
        shown.push('…');
    }
    format!("'{shown}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email(" Ada.Lovelace@Example.COM "),
            Ok("Ada.Lovelace@example.com".into())
        );
        assert_eq!(
            email("o'brien+tag@mail.example.org"),
            Ok("o'brien+tag@mail.example.org".into())
        );
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@-b.com",
            "a..b@example.com",
            "a b@example.com",
            "a@example.c0m",
            "a@exa_mple.com",
        ] {
            assert!(email(bad).is_err(), "{bad} passed");
        }
    }

    #[test]
    fn mobiles() {
        assert_eq!(mobile("+44 7700 900-123"), Ok("+447700900123".into()));
        for bad in [
            "07700900123",
            "+0123456789",
            "+12",
            "+1234567890123456",
            "+44 77OO",
        ] {
            assert!(mobile(bad).is_err(), "{bad} passed");
        }
        assert_eq!(optional_mobile("  "), Ok(String::new()));
    }

    #[test]
    fn names_and_usernames() {
        assert!(name("  ").is_err());
        assert!(name(&"x".repeat(201)).is_err());
        assert!(name("two\nlines").is_err());
        assert!(line("tab\there", 10).is_err());
        assert_eq!(line(" Ada ", 10), Ok("Ada".into()));
        assert!(username("jane doe").is_err());
        assert_eq!(username(" jdoe "), Ok("jdoe".into()));
        assert!(id("nope").is_err());
    }

    #[test]
    fn errors_quote_a_short_clean_prefix() {
        let said = id(&"\0x".repeat(10_000)).err().unwrap_or_default();
        assert!(said.len() < 200, "{said}");
        assert!(!said.contains('\0'));
        assert!(said.contains('…'));
        let said = email("a\0b@example.com").err().unwrap_or_default();
        assert!(said.contains("not an email") && !said.contains('\0'), "{said}");
    }
}
