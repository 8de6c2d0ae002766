//! `calicoctl pool ...` (calicoctl 0.x): usage text, the parser of the words after `pool`, and
//! the pure parts of the commands (the checks on new pools, the `pool show` table).

use calico_model::{Cidr, IpPool};

use super::table;
use super::words::{split, OptionSpec};
use super::{Invocation, ParseError};

/// The usage lines, printed after a usage error (as docopt does).
pub const USAGE: &str = "\
Usage:
  calicoctl pool add <CIDRS>... [--ipip] [--nat-outgoing]
  calicoctl pool remove <CIDRS>...
  calicoctl pool show [--ipv4 | --ipv6]
";

/// `calicoctl pool --help`.
pub const HELP: &str = "
Description:
  Configure IP Pools

Options:
  --ipv4          Show IPv4 information only
  --ipv6          Show IPv6 information only
  --nat-outgoing  Apply NAT to outgoing traffic
  --ipip          Use IP-over-IP encapsulation across hosts
";

/// A `calicoctl pool` command.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolCommand {
    /// `pool add <CIDRS>... [--ipip] [--nat-outgoing]`: create or update pools.
    Add {
        /// The pools.
        cidrs: Vec<PoolCidr>,
        /// Enable IPIP.
        ipip: bool,
        /// Enable outgoing NAT.
        nat_outgoing: bool,
    },
    /// `pool remove <CIDRS>...`.
    Remove {
        /// The pools.
        cidrs: Vec<PoolCidr>,
    },
    /// `pool show [--ipv4 | --ipv6]`.
    Show {
        /// Only this IP version; both when `None`.
        version: Option<u8>,
    },
}

/// A pool CIDR as typed (for messages) and as a network (host bits cleared, as Calico did).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolCidr {
    /// The argument.
    pub given: String,
    /// The network.
    pub cidr: Cidr,
}

const OPTIONS: OptionSpec = &[
    ("--ipip", false),
    ("--nat-outgoing", false),
    ("--ipv4", false),
    ("--ipv6", false),
];

/// Parses the words after `calicoctl pool`.
pub fn parse(words: &[String]) -> Result<Invocation<PoolCommand>, ParseError> {
    let split = split(words, OPTIONS)?;
    let (verb, args) = match split.positionals.split_first() {
        Some((verb, args)) => (verb.as_str(), args),
        None => return Err(ParseError::Usage("Missing command".into())),
    };
    let command = match verb {
        "add" => {
            split.allow_only(&["--ipip", "--nat-outgoing"])?;
            PoolCommand::Add {
                cidrs: cidrs(args)?,
                ipip: split.flag("--ipip"),
                nat_outgoing: split.flag("--nat-outgoing"),
            }
        }
        "remove" => {
            split.allow_only(&[])?;
            PoolCommand::Remove {
                cidrs: cidrs(args)?,
            }
        }
        "show" => {
            split.allow_only(&["--ipv4", "--ipv6"])?;
            if let Some(extra) = args.first() {
                return Err(ParseError::Usage(format!("Unexpected '{extra}'")));
            }
            let version = match (split.flag("--ipv4"), split.flag("--ipv6")) {
                (true, true) => {
                    return Err(ParseError::Usage(
                        "--ipv4 and --ipv6 are mutually exclusive".into(),
                    ))
                }
                (true, false) => Some(4),
                (false, true) => Some(6),
                (false, false) => None,
            };
            PoolCommand::Show { version }
        }
        other => {
            return Err(ParseError::Usage(format!(
                "Expected add, remove or show, not '{other}'"
            )))
        }
    };
    Ok(Invocation {
        command,
        config: split.config,
    })
}

/// One or more CIDRs; the first invalid one is reported.
fn cidrs(args: &[String]) -> Result<Vec<PoolCidr>, ParseError> {
    if args.is_empty() {
        return Err(ParseError::Usage("Missing <CIDRS>".into()));
    }
    args.iter()
        .map(|given| match given.parse::<Cidr>() {
            Ok(cidr) => Ok(PoolCidr {
                given: given.clone(),
                cidr: cidr.network(),
            }),
            Err(_) => Err(ParseError::Invalid(format!(
                "Invalid CIDR specified {given}\n"
            ))),
        })
        .collect()
}

