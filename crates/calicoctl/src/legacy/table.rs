//! Tables as calicoctl 0.x printed them with PrettyTable 0.7's defaults: `+---+` rules, every
//! cell centred with one space of padding, a rule under the header and at the bottom (an
//! empty table is its header and two rules).

/// Renders the table; rows are printed in the order given (the caller sorts).
pub fn render(headings: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headings.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .chain(["+\n".to_string()])
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut out: String = cells
            .zip(&widths)
            .map(|(cell, &width)| format!("| {} ", centre(cell, width)))
            .collect();
        out.push_str("|\n");
        out
    };
    let mut out = rule.clone();
    out.push_str(&line(&mut headings.iter().copied()));
    out.push_str(&rule);
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out.push_str(&rule);
    out
}

/// PrettyTable's centring (that of Python's `str.center`): when the spare space is odd, the
/// extra space goes right of odd-length text and left of even-length text.
fn centre(text: &str, width: usize) -> String {
    let len = text.chars().count();
    let spare = width.saturating_sub(len);
    let left = if !spare.is_multiple_of(2) && len.is_multiple_of(2) {
        spare / 2 + 1
    } else {
        spare / 2
    };
    format!("{}{text}{}", " ".repeat(left), " ".repeat(spare - left))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    /// Expected output comes from PrettyTable 0.7.2 under Python 2.7.
    #[test]
    fn matches_prettytable() {
        assert_eq!(
            render(&["IPv4 CIDR", "Options"], &[]),
            "+-----------+---------+\n\
             | IPv4 CIDR | Options |\n\
             +-----------+---------+\n\
             +-----------+---------+\n"
        );
        assert_eq!(
            render(
                &["IPv4 CIDR", "Options"],
                &[
                    row(&["10.0.0.0/8", ""]),
                    row(&["192.168.0.0/16", "ipip,nat-outgoing"])
                ]
            ),
            "+----------------+-------------------+\n\
             |   IPv4 CIDR    |      Options      |\n\
             +----------------+-------------------+\n\
             |   10.0.0.0/8   |                   |\n\
             | 192.168.0.0/16 | ipip,nat-outgoing |\n\
             +----------------+-------------------+\n"
        );
        assert_eq!(
            render(
                &[
                    "Name",
                    "Host",
                    "Orchestrator ID",
                    "Workload ID",
                    "Endpoint ID",
                    "State"
                ],
                &[
                    row(&[
                        "ab",
                        "host1",
                        "libnetwork",
                        "libnetwork",
                        "0123456789abcdef",
                        "active"
                    ]),
                    row(&["db", "None", "None", "None", "None", "None"]),
                ]
            ),
            "+------+-------+-----------------+-------------+------------------+--------+\n\
             | Name |  Host | Orchestrator ID | Workload ID |   Endpoint ID    | State  |\n\
             +------+-------+-----------------+-------------+------------------+--------+\n\
             |  ab  | host1 |    libnetwork   |  libnetwork | 0123456789abcdef | active |\n\
             |  db  |  None |       None      |     None    |       None       |  None  |\n\
             +------+-------+-----------------+-------------+------------------+--------+\n"
        );
    }
}
