//! Rule compilation: API rules to [`desired::Rule`](crate::desired::Rule)s, with names
//! resolved to numbers and selectors and tags to IP set IDs.
//!
//! A rule list that cannot be compiled fails closed: the whole policy or profile becomes
//! "deny" in the directions it governs (see [`Compiled::new`]). The model's validation rejects
//! such data before it is stored, so this only guards against data written by other tools.

use std::collections::BTreeMap;

use calico_model::{EntityRule, IcmpFields, Port, Protocol, Rule as ApiRule};
use calico_selector::Selector;

use crate::desired::{Action, IcmpMatch, PortRange, Rule, RuleList, Rules, SideMatch};

/// A policy's or profile's compiled rules and the selectors (IP sets) they reference.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Compiled {
    /// The rules, by direction.
    pub(crate) rules: Rules,
    /// Every selector the rules reference, once each, by UID order.
    pub(crate) selectors: Vec<Selector>,
}

/// Why a rule could not be compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CompileError {
    /// The action is not `allow`, `deny`, `log`, `pass` or empty.
    Action,
    /// `ipVersion` is neither 4 nor 6.
    IpVersion,
    /// A protocol name is unknown.
    Protocol,
    /// An ICMP type or code is out of range, or a code has no type.
    Icmp,
    /// Ports given without tcp/udp, or a range with its ends swapped.
    Ports,
    /// A selector or tag does not parse.
    Selector,
}

impl Compiled {
    /// Compiles both directions; when any rule fails, the result is
    /// [`Compiled::deny_all`] for the directions given rules (`Some`).
    ///
    /// `None` for a direction means the resource does not govern it: no rules there. `allow`
    /// is what an `allow` rule does: [`Action::Allow`], or for `doNotTrack` and `preDNAT`
    /// policies [`Action::AllowUntracked`] and [`Action::AllowPreDnat`].
    pub(crate) fn new(
        ingress: Option<&[ApiRule]>,
        egress: Option<&[ApiRule]>,
        allow: Action,
    ) -> Self {
        let mut selectors = BTreeMap::new();
        let compiled = compile_list(ingress, allow, &mut selectors)
            .and_then(|i| Ok((i, compile_list(egress, allow, &mut selectors)?)));
        match compiled {
            Ok((ingress, egress)) => Compiled {
                rules: Rules { ingress, egress },
                selectors: selectors.into_values().collect(),
            },
            Err(_) => Compiled::deny_all(ingress.is_some(), egress.is_some()),
        }
    }

    /// A single `deny` rule in each direction asked for, and no IP sets.
    pub(crate) fn deny_all(ingress: bool, egress: bool) -> Self {
        let deny = |on: bool| {
            if on {
                vec![Rule::new(Action::Deny)]
            } else {
                Vec::new()
            }
        };
        Compiled {
            rules: Rules {
                ingress: deny(ingress),
                egress: deny(egress),
            },
            selectors: Vec::new(),
        }
    }
}

fn compile_list(
    rules: Option<&[ApiRule]>,
    allow: Action,
    selectors: &mut BTreeMap<String, Selector>,
) -> Result<RuleList, CompileError> {
    rules
        .unwrap_or_default()
        .iter()
        .map(|rule| compile_rule(rule, allow, selectors))
        .collect()
}

/// Compiles one rule (`allow` is what an `allow` rule does), adding the selectors it
/// references to `selectors` (by UID).
fn compile_rule(
    rule: &ApiRule,
    allow: Action,
    selectors: &mut BTreeMap<String, Selector>,
) -> Result<Rule, CompileError> {
    let action = match rule.action.as_str() {
        "" | "allow" => allow,
        "deny" => Action::Deny,
        "log" => Action::Log,
        "pass" | "next-tier" => Action::Pass,
        _ => return Err(CompileError::Action),
    };
    let ip_version = match rule.ip_version {
        None => None,
        Some(4) => Some(4),
        Some(6) => Some(6),
        Some(_) => return Err(CompileError::IpVersion),
    };
    let ports_allowed = rule.protocol.as_ref().is_some_and(Protocol::supports_ports);
    Ok(Rule {
        action,
        ip_version,
        protocol: rule.protocol.as_ref().map(protocol).transpose()?,
        not_protocol: rule.not_protocol.as_ref().map(protocol).transpose()?,
        icmp: rule.icmp.as_ref().map(icmp).transpose()?.flatten(),
        not_icmp: rule.not_icmp.as_ref().map(icmp).transpose()?.flatten(),
        source: side(&rule.source, ports_allowed, selectors)?,
        destination: side(&rule.destination, ports_allowed, selectors)?,
    })
}

fn protocol(p: &Protocol) -> Result<u8, CompileError> {
    p.number().ok_or(CompileError::Protocol)
}

