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

/// The pieces of pasted text, respecting quotes and angle brackets, as
/// (input, display name, address) slices of the text: nothing is copied, so
/// reading a long list costs no memory.
pub struct Pieces<'a> {
    text: &'a str,
    pos: usize,
    words: Option<std::str::SplitWhitespace<'a>>,
}

impl<'a> Pieces<'a> {
    pub fn new(text: &'a str) -> Self {
        Pieces {
            text,
            pos: 0,
            words: None,
        }
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = (&'a str, &'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(word) = self.words.as_mut().and_then(Iterator::next) {
                return Some((word, "", word));
            }
            self.words = None;
            if self.pos >= self.text.len() {
                return None;
            }
            let rest = &self.text[self.pos..];
            let (mut quoted, mut angled) = (false, false);
            let (mut end, mut next) = (rest.len(), self.text.len());
            for (i, c) in rest.char_indices() {
                match c {
                    '"' => quoted = !quoted,
                    '<' if !quoted => angled = true,
                    '>' if !quoted => {
                        (end, next) = (i + 1, self.pos + i + 1);
                        break;
                    }
                    ',' | ';' | '\n' | '\r' if !quoted && !angled => {
                        (end, next) = (i, self.pos + i + 1);
                        break;
                    }
                    _ => {}
                }
            }
            self.pos = next;
            let piece = rest[..end].trim();
            if piece.is_empty() {
                continue;
            }
            if let (Some(open), true) = (piece.find('<'), piece.ends_with('>')) {
                let name = piece[..open].trim().trim_matches('"').trim();
                let address = piece[open + 1..piece.len() - 1].trim();
                return Some((piece, name, address));
            }
            // Plain addresses separated by spaces.
            self.words = Some(piece.split_whitespace());
        }
    }
}

/// Counts the entries of pasted text without keeping them.
pub fn count(text: &str) -> usize {
    Pieces::new(text).count()
}

/// Every entry of pasted text and of a list of addresses, in order, each
/// address checked and compared with the earlier ones. Earlier addresses are
/// remembered as 64-bit hashes, so a long list costs 8 bytes an address.
pub struct Entries<'a> {
    pieces: Box<dyn Iterator<Item = (&'a str, &'a str, &'a str)> + Send + 'a>,
    seen: HashSet<u64>,
}

impl<'a> Entries<'a> {
    pub fn new(text: &'a str, emails: &'a [String]) -> Self {
        Entries {
            pieces: Box::new(Pieces::new(text).chain(emails.iter().flat_map(|e| Pieces::new(e)))),
            seen: HashSet::new(),
        }
    }
}

fn address_hash(address: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&address.to_lowercase(), &mut hasher);
    std::hash::Hasher::finish(&hasher)
}

impl Iterator for Entries<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let (input, name, address) = self.pieces.next()?;
        let parsed = match validate::email(address) {
            Ok(address) if self.seen.insert(address_hash(&address)) => Parsed::Address(address),
            Ok(address) => Parsed::Duplicate(address),
            Err(reason) => Parsed::Invalid(reason),
        };
        Some(Entry {
            input: input.to_owned(),
            name: name.to_owned(),
            parsed,
        })
    }
}

/// Reads every entry of pasted text and of a list of addresses, in order.
pub fn parse(text: &str, emails: &[String]) -> Vec<Entry> {
    Entries::new(text, emails).collect()
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

    proptest::proptest! {
        #[test]
        fn any_text_parses_without_panicking_and_keeps_every_entry(text in "\\PC{0,200}") {
            let entries = parse(&text, &[]);
            proptest::prop_assert!(entries.iter().all(|e| !e.input.trim().is_empty()));
            proptest::prop_assert_eq!(entries.len(), count(&text));
        }

        #[test]
        fn valid_addresses_survive_any_separators(
            locals in proptest::collection::vec("[a-z][a-z0-9]{0,4}(\\.[a-z0-9]{1,4}){0,2}", 1..20),
            separator in proptest::sample::select(vec![",", ";", "\n", " ", ", ", "\r\n"]),
        ) {
            let addresses: Vec<String> = locals.iter().enumerate().map(|(i, l)| format!("{l}{i}@example.com")).collect();
            let entries = parse(&addresses.join(separator), &[]);
            let parsed: Vec<String> = entries.iter().filter_map(|e| match &e.parsed {
                Parsed::Address(a) => Some(a.clone()),
                _ => None,
            }).collect();
            proptest::prop_assert_eq!(parsed, addresses);
        }
    }
}
