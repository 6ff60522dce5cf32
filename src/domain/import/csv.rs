//! An incremental CSV reader over `csv-core` (RFC 4180: quoted fields,
//! doubled quotes, CRLF or LF), fed with chunks that may split a line
//! anywhere. Blank lines are skipped. A field longer than `MAX_FIELD_CHARS`
//! marks its record as too long instead of growing without bound, so memory
//! stays flat whatever the input.

use csv_core::{ReadFieldResult, Reader};

pub const MAX_FIELD_CHARS: usize = 2_000;
pub const MAX_FIELDS: usize = 64;
/// The most bytes of a field kept: `MAX_FIELD_CHARS` of the widest UTF-8.
const MAX_FIELD_BYTES: usize = MAX_FIELD_CHARS * 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub fields: Vec<String>,
    /// The record broke the limits (or left a quote open at the end).
    pub malformed: Option<String>,
}

pub struct CsvReader {
    core: Reader,
    field: Vec<u8>,
    field_bytes: usize,
    fields: Vec<String>,
    malformed: Option<String>,
    /// Whether the current field began with a quote, once its first byte
    /// was read, and the quotes it holds so far: a quoted field whose
    /// quotes are odd in number is still open.
    quoted: Option<bool>,
    quotes: usize,
    /// Whether any field of the current record was quoted: `""` is a
    /// record of one empty field, not a blank line.
    record_quoted: bool,
}

impl Default for CsvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvReader {
    pub fn new() -> Self {
        CsvReader {
            core: Reader::new(),
            field: Vec::new(),
            field_bytes: 0,
            fields: Vec::new(),
            malformed: None,
            quoted: None,
            quotes: 0,
            record_quoted: false,
        }
    }

    /// Reads a chunk; answers the records it completed.
    pub fn feed(&mut self, chunk: &str) -> Vec<Record> {
        let mut done = Vec::new();
        let mut input = chunk.as_bytes();
        while !input.is_empty() {
            let mut out = [0u8; 1024];
            let (result, read, written) = self.core.read_field(input, &mut out);
            self.note_quotes(&input[..read]);
            self.keep(&out[..written]);
            input = &input[read..];
            if let ReadFieldResult::Field { record_end } = result {
                self.end_field();
                if record_end {
                    done.extend(self.end_record());
                }
            }
        }
        done
    }

    /// Ends the input; answers the last record if the text did not end with a
    /// line break.
    pub fn finish(&mut self) -> Option<Record> {
        loop {
            let mut out = [0u8; 1024];
            let (result, _, written) = self.core.read_field(&[], &mut out);
            self.keep(&out[..written]);
            match result {
                ReadFieldResult::Field { record_end } => {
                    if self.quoted == Some(true) && self.quotes % 2 == 1 && self.malformed.is_none() {
                        self.malformed = Some("a quoted field is not closed".into());
                    }
                    self.end_field();
                    if record_end {
                        return self.end_record();
                    }
                }
                ReadFieldResult::End => return None,
                ReadFieldResult::InputEmpty | ReadFieldResult::OutputFull => {}
            }
        }
    }

    fn note_quotes(&mut self, read: &[u8]) {
        if self.quoted.is_none() {
            // Line breaks before a field end the record before it.
            if let Some(first) = read.iter().find(|b| !matches!(b, b'\r' | b'\n')) {
                self.quoted = Some(*first == b'"');
            }
        }
        self.quotes += read.iter().filter(|b| **b == b'"').count();
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_FIELD_BYTES.saturating_sub(self.field.len());
        self.field.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.field_bytes += bytes.len();
    }

    fn end_field(&mut self) {
        let mut field = String::from_utf8_lossy(&self.field).into_owned();
        if field.chars().count() > MAX_FIELD_CHARS || self.field_bytes > MAX_FIELD_BYTES {
            field = field.chars().take(MAX_FIELD_CHARS).collect();
            self.malformed
                .get_or_insert_with(|| format!("a field is longer than {MAX_FIELD_CHARS} characters"));
        }
        if self.fields.len() < MAX_FIELDS {
            self.fields.push(field);
        } else {
            self.malformed
                .get_or_insert_with(|| format!("the row has more than {MAX_FIELDS} columns"));
        }
        self.field.clear();
        self.field_bytes = 0;
        self.record_quoted |= self.quoted == Some(true);
        self.quoted = None;
        self.quotes = 0;
    }

    fn end_record(&mut self) -> Option<Record> {
        let quoted = std::mem::take(&mut self.record_quoted);
        let fields = std::mem::take(&mut self.fields);
        let malformed = self.malformed.take();
        let blank = fields.len() == 1 && fields[0].is_empty() && !quoted;
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