fn icmp(fields: &IcmpFields) -> Result<Option<IcmpMatch>, CompileError> {
    let byte = |v: i64| u8::try_from(v).map_err(|_| CompileError::Icmp);
    match (fields.icmp_type, fields.code) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(CompileError::Icmp),
        (Some(t), code) => Ok(Some(IcmpMatch {
            icmp_type: byte(t)?,
            code: code.map(byte).transpose()?,
        })),
    }
}

fn side(
    entity: &EntityRule,
    ports_allowed: bool,
    selectors: &mut BTreeMap<String, Selector>,
) -> Result<SideMatch, CompileError> {
    let has_ports = !entity.ports.is_empty() || !entity.not_ports.is_empty();
    if has_ports && !ports_allowed {
        return Err(CompileError::Ports);
    }
    let mut sets = |selector: &str, tag: &str| -> Result<Vec<String>, CompileError> {
        let mut ids = Vec::new();
        for parsed in [parse_selector(selector)?, parse_tag(tag)?]
            .into_iter()
            .flatten()
        {
            ids.push(parsed.uid().to_owned());
            selectors.entry(parsed.uid().to_owned()).or_insert(parsed);
        }
        Ok(ids)
    };
    Ok(SideMatch {
        nets: entity.all_nets().iter().map(|c| c.ip_net()).collect(),
        not_nets: entity.all_not_nets().iter().map(|c| c.ip_net()).collect(),
        ports: port_ranges(&entity.ports)?,
        not_ports: port_ranges(&entity.not_ports)?,
        in_sets: sets(&entity.selector, &entity.tag)?,
        not_in_sets: sets(&entity.not_selector, &entity.not_tag)?,
    })
}

fn port_ranges(ports: &[Port]) -> Result<Vec<PortRange>, CompileError> {
    ports
        .iter()
        .map(|p| {
            if p.min <= p.max {
                Ok(PortRange {
                    first: p.min,
                    last: p.max,
                })
            } else {
                Err(CompileError::Ports)
            }
        })
        .collect()
}

/// A rule's selector field: empty means "not set".
fn parse_selector(text: &str) -> Result<Option<Selector>, CompileError> {
    if text.is_empty() {
        return Ok(None);
    }
    calico_selector::parse(text)
        .map(Some)
        .map_err(|_| CompileError::Selector)
}

