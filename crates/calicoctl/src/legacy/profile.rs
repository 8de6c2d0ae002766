//! `calicoctl profile ...` (calicoctl 0.x): its usage text and the parser of the words after
//! `profile`.

use calico_model::Rule;

use super::rule::{self, Direction, PROFILE_MESSAGE, TAG_MESSAGE};
use super::text::paragraph;
use super::words::{split, OptionSpec, Split};
use super::{Invocation, ParseError};

/// The usage lines, printed after a usage error (as docopt does).
pub const USAGE: &str = "\
Usage:
  calicoctl profile show [--detailed]
  calicoctl profile add <PROFILE>
  calicoctl profile remove <PROFILE> [--no-check]
  calicoctl profile <PROFILE> tag show
  calicoctl profile <PROFILE> tag (add|remove) <TAG>
  calicoctl profile <PROFILE> rule add (inbound|outbound) [--at=<POSITION>]
    (allow|deny) [(
      (tcp|udp) [(from [(ports <SRCPORTS>)] [(tag <SRCTAG>)] [(cidr <SRCCIDR>)])]
                [(to   [(ports <DSTPORTS>)] [(tag <DSTTAG>)] [(cidr <DSTCIDR>)])] |
      icmp [(type <ICMPTYPE> [(code <ICMPCODE>)])]
           [(from [(tag <SRCTAG>)] [(cidr <SRCCIDR>)])]
           [(to   [(tag <DSTTAG>)] [(cidr <DSTCIDR>)])] |
      icmpv6 [(type <ICMPTYPE> [(code <ICMPCODE>)])]
             [(from [(tag <SRCTAG>)] [(cidr <SRCCIDR>)])]
             [(to   [(tag <DSTTAG>)] [(cidr <DSTCIDR>)])] |
      [(from [(tag <SRCTAG>)] [(cidr <SRCCIDR>)])]
      [(to   [(tag <DSTTAG>)] [(cidr <DSTCIDR>)])]
    )]
  calicoctl profile <PROFILE> rule remove (inbound|outbound) (--at=<POSITION>|
    (allow|deny) [(
      (tcp|udp) [(from [(ports <SRCPORTS>)] [(tag <SRCTAG>)] [(cidr <SRCCIDR>)])]
                [(to   [(ports <DSTPORTS>)] [(tag <DSTTAG>)] [(cidr <DSTCIDR>)])] |
      icmp [(type <ICMPTYPE> [(code <ICMPCODE>)])]
           [(from [(tag <SRCTAG>)] [(cidr <SRCCIDR>)])]
           [(to   [(tag <DSTTAG>)] [(cidr <DSTCIDR>)])] |
      icmpv6 [(type <ICMPTYPE> [(code <ICMPCODE>)])]
             [(from [(tag <SRCTAG>)] [(cidr <SRCCIDR>)])]
             [(to   [(tag <DSTTAG>)] [(cidr <DSTCIDR>)])] |
      [(from [(tag <SRCTAG>)] [(cidr <SRCCIDR>)])]
      [(to   [(tag <DSTTAG>)] [(cidr <DSTCIDR>)])]
    )])
  calicoctl profile <PROFILE> rule show
  calicoctl profile <PROFILE> rule json
  calicoctl profile <PROFILE> rule update
";

/// `calicoctl profile --help`.
pub const HELP: &str = "
Description:
  Modify available profiles and configure rules or tags.
  <PROFILE> may also be a Docker network name, ID or unique ID prefix.

Options:
  --detailed        Show additional information.
  --no-check        Remove a profile without checking if there are endpoints
                    associated with the profile.
  --at=<POSITION>   Specify the position in the chain where the rule should
                    be placed. Default: append at end.

Examples:
  Add and set up a rule to prevent all inbound traffic except pings from the 192.168/16 subnet
  $ calicoctl profile add only-local-pings
  $ calicoctl profile only-local-pings rule add inbound deny icmp
  $ calicoctl profile only-local-pings rule add inbound --at=1 allow icmp from cidr 192.168.0.0/16
";

