//! Splits selector bytes into tokens, each with its byte offset.

use crate::{ParseError, MAX_LABEL_LENGTH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Eq,
    Ne,
    And,
    Or,
    Not,
    Has(String),
    All,
    Global,
    Label(String),
    Str(String),
    Contains,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    Eof,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) offset: usize,
}

/// True for the bytes a label key may contain.
pub(crate) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Tokenizes the whole input; the last token is always `Eof`.
pub(crate) fn tokenize(input: &[u8]) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer { input, pos: 0 };
    let mut tokens = Vec::new();
    let mut after_label = false;
    loop {
        lexer.skip_space();
        let offset = lexer.pos;
        let Some(&c) = input.get(offset) else {
            tokens.push(Token {
                tok: Tok::Eof,
                offset,
            });
            return Ok(tokens);
        };
        let tok = match c {
            b'(' => lexer.single(Tok::LParen),
            b')' => lexer.single(Tok::RParen),
            b'{' => lexer.single(Tok::LBrace),
            b'}' => lexer.single(Tok::RBrace),
            b',' => lexer.single(Tok::Comma),
            b'"' | b'\'' => lexer.string(c)?,
            b'=' => lexer.pair(
                b'=',
                Tok::Eq,
                "expected '==' (a single '=' is not an operator)",
            )?,
            b'&' => lexer.pair(b'&', Tok::And, "expected '&&'")?,
            b'|' => lexer.pair(b'|', Tok::Or, "expected '||'")?,
            b'!' => {
                if input.get(offset + 1) == Some(&b'=') {
                    lexer.pos += 2;
                    Tok::Ne
                } else {
                    lexer.single(Tok::Not)
                }
            }
            _ if after_label => lexer.word_operator()?,
            _ => lexer.operand()?,
        };
        after_label = matches!(tok, Tok::Label(_));
        tokens.push(Token { tok, offset });
    }
}

struct Lexer<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn skip_space(&mut self) {
        while self.input.get(self.pos).copied().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    fn rest(&self) -> &[u8] {
        &self.input[self.pos..]
    }

    fn single(&mut self, tok: Tok) -> Tok {
        self.pos += 1;
        tok
    }

    fn pair(&mut self, second: u8, tok: Tok, message: &str) -> Result<Tok, ParseError> {
        if self.input.get(self.pos + 1) == Some(&second) {
            self.pos += 2;
            Ok(tok)
        } else {
            Err(ParseError::new(self.pos, message))
        }
    }

    /// A quoted literal: everything up to the next identical quote, no escapes.
    fn string(&mut self, quote: u8) -> Result<Tok, ParseError> {
        let start = self.pos;
        let body = &self.input[start + 1..];
        let Some(len) = body.iter().position(|&b| b == quote) else {
            return Err(ParseError::new(start, "unterminated string literal"));
        };
        self.pos = start + 1 + len + 1;
        Ok(Tok::Str(text(&body[..len])))
    }

    /// Length of the identifier starting at the current position.
    fn ident_len(&self) -> usize {
        self.rest()
            .iter()
            .take_while(|&&b| is_ident_byte(b))
            .count()
    }

    /// Reads a label key at the current position.
    fn ident(&mut self, what: &str) -> Result<String, ParseError> {
        let len = self.ident_len();
        if len == 0 {
            return Err(unexpected(self.input, self.pos, what));
        }
        if len > MAX_LABEL_LENGTH {
            return Err(ParseError::new(
                self.pos,
                format!("label key is {len} bytes long; the maximum is {MAX_LABEL_LENGTH}"),
            ));
        }
        let key = text(&self.input[self.pos..self.pos + len]);
        self.pos += len;
        Ok(key)
    }

