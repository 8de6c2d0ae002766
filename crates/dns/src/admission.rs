//! Who the server answers (the [`Clients`] seam) and how refused queries are counted for the
//! log (`Refusals`, pure).
//!
//! The server is not an open resolver: it asks its [`Clients`] about the source address of
//! every UDP query and the peer address of every TCP connection before it reads or answers
//! anything. A refused UDP query gets no reply at all (no REFUSED either, which would itself
//! answer a spoofed source); a refused TCP connection is closed at once, unread. The refusals
//! are counted and logged at debug level, one line at most every 10 s, so a flood of queries
//! from outside does not flood the log.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Decides who may use the server. calico-node admits its host's own workloads and the host
/// itself; the tests use fakes.
pub trait Clients: Send + Sync {
    /// Whether a query from `client` is answered (and forwarded). Called once per UDP query and
    /// once per TCP connection, on the server's receive loop: it must not block.
    fn admits(&self, client: IpAddr) -> bool;
}

/// Least time between two debug reports of refused queries.
pub(crate) const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Counts refused queries and says when to report them: the first refusal at once, then the
/// count since the last report, at most once per [`REPORT_EVERY`].
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    /// Refusals not yet reported.
    pending: u64,
    /// When the last report was made; `None` before the first.
    reported_at: Option<Instant>,
}

/// A report of refused queries, for the debug log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    /// How many queries (or TCP connections) were refused since the last report, this one
    /// included.
    pub(crate) refused: u64,
    /// The source of the latest one.
    pub(crate) latest: IpAddr,
}

impl Refusals {
    /// Counts a query from `source` refused at `now`; returns the report to log, if one is due.
    pub(crate) fn refused(&mut self, source: IpAddr, now: Instant) -> Option<Report> {
        self.pending = self.pending.saturating_add(1);
        let due = self
            .reported_at
            .is_none_or(|at| now.saturating_duration_since(at) >= REPORT_EVERY);
        if !due {
            return None;
        }
        self.reported_at = Some(now);
        let refused = std::mem::take(&mut self.pending);
        Some(Report {
            refused,
            latest: source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, last))
    }

    #[test]
    fn the_first_refusal_is_reported_then_a_count_at_most_every_interval() {
        let start = Instant::now();
        let mut refusals = Refusals::default();
        let report = |refused, last| {
            Some(Report {
                refused,
                latest: ip(last),
            })
        };
        assert_eq!(refusals.refused(ip(1), start), report(1, 1));
        assert_eq!(
            refusals.refused(ip(2), start + Duration::from_secs(1)),
            None
        );
        assert_eq!(
            refusals.refused(ip(3), start + Duration::from_secs(9)),
            None
        );
        assert_eq!(
            refusals.refused(ip(4), start + REPORT_EVERY),
            report(3, 4),
            "the two held back and this one"
        );
        assert_eq!(
            refusals.refused(ip(5), start + REPORT_EVERY + Duration::from_secs(1)),
            None
        );
        assert_eq!(
            refusals.refused(ip(6), start + REPORT_EVERY * 5),
            report(2, 6)
        );
    }
}