/// A `calicoctl profile` command.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileCommand {
    /// `profile show [--detailed]`.
    Show {
        /// Also list the endpoints using each profile.
        detailed: bool,
    },
    /// `profile add <PROFILE>`.
    Add {
        /// The new profile.
        name: String,
    },
    /// `profile remove <PROFILE> [--no-check]`.
    Remove {
        /// The profile.
        name: String,
        /// Remove it even if endpoints use it.
        no_check: bool,
    },
    /// `profile <PROFILE> tag ...`.
    Tag {
        /// The profile (or Docker network) as given.
        profile: String,
        /// What to do with its tags.
        op: TagOp,
    },
    /// `profile <PROFILE> rule ...`.
    Rule {
        /// The profile (or Docker network) as given.
        profile: String,
        /// What to do with its rules.
        op: RuleOp,
    },
}

/// `tag show|add|remove`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagOp {
    /// Print the tags, one per line.
    Show,
    /// Add a tag.
    Add(String),
    /// Remove a tag.
    Remove(String),
}

/// `rule show|json|update|add|remove`.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleOp {
    /// Print the rules as text.
    Show,
    /// Print the rules as datastore JSON.
    Json,
    /// Replace the rules with JSON read from stdin.
    Update,
    /// Insert a rule.
    Add {
        /// Inbound or outbound.
        direction: Direction,
        /// 1-based position; `None` appends.
        position: Option<i64>,
        /// The rule.
        rule: Box<Rule>,
    },
    /// Remove a rule by position or by value.
    Remove {
        /// Inbound or outbound.
        direction: Direction,
        /// Which rule.
        target: RemoveTarget,
    },
}

/// Which rule `rule remove` removes.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoveTarget {
    /// The rule at this 1-based position.
    Position(i64),
    /// The rule equal to this one.
    Rule(Box<Rule>),
}

const OPTIONS: OptionSpec = &[("--detailed", false), ("--no-check", false), ("--at", true)];

/// Parses the words after `calicoctl profile`.
pub fn parse(words: &[String]) -> Result<Invocation<ProfileCommand>, ParseError> {
    let split = split(words, OPTIONS)?;
    let command = command(&split)?;
    Ok(Invocation {
        command,
        config: split.config,
    })
}

fn command(split: &Split) -> Result<ProfileCommand, ParseError> {
    let words: Vec<&str> = split.positionals.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["show"] => {
            split.allow_only(&["--detailed"])?;
            Ok(ProfileCommand::Show {
                detailed: split.flag("--detailed"),
            })
        }
        ["add", name] => {
            split.allow_only(&[])?;
            check_names(name, None)?;
            Ok(ProfileCommand::Add {
                name: name.to_string(),
            })
        }
        ["remove", name] => {
            split.allow_only(&["--no-check"])?;
            check_names(name, None)?;
            Ok(ProfileCommand::Remove {
                name: name.to_string(),
                no_check: split.flag("--no-check"),
            })
        }
        [profile, "tag", rest @ ..] => {
            split.allow_only(&[])?;
            let op = match rest {
                ["show"] => TagOp::Show,
                ["add", tag] => TagOp::Add(tag.to_string()),
                ["remove", tag] => TagOp::Remove(tag.to_string()),
                [other, ..] => return Err(rule::expected("show, add or remove", Some(other))),
                [] => return Err(rule::expected("show, add or remove", None)),
            };
            let tag = match &op {
                TagOp::Add(tag) | TagOp::Remove(tag) => Some(tag.as_str()),
                TagOp::Show => None,
            };
            check_names(profile, tag)?;
            Ok(ProfileCommand::Tag {
                profile: profile.to_string(),
                op,
            })
        }
        [profile, "rule", rest @ ..] => {
            let op = rule_op(split, rest, profile)?;
            Ok(ProfileCommand::Rule {
                profile: profile.to_string(),
                op,
            })
        }
        [] => Err(ParseError::Usage("Missing command".into())),
        [_, other, ..] => Err(rule::expected("tag or rule", Some(other))),
        [other] => Err(ParseError::Usage(format!("Unexpected '{other}'"))),
    }
}

