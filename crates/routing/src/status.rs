//! BGP session status (pure): parsing `birdc show protocols` and printing
//! `calicoctl node status` as Calico's calicoctl does (`calicoctl/commands/node/status.go`).

use std::net::Ipv4Addr;

use crate::PeerType;

/// The file in calico-node's run directory (`CALICO_RUN_DIR`) holding its health, two lines
/// `Readiness: ready` (or `not ready: <why>`) and `Liveness: live` (or `not live: <why>`),
/// rewritten at least every 10 s while calico-node runs; `calicoctl node status` prints it.
pub const HEALTH_FILE: &str = "health";

/// The file in calico-node's run directory holding the address its Prometheus metrics are
/// served on, one line `host:port`, while it serves them (`FELIX_PROMETHEUSMETRICSENABLED`);
/// `calicoctl node diags` reads the metrics there.
pub const METRICS_ADDRESS_FILE: &str = "metrics-address";

/// One BGP session, as BIRD reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// The BIRD protocol name, e.g. `Mesh_10_10_0_12`.
    pub protocol: String,
    /// The peer's address, from the protocol name.
    pub address: Ipv4Addr,
    /// The peer's type, from the protocol name.
    pub peer_type: PeerType,
    /// BIRD's protocol state: `up`, `start`, `down`, ...
    pub state: String,
    /// When the state last changed, as BIRD prints it (`12:30:01`, or a date).
    pub since: String,
    /// BIRD's info column, e.g. `Established` or `Active Socket: Connection refused`.
    pub info: String,
}

/// The BGP sessions in the output of `birdc show protocols`, in BIRD's order.
///
/// A line is a session when its first column is one of Calico's protocol names
/// (`Mesh_<ip>`, `Global_<ip>`, `Node_<ip>`) and its protocol is `BGP`; every other line (the
/// banner, the header, other protocols, anything unexpected) is skipped. A since column printed
/// as a date and a time is kept whole; the info column's words are joined by single spaces.
pub fn parse_protocols(output: &str) -> Vec<PeerStatus> {
    output.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<PeerStatus> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [name, proto, _table, state, since, rest @ ..] = fields.as_slice() else {
        return None;
    };
    if *proto != "BGP" {
        return None;
    }
    let (peer_type, address) = PeerType::parse_protocol_name(name)?;
    let (since, info) = match rest {
        [time, info @ ..] if is_date(since) && is_time(time) => (format!("{since} {time}"), info),
        info => (since.to_string(), info),
    };
    Some(PeerStatus {
        protocol: name.to_string(),
        address,
        peer_type,
        state: state.to_string(),
        since,
        info: info.join(" "),
    })
}

/// `2024-05-01`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// `12:30:01`, possibly with fractions.
fn is_time(s: &str) -> bool {
    s.len() >= 8
        && s.bytes()
            .all(|c| c.is_ascii_digit() || c == b':' || c == b'.')
}

/// `calicoctl node status`.
///
/// `running` says whether Calico's node agent runs; `ipv4_peers` is `None` when BIRD does not
/// run. IPv6 is not routed, so its section always reads `No IPv6 peers found.`. The table is
/// Calico's (olekukonko/tablewriter defaults): centred upper-case headers, cells left-aligned
/// (right-aligned when they are a plain number), and cells longer than 30 columns wrapped at
/// spaces onto more lines.
pub fn render_node_status(running: bool, ipv4_peers: Option<&[PeerStatus]>) -> String {
    if !running {
        return "Calico process is not running.\n".to_string();
    }
    let mut out = String::from("Calico process is running.\n");
    match ipv4_peers {
        None => out.push_str("\nINFO: BIRDv4 process: 'bird' is not running.\n"),
        Some(peers) => {
            out.push_str("\nIPv4 BGP status\n");
            if peers.is_empty() {
                out.push_str("No IPv4 peers found.\n");
            } else {
                let rows: Vec<[String; 5]> = peers
                    .iter()
                    .map(|p| {
                        [
                            p.address.to_string(),
                            p.peer_type.to_string(),
                            p.state.clone(),
                            p.since.clone(),
                            p.info.clone(),
                        ]
                    })
                    .collect();
                out.push_str(&table(
                    ["Peer address", "Peer type", "State", "Since", "Info"],
                    &rows,
                ));
            }
        }
    }
    out.push_str("\nIPv6 BGP status\nNo IPv6 peers found.\n\n");
    out
}

