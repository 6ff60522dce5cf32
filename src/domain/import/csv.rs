//! An incremental CSV reader (RFC 4180: quoted fields, doubled quotes, CRLF
//! or LF) fed with chunks that may split a line anywhere. Blank lines are
//! skipped. A field longer than `MAX_FIELD_CHARS` marks its record as too
//! long instead of growing without bound, so memory stays flat whatever the
//! input.

pub const MAX_FIELD_CHARS: usize = 2_000;
pub const MAX_FIELDS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    StartField,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub fields: Vec<String>,
    /// The record broke the limits (or left a quote open at the end).
    pub malformed: Option<String>,
}

#[derive(Debug)]
pub struct CsvReader {
    state: State,
    field: String,
    field_chars: usize,
    fields: Vec<String>,
    malformed: Option<String>,
}

impl Default for CsvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvReader {
    pub fn new() -> Self {
        CsvReader {
            state: State::StartField,
            field: String::new(),
            field_chars: 0,
            fields: Vec::new(),
            malformed: None,
        }
    }

    /// Reads a chunk; answers the records it completed.
    pub fn feed(&mut self, chunk: &str) -> Vec<Record> {
        let mut done = Vec::new();
        for c in chunk.chars() {
            match (self.state, c) {
                (State::StartField, '"') => self.state = State::Quoted,
                (State::Quoted, '"') => self.state = State::QuoteInQuoted,
                (State::QuoteInQuoted, '"') => {
                    self.push_char('"');
                    self.state = State::Quoted;
                }
                (State::Quoted, c) => self.push_char(c),
                (_, ',') => self.end_field(),
                (_, '\r') => {}
                (_, '\n') => {
                    if let Some(record) = self.end_record() {
                        done.push(record);
                    }
                }
                (_, c) => {
                    self.push_char(c);
                    self.state = State::Unquoted;
                }
            }
        }
        done
    }

    /// Ends the input; answers the last record if the text did not end with a
    /// line break.
    pub fn finish(&mut self) -> Option<Record> {
        if self.state == State::Quoted && self.malformed.is_none() {
            self.malformed = Some("a quoted field is not closed".into());
        }
        self.end_record()
    }

    fn push_char(&mut self, c: char) {
        if self.field_chars < MAX_FIELD_CHARS {
            self.field.push(c);
        } else if self.malformed.is_none() {
            self.malformed = Some(format!("a field is longer than {MAX_FIELD_CHARS} characters"));
        }
        self.field_chars += 1;
    }

    fn end_field(&mut self) {
        if self.fields.len() < MAX_FIELDS {
            self.fields.push(std::mem::take(&mut self.field));
        } else if self.malformed.is_none() {
            self.malformed = Some(format!("the row has more than {MAX_FIELDS} columns"));
        }
        self.field.clear();
        self.field_chars = 0;
        self.state = State::StartField;
    }

    fn end_record(&mut self) -> Option<Record> {
        let blank = self.fields.is_empty() && self.field.is_empty() && self.state == State::StartField;
        self.end_field();
        let fields = std::mem::take(&mut self.fields);
        let malformed = self.malformed.take();
        if blank && malformed.is_none() {
            return None;
        }
        Some(Record { fields, malformed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_in_chunks(text: &str, size: usize) -> Vec<Record> {
        let mut reader = CsvReader::new();
        let chars: Vec<char> = text.chars().collect();
        let mut records = Vec::new();
        for chunk in chars.chunks(size) {
            records.extend(reader.feed(&chunk.iter().collect::<String>()));
        }
        records.extend(reader.finish());
        records
    }

    fn fields(records: &[Record]) -> Vec<Vec<&str>> {
        records
            .iter()
            .map(|r| r.fields.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn quotes_commas_and_line_breaks_survive_any_chunking() {
        let text = "email,first_name\r\n\"a@x.io\",\"Smith, \"\"Jo\"\"\"\n\nb@x.io,\"two\nlines\"\nc@x.io,";
        let expected = vec![
            vec!["email", "first_name"],
            vec!["a@x.io", "Smith, \"Jo\""],
            vec!["b@x.io", "two\nlines"],
            vec!["c@x.io", ""],
        ];
        for size in 1..=text.len() {
            assert_eq!(fields(&read_in_chunks(text, size)), expected, "chunk size {size}");
        }
    }

    #[test]
    fn limits_mark_the_record_instead_of_growing() {
        let long = format!("a,{}\nb,c\n", "x".repeat(MAX_FIELD_CHARS + 10));
        let records = read_in_chunks(&long, 7);
        assert!(
            records[0]
                .malformed
                .as_deref()
                .is_some_and(|m| m.contains("longer"))
        );
        assert_eq!(records[0].fields[1].len(), MAX_FIELD_CHARS);
        assert_eq!(records[1].malformed, None);
        let open = read_in_chunks("a,\"never closed\n", 4);
        assert!(
            open[0]
                .malformed
                .as_deref()
                .is_some_and(|m| m.contains("not closed"))
        );
    }

    proptest::proptest! {
        #[test]
        fn any_records_round_trip_through_any_chunking(
            records in proptest::collection::vec(proptest::collection::vec("\\PC{0,12}", 1..5), 1..20),
            chunk in 1usize..40,
        ) {
            let encode = |field: &String| format!("\"{}\"", field.replace('"', "\"\""));
            let text: String = records
                .iter()
                .map(|r| r.iter().map(encode).collect::<Vec<_>>().join(",") + "\r\n")
                .collect();
            let got = read_in_chunks(&text, chunk);
            let fields: Vec<Vec<String>> = got.into_iter().map(|r| r.fields).collect();
            proptest::prop_assert_eq!(fields, records);
        }

        #[test]
        fn any_bytes_read_without_panicking(text in "\\PC{0,300}", chunk in 1usize..50) {
            let records = read_in_chunks(&text, chunk);
            proptest::prop_assert!(records.iter().all(|r| r.fields.len() <= MAX_FIELDS));
        }
    }
}