/// `rule show|json|update|add|remove ...` of `profile`.
fn rule_op(split: &Split, rest: &[&str], profile: &str) -> Result<RuleOp, ParseError> {
    let (verb, args) = match rest.split_first() {
        Some((verb, args)) => (*verb, args),
        None => return Err(rule::expected("show, json, update, add or remove", None)),
    };
    let simple = match verb {
        "show" => Some(RuleOp::Show),
        "json" => Some(RuleOp::Json),
        "update" => Some(RuleOp::Update),
        "add" | "remove" => None,
        other => {
            return Err(rule::expected(
                "show, json, update, add or remove",
                Some(other),
            ))
        }
    };
    if let Some(op) = simple {
        split.allow_only(&[])?;
        if let Some(extra) = args.first() {
            return Err(ParseError::Usage(format!("Unexpected '{extra}'")));
        }
        check_names(profile, None)?;
        return Ok(op);
    }
    split.allow_only(&["--at"])?;
    let direction = Direction::parse(args.first().copied())?;
    let rule_words: Vec<String> = args[1..].iter().map(|w| w.to_string()).collect();
    let position = split.value("--at").map(position).transpose()?;
    if verb == "remove" {
        if let Some(position) = position {
            if let Some(extra) = rule_words.first() {
                return Err(ParseError::Usage(format!(
                    "Unexpected '{extra}': give either --at=<POSITION> or a rule"
                )));
            }
            check_names(profile, None)?;
            return Ok(RuleOp::Remove {
                direction,
                target: RemoveTarget::Position(position),
            });
        }
    }
    let words = rule::parse_words(&rule_words)?;
    let problems = name_problems(profile, None);
    let rule = match words.to_rule() {
        Ok(rule) if problems.is_empty() => rule,
        Ok(_) => return Err(ParseError::Invalid(problems)),
        Err(more) => return Err(ParseError::Invalid(problems + &more)),
    };
    Ok(match verb {
        "add" => RuleOp::Add {
            direction,
            position,
            rule: Box::new(rule),
        },
        _ => RuleOp::Remove {
            direction,
            target: RemoveTarget::Rule(Box::new(rule)),
        },
    })
}

/// `--at=<POSITION>`: an integer (range is checked against the rules).
fn position(value: &str) -> Result<i64, ParseError> {
    value
        .parse()
        .map_err(|_| ParseError::Usage(format!("--at needs an integer position, not '{value}'")))
}

fn check_names(profile: &str, tag: Option<&str>) -> Result<(), ParseError> {
    let problems = name_problems(profile, tag);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ParseError::Invalid(problems))
    }
}