/// The longest prefix of a pool: one allocation block (/26, /122).
fn max_prefix(version: u8) -> u8 {
    if version == 4 {
        26
    } else {
        122
    }
}

/// Checks new pools against each other and the existing ones (calicoctl 0.x's checks and
/// words): no IPIP on IPv6, at least one allocation block, no partial overlap (re-adding an
/// existing CIDR updates it).
pub fn check_add(new: &[PoolCidr], ipip: bool, existing: &[Cidr]) -> Result<(), String> {
    if ipip && new.iter().any(|p| p.cidr.version() == 6) {
        return Err("IP in IP not supported for IPv6 pools\n".into());
    }
    for (i, pool) in new.iter().enumerate() {
        let version = pool.cidr.version();
        if pool.cidr.prefix_len() > max_prefix(version) {
            return Err(format!(
                "An IPv{version} pool must have a prefix length of {} or lower.\n\
                 Given: {}.\nNo pools added.\n",
                max_prefix(version),
                pool.given
            ));
        }
        if let Some(other) = overlapping(pool.cidr, existing.iter().copied()) {
            return Err(format!(
                "Cannot add IP pool {} - pool overlaps with an existing pool {other}\n",
                pool.given
            ));
        }
        if let Some(other) = overlapping(pool.cidr, new[..i].iter().map(|p| p.cidr)) {
            return Err(format!(
                "Cannot add IP pool {} - pool overlaps with another new pool {other}\n",
                pool.given
            ));
        }
    }
    Ok(())
}

/// The first of `others` that overlaps `cidr` without being the same network.
fn overlapping(cidr: Cidr, mut others: impl Iterator<Item = Cidr>) -> Option<Cidr> {
    others.find(|other| *other != cidr && other.overlaps(&cidr))
}

/// The `pool show` table of one IP version: `IPv4 CIDR | Options`, sorted by CIDR text;
/// options (`ipip`, `nat-outgoing`) are listed for IPv4 pools only, as calicoctl 0.x did.
pub fn show_table(version: u8, pools: &[IpPool]) -> String {
    let mut rows: Vec<Vec<String>> = pools
        .iter()
        .filter_map(|pool| Some((pool.metadata.cidr?, pool)))
        .filter(|(cidr, _)| cidr.version() == version)
        .map(|(cidr, pool)| {
            let ipip = pool.spec.ipip.as_ref().is_some_and(|i| i.enabled);
            let options: Vec<&str> = [(ipip, "ipip"), (pool.spec.nat_outgoing, "nat-outgoing")]
                .into_iter()
                .filter(|(on, _)| *on && version == 4)
                .map(|(_, name)| name)
                .collect();
            vec![cidr.to_string(), options.join(",")]
        })
        .collect();
    rows.sort();
    let heading = format!("IPv{version} CIDR");
    table::render(&[&heading, "Options"], &rows)
}

#[cfg(test)]
mod tests {
    use calico_model::{IpPoolMetadata, IpPoolSpec, IpipConfiguration};

    use super::*;

    fn parse_str(s: &str) -> Result<PoolCommand, ParseError> {
        let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse(&words).map(|i| i.command)
    }