/// Cells wider than this wrap at spaces (tablewriter's `MAX_ROW_WIDTH`).
const MAX_CELL_WIDTH: usize = 30;

/// A bordered table in tablewriter's default style.
fn table<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let headers = headers.map(|h| h.to_uppercase());
    let cells: Vec<[Vec<String>; N]> = rows
        .iter()
        .map(|row| std::array::from_fn(|i| wrap(&row[i], MAX_CELL_WIDTH)))
        .collect();
    let widths: [usize; N] = std::array::from_fn(|i| {
        cells
            .iter()
            .flat_map(|row| row[i].iter())
            .map(|l| width(l))
            .chain([width(&headers[i])])
            .max()
            .unwrap_or(0)
    });
    let border: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";

    let mut out = border.clone();
    for (h, w) in headers.iter().zip(widths) {
        let gap = w.saturating_sub(width(h));
        let left = gap / 2;
        out.push_str(&format!(
            "| {}{h}{} ",
            " ".repeat(left),
            " ".repeat(gap - left)
        ));
    }
    out.push_str("|\n");
    out.push_str(&border);
    for row in &cells {
        let height = row.iter().map(Vec::len).max().unwrap_or(0);
        for line in 0..height {
            for (cell, w) in row.iter().zip(widths) {
                let text = cell.get(line).map(String::as_str).unwrap_or("");
                let pad = " ".repeat(w.saturating_sub(width(text)));
                if is_number(text) {
                    out.push_str(&format!("| {pad}{text} "));
                } else {
                    out.push_str(&format!("| {text}{pad} "));
                }
            }
            out.push_str("|\n");
        }
    }
    out.push_str(&border);
    out
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Words joined greedily into lines of at most `limit` columns; a longer word stays whole.
fn wrap(text: &str, limit: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        if current.is_empty() && lines.is_empty() {
            current.push_str(word);
        } else if width(&current) + 1 + width(word) <= limit {
            current.push(' ');
            current.push_str(word);
        } else {
            lines.push(std::mem::take(&mut current));
            current.push_str(word);
        }
    }
    lines.push(current);
    lines
}

