//! Sorting the words of a legacy command into positionals and options, as docopt does:
//! options may appear anywhere, `--opt=value` and `--opt value` are the same, and calicoctl's
//! global `-c/--config` and `-l/--log-level` are accepted after the command too.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why the words of a legacy command were not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// `-h` / `--help`: print the command's help and succeed.
    Help,
    /// The words match no usage line: print the reason, then the usage, and fail.
    Usage(String),
    /// The words match a usage line but a value is invalid: print this text and fail.
    Invalid(String),
}

/// The words of a command line, sorted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Words that are not options, in order.
    pub positionals: Vec<String>,
    /// The command's own options that were given, with their values (flags have none).
    pub options: BTreeMap<&'static str, Option<String>>,
    /// The last `-c/--config` value.
    pub config: Option<PathBuf>,
}

/// The command's options: `(name, takes_value)`, e.g. `("--at", true)`.
pub type OptionSpec = &'static [(&'static str, bool)];

/// calicoctl's global options, which take a value.
const GLOBAL: [&str; 4] = ["-c", "--config", "-l", "--log-level"];

/// Sorts `words` using the command's option table.
pub fn split(words: &[String], spec: OptionSpec) -> Result<Split, ParseError> {
    let mut out = Split::default();
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        if word == "-h" || word == "--help" {
            return Err(ParseError::Help);
        }
        if !word.starts_with('-') || word == "-" {
            out.positionals.push(word.clone());
            continue;
        }
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_string())),
            _ => (word.as_str(), None),
        };
        let mut value_for = |name: &str| {
            inline
                .clone()
                .or_else(|| iter.next().cloned())
                .ok_or_else(|| ParseError::Usage(format!("{name} requires an argument")))
        };
        if GLOBAL.contains(&name) {
            let value = value_for(name)?;
            if name == "-c" || name == "--config" {
                out.config = Some(PathBuf::from(value));
            }
            continue;
        }
        let Some(&(known, takes_value)) = spec.iter().find(|(known, _)| *known == name) else {
            return Err(ParseError::Usage(format!("Unknown option {name}")));
        };
        let value = match (takes_value, &inline) {
            (true, _) => Some(value_for(name)?),
            (false, None) => None,
            (false, Some(_)) => {
                return Err(ParseError::Usage(format!(
                    "{name} must not have an argument"
                )))
            }
        };
        if out.options.insert(known, value).is_some() {
            return Err(ParseError::Usage(format!("{name} is given more than once")));
        }
    }
    Ok(out)
}

impl Split {
    /// Whether a flag was given.
    pub fn flag(&self, name: &str) -> bool {
        self.options.contains_key(name)
    }

    /// The value of an option, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options.get(name).and_then(|v| v.as_deref())
    }

    /// Refuses options that the matched usage line does not have.
    pub fn allow_only(&self, allowed: &[&str]) -> Result<(), ParseError> {
        match self.options.keys().find(|name| !allowed.contains(name)) {
            Some(name) => Err(ParseError::Usage(format!("{name} is not valid here"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: OptionSpec = &[("--at", true), ("--detailed", false)];

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options_anywhere_in_either_form() {
        let s = split(&words("a --at=2 b -c /x.cfg --detailed"), SPEC).unwrap();
        assert_eq!(s.positionals, ["a", "b"]);
        assert_eq!(s.value("--at"), Some("2"));
        assert!(s.flag("--detailed"));
        assert_eq!(s.config, Some(PathBuf::from("/x.cfg")));
        let s = split(&words("--at 3 --config=/y -l debug"), SPEC).unwrap();
        assert_eq!(s.value("--at"), Some("3"));
        assert_eq!(s.config, Some(PathBuf::from("/y")));
        assert!(s.positionals.is_empty());
    }

    #[test]
    fn bad_options_are_usage_errors() {
        let err = |s: &str| split(&words(s), SPEC).unwrap_err();
        assert_eq!(
            err("--frob"),
            ParseError::Usage("Unknown option --frob".into())
        );
        assert_eq!(
            err("--at"),
            ParseError::Usage("--at requires an argument".into())
        );
        assert_eq!(
            err("--detailed=yes"),
            ParseError::Usage("--detailed must not have an argument".into())
        );
        assert_eq!(
            err("--at 1 --at 2"),
            ParseError::Usage("--at is given more than once".into())
        );
        assert_eq!(err("x --help"), ParseError::Help);
        assert_eq!(err("-h"), ParseError::Help);
    }

    #[test]
    fn allow_only_names_the_stray_option() {
        let s = split(&words("x --detailed"), SPEC).unwrap();
        assert_eq!(
            s.allow_only(&["--at"]),
            Err(ParseError::Usage("--detailed is not valid here".into()))
        );
        assert_eq!(s.allow_only(&["--detailed"]), Ok(()));
    }
}
