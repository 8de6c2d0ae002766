//! calicoctl 0.x's `print_paragraph`: a message wrapped to 80 columns the way Python's
//! `textwrap.wrap` does it, followed by an empty line.

/// The width `print_paragraph` wraps at.
const WIDTH: usize = 80;

/// The message wrapped to 80 columns, then an empty line (so it ends with two newlines).
pub fn paragraph(message: &str) -> String {
    let mut out = wrap(message, WIDTH).join("\n");
    out.push_str("\n\n");
    out
}

/// Greedy line filling over `textwrap`'s chunks: whitespace is dropped at line ends and at
/// the start of every line but the first; a chunk longer than a line is cut.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut chunks: Vec<String> = chunks(text).into_iter().rev().collect();
    let mut lines: Vec<String> = Vec::new();
    while !chunks.is_empty() {
        if !lines.is_empty() && chunks.last().is_some_and(|c| is_space(c)) {
            chunks.pop();
        }
        let mut line: Vec<String> = Vec::new();
        let mut len = 0;
        while let Some(chunk) = chunks.last() {
            let n = chunk.chars().count();
            if len + n > width {
                break;
            }
            len += n;
            line.extend(chunks.pop());
        }
        if let Some(long) = chunks.pop_if(|c| c.chars().count() > width) {
            let cut = (width - len).max(1);
            line.push(long.chars().take(cut).collect());
            chunks.push(long.chars().skip(cut).collect());
        }
        if line.last().is_some_and(|c| is_space(c)) {
            line.pop();
        }
        if !line.is_empty() {
            lines.push(line.concat());
        }
    }
    lines
}

fn is_space(chunk: &str) -> bool {
    chunk.chars().all(char::is_whitespace)
}

/// `textwrap`'s chunks: runs of whitespace, and words, with hyphenated words split after
/// each hyphen that joins two parts of at least two word characters ending in a letter
/// (`comma-separated` → `comma-`, `separated`; `1000-2000` stays whole).
fn chunks(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let space = chars[start].is_whitespace();
        let end = (start..chars.len())
            .find(|&i| chars[i].is_whitespace() != space)
            .unwrap_or(chars.len());
        if space {
            out.push(chars[start..end].iter().collect());
        } else {
            split_hyphens(&chars[start..end], &mut out);
        }
        start = end;
    }
    out
}

fn split_hyphens(word: &[char], out: &mut Vec<String>) {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let is_letter = |c: char| is_word(c) && !c.is_ascii_digit();
    let mut start = 0;
    for (i, &c) in word.iter().enumerate() {
        if c != '-' || i < 2 {
            continue;
        }
        let run_start = (start..i)
            .rev()
            .find(|&j| !is_word(word[j]))
            .map_or(start, |j| j + 1);
        let before_ok = i - run_start >= 2 && is_letter(word[i - 1]);
        let after: Vec<char> = word[i + 1..]
            .iter()
            .copied()
            .take_while(|&c| is_word(c))
            .collect();
        let after_ok = after.len() >= 2 && after[1..].iter().any(|&c| is_letter(c));
        if !(before_ok && after_ok) {
            continue;
        }
        let lead = (start..run_start)
            .rev()
            .find(|&j| is_word(word[j]))
            .map_or(start, |j| j + 1);
        if lead > start {
            out.push(word[start..lead].iter().collect());
        }
        out.push(word[lead..=i].iter().collect());
        start = i + 1;
    }
    if start < word.len() {
        out.push(word[start..].iter().collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected lines come from Python 2.7's `textwrap.wrap(msg, width=80)`.
    #[test]
    fn wraps_like_python_textwrap() {
        assert_eq!(
            wrap(
                "Ports: '80x' are invalid; expecting a comma-separated list of ports and port ranges.",
                80
            ),
            [
                "Ports: '80x' are invalid; expecting a comma-separated list of ports and port",
                "ranges."
            ]
        );
        assert_eq!(
            wrap(
                "You are referencing a Docker network (only-local-pings) that does not exist.  \
                 Create the network first and then update this profile rule to reference it.",
                80
            ),
            [
                "You are referencing a Docker network (only-local-pings) that does not exist.",
                "Create the network first and then update this profile rule to reference it."
            ]
        );
        assert_eq!(
            wrap(
                "Profile names must be < 40 character long and can only contain numbers, \
                 letters, dots, dashes and underscores.",
                80
            ),
            [
                "Profile names must be < 40 character long and can only contain numbers, letters,",
                "dots, dashes and underscores."
            ]
        );
    }

    #[test]
    fn breaks_after_hyphens_between_words_only() {
        assert_eq!(
            chunks("a comma-separated x"),
            ["a", " ", "comma-", "separated", " ", "x"]
        );
        assert_eq!(
            chunks("1000-2000 ab-c x-yz"),
            ["1000-2000", " ", "ab-c", " ", "x-yz"]
        );
        assert_eq!(chunks("(only-local-pings)"), ["(only-", "local-", "pings)"]);
        assert_eq!(chunks("x.(ab-cd"), ["x", ".(ab-", "cd"]);
        assert_eq!(
            wrap("aaaa bbbb-cccc", 10),
            ["aaaa bbbb-", "cccc"],
            "a line may end at a hyphen"
        );
    }

    #[test]
    fn long_words_are_cut_and_paragraphs_end_with_a_blank_line() {
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(paragraph("short"), "short\n\n");
    }
}
