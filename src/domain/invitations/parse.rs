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
            if let (Some(open), true) = (angle_outside_quotes(piece), piece.ends_with('>')) {
                let name = piece[..open].trim().trim_matches('"').trim();
                let address = piece[open + 1..piece.len() - 1].trim();
                return Some((piece, name, address));
            }
            // Plain addresses separated by spaces.
            self.words = Some(piece.split_whitespace());
        }
    }
}

/// Where the `<` of a `Name <addr>` entry is: the first one outside quotes,
/// so a quoted name may hold angle brackets.
fn angle_outside_quotes(piece: &str) -> Option<usize> {
    let mut quoted = false;
    piece.char_indices().find_map(|(i, c)| match c {
        '"' => {
            quoted = !quoted;
            None
        }
        '<' if !quoted => Some(i),
        _ => None,
    })
}

/// Counts the entries of pasted text without keeping them.
pub fn count(text: &str) -> usize {
    Pieces::new(text).count()
}

/// Every entry of pasted text and of a list of addresses, in order, each
/// address checked and, unless the reader finds repeats itself, compared
/// with the earlier ones. Earlier addresses are remembered as 64-bit hashes,
/// so a long list costs 8 bytes an address.
pub struct Entries<'a> {
    pieces: Box<dyn Iterator<Item = (&'a str, &'a str, &'a str)> + Send + 'a>,
    seen: Option<HashSet<u64>>,
}

impl<'a> Entries<'a> {
    pub fn new(text: &'a str, emails: &'a [String]) -> Self {
        Self::after(text, emails, HashSet::new())
    }

    /// The entries of one part of a request, after earlier parts whose
    /// addresses `seen` holds (as `into_seen` gives them back).
    pub fn after(text: &'a str, emails: &'a [String], seen: HashSet<u64>) -> Self {
        Entries {
            pieces: Box::new(Pieces::new(text).chain(emails.iter().flat_map(|e| Pieces::new(e)))),
            seen: Some(seen),
        }
    }

    /// The entries without comparing addresses: a repeat is an `Address`
    /// again, for a reader that finds repeats another way.
    pub fn unremembered(text: &'a str, emails: &'a [String]) -> Self {
        Entries {
            seen: None,
            ..Self::new(text, emails)
        }
    }

    /// The addresses read so far, to read a next part after them.
    pub fn into_seen(self) -> HashSet<u64> {
        self.seen.unwrap_or_default()
    }
}

/// Characters of an entry kept to show which one it was.
const SHOWN_CHARACTERS: usize = 320;

/// An entry as results show it: a bounded prefix, control characters as
/// U+FFFD, so that no pasted byte can break the database or a display.
fn shown(input: &str) -> String {
    let clean = |c: char| if c.is_control() { '\u{fffd}' } else { c };
    if input.len() <= SHOWN_CHARACTERS && !input.chars().any(char::is_control) {
        return input.to_owned();
    }
    let mut shown: String = input.chars().take(SHOWN_CHARACTERS).map(clean).collect();
    if input.chars().nth(SHOWN_CHARACTERS).is_some() {
        shown.push('…');
    }
    shown
}

pub fn address_hash(address: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&address.to_lowercase(), &mut hasher);
    std::hash::Hasher::finish(&hasher)
}

impl Iterator for Entries<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let (input, name, address) = self.pieces.next()?;
        // A person's name obeys the rules of `CreateUser`'s names.
        let name = validate::line(name, validate::MAX_NAME_LENGTH).map_err(|why| format!("the name {why}"));
        let parsed = match (validate::email(address), &name) {
            (Err(reason), _) => Parsed::Invalid(reason),
            (Ok(_), Err(reason)) => Parsed::Invalid(reason.clone()),
            (Ok(address), Ok(_))
                if self
                    .seen
                    .as_mut()
                    .is_none_or(|seen| seen.insert(address_hash(&address))) =>
            {
                Parsed::Address(address)
            }
            (Ok(address), Ok(_)) => Parsed::Duplicate(address),
        };
        Some(Entry {
            input: shown(input),
            name: name.unwrap_or_default(),
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
    fn a_quoted_name_may_hold_angle_brackets_and_a_long_or_binary_name_is_invalid() {
        let entries = parse("\"A <b>\" <ada@example.com>", &[]);
        assert_eq!(addresses(&entries), ["ada@example.com"]);
        assert_eq!(entries[0].name, "A <b>");
        let long = format!("\"{}\" <ada@example.com>, b\0c@example.com", "n".repeat(201));
        let entries = parse(&long, &[]);
        assert!(matches!(&entries[0].parsed, Parsed::Invalid(why) if why.contains("200")));
        assert!(entries[0].input.chars().count() <= 321);
        assert!(matches!(entries[1].parsed, Parsed::Invalid(_)));
        assert!(!entries[1].input.contains('\0'));
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
        fn any_bytes_give_entries_without_control_characters_or_unbounded_inputs(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
        ) {
            let text = String::from_utf8_lossy(&bytes);
            let entries = parse(&text, &[text.to_string()]);
            proptest::prop_assert_eq!(entries.len(), 2 * count(&text));
            for e in &entries {
                proptest::prop_assert!(!e.input.chars().any(char::is_control));
                proptest::prop_assert!(e.input.chars().count() <= SHOWN_CHARACTERS + 1);
                proptest::prop_assert!(e.name.chars().count() <= validate::MAX_NAME_LENGTH);
                if let Parsed::Invalid(why) = &e.parsed {
                    proptest::prop_assert!(!why.chars().any(char::is_control));
                }
            }
        }

        #[test]
        fn valid_addresses_survive_any_separators(
            locals in proptest::collection::vec("[a-z][a-z0-9]{0,4}(\\.[a-z0-9]{1,4}){0,2}", 1..20),
            separator in proptest::sample::select(vec![",", ";", "\n", " ", ", ", "\r\n"]),
        ) {
            // `.x{i}` ends every local part, so no two addresses are the same
            // (the parser drops repeats): "q1" + "0" and "q" + "10" were.
            let addresses: Vec<String> = locals.iter().enumerate().map(|(i, l)| format!("{l}.x{i}@example.com")).collect();
            let entries = parse(&addresses.join(separator), &[]);
            let parsed: Vec<String> = entries.iter().filter_map(|e| match &e.parsed {
                Parsed::Address(a) => Some(a.clone()),
                _ => None,
            }).collect();
            proptest::prop_assert_eq!(parsed, addresses);
        }
    }
}