    /// True and consumed if the input continues with `word` followed by a word boundary.
    fn keyword(&mut self, word: &[u8]) -> bool {
        let rest = self.rest();
        let boundary = rest.get(word.len()).is_none_or(|&b| !is_ident_byte(b));
        if rest.starts_with(word) && boundary {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// Matches `first` space* `second` with a word boundary after it, or nothing at all.
    fn two_words(&mut self, first: &[u8], second: &[u8]) -> bool {
        let save = self.pos;
        if self.rest().starts_with(first) {
            self.pos += first.len();
            self.skip_space();
            if self.keyword(second) {
                return true;
            }
        }
        self.pos = save;
        false
    }

    /// After a label only a comparison or membership operator may follow.
    fn word_operator(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        if self.keyword(b"contains") {
            Ok(Tok::Contains)
        } else if self.two_words(b"starts", b"with") {
            Ok(Tok::StartsWith)
        } else if self.two_words(b"ends", b"with") {
            Ok(Tok::EndsWith)
        } else if self.two_words(b"not", b"in") {
            Ok(Tok::NotIn)
        } else if self.keyword(b"in") {
            Ok(Tok::In)
        } else {
            Err(unexpected(
                self.input,
                start,
                "an operator (==, !=, in, not in, contains, starts with, ends with)",
            ))
        }
    }

    /// At operand position: `has(key)`, `all()`, `global()` or a label key.
    fn operand(&mut self) -> Result<Tok, ParseError> {
        if self.rest().starts_with(b"has(") {
            self.pos += 4;
            self.skip_space();
            let key = self.ident("a label key inside has( )")?;
            self.skip_space();
            self.close_paren("has(")?;
            Ok(Tok::Has(key))
        } else if self.rest().starts_with(b"all(") {
            self.pos += 4;
            self.skip_space();
            self.close_paren("all(")?;
            Ok(Tok::All)
        } else if self.rest().starts_with(b"global(") {
            self.pos += 7;
            self.skip_space();
            self.close_paren("global(")?;
            Ok(Tok::Global)
        } else {
            self.ident("a label key, has(), all(), '(' or '!'")
                .map(Tok::Label)
        }
    }

    fn close_paren(&mut self, opened: &str) -> Result<(), ParseError> {
        if self.input.get(self.pos) == Some(&b')') {
            self.pos += 1;
            Ok(())
        } else {
            Err(unexpected(
                self.input,
                self.pos,
                &format!("')' to close {opened}"),
            ))
        }
    }
}

/// Bytes that came from a `&str` split at ASCII positions are always valid UTF-8.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// "expected X, found Y" for the character (or end) at `offset`.
fn unexpected(input: &[u8], offset: usize, expected: &str) -> ParseError {
    let found = match input.get(offset) {
        None => "end of selector".to_string(),
        Some(&b) if b.is_ascii_graphic() => format!("'{}'", b as char),
        Some(&b) => format!("byte 0x{b:02x}"),
    };
    ParseError::new(offset, format!("expected {expected}, found {found}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn word_operators_only_after_a_label() {
        assert_eq!(
            toks("in in {\"in\"}"),
            vec![
                Tok::Label("in".into()),
                Tok::In,
                Tok::LBrace,
                Tok::Str("in".into()),
                Tok::RBrace,
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("contains contains 'x'"),
            vec![
                Tok::Label("contains".into()),
                Tok::Contains,
                Tok::Str("x".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn multi_word_operators_allow_any_blank_run() {
        assert_eq!(toks("a startswith 'x'")[1], Tok::StartsWith);
        assert_eq!(toks("a starts \t with 'x'")[1], Tok::StartsWith);
        assert_eq!(toks("a notin {}")[1], Tok::NotIn);
        assert_eq!(toks("a endswith\"x\"")[1], Tok::EndsWith);
        assert_eq!(toks("a in{}")[1], Tok::In);
    }

    #[test]
    fn word_operators_need_a_boundary() {
        assert!(tokenize(b"a inf {}").is_err());
        assert!(tokenize(b"a startswiths 'x'").is_err());
        assert!(tokenize(b"a IN {}").is_err());
    }

    #[test]
    fn offsets_are_bytes() {
        let t = tokenize("a == \"é\" && b".as_bytes()).unwrap();
        assert_eq!(t[3].tok, Tok::And);
        assert_eq!(t[3].offset, 10);
    }
}