    fn pools(list: &[&str]) -> Vec<PoolCidr> {
        list.iter()
            .map(|c| PoolCidr {
                given: c.to_string(),
                cidr: c.parse::<Cidr>().unwrap().network(),
            })
            .collect()
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_three_commands() {
        assert_eq!(
            parse_str("add 192.168.0.0/16 --ipip --nat-outgoing"),
            Ok(PoolCommand::Add {
                cidrs: pools(&["192.168.0.0/16"]),
                ipip: true,
                nat_outgoing: true
            })
        );
        assert_eq!(
            parse_str("remove 10.0.0.0/8 fd00::/64"),
            Ok(PoolCommand::Remove {
                cidrs: pools(&["10.0.0.0/8", "fd00::/64"])
            })
        );
        assert_eq!(parse_str("show"), Ok(PoolCommand::Show { version: None }));
        assert_eq!(
            parse_str("show --ipv6"),
            Ok(PoolCommand::Show { version: Some(6) })
        );
    }

    #[test]
    fn host_bits_are_cleared_but_the_typed_form_is_kept() {
        let Ok(PoolCommand::Remove { cidrs }) = parse_str("remove 10.1.2.3/16") else {
            panic!()
        };
        assert_eq!(cidrs[0].given, "10.1.2.3/16");
        assert_eq!(cidrs[0].cidr, cidr("10.1.0.0/16"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_str("add 10.0.0.0/33"),
            Err(ParseError::Invalid(
                "Invalid CIDR specified 10.0.0.0/33\n".into()
            ))
        );
        assert_eq!(
            parse_str("add"),
            Err(ParseError::Usage("Missing <CIDRS>".into()))
        );
        assert_eq!(
            parse_str("show --ipv4 --ipv6"),
            Err(ParseError::Usage(
                "--ipv4 and --ipv6 are mutually exclusive".into()
            ))
        );
        assert_eq!(
            parse_str("remove 10.0.0.0/8 --ipip"),
            Err(ParseError::Usage("--ipip is not valid here".into()))
        );
        assert_eq!(
            parse_str("range add 10.0.0.0 10.0.0.255"),
            Err(ParseError::Usage(
                "Expected add, remove or show, not 'range'".into()
            ))
        );
    }

    #[test]
    fn add_checks() {
        let existing = [cidr("192.168.0.0/16")];
        assert_eq!(check_add(&pools(&["10.0.0.0/8"]), true, &existing), Ok(()));
        assert_eq!(
            check_add(&pools(&["192.168.0.0/16"]), false, &existing),
            Ok(()),
            "re-adding a pool updates it"
        );
        assert_eq!(
            check_add(&pools(&["10.0.0.0/8", "fd00::/64"]), true, &[]),
            Err("IP in IP not supported for IPv6 pools\n".into())
        );
        assert_eq!(
            check_add(&pools(&["10.0.0.0/27"]), false, &[]),
            Err("An IPv4 pool must have a prefix length of 26 or lower.\n\
                 Given: 10.0.0.0/27.\nNo pools added.\n"
                .into())
        );
        assert_eq!(
            check_add(&pools(&["fd00::/123"]), false, &[]),
            Err("An IPv6 pool must have a prefix length of 122 or lower.\n\
                 Given: fd00::/123.\nNo pools added.\n"
                .into())
        );
        assert_eq!(
            check_add(&pools(&["192.168.1.0/24"]), false, &existing),
            Err(
                "Cannot add IP pool 192.168.1.0/24 - pool overlaps with an existing pool \
                 192.168.0.0/16\n"
                    .into()
            )
        );
        assert_eq!(
            check_add(&pools(&["10.0.0.0/8", "10.1.0.0/16"]), false, &[]),
            Err(
                "Cannot add IP pool 10.1.0.0/16 - pool overlaps with another new pool \
                 10.0.0.0/8\n"
                    .into()
            )
        );
    }

    #[test]
    fn show_table_lists_v4_options() {
        let pool = |c: &str, ipip: bool, nat: bool| IpPool {
            metadata: IpPoolMetadata {
                cidr: Some(cidr(c)),
            },
            spec: IpPoolSpec {
                ipip: ipip.then(|| IpipConfiguration {
                    enabled: true,
                    mode: String::new(),
                }),
                nat_outgoing: nat,
                disabled: false,
            },
        };
        let all = [
            pool("192.168.0.0/16", true, true),
            pool("10.0.0.0/8", false, false),
            pool("fd00::/64", false, true),
        ];
        assert_eq!(
            show_table(4, &all),
            "+----------------+-------------------+\n\
             |   IPv4 CIDR    |      Options      |\n\
             +----------------+-------------------+\n\
             |   10.0.0.0/8   |                   |\n\
             | 192.168.0.0/16 | ipip,nat-outgoing |\n\
             +----------------+-------------------+\n"
        );
        assert_eq!(
            show_table(6, &all),
            "+-----------+---------+\n\
             | IPv6 CIDR | Options |\n\
             +-----------+---------+\n\
             | fd00::/64 |         |\n\
             +-----------+---------+\n"
        );
    }
}
