//! Legacy rules: the words of `rule add|remove` after the direction, the v1 [`Rule`] they
//! stand for, and the one-line text `rule show` prints for any v1 rule.
//!
//! Mapping: `from` is the rule's `source` and `to` its `destination`; `tcp`, `udp`, `icmp`,
//! `icmpv6` are `protocol`; `type`/`code` are `icmp`; `ports` are `ports` (ranges `a:b` or
//! `a-b`, stored as `"a:b"`); `tag` is `tag`; `cidr` is `nets: [cidr]`.

use calico_model::{BackendRule, Cidr, EntityRule, IcmpFields, Port, Protocol, Rule};

use super::text::paragraph;
use super::ParseError;

/// Which of a profile's rule lists a command acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The profile's ingress rules.
    Inbound,
    /// The profile's egress rules.
    Outbound,
}

impl Direction {
    /// Parses `inbound` or `outbound`.
    pub fn parse(word: Option<&str>) -> Result<Direction, ParseError> {
        match word {
            Some("inbound") => Ok(Direction::Inbound),
            Some("outbound") => Ok(Direction::Outbound),
            other => Err(expected("inbound or outbound", other)),
        }
    }
}

/// The rule words as given, before their values are checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleWords {
    action: String,
    protocol: Option<String>,
    icmp_type: Option<String>,
    icmp_code: Option<String>,
    from: SideWords,
    to: SideWords,
}

/// The words of a `from` or `to` clause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SideWords {
    ports: Option<String>,
    tag: Option<String>,
    cidr: Option<String>,
}

/// Reads `(allow|deny) [protocol [type N [code M]]] [from ...] [to ...]`; the clauses may
/// come in either order and their `ports`/`tag`/`cidr` parts in any order, once each.
pub fn parse_words(words: &[String]) -> Result<RuleWords, ParseError> {
    let mut cur = Cursor { words, pos: 0 };
    let action = match cur.next() {
        Some(action @ ("allow" | "deny")) => action.to_string(),
        other => return Err(expected("allow or deny", other)),
    };
    let protocol = cur
        .eat_any(&["tcp", "udp", "icmp", "icmpv6"])
        .map(str::to_string);
    let (mut icmp_type, mut icmp_code) = (None, None);
    if matches!(protocol.as_deref(), Some("icmp" | "icmpv6")) && cur.eat("type") {
        icmp_type = Some(cur.value("type")?);
        if cur.eat("code") {
            icmp_code = Some(cur.value("code")?);
        }
    }
    let (mut from, mut to) = (None, None);
    while let Some(word) = cur.next() {
        let slot = match word {
            "from" => &mut from,
            "to" => &mut to,
            _ => return Err(ParseError::Usage(format!("Unexpected '{word}'"))),
        };
        if slot.is_some() {
            return Err(ParseError::Usage(format!(
                "'{word}' is given more than once"
            )));
        }
        *slot = Some(side_words(&mut cur, protocol.as_deref())?);
    }
    Ok(RuleWords {
        action,
        protocol,
        icmp_type,
        icmp_code,
        from: from.unwrap_or_default(),
        to: to.unwrap_or_default(),
    })
}

/// The `ports`/`tag`/`cidr` parts after `from` or `to`.
fn side_words(cur: &mut Cursor<'_>, protocol: Option<&str>) -> Result<SideWords, ParseError> {
    let mut side = SideWords::default();
    while let Some(keyword @ ("ports" | "tag" | "cidr")) = cur.peek() {
        cur.pos += 1;
        let slot = match keyword {
            "ports" if !matches!(protocol, Some("tcp" | "udp")) => {
                let shown = protocol.map_or("None".to_string(), |p| format!("'{p}'"));
                return Err(ParseError::Invalid(format!(
                    "Ports are not valid with protocol {shown}\n"
                )));
            }
            "ports" => &mut side.ports,
            "tag" => &mut side.tag,
            _ => &mut side.cidr,
        };
        if slot.is_some() {
            return Err(ParseError::Usage(format!(
                "'{keyword}' is given more than once"
            )));
        }
        *slot = Some(cur.value(keyword)?);
    }
    Ok(side)
}

