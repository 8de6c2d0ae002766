//! Splitting the input into YAML documents.

use super::Document;

/// Splits the input before each `---` line (with any `%` directives just above it) and after
/// each `...` line. YAML forbids these markers at column 0 inside content, so this agrees with
/// the parser, and each piece starts at a line start: columns need no adjustment.
pub(super) fn documents(input: &str) -> Vec<Document<'_>> {
    let is_marker = |line: &str, marker: &str| {
        line.strip_prefix(marker)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
    };
    let mut docs = Vec::new();
    let (mut start, mut start_line) = (0, 0u64);
    let mut directives: Option<(usize, u64)> = None;
    let mut offset = 0;
    for (line_no, line) in (0u64..).zip(input.split_inclusive('\n')) {
        if is_marker(line, "---") {
            let (cut, cut_line) = directives.unwrap_or((offset, line_no));
            if cut > start {
                docs.push(Document {
                    text: &input[start..cut],
                    lines_before: start_line,
                });
            }
            (start, start_line) = (cut, cut_line);
        }
        directives = match directives {
            _ if !line.starts_with('%') => None,
            None => Some((offset, line_no)),
            kept => kept,
        };
        offset += line.len();
        if is_marker(line, "...") {
            docs.push(Document {
                text: &input[start..offset],
                lines_before: start_line,
            });
            (start, start_line) = (offset, line_no + 1);
        }
    }
    if start < input.len() || docs.is_empty() {
        docs.push(Document {
            text: &input[start..],
            lines_before: start_line,
        });
    }
    docs
}
