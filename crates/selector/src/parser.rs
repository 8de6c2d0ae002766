//! Recursive-descent parser: `||` below `&&` below `!`, parentheses, and the primaries.

use crate::ast::{Node, Selector};
use crate::tokenizer::{Tok, Token};
use crate::ParseError;

/// Deepest nesting of parentheses accepted; bounds recursion on hostile input.
const MAX_DEPTH: usize = 128;

pub(crate) fn parse(tokens: &[Token]) -> Result<Selector, ParseError> {
    let mut p = Parser { tokens, pos: 0 };
    if p.peek().tok == Tok::Eof {
        return Ok(Selector::new(Node::All));
    }
    let node = p.or_expr(0)?;
    let next = p.peek();
    if next.tok != Tok::Eof {
        return Err(ParseError::new(
            next.offset,
            format!(
                "expected '&&', '||' or end of selector, found {}",
                describe(&next.tok)
            ),
        ));
    }
    Ok(Selector::new(node))
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
}

impl<'a> Parser<'a> {
    /// The current token; the tokenizer guarantees a trailing `Eof`.
    fn peek(&self) -> &'a Token {
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[self.pos.min(last)]
    }

    fn bump(&mut self) -> &'a Token {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn or_expr(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut operands = vec![self.and_expr(depth)?];
        while self.peek().tok == Tok::Or {
            self.bump();
            operands.push(self.and_expr(depth)?);
        }
        Ok(collapse(operands, Node::Or))
    }

    fn and_expr(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut operands = vec![self.unary(depth)?];
        while self.peek().tok == Tok::And {
            self.bump();
            operands.push(self.unary(depth)?);
        }
        Ok(collapse(operands, Node::And))
    }

    /// Adjacent `!` tokens cancel out in pairs.
    fn unary(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut negated = false;
        while self.peek().tok == Tok::Not {
            self.bump();
            negated = !negated;
        }
        let node = self.primary(depth)?;
        Ok(if negated {
            Node::Not(Box::new(node))
        } else {
            node
        })
    }

    fn primary(&mut self, depth: usize) -> Result<Node, ParseError> {
        let token = self.bump();
        match &token.tok {
            Tok::Has(key) => Ok(Node::Has(key.clone())),
            Tok::All => Ok(Node::All),
            Tok::Global => Ok(Node::Global),
            Tok::LParen => {
                if depth >= MAX_DEPTH {
                    return Err(ParseError::new(
                        token.offset,
                        format!("parentheses nest more than {MAX_DEPTH} deep"),
                    ));
                }
                let inner = self.or_expr(depth + 1)?;
                let close = self.bump();
                if close.tok != Tok::RParen {
                    return Err(expected(close, "')'"));
                }
                Ok(inner)
            }
            Tok::Label(key) => self.comparison(key),
            _ => Err(expected(token, "a label key, has(), all(), '(' or '!'")),
        }
    }

    /// The rest of `key OP "value"` or `key (not) in {…}`.
    fn comparison(&mut self, key: &str) -> Result<Node, ParseError> {
        let op = self.bump();
        let key = key.to_string();
        match op.tok {
            Tok::Eq => Ok(Node::Eq(key, self.string(op)?)),
            Tok::Ne => Ok(Node::Ne(key, self.string(op)?)),
            Tok::Contains => Ok(Node::Contains(key, self.string(op)?)),
            Tok::StartsWith => Ok(Node::StartsWith(key, self.string(op)?)),
            Tok::EndsWith => Ok(Node::EndsWith(key, self.string(op)?)),
            Tok::In => Ok(Node::In(key, self.set()?)),
            Tok::NotIn => Ok(Node::NotIn(key, self.set()?)),
            _ => Err(expected(
                op,
                "an operator (==, !=, in, not in, contains, starts with, ends with)",
            )),
        }
    }

    fn string(&mut self, op: &Token) -> Result<String, ParseError> {
        let token = self.bump();
        match &token.tok {
            Tok::Str(s) => Ok(s.clone()),
            _ => Err(expected(
                token,
                &format!("a quoted string after {}", describe(&op.tok)),
            )),
        }
    }

    /// `{` [ STRING { , STRING } [,] ] `}`, sorted and de-duplicated.
    fn set(&mut self) -> Result<Vec<String>, ParseError> {
        let open = self.bump();
        if open.tok != Tok::LBrace {
            return Err(expected(open, "'{' to start a set of strings"));
        }
        let mut values = Vec::new();
        loop {
            let token = self.bump();
            match &token.tok {
                Tok::RBrace => break,
                Tok::Str(s) => values.push(s.clone()),
                _ => return Err(expected(token, "a quoted string or '}'")),
            }
            let sep = self.bump();
            match sep.tok {
                Tok::Comma => continue,
                Tok::RBrace => break,
                _ => return Err(expected(sep, "',' or '}'")),
            }
        }
        values.sort();
        values.dedup();
        Ok(values)
    }
}

fn collapse(mut operands: Vec<Node>, make: fn(Vec<Node>) -> Node) -> Node {
    if operands.len() == 1 {
        operands.remove(0)
    } else {
        make(operands)
    }
}

fn expected(found: &Token, what: &str) -> ParseError {
    ParseError::new(
        found.offset,
        format!("expected {what}, found {}", describe(&found.tok)),
    )
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::LBrace => "'{'".into(),
        Tok::RBrace => "'}'".into(),
        Tok::Comma => "','".into(),
        Tok::Eq => "'=='".into(),
        Tok::Ne => "'!='".into(),
        Tok::And => "'&&'".into(),
        Tok::Or => "'||'".into(),
        Tok::Not => "'!'".into(),
        Tok::Has(k) => format!("has({k})"),
        Tok::All => "all()".into(),
        Tok::Global => "global()".into(),
        Tok::Label(k) => format!("label '{k}'"),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Contains => "'contains'".into(),
        Tok::StartsWith => "'starts with'".into(),
        Tok::EndsWith => "'ends with'".into(),
        Tok::In => "'in'".into(),
        Tok::NotIn => "'not in'".into(),
        Tok::Eof => "end of selector".into(),
    }
}