impl RuleWords {
    /// The v1 rule, or every problem with the values in calicoctl 0.x's order and words.
    pub fn to_rule(&self) -> Result<Rule, String> {
        let tags_ok = [&self.from.tag, &self.to.tag]
            .iter()
            .all(|t| t.as_deref().is_none_or(valid_name));
        let nets = [cidr(&self.from.cidr), cidr(&self.to.cidr)];
        let icmp_type = self
            .icmp_type
            .as_deref()
            .map_or(Ok(None), |t| number(t, 254));
        let icmp_code = self
            .icmp_code
            .as_deref()
            .map_or(Ok(None), |c| number(c, 255));
        let ports = [&self.from.ports, &self.to.ports]
            .map(|p| p.as_deref().map_or(Ok(Vec::new()), parse_ports));

        let mut problems = String::new();
        if !tags_ok {
            problems.push_str(&paragraph(TAG_MESSAGE));
        }
        if nets.iter().any(Result::is_err) {
            problems.push_str("Invalid CIDR specified.\n");
        }
        if icmp_type.is_err() || icmp_code.is_err() {
            problems.push_str("Invalid ICMP type or ICMP code specified.\n");
        }
        if let Some(Err(problem)) = ports.iter().find(|p| p.is_err()) {
            problems.push_str(problem);
        }
        let [Ok(src_net), Ok(dst_net)] = nets else {
            return Err(problems);
        };
        if !versions_match(self.protocol.as_deref(), src_net.iter().chain(&dst_net)) {
            problems.push_str("Invalid or unmatching IP versions for SRCCIDR/DSTCIDR.\n");
        }
        let ([Ok(src_ports), Ok(dst_ports)], Ok(icmp_type), Ok(icmp_code), true) =
            (ports, icmp_type, icmp_code, problems.is_empty())
        else {
            return Err(problems);
        };
        let side = |words: &SideWords, net: Option<Cidr>, ports: Vec<Port>| EntityRule {
            tag: words.tag.clone().unwrap_or_default(),
            nets: net.into_iter().collect(),
            ports,
            ..EntityRule::default()
        };
        Ok(Rule {
            action: self.action.clone(),
            protocol: self.protocol.as_deref().map(Protocol::from),
            icmp: icmp_type.map(|t| IcmpFields {
                icmp_type: Some(t),
                code: icmp_code,
            }),
            source: side(&self.from, src_net, src_ports),
            destination: side(&self.to, dst_net, dst_ports),
            ..Rule::default()
        })
    }
}

/// An optional CIDR word, parsed.
fn cidr(word: &Option<String>) -> Result<Option<Cidr>, ()> {
    word.as_deref().map(str::parse).transpose().map_err(|_| ())
}

/// Whether the networks are all of one IP version, the one the protocol implies if any
/// (`icmp` is IPv4, `icmpv6` IPv6).
fn versions_match<'a>(protocol: Option<&str>, nets: impl Iterator<Item = &'a Cidr>) -> bool {
    let implied = match protocol {
        Some("icmp") => Some(4),
        Some("icmpv6") => Some(6),
        _ => None,
    };
    let mut versions = nets.map(Cidr::version).peekable();
    let Some(expected) = implied.or_else(|| versions.peek().copied()) else {
        return true;
    };
    versions.all(|v| v == expected)
}

/// What calicoctl 0.x says about a bad profile name.
pub const PROFILE_MESSAGE: &str = "Profile names must be < 40 character long and can only \
    contain numbers, letters, dots, dashes and underscores.";

/// What calicoctl 0.x says about a bad tag.
pub const TAG_MESSAGE: &str =
    "Tags names can only contain numbers, letters, dots, dashes and underscores.";

/// Profile and tag names: 1 to 128 of `[a-zA-Z0-9_.-]` (calicoctl 0.x checked the characters,
/// the v1 API also the length).
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A decimal number no greater than `max`.
fn number(word: &str, max: i64) -> Result<Option<i64>, ()> {
    let digits = !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit());
    match word.parse::<i64>() {
        Ok(n) if digits && n <= max => Ok(Some(n)),
        _ => Err(()),
    }
}

