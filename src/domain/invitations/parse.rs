//! Reading pasted recipients: one address a line, or separated by commas,
//! semicolons or spaces, with `Name <addr>` and `"Last, First" <addr>` forms.
//! Every entry is kept with the text it came from, so a person can see which
//! ones were not recognised.

use std::collections::HashSet;

use crate::domain::validate;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry as pasted.
    pub input: String,
    /// The display name of a `Name <addr>` entry.
    pub name: String,
    pub parsed: Parsed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Address(String),
    Invalid(String),
    /// The address of an earlier entry again.
    Duplicate(String),
}

/// Splits pasted text into entries, respecting quotes and angle brackets.
pub fn split(text: &str) -> Vec<(String, String)> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut angled) = (false, false);
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            '<' if !quoted => {
                angled = true;
                current.push(c);
            }
            '>' if !quoted => {
                angled = false;
                current.push(c);
                pieces.push(std::mem::take(&mut current));
            }
            ',' | ';' | '\n' | '\r' if !quoted && !angled => pieces.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    pieces.push(current);

    let mut entries = Vec::new();
    for piece in pieces {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        if let (Some(open), true) = (piece.find('<'), piece.ends_with('>')) {
            let name = piece[..open].trim().trim_matches('"').trim().to_owned();
            let address = piece[open + 1..piece.len() - 1].trim().to_owned();
            entries.push((piece.to_owned(), format!("{name}\u{0}{address}")));
        } else {
            // Plain addresses separated by spaces.
            for word in piece.split_whitespace() {
                entries.push((word.to_owned(), format!("\u{0}{word}")));
            }
        }
    }
    entries
}

/// Reads every entry of pasted text and of a list of addresses, in order.
pub fn parse(text: &str, emails: &[String]) -> Vec<Entry> {
    let mut seen = HashSet::new();
    let raw = split(text)
        .into_iter()
        .chain(emails.iter().flat_map(|e| split(e)));
    raw.map(|(input, packed)| {
        let (name, address) = packed.split_once('\u{0}').unwrap_or(("", &packed));
        let parsed = match validate::email(address) {
            Ok(address) if seen.insert(address.to_lowercase()) => Parsed::Address(address),
            Ok(address) => Parsed::Duplicate(address),
            Err(reason) => Parsed::Invalid(reason),
        };
        Entry {
            input,
            name: name.to_owned(),
            parsed,
        }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match &e.parsed {
                Parsed::Address(a) => a.clone(),
                Parsed::Invalid(_) => format!("invalid:{}", e.input),
                Parsed::Duplicate(a) => format!("duplicate:{a}"),
            })
            .collect()
    }

    #[test]
    fn reads_lines_commas_semicolons_spaces_and_named_forms() {
        let text = "ada@example.com, grace@example.com\n\
                    \"Hopper, Grace\" <GRACE@example.com>; Alan Turing <alan@example.com>\r\n\
                    not-an-address  linus@example.com\n\n";
        let entries = parse(text, &["Ken <ken@example.com>".into()]);
        assert_eq!(
            addresses(&entries),
            [
                "ada@example.com",
                "grace@example.com",
                "duplicate:GRACE@example.com",
                "alan@example.com",
                "invalid:not-an-address",
                "linus@example.com",
                "ken@example.com",
            ]
        );
        assert_eq!(entries[2].name, "Hopper, Grace");
        assert_eq!(entries[3].name, "Alan Turing");
        assert_eq!(entries[3].input, "Alan Turing <alan@example.com>");
    }

    #[test]
    fn odd_input_never_panics_and_never_loses_an_entry() {
        for text in [
            "<",
            ">",
            "\"",
            "a <b",
            "<<a@b.co>>",
            "\"unclosed <x@y.io>",
            ",,,;;",
            "a@b.co <",
            "é@ü.de",
        ] {
            let entries = parse(text, &[]);
            assert!(entries.iter().all(|e| !e.input.is_empty()), "{text}: {entries:?}");
        }
    }
}
