//! DNS messages (pure, RFC 1035): parsing a query's header and question, and building the few
//! responses the server sends.
//!
//! Parsing never panics, whatever the input: every read is bounds-checked.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::WireError;

/// Record type A (an IPv4 address).
pub const TYPE_A: u16 = 1;
/// Class IN (the Internet).
pub const CLASS_IN: u16 = 1;
/// Largest DNS message over UDP without EDNS (RFC 1035 §4.2.1).
pub const UDP_MAX: usize = 512;
/// Largest DNS message over TCP (its length prefix is 16 bits).
pub const TCP_MAX: usize = 65535;

const HEADER_LEN: usize = 12;
const MAX_NAME_LEN: usize = 255;
const MAX_LABEL_LEN: u8 = 63;
/// A label length byte with both top bits set starts a compression pointer.
const POINTER: u8 = 0xC0;
/// An A record after a compressed name: pointer, type, class, TTL, length, address.
const A_RECORD_LEN: usize = 2 + 2 + 2 + 4 + 2 + 4;

const QR: u8 = 0x80;
const OPCODE_MASK: u8 = 0x78;
const AA: u8 = 0x04;
const TC: u8 = 0x02;
const RD: u8 = 0x01;
const RA: u8 = 0x80;

const RCODE_NOERROR: u8 = 0;
const RCODE_FORMERR: u8 = 1;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_NOTIMP: u8 = 4;

/// A parsed DNS query: its header fields and its one question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The message id, echoed in the response.
    pub id: u16,
    /// The opcode (0 is a standard query).
    pub opcode: u8,
    /// Recursion desired, echoed in the response.
    pub rd: bool,
    /// The question's name: lower-cased labels joined by dots, no trailing dot (empty for the
    /// root); bytes other than ASCII letters, digits, `-` and `_` written `\DDD` (decimal).
    pub name: String,
    /// The question's type.
    pub qtype: u16,
    /// The question's class.
    pub qclass: u16,
    /// The question exactly as received (name, type, class), echoed in responses.
    question: Vec<u8>,
}

impl Query {
    /// Parses a query: its header and its one question; any other section is ignored.
    pub fn parse(packet: &[u8]) -> Result<Query, WireError> {
        let header = header(packet).ok_or(WireError::TooShort)?;
        if header[2] & QR != 0 {
            return Err(WireError::NotQuery);
        }
        let qdcount = u16::from_be_bytes([header[4], header[5]]);
        if qdcount != 1 {
            return Err(WireError::QuestionCount(qdcount));
        }
        let mut name = String::new();
        let mut pos = HEADER_LEN;
        let mut name_len = 0;
        loop {
            let len = *packet.get(pos).ok_or(WireError::Truncated)?;
            if len >= POINTER {
                return Err(WireError::Compression);
            }
            if len > MAX_LABEL_LEN {
                return Err(WireError::LabelTooLong(len));
            }
            name_len += 1 + usize::from(len);
            if name_len > MAX_NAME_LEN {
                return Err(WireError::NameTooLong);
            }
            let start = pos + 1;
            pos = start + usize::from(len);
            if len == 0 {
                break;
            }
            let label = packet.get(start..pos).ok_or(WireError::Truncated)?;
            if !name.is_empty() {
                name.push('.');
            }
            push_label(&mut name, label);
        }
        let qtype = u16_at(packet, pos).ok_or(WireError::Truncated)?;
        let qclass = u16_at(packet, pos + 2).ok_or(WireError::Truncated)?;
        let question = packet
            .get(HEADER_LEN..pos + 4)
            .ok_or(WireError::Truncated)?
            .to_vec();
        Ok(Query {
            id: u16::from_be_bytes([header[0], header[1]]),
            opcode: (header[2] & OPCODE_MASK) >> 3,
            rd: header[2] & RD != 0,
            name,
            qtype,
            qclass,
            question,
        })
    }

    /// An authoritative answer with one A record (class IN, `ttl` seconds) per address, as many
    /// as fit in `max_len` bytes (TC set when some did not); no address makes it NODATA.
    pub fn answer(&self, addrs: &[Ipv4Addr], ttl: u32, max_len: usize) -> Vec<u8> {
        let room = max_len.saturating_sub(HEADER_LEN + self.question.len()) / A_RECORD_LEN;
        let count = addrs.len().min(room).min(usize::from(u16::MAX));
        let truncated = count < addrs.len();
        let mut out = self.response(RCODE_NOERROR, true, truncated, count as u16);
        for addr in addrs.iter().take(count) {
            out.extend_from_slice(&[POINTER, HEADER_LEN as u8]);
            out.extend_from_slice(&TYPE_A.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&addr.octets());
        }
        out
    }