/// `80,443,1000-2000` (ranges with `-` or `:`) as ports; the error is the message to print.
pub fn parse_ports(list: &str) -> Result<Vec<Port>, String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let items: Vec<(&str, Option<&str>)> = list
        .split(',')
        .map(|item| match item.split_once([':', '-']) {
            Some((min, max)) => (min, Some(max)),
            None => (item, None),
        })
        .collect();
    if !items
        .iter()
        .all(|(min, max)| digits(min) && max.is_none_or(digits))
    {
        return Err(paragraph(&format!(
            "Ports: '{list}' are invalid; expecting a comma-separated list of ports and \
             port ranges."
        )));
    }
    let invalid = || "Invalid SRCPORTS or DSTPORTS specified.\n".to_string();
    let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0);
    items
        .iter()
        .map(|(min, max)| {
            let min = port(min).ok_or_else(invalid)?;
            let max = max.map_or(Some(min), port).ok_or_else(invalid)?;
            (min <= max)
                .then(|| Port::range(min, max))
                .ok_or_else(invalid)
        })
        .collect()
}

/// Whether two rules match the same traffic the same way, ignoring how networks are spelt
/// (`net` or `nets`, host bits of destination networks).
pub fn same_rule(a: &Rule, b: &Rule) -> bool {
    let canonical = |r: &Rule| Rule::from(&BackendRule::from(r));
    canonical(a) == canonical(b)
}

/// The one-line text of a rule, as `rule show` prints it: the action, the protocol,
/// `type N`, `code N`, then `from` and `to` clauses of `ports`, `tag` and `cidr`.
///
/// Fields the 0.x words cannot express are shown in the same style: `ipv4`/`ipv6` after the
/// action, `selector "<expr>"` after `cidr`, and negated fields as `not <words>`
/// (`not udp`, `not type 8`, `not ports 22`, `not tag t`, `not cidr c`, `not selector "s"`).
/// Several networks print as one comma-separated `cidr` list, like ports.
pub fn describe(rule: &Rule) -> String {
    let mut out = vec![rule.action.clone()];
    if let Some(version) = rule.ip_version {
        out.push(format!("ipv{version}"));
    }
    out.extend(rule.protocol.as_ref().map(ToString::to_string));
    out.extend(icmp_words(rule.icmp.as_ref()));
    if let Some(p) = &rule.not_protocol {
        out.push(format!("not {p}"));
    }
    out.extend(icmp_words(rule.not_icmp.as_ref()).map(|w| format!("not {w}")));
    for (keyword, side) in [("from", &rule.source), ("to", &rule.destination)] {
        let words = entity_words(side);
        if !words.is_empty() {
            out.push(keyword.to_string());
            out.extend(words);
        }
    }
    out.join(" ")
}

fn icmp_words(icmp: Option<&IcmpFields>) -> impl Iterator<Item = String> {
    let icmp = icmp.copied().unwrap_or_default();
    let typ = icmp.icmp_type.map(|t| format!("type {t}"));
    let code = icmp.code.map(|c| format!("code {c}"));
    typ.into_iter().chain(code)
}

fn entity_words(side: &EntityRule) -> Vec<String> {
    let list = |items: &[String]| items.join(",");
    let ports = |ports: &[Port]| list(&ports.iter().map(Port::to_string).collect::<Vec<_>>());
    let nets = |nets: &[Cidr]| list(&nets.iter().map(Cidr::to_string).collect::<Vec<_>>());
    let fields = [
        ("ports", ports(&side.ports)),
        ("tag", side.tag.clone()),
        ("cidr", nets(&side.all_nets())),
        ("selector", quoted(&side.selector)),
        ("not ports", ports(&side.not_ports)),
        ("not tag", side.not_tag.clone()),
        ("not cidr", nets(&side.all_not_nets())),
        ("not selector", quoted(&side.not_selector)),
    ];
    fields
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(keyword, value)| format!("{keyword} {value}"))
        .collect()
}