/// calicoctl 0.x's messages for a bad profile name and a bad tag, in its order.
fn name_problems(profile: &str, tag: Option<&str>) -> String {
    let mut out = String::new();
    if !rule::valid_name(profile) {
        out.push_str(&paragraph(PROFILE_MESSAGE));
    }
    if tag.is_some_and(|t| !rule::valid_name(t)) {
        out.push_str(&paragraph(TAG_MESSAGE));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<ProfileCommand, ParseError> {
        let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse(&words).map(|i| i.command)
    }

    fn rule(s: &str) -> Box<Rule> {
        let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        Box::new(rule::parse_words(&words).unwrap().to_rule().unwrap())
    }

    #[test]
    fn profile_level_commands() {
        assert_eq!(
            parse_str("show"),
            Ok(ProfileCommand::Show { detailed: false })
        );
        assert_eq!(
            parse_str("show --detailed"),
            Ok(ProfileCommand::Show { detailed: true })
        );
        assert_eq!(
            parse_str("add db"),
            Ok(ProfileCommand::Add { name: "db".into() })
        );
        assert_eq!(
            parse_str("remove db --no-check"),
            Ok(ProfileCommand::Remove {
                name: "db".into(),
                no_check: true
            })
        );
    }

    #[test]
    fn command_words_can_be_profile_names() {
        assert_eq!(
            parse_str("add tag"),
            Ok(ProfileCommand::Add { name: "tag".into() })
        );
        assert_eq!(
            parse_str("show tag show"),
            Ok(ProfileCommand::Tag {
                profile: "show".into(),
                op: TagOp::Show
            })
        );
    }

    #[test]
    fn tag_commands() {
        assert_eq!(
            parse_str("db tag add web"),
            Ok(ProfileCommand::Tag {
                profile: "db".into(),
                op: TagOp::Add("web".into())
            })
        );
        assert_eq!(
            parse_str("db tag remove web"),
            Ok(ProfileCommand::Tag {
                profile: "db".into(),
                op: TagOp::Remove("web".into())
            })
        );
        assert_eq!(
            parse_str("db tag add we/b"),
            Err(ParseError::Invalid(
                "Tags names can only contain numbers, letters, dots, dashes and underscores.\n\n"
                    .into()
            ))
        );
        assert_eq!(
            parse_str("db tag list"),
            Err(rule::expected("show, add or remove", Some("list")))
        );
    }

    #[test]
    fn rule_commands() {
        let op = |s: &str| match parse_str(s) {
            Ok(ProfileCommand::Rule { op, .. }) => op,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(op("db rule show"), RuleOp::Show);
        assert_eq!(op("db rule json"), RuleOp::Json);
        assert_eq!(op("db rule update"), RuleOp::Update);
        assert_eq!(
            op("databases rule add inbound allow tcp from tag applications to ports 3306"),
            RuleOp::Add {
                direction: Direction::Inbound,
                position: None,
                rule: rule("allow tcp from tag applications to ports 3306"),
            }
        );
        assert_eq!(
            op("db rule add outbound --at=2 deny icmp"),
            RuleOp::Add {
                direction: Direction::Outbound,
                position: Some(2),
                rule: rule("deny icmp"),
            }
        );
        assert_eq!(
            op("db rule add outbound deny --at 0"),
            RuleOp::Add {
                direction: Direction::Outbound,
                position: Some(0),
                rule: rule("deny"),
            },
            "the range is checked against the profile's rules"
        );
        assert_eq!(
            op("db rule remove inbound --at=1"),
            RuleOp::Remove {
                direction: Direction::Inbound,
                target: RemoveTarget::Position(1),
            }
        );
        assert_eq!(
            op("db rule remove inbound allow from tag db"),
            RuleOp::Remove {
                direction: Direction::Inbound,
                target: RemoveTarget::Rule(rule("allow from tag db")),
            }
        );
    }

    #[test]
    fn usage_errors() {
        let usage = |s: &str| match parse_str(s) {
            Err(ParseError::Usage(reason)) => reason,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(usage(""), "Missing command");
        assert_eq!(usage("db"), "Unexpected 'db'");
        assert_eq!(usage("db frob"), "Expected tag or rule, not 'frob'");
        assert_eq!(usage("show --no-check"), "--no-check is not valid here");
        assert_eq!(usage("db rule show --at=1"), "--at is not valid here");
        assert_eq!(usage("db rule show extra"), "Unexpected 'extra'");
        assert_eq!(
            usage("db rule add sideways allow"),
            "Expected inbound or outbound, not 'sideways'"
        );
        assert_eq!(
            usage("db rule add inbound --at=x allow"),
            "--at needs an integer position, not 'x'"
        );
        assert_eq!(
            usage("db rule remove inbound --at=1 allow"),
            "Unexpected 'allow': give either --at=<POSITION> or a rule"
        );
        assert_eq!(parse_str("db rule --help"), Err(ParseError::Help));
    }

    #[test]
    fn bad_names_and_values_report_every_problem() {
        assert_eq!(
            parse_str("d/b rule add inbound allow from tag a! cidr x"),
            Err(ParseError::Invalid(
                "Profile names must be < 40 character long and can only contain numbers, letters,\n\
                 dots, dashes and underscores.\n\n\
                 Tags names can only contain numbers, letters, dots, dashes and underscores.\n\n\
                 Invalid CIDR specified.\n"
                    .into()
            ))
        );
        assert!(matches!(parse_str("add a:b"), Err(ParseError::Invalid(_))));
        assert!(matches!(
            parse_str("x:y rule show"),
            Err(ParseError::Invalid(_))
        ));
    }

    #[test]
    fn config_may_follow_the_command() {
        let words: Vec<String> = ["show", "-c", "/tmp/c.cfg"].map(String::from).to_vec();
        let inv = parse(&words).unwrap();
        assert_eq!(inv.config, Some("/tmp/c.cfg".into()));
    }
}