    /// An authoritative NODATA: the name exists but has no record of the queried type.
    pub fn nodata(&self) -> Vec<u8> {
        self.response(RCODE_NOERROR, true, false, 0)
    }

    /// An authoritative NXDOMAIN: no such name.
    pub fn nxdomain(&self) -> Vec<u8> {
        self.response(RCODE_NXDOMAIN, true, false, 0)
    }

    /// A SERVFAIL: the query could not be answered (no upstream replied).
    pub fn servfail(&self) -> Vec<u8> {
        self.response(RCODE_SERVFAIL, false, false, 0)
    }

    /// A NOTIMP: the opcode is not a standard query.
    pub fn notimp(&self) -> Vec<u8> {
        self.response(RCODE_NOTIMP, false, false, 0)
    }

    /// The header (QR, RA, id, opcode and RD echoed) and the question, `ancount` answers to
    /// follow.
    fn response(&self, rcode: u8, aa: bool, tc: bool, ancount: u16) -> Vec<u8> {
        let mut flags = QR | ((self.opcode << 3) & OPCODE_MASK);
        if aa {
            flags |= AA;
        }
        if tc {
            flags |= TC;
        }
        if self.rd {
            flags |= RD;
        }
        let mut out = Vec::with_capacity(HEADER_LEN + self.question.len());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&[flags, RA | rcode]);
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ancount.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&self.question);
        out
    }
}

/// A FORMERR for a message whose question could not be parsed, built from its header alone (id,
/// opcode and RD echoed, no question); `None` when there is no header or the message is itself a
/// response (never answer a response: two servers would bounce errors forever).
pub fn formerr(packet: &[u8]) -> Option<Vec<u8>> {
    let header = header(packet)?;
    if header[2] & QR != 0 {
        return None;
    }
    let flags = QR | (header[2] & (OPCODE_MASK | RD));
    let mut out = vec![0; HEADER_LEN];
    out[..2].copy_from_slice(&header[..2]);
    out[2] = flags;
    out[3] = RA | RCODE_FORMERR;
    Some(out)
}

/// Whether `packet` is a response (QR set) with message id `id`.
pub(crate) fn is_response_to(packet: &[u8], id: u16) -> bool {
    header(packet).is_some_and(|h| h[2] & QR != 0 && u16::from_be_bytes([h[0], h[1]]) == id)
}

fn header(packet: &[u8]) -> Option<&[u8; HEADER_LEN]> {
    packet.get(..HEADER_LEN)?.try_into().ok()
}

fn u16_at(packet: &[u8], pos: usize) -> Option<u16> {
    let bytes = packet.get(pos..pos.checked_add(2)?)?;
    Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
}