/// A rule's tag field as the selector `has(tag)`; empty means "not set". The tag must be a
/// plain label key: anything that would parse to a different expression is refused.
fn parse_tag(tag: &str) -> Result<Option<Selector>, CompileError> {
    if tag.is_empty() {
        return Ok(None);
    }
    let text = format!("has({tag})");
    match calico_selector::parse(&text) {
        Ok(selector) if selector.canonical() == text => Ok(Some(selector)),
        _ => Err(CompileError::Selector),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_model::Cidr;

    fn uid(text: &str) -> String {
        calico_selector::parse(text).unwrap().uid().to_owned()
    }

    fn compile(rule: ApiRule) -> Result<Rule, CompileError> {
        compile_rule(&rule, Action::Allow, &mut BTreeMap::new())
    }

    #[test]
    fn resolves_actions_protocols_and_ports() {
        let mut rule = ApiRule {
            protocol: Some(Protocol::from("tcp")),
            not_protocol: Some(Protocol::from("udplite")),
            ..ApiRule::default()
        };
        rule.destination.ports = vec![Port::single(80), Port::range(1000, 2000)];
        rule.source.not_ports = vec![Port::single(22)];
        let compiled = compile(rule.clone()).unwrap();
        assert_eq!(compiled.action, Action::Allow);
        assert_eq!(compiled.protocol, Some(6));
        assert_eq!(compiled.not_protocol, Some(136));
        assert_eq!(
            compiled.destination.ports,
            vec![
                PortRange {
                    first: 80,
                    last: 80
                },
                PortRange {
                    first: 1000,
                    last: 2000
                }
            ]
        );
        assert_eq!(
            compiled.source.not_ports,
            vec![PortRange {
                first: 22,
                last: 22
            }]
        );
        for (name, action) in [
            ("allow", Action::Allow),
            ("deny", Action::Deny),
            ("log", Action::Log),
            ("pass", Action::Pass),
            ("next-tier", Action::Pass),
        ] {
            rule.action = name.to_owned();
            assert_eq!(compile(rule.clone()).unwrap().action, action);
        }
        for (name, number) in Protocol::NAMES {
            let rule = ApiRule {
                protocol: Some(Protocol::from(name)),
                ..ApiRule::default()
            };
            assert_eq!(compile(rule).unwrap().protocol, Some(number));
        }
    }

    #[test]
    fn merges_nets_and_resolves_icmp() {
        let net = |s: &str| s.parse::<Cidr>().unwrap();
        let mut rule = ApiRule {
            protocol: Some(Protocol::from("icmp")),
            icmp: Some(IcmpFields {
                icmp_type: Some(8),
                code: Some(0),
            }),
            not_icmp: Some(IcmpFields {
                icmp_type: Some(3),
                code: None,
            }),
            ip_version: Some(4),
            ..ApiRule::default()
        };
        rule.source.nets = vec![net("10.0.0.0/8")];
        rule.source.net = Some(net("192.168.0.0/16"));
        rule.destination.not_net = Some(net("10.1.0.0/16"));
        let compiled = compile(rule).unwrap();
        assert_eq!(compiled.ip_version, Some(4));
        assert_eq!(
            compiled.icmp,
            Some(IcmpMatch {
                icmp_type: 8,
                code: Some(0)
            })
        );
        assert_eq!(
            compiled.not_icmp,
            Some(IcmpMatch {
                icmp_type: 3,
                code: None
            })
        );
        assert_eq!(
            compiled.source.nets,
            vec![net("10.0.0.0/8").ip_net(), net("192.168.0.0/16").ip_net()]
        );
        assert_eq!(
            compiled.destination.not_nets,
            vec![net("10.1.0.0/16").ip_net()]
        );
    }

    #[test]
    fn tags_and_selectors_become_sets() {
        let mut rule = ApiRule::default();
        rule.source.selector = "role == 'db'".to_owned();
        rule.source.tag = "web".to_owned();
        rule.destination.not_selector = "has(x)".to_owned();
        rule.destination.not_tag = "x".to_owned();
        let mut selectors = BTreeMap::new();
        let compiled = compile_rule(&rule, Action::Allow, &mut selectors).unwrap();
        assert_eq!(
            compiled.source.in_sets,
            vec![uid("role == 'db'"), uid("has(web)")]
        );
        assert_eq!(
            compiled.destination.not_in_sets,
            vec![uid("has(x)"), uid("has(x)")]
        );
        assert_eq!(selectors.len(), 3);
    }

    #[test]
    fn bad_rules_fail_closed() {
        let cases: Vec<(ApiRule, CompileError)> = vec![
            (
                ApiRule {
                    action: "accept".to_owned(),
                    ..ApiRule::default()
                },
                CompileError::Action,
            ),
            (
                ApiRule {
                    ip_version: Some(5),
                    ..ApiRule::default()
                },
                CompileError::IpVersion,
            ),
            (
                ApiRule {
                    protocol: Some(Protocol::from("gre")),
                    ..ApiRule::default()
                },
                CompileError::Protocol,
            ),
            (
                ApiRule {
                    icmp: Some(IcmpFields {
                        icmp_type: None,
                        code: Some(1),
                    }),
                    ..ApiRule::default()
                },
                CompileError::Icmp,
            ),
            (
                ApiRule {
                    not_icmp: Some(IcmpFields {
                        icmp_type: Some(300),
                        code: None,
                    }),
                    ..ApiRule::default()
                },
                CompileError::Icmp,
            ),
        ];
        for (rule, error) in cases {
            assert_eq!(compile(rule), Err(error));
        }
        let mut ports = ApiRule::default();
        ports.destination.ports = vec![Port::single(80)];
        assert_eq!(compile(ports.clone()), Err(CompileError::Ports));
        ports.protocol = Some(Protocol::from("udp"));
        ports.destination.ports = vec![Port::range(9, 8)];
        assert_eq!(compile(ports), Err(CompileError::Ports));
        let mut selector = ApiRule::default();
        selector.source.selector = "role ==".to_owned();
        assert_eq!(compile(selector), Err(CompileError::Selector));
        let mut tag = ApiRule::default();
        tag.source.tag = "a) || all(".to_owned();
        assert_eq!(compile(tag), Err(CompileError::Selector));

        let mut bad = ApiRule::default();
        bad.source.selector = "!!(".to_owned();
        let good = {
            let mut r = ApiRule::default();
            r.source.selector = "has(a)".to_owned();
            r
        };
        let compiled = Compiled::new(Some(&[good]), Some(&[bad]), Action::Allow);
        assert_eq!(compiled, Compiled::deny_all(true, true));
        assert_eq!(compiled.rules.ingress, vec![Rule::new(Action::Deny)]);
        assert_eq!(
            Compiled::new(
                None,
                Some(&[ApiRule {
                    action: "x".to_owned(),
                    ..ApiRule::default()
                }]),
                Action::Allow
            ),
            Compiled::deny_all(false, true)
        );
    }

    #[test]
    fn ungoverned_directions_have_no_rules_or_sets() {
        let mut rule = ApiRule::default();
        rule.source.selector = "has(a)".to_owned();
        let rules = [rule];
        let compiled = Compiled::new(Some(&rules), None, Action::Allow);
        assert_eq!(compiled.rules.ingress.len(), 1);
        assert!(compiled.rules.egress.is_empty());
        assert_eq!(compiled.selectors.len(), 1);
        let compiled = Compiled::new(None, None, Action::Allow);
        assert_eq!(compiled.rules, Rules::default());
        assert!(compiled.selectors.is_empty());
    }
}