fn quoted(selector: &str) -> String {
    if selector.is_empty() {
        String::new()
    } else {
        format!("\"{selector}\"")
    }
}

/// Reads words in order.
struct Cursor<'a> {
    words: &'a [String],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.words.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Option<&'a str> {
        let word = self.peek();
        self.pos += usize::from(word.is_some());
        word
    }

    /// Consumes the next word if it is one of `choices`.
    fn eat_any(&mut self, choices: &[&str]) -> Option<&'a str> {
        let word = self.peek().filter(|w| choices.contains(w));
        self.pos += usize::from(word.is_some());
        word
    }

    /// Consumes `keyword` if it is next.
    fn eat(&mut self, keyword: &str) -> bool {
        let found = self.peek() == Some(keyword);
        self.pos += usize::from(found);
        found
    }

    /// The value after a keyword.
    fn value(&mut self, keyword: &str) -> Result<String, ParseError> {
        self.next()
            .map(str::to_string)
            .ok_or_else(|| ParseError::Usage(format!("'{keyword}' needs a value")))
    }
}

/// The usage error for a missing or wrong word.
pub fn expected(what: &str, got: Option<&str>) -> ParseError {
    ParseError::Usage(match got {
        Some(word) => format!("Expected {what}, not '{word}'"),
        None => format!("Expected {what}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn rule(s: &str) -> Rule {
        parse_words(&words(s)).unwrap().to_rule().unwrap()
    }

    fn problems(s: &str) -> String {
        parse_words(&words(s)).unwrap().to_rule().unwrap_err()
    }

    #[test]
    fn tutorial_rule_maps_to_v1_fields() {
        let r = rule("allow tcp from tag applications to ports 3306");
        assert_eq!(r.action, "allow");
        assert_eq!(r.protocol, Some(Protocol::Name("tcp".into())));
        assert_eq!(r.source.tag, "applications");
        assert_eq!(r.destination.ports, [Port::single(3306)]);
        assert_eq!(
            describe(&r),
            "allow tcp from tag applications to ports 3306"
        );
    }

    #[test]
    fn every_legacy_field_round_trips_through_the_text() {
        for text in [
            "allow",
            "deny",
            "allow from tag databases",
            "deny udp from ports 53,1000:2000 tag a cidr 10.0.0.0/8 to ports 80 tag b cidr 10.1.0.0/16",
            "allow icmp type 8 code 0 from cidr 192.168.0.0/16",
            "allow icmpv6 type 128 to cidr fd00::/64",
            "deny tcp to ports 1:65535",
        ] {
            assert_eq!(describe(&rule(text)), text);
        }
    }

    #[test]
    fn port_lists_accept_both_range_separators() {
        let r = rule("allow tcp to ports 80,443,1000-2000");
        assert_eq!(
            r.destination.ports,
            [Port::single(80), Port::single(443), Port::range(1000, 2000)]
        );
        let json = serde_json::to_value(BackendRule::from(&r)).unwrap();
        assert_eq!(json["dst_ports"], serde_json::json!([80, 443, "1000:2000"]));
    }

    #[test]
    fn clauses_and_their_parts_may_come_in_any_order() {
        assert_eq!(
            rule("allow tcp to cidr 10.0.0.0/8 ports 22 from tag a"),
            rule("allow tcp from tag a to ports 22 cidr 10.0.0.0/8")
        );
    }

    #[test]
    fn grammar_errors_are_usage_errors() {
        let err = |s: &str| parse_words(&words(s)).unwrap_err();
        assert_eq!(err("permit"), expected("allow or deny", Some("permit")));
        assert_eq!(err(""), expected("allow or deny", None));
        assert_eq!(
            err("allow tcp type 8"),
            ParseError::Usage("Unexpected 'type'".into())
        );
        assert_eq!(
            err("allow icmp code 1"),
            ParseError::Usage("Unexpected 'code'".into())
        );
        assert_eq!(
            err("allow from tag a from tag b"),
            ParseError::Usage("'from' is given more than once".into())
        );
        assert_eq!(
            err("allow tcp to ports 1 ports 2"),
            ParseError::Usage("'ports' is given more than once".into())
        );
        assert_eq!(
            err("allow to tag"),
            ParseError::Usage("'tag' needs a value".into())
        );
        assert_eq!(
            err("allow icmp to ports 80"),
            ParseError::Invalid("Ports are not valid with protocol 'icmp'\n".into())
        );
        assert_eq!(
            err("allow from ports 80"),
            ParseError::Invalid("Ports are not valid with protocol None\n".into())
        );
    }

    #[test]
    fn value_problems_use_calicoctl_0x_messages_in_its_order() {
        assert_eq!(
            problems("allow from tag a/b"),
            "Tags names can only contain numbers, letters, dots, dashes and underscores.\n\n"
        );
        assert_eq!(
            problems("allow to cidr 10.0.0.300/8"),
            "Invalid CIDR specified.\n"
        );
        assert_eq!(
            problems("allow icmp type 255"),
            "Invalid ICMP type or ICMP code specified.\n"
        );
        assert_eq!(
            problems("allow icmp type 3 code 256"),
            "Invalid ICMP type or ICMP code specified.\n"
        );
        assert_eq!(
            problems("allow tcp to ports 70000"),
            "Invalid SRCPORTS or DSTPORTS specified.\n"
        );
        assert_eq!(
            problems("allow tcp to ports 90:80"),
            "Invalid SRCPORTS or DSTPORTS specified.\n"
        );
        assert_eq!(
            problems("allow tcp to ports 0"),
            "Invalid SRCPORTS or DSTPORTS specified.\n"
        );
        assert_eq!(
            problems("allow tcp to ports 80x"),
            "Ports: '80x' are invalid; expecting a comma-separated list of ports and port\n\
             ranges.\n\n"
        );
        assert_eq!(
            problems("allow icmp from cidr fd00::/64"),
            "Invalid or unmatching IP versions for SRCCIDR/DSTCIDR.\n"
        );
        assert_eq!(
            problems("allow from cidr 10.0.0.0/8 to cidr fd00::/64"),
            "Invalid or unmatching IP versions for SRCCIDR/DSTCIDR.\n"
        );
        assert_eq!(
            problems("allow icmp type x from tag a! to cidr nope"),
            "Tags names can only contain numbers, letters, dots, dashes and underscores.\n\n\
             Invalid CIDR specified.\n\
             Invalid ICMP type or ICMP code specified.\n",
            "every problem is reported"
        );
    }

    #[test]
    fn rules_compare_by_meaning() {
        let mut a = rule("allow from cidr 10.0.0.0/8");
        let b = a.clone();
        a.source.net = a.source.nets.pop();
        assert_ne!(a, b);
        assert!(same_rule(&a, &b));
        assert!(!same_rule(&rule("allow"), &rule("deny")));
    }

    #[test]
    fn fields_beyond_the_legacy_words_still_show() {
        let r: Rule = serde_json::from_value(serde_json::json!({
            "action": "pass",
            "ipVersion": 4,
            "notProtocol": "udp",
            "notICMP": {"type": 8},
            "source": {"selector": "role == 'x'", "notTag": "t", "notNets": ["10.0.0.0/8", "10.1.0.0/16"]},
            "destination": {"notSelector": "has(a)", "notPorts": [22], "nets": ["1.2.3.4/32"]},
        }))
        .unwrap();
        assert_eq!(
            describe(&r),
            "pass ipv4 not udp not type 8 from selector \"role == 'x'\" not tag t \
             not cidr 10.0.0.0/8,10.1.0.0/16 to cidr 1.2.3.4/32 not ports 22 \
             not selector \"has(a)\""
        );
    }

    #[test]
    fn names_are_letters_digits_dots_dashes_and_underscores() {
        assert!(valid_name("net_1.a-b"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"x".repeat(129)));
        assert_eq!(
            Direction::parse(Some("sideways")),
            Err(expected("inbound or outbound", Some("sideways")))
        );
    }
}