/// tablewriter right-aligns cells matching `^-*\d*\.?\d*$`.
fn is_number(s: &str) -> bool {
    let s = s.trim().trim_start_matches('-');
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    int.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIRDC: &str = "\
BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     12:23:05
direct1    Direct     ---        up     12:23:05
kernel1    Kernel     master4    up     12:23:05
calico_blocks Static     master4    up     12:23:05
Mesh_10_10_0_12 BGP        ---        up     12:30:01      Established
Global_172_16_0_1 BGP        ---        start  2024-05-01    Active        Socket: Connection refused
Node_10_10_0_1 BGP        ---        start  2024-05-01 12:31:07.123  Connect
";

    fn peer(
        address: &str,
        peer_type: PeerType,
        state: &str,
        since: &str,
        info: &str,
    ) -> PeerStatus {
        let address: Ipv4Addr = address.parse().unwrap();
        PeerStatus {
            protocol: peer_type.protocol_name(address),
            address,
            peer_type,
            state: state.into(),
            since: since.into(),
            info: info.into(),
        }
    }

    #[test]
    fn parses_bird2_show_protocols() {
        assert_eq!(
            parse_protocols(BIRDC),
            vec![
                peer(
                    "10.10.0.12",
                    PeerType::Mesh,
                    "up",
                    "12:30:01",
                    "Established"
                ),
                peer(
                    "172.16.0.1",
                    PeerType::Global,
                    "start",
                    "2024-05-01",
                    "Active Socket: Connection refused"
                ),
                peer(
                    "10.10.0.1",
                    PeerType::Node,
                    "start",
                    "2024-05-01 12:31:07.123",
                    "Connect"
                ),
            ]
        );
    }

    #[test]
    fn odd_text_is_skipped() {
        for text in [
            "",
            "\n\n",
            "Mesh_10_10_0_12",
            "Mesh_10_10_0_12 BGP --- up",
            "Mesh_10_10_0_12 Static master4 up 12:30:01",
            "Mesh_1_2_3 BGP --- up 12:30:01 Established",
            "Unable to connect to server control socket (/x): No such file or directory",
            "Mesh_\u{00e9}_1 BGP --- up 12:30:01",
        ] {
            assert_eq!(parse_protocols(text), vec![], "{text:?}");
        }
        let with_empty_info = parse_protocols("Mesh_1_2_3_4 BGP --- down 12:30:01");
        assert_eq!(with_empty_info[0].info, "");
    }

    #[test]
    fn node_status_as_calicoctl_prints_it() {
        let peers = [peer(
            "10.10.0.12",
            PeerType::Mesh,
            "up",
            "12:30:01",
            "Established",
        )];
        let expected = "\
Calico process is running.

IPv4 BGP status
+--------------+-------------------+-------+----------+-------------+
| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |
+--------------+-------------------+-------+----------+-------------+
| 10.10.0.12   | node-to-node mesh | up    | 12:30:01 | Established |
+--------------+-------------------+-------+----------+-------------+

IPv6 BGP status
No IPv6 peers found.

";
        assert_eq!(render_node_status(true, Some(&peers)), expected);
    }

    #[test]
    fn long_info_wraps_like_tablewriter() {
        let peers = [
            peer(
                "10.10.0.12",
                PeerType::Mesh,
                "up",
                "12:30:01",
                "Established",
            ),
            peer(
                "172.16.0.1",
                PeerType::Global,
                "start",
                "2024-05-01",
                "Active Socket: Connection refused",
            ),
            peer("10.10.0.1", PeerType::Node, "start", "12", "Idle"),
        ];
        let expected = "\
+--------------+-------------------+-------+------------+---------------------------+
| PEER ADDRESS |     PEER TYPE     | STATE |   SINCE    |           INFO            |
+--------------+-------------------+-------+------------+---------------------------+
| 10.10.0.12   | node-to-node mesh | up    | 12:30:01   | Established               |
| 172.16.0.1   | global            | start | 2024-05-01 | Active Socket: Connection |
|              |                   |       |            | refused                   |
| 10.10.0.1    | node specific     | start |         12 | Idle                      |
+--------------+-------------------+-------+------------+---------------------------+
";
        let text = render_node_status(true, Some(&peers));
        assert!(text.contains(expected), "{text}");
    }

    #[test]
    fn no_peers_bird_down_calico_down() {
        assert_eq!(
            render_node_status(true, Some(&[])),
            "Calico process is running.\n\nIPv4 BGP status\nNo IPv4 peers found.\n\n\
             IPv6 BGP status\nNo IPv6 peers found.\n\n"
        );
        assert_eq!(
            render_node_status(true, None),
            "Calico process is running.\n\nINFO: BIRDv4 process: 'bird' is not running.\n\n\
             IPv6 BGP status\nNo IPv6 peers found.\n\n"
        );
        assert_eq!(
            render_node_status(false, None),
            "Calico process is not running.\n"
        );
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("", 30), vec![""]);
        assert_eq!(wrap("a b", 3), vec!["a b"]);
        assert_eq!(wrap("a b c", 3), vec!["a b", "c"]);
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            vec!["averyveryverylongword", "x"]
        );
        assert!(is_number("12") && is_number("-1.5") && is_number(""));
        assert!(!is_number("12:30:01") && !is_number("2024-05-01") && !is_number("1.2.3"));
    }
}