/// Appends a label lower-cased, escaping every byte that is not a letter, a digit, `-` or `_`
/// (so a `.` in the text always separates labels).
fn push_label(name: &mut String, label: &[u8]) {
    for &b in label {
        let b = b.to_ascii_lowercase();
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            name.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(name, "\\{b:03}");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A standard query with RD set for `name` (dotted, no escapes) and `qtype`, class IN.
    pub(crate) fn query_packet(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&[RD, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.').filter(|l| !l.is_empty()) {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&CLASS_IN.to_be_bytes());
        p
    }

    /// What a test needs from a response.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) struct Decoded {
        pub id: u16,
        pub flags: u8,
        pub rcode: u8,
        pub qdcount: u16,
        pub ancount: u16,
        pub ttls: Vec<u32>,
        pub addrs: Vec<Ipv4Addr>,
    }

    /// Decodes a response this module built (answers named by a pointer); panics otherwise.
    pub(crate) fn decode(resp: &[u8]) -> Decoded {
        let qdcount = u16::from_be_bytes([resp[4], resp[5]]);
        let ancount = u16::from_be_bytes([resp[6], resp[7]]);
        let mut pos = HEADER_LEN;
        if qdcount == 1 {
            while resp[pos] != 0 {
                pos += 1 + usize::from(resp[pos]);
            }
            pos += 5;
        }
        let (mut ttls, mut addrs) = (Vec::new(), Vec::new());
        for _ in 0..ancount {
            assert_eq!(&resp[pos..pos + 2], &[POINTER, HEADER_LEN as u8]);
            assert_eq!(&resp[pos + 2..pos + 6], &[0, 1, 0, 1]);
            ttls.push(u32::from_be_bytes(
                resp[pos + 6..pos + 10].try_into().unwrap(),
            ));
            assert_eq!(&resp[pos + 10..pos + 12], &[0, 4]);
            addrs.push(Ipv4Addr::new(
                resp[pos + 12],
                resp[pos + 13],
                resp[pos + 14],
                resp[pos + 15],
            ));
            pos += A_RECORD_LEN;
        }
        assert_eq!(pos, resp.len(), "trailing bytes in {resp:?}");
        Decoded {
            id: u16::from_be_bytes([resp[0], resp[1]]),
            flags: resp[2],
            rcode: resp[3] & 0x0f,
            qdcount,
            ancount,
            ttls,
            addrs,
        }
    }

    fn with_opt_record(mut p: Vec<u8>) -> Vec<u8> {
        p[11] = 1;
        p.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn parses_a_query() {
        let q = Query::parse(&query_packet(0xBEEF, "Workload-A.NET1", TYPE_A)).unwrap();
        assert_eq!(q.id, 0xBEEF);
        assert_eq!(q.opcode, 0);
        assert!(q.rd);
        assert_eq!(q.name, "workload-a.net1");
        assert_eq!((q.qtype, q.qclass), (TYPE_A, CLASS_IN));
    }

    #[test]
    fn parses_root_opcode_and_no_rd() {
        let mut p = query_packet(7, "", 2);
        p[2] = 2 << 3;
        let q = Query::parse(&p).unwrap();
        assert_eq!(
            (q.name.as_str(), q.opcode, q.rd, q.qtype),
            ("", 2, false, 2)
        );
    }

    #[test]
    fn ignores_additional_records() {
        let p = with_opt_record(query_packet(1, "a.net1", TYPE_A));
        assert_eq!(Query::parse(&p).unwrap().name, "a.net1");
    }

    #[test]
    fn escapes_unusual_bytes() {
        let mut p = query_packet(1, "x", TYPE_A);
        p.splice(12..14, [3, b'a', b'.', 0xC3]);
        assert_eq!(Query::parse(&p).unwrap().name, "a\\046\\195");
        let p = query_packet(1, "*.under_score", TYPE_A);
        assert_eq!(Query::parse(&p).unwrap().name, "\\042.under_score");
    }

    #[test]
    fn rejects_malformed_queries() {
        let good = query_packet(1, "a.net1", TYPE_A);
        let mut response = good.clone();
        response[2] |= QR;
        let mut no_question = good.clone();
        no_question[5] = 0;
        let mut two_questions = good.clone();
        two_questions[5] = 2;
        let mut pointer = good[..12].to_vec();
        pointer.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        let mut reserved = good[..12].to_vec();
        reserved.extend_from_slice(&[0x40, 0, 0, 1, 0, 1]);
        let long_label = query_packet(1, &"a".repeat(64), TYPE_A);
        let label63 = "b".repeat(63);
        let long_name = query_packet(1, &[label63.as_str(); 4].join("."), TYPE_A);
        let max_name = [label63.as_str(), &label63, &label63, &"c".repeat(61)].join(".");
        assert!(Query::parse(&query_packet(1, &max_name, TYPE_A)).is_ok());
        let cases: [(&[u8], WireError); 9] = [
            (&good[..11], WireError::TooShort),
            (&response, WireError::NotQuery),
            (&no_question, WireError::QuestionCount(0)),
            (&two_questions, WireError::QuestionCount(2)),
            (&pointer, WireError::Compression),
            (&reserved, WireError::LabelTooLong(0x40)),
            (&long_label, WireError::LabelTooLong(64)),
            (&long_name, WireError::NameTooLong),
            (&good[..good.len() - 1], WireError::Truncated),
        ];
        for (packet, error) in cases {
            assert_eq!(Query::parse(packet), Err(error), "{packet:?}");
        }
    }

    #[test]
    fn answer_echoes_the_question_and_lists_a_records() {
        let p = with_opt_record(query_packet(0x1234, "Workload-A.net1", TYPE_A));
        let q = Query::parse(&p).unwrap();
        let addrs = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
        let resp = q.answer(&addrs, 5, UDP_MAX);
        assert_eq!(&resp[12..12 + q.question.len()], &p[12..p.len() - 11]);
        assert_eq!(
            decode(&resp),
            Decoded {
                id: 0x1234,
                flags: QR | AA | RD,
                rcode: 0,
                qdcount: 1,
                ancount: 2,
                ttls: vec![5, 5],
                addrs: addrs.to_vec(),
            }
        );
        assert_eq!(resp[3], RA);
    }

    #[test]
    fn answer_without_rd_and_without_addresses() {
        let mut p = query_packet(9, "a", TYPE_A);
        p[2] = 0;
        let q = Query::parse(&p).unwrap();
        let d = decode(&q.answer(&[], 5, UDP_MAX));
        assert_eq!((d.flags, d.rcode, d.ancount), (QR | AA, 0, 0));
        assert_eq!(q.answer(&[], 5, UDP_MAX), q.nodata());
    }

    #[test]
    fn answer_truncates_to_the_size_limit() {
        let q = Query::parse(&query_packet(1, "big.net1", TYPE_A)).unwrap();
        let addrs: Vec<Ipv4Addr> = (0..100u32)
            .map(|i| Ipv4Addr::from(0x0a00_0000 + i))
            .collect();
        let udp = q.answer(&addrs, 5, UDP_MAX);
        assert!(udp.len() <= UDP_MAX);
        let d = decode(&udp);
        assert_eq!(
            usize::from(d.ancount),
            (UDP_MAX - 12 - q.question.len()) / 16
        );
        assert_eq!(d.addrs, addrs[..usize::from(d.ancount)]);
        assert_eq!(d.flags & TC, TC);
        let tcp = decode(&q.answer(&addrs, 5, TCP_MAX));
        assert_eq!((tcp.ancount, tcp.flags & TC), (100, 0));
        assert_eq!(decode(&q.answer(&addrs, 5, 0)).ancount, 0);
    }

    #[test]
    fn error_responses_carry_their_rcode() {
        let mut p = query_packet(42, "ghost.net1", 28);
        p[2] |= 1 << 3;
        let q = Query::parse(&p).unwrap();
        let rd_opcode = QR | (1 << 3) | RD;
        for (resp, flags, rcode) in [
            (q.nodata(), rd_opcode | AA, 0),
            (q.nxdomain(), rd_opcode | AA, 3),
            (q.servfail(), rd_opcode, 2),
            (q.notimp(), rd_opcode, 4),
        ] {
            let d = decode(&resp);
            assert_eq!((d.id, d.flags, d.rcode), (42, flags, rcode));
            assert_eq!((d.qdcount, d.ancount, resp[3] & RA), (1, 0, RA));
        }
    }

    #[test]
    fn formerr_from_the_header_alone() {
        let mut p = query_packet(0xABCD, "a", TYPE_A);
        p[2] |= 2 << 3;
        p[5] = 0;
        let resp = formerr(&p).unwrap();
        assert_eq!(
            resp,
            [
                0xAB,
                0xCD,
                QR | (2 << 3) | RD,
                RA | 1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0
            ]
        );
        assert_eq!(formerr(&p[..12]).unwrap(), resp);
        assert_eq!(formerr(&p[..11]), None);
        p[2] |= QR;
        assert_eq!(formerr(&p), None);
    }

    #[test]
    fn recognises_responses_by_id() {
        let q = Query::parse(&query_packet(77, "a", TYPE_A)).unwrap();
        assert!(is_response_to(&q.servfail(), 77));
        assert!(!is_response_to(&q.servfail(), 78));
        assert!(!is_response_to(&query_packet(77, "a", TYPE_A), 77));
        assert!(!is_response_to(&q.servfail()[..11], 77));
    }

    /// A deterministic xorshift generator: no dependency, same bytes on every run.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Parses `packet` and, when it parses, builds every response from it: none may panic, and
    /// a parsed query must keep its question whole.
    fn parse_and_build(packet: &[u8]) {
        if let Ok(q) = Query::parse(packet) {
            assert_eq!(&packet[12..12 + q.question.len()], q.question.as_slice());
            let resp = q.answer(&[Ipv4Addr::LOCALHOST; 40], 5, UDP_MAX);
            assert!(resp.len() <= UDP_MAX);
            for resp in [q.nodata(), q.nxdomain(), q.servfail(), q.notimp()] {
                assert!(is_response_to(&resp, q.id));
            }
        }
        if let Some(resp) = formerr(packet) {
            assert_eq!(resp.len(), 12);
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let samples = [
            query_packet(1, "workload-a.net1", TYPE_A),
            with_opt_record(query_packet(2, "a.b.c.d.e", 28)),
            query_packet(3, &["x".repeat(63), "y".repeat(63)].join("."), TYPE_A),
        ];
        for sample in &samples {
            let question_end = 12 + Query::parse(sample).unwrap().question.len();
            for end in 0..=sample.len() {
                parse_and_build(&sample[..end]);
                let parses = Query::parse(&sample[..end]).is_ok();
                assert_eq!(parses, end >= question_end, "{:?}", &sample[..end]);
            }
        }
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..20_000 {
            let sample = &samples[round % samples.len()];
            let mut packet = if round % 2 == 0 {
                let mut mutated = sample.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let i = (rng.next() as usize) % mutated.len();
                    mutated[i] = rng.next() as u8;
                }
                mutated
            } else {
                let len = (rng.next() % 300) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            };
            if round % 3 == 0 && packet.len() > 5 {
                packet[2] &= !QR;
                packet[4] = 0;
                packet[5] = 1;
            }
            parse_and_build(&packet);
        }
    }
}
