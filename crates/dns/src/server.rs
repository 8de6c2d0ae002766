//! The DNS server (I/O, tokio): answers workload names from a [`Names`] table over UDP and TCP
//! and forwards every other query to upstream resolvers, for the clients its [`Clients`] admits.
//!
//! - Each UDP query's source and each TCP connection's peer is first put to the [`Clients`]
//!   (IPv4-mapped IPv6 addresses as IPv4). A refused UDP query gets no reply; a refused TCP
//!   connection is closed before anything is read. Refusals are logged at debug level, at most
//!   one line per 10 s with the count (see [`crate::admission`]).
//! - A names (class IN) are answered with their addresses, TTL 5 s; other types of a
//!   known name get NODATA; an unknown container under a known network gets NXDOMAIN.
//! - Other queries are forwarded, the original bytes, to each upstream in turn (each given the
//!   forward timeout, 2 s by default), over the transport the query came on: UDP for UDP, so a
//!   truncated upstream answer reaches the client with its TC bit and the client retries over
//!   TCP; TCP for TCP, so large answers come back whole. The first reply with the query's id is
//!   relayed verbatim; when there is no upstream or none replies, the client gets SERVFAIL.
//!   Each forwarded UDP query runs in a task of its own, so a slow upstream delays no other
//!   query.
//! - A query that does not parse gets FORMERR, or nothing when it has no header or is itself a
//!   response; a query whose opcode is not a standard query gets NOTIMP.
//! - TCP carries 2-byte length-prefixed messages, several per connection, answered in order; a
//!   connection is closed after 10 s without a query or on a query over 4096 bytes.
//! - At most 1024 forwarded UDP queries and TCP connections are in progress at once;
//!   beyond that, queries are dropped and connections closed.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};
use tracing::{debug, warn};

use crate::admission::{Clients, Refusals};
use crate::wire::{self, Query, CLASS_IN, TCP_MAX, TYPE_A, UDP_MAX};
use crate::{DnsError, Lookup, Names};

/// TTL of the A records answered from the table: short, as workloads come and go, but enough
/// for a client's burst of lookups.
const ANSWER_TTL: u32 = 5;
/// How long each upstream is given to reply, unless [`DnsServer::with_forward_timeout`] says.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a TCP connection may wait for its next query (or for its reply to be sent).
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest query accepted over TCP.
const MAX_TCP_QUERY: usize = 4096;
/// Most forwarded UDP queries and TCP connections in progress at once.
const MAX_TASKS: usize = 1024;
/// How many times binding an ephemeral port is retried when TCP finds UDP's port taken.
const BIND_ATTEMPTS: usize = 8;
/// Pause after a failed receive or accept, so a persistent error does not spin.
const ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A DNS server bound on one address, UDP and TCP, answering from a shared [`Names`] table
/// the clients a [`Clients`] admits.
pub struct DnsServer {
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
    local_addr: SocketAddr,
    clients: Arc<dyn Clients>,
    resolver: Resolver,
}

impl fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsServer")
            .field("local_addr", &self.local_addr)
            .field("resolver", &self.resolver)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Binds UDP and TCP on `addr` (port 0: the same free port for both), to answer from `names`
    /// and forward to `upstreams` in order, for the clients that `clients` admits.
    pub async fn bind(
        addr: SocketAddr,
        names: Arc<RwLock<Names>>,
        upstreams: Vec<SocketAddr>,
        clients: Arc<dyn Clients>,
    ) -> Result<DnsServer, DnsError> {
        let mut attempts = 1;
        let (udp, tcp, local_addr) = loop {
            let udp = UdpSocket::bind(addr)
                .await
                .map_err(bind_error("UDP", addr))?;
            let local_addr = udp.local_addr().map_err(bind_error("UDP", addr))?;
            match TcpListener::bind(local_addr).await {
                Ok(tcp) => break (udp, tcp, local_addr),
                Err(e)
                    if addr.port() == 0
                        && e.kind() == io::ErrorKind::AddrInUse
                        && attempts < BIND_ATTEMPTS =>
                {
                    debug!(%local_addr, error = %e, "DNS: TCP port taken, trying another port");
                    attempts += 1;
                }
                Err(e) => return Err(bind_error("TCP", local_addr)(e)),
            }
        };
        Ok(DnsServer {
            udp: Arc::new(udp),
            tcp,
            local_addr,
            clients,
            resolver: Resolver {
                names,
                upstreams,
                forward_timeout: FORWARD_TIMEOUT,
                observer: None,
            },
        })
    }

    /// Gives each upstream `forward_timeout` to reply instead of 2 s.
    pub fn with_forward_timeout(mut self, forward_timeout: Duration) -> DnsServer {
        self.resolver.forward_timeout = forward_timeout;
        self
    }

    /// Tells `observer` how each query ended.
    pub fn with_observer(mut self, observer: QueryObserver) -> DnsServer {
        self.resolver.observer = Some(observer);
        self
    }

    /// The address both sockets are bound on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves queries forever; dropping the future stops the server and every query in progress.
    pub async fn run(self) {
        let resolver = Arc::new(self.resolver);
        let mut tasks = JoinSet::new();
        let mut refusals = Refusals::default();
        let mut refused = |peer: SocketAddr, transport: Transport| {
            let client = peer.ip().to_canonical();
            if self.clients.admits(client) {
                return false;
            }
            if let Some(report) = refusals.refused(client, Instant::now()) {
                debug!(
                    refused = report.refused,
                    latest = %report.latest,
                    latest_over = %transport,
                    "DNS: refused queries from sources that may not use this server \
                     (neither this host nor one of its workloads)"
                );
            }
            true
        };
        let mut buf = vec![0; TCP_MAX];
        loop {
            tokio::select! {
                received = self.udp.recv_from(&mut buf) => match received {
                    Ok((_, peer)) if refused(peer, Transport::Udp) => {}
                    Ok((len, peer)) => {
                        let packet = buf.get(..len).unwrap_or_default();
                        on_udp(packet, peer, &self.udp, &resolver, &mut tasks).await;
                    }
                    Err(error) => {
                        warn!(%error, "DNS: receiving a UDP query failed");
                        sleep(ERROR_PAUSE).await;
                    }
                },
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, peer)) if refused(peer, Transport::Tcp) => drop(stream),
                    Ok((stream, peer)) if tasks.len() < MAX_TASKS => {
                        tasks.spawn(serve_tcp(stream, peer, resolver.clone()));
                    }
                    Ok((_, peer)) => debug!(%peer, "DNS: too busy, TCP connection closed"),
                    Err(error) => {
                        warn!(%error, "DNS: accepting a TCP connection failed");
                        sleep(ERROR_PAUSE).await;
                    }
                },
                Some(done) = tasks.join_next() => {
                    if let Err(error) = done {
                        warn!(%error, "DNS: a query task failed");
                    }
                }
            }
        }
    }
}

/// The error of binding `protocol` on `addr`.
fn bind_error(protocol: &'static str, addr: SocketAddr) -> impl FnOnce(io::Error) -> DnsError {
    move |source| DnsError::Bind {
        protocol,
        addr,
        source,
    }
}

/// Answers a UDP query from the table at once, or forwards it in a task of its own.
async fn on_udp(
    packet: &[u8],
    peer: SocketAddr,
    udp: &Arc<UdpSocket>,
    resolver: &Arc<Resolver>,
    tasks: &mut JoinSet<()>,
) {
    let reply = match resolver.local(packet, Transport::Udp) {
        Step::Reply(reply) => reply,
        Step::Forward(query) if tasks.len() < MAX_TASKS => {
            let (udp, resolver, packet) = (udp.clone(), resolver.clone(), packet.to_vec());
            tasks.spawn(async move {
                let reply = resolver.forward(&query, &packet, Transport::Udp).await;
                send_udp(&udp, &reply, peer).await;
            });
            return;
        }
        Step::Forward(query) => {
            resolver.query_event(Transport::Udp, &query, Outcome::Dropped);
            return;
        }
        Step::Nothing => return,
    };
    send_udp(udp, &reply, peer).await;
}

async fn send_udp(udp: &UdpSocket, reply: &[u8], peer: SocketAddr) {
    if let Err(error) = udp.send_to(reply, peer).await {
        debug!(%peer, %error, "DNS: sending a UDP reply failed");
    }
}

/// Serves the queries of one TCP connection, in order, until it closes, idles or misbehaves.
async fn serve_tcp(mut stream: TcpStream, peer: SocketAddr, resolver: Arc<Resolver>) {
    loop {
        let packet = match timeout(TCP_IDLE_TIMEOUT, read_message(&mut stream, MAX_TCP_QUERY)).await
        {
            Ok(Ok(packet)) => packet,
            Ok(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => return,
            Ok(Err(error)) => {
                debug!(%peer, %error, "DNS: closing TCP connection");
                return;
            }
            Err(_) => return,
        };
        let reply = match resolver.local(&packet, Transport::Tcp) {
            Step::Reply(reply) => reply,
            Step::Forward(query) => resolver.forward(&query, &packet, Transport::Tcp).await,
            Step::Nothing => return,
        };
        match timeout(TCP_IDLE_TIMEOUT, write_message(&mut stream, &reply)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                debug!(%peer, %error, "DNS: sending a TCP reply failed");
                return;
            }
            Err(_) => return,
        }
    }
}

/// Reads one length-prefixed DNS message of at most `max_len` bytes.
async fn read_message(stream: &mut TcpStream, max_len: usize) -> io::Result<Vec<u8>> {
    let len = usize::from(stream.read_u16().await?);
    if len > max_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes, over {max_len}"),
        ));
    }
    let mut message = vec![0; len];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

/// Writes one length-prefixed DNS message.
async fn write_message(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message over 65535 bytes"))?;
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// What the server knows and how it forwards: everything a query needs.
struct Resolver {
    names: Arc<RwLock<Names>>,
    upstreams: Vec<SocketAddr>,
    forward_timeout: Duration,
    observer: Option<QueryObserver>,
}

/// What to do with a query once the table has been asked.
enum Step {
    /// Send this reply.
    Reply(Vec<u8>),
    /// Forward the query upstream.
    Forward(Query),
    /// Send nothing.
    Nothing,
}

/// The transport a query came on, and the one it is forwarded on.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Udp,
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

/// How a query was answered, for its debug event.
enum Outcome {
    /// Answered from the table with this many addresses.
    Answered(usize),
    NoData,
    NxDomain,
    NotImp,
    /// Relayed the reply of this upstream.
    Forwarded(SocketAddr),
    /// No upstream replied; why, upstream by upstream.
    ServFail(String),
    /// Not forwarded: too many queries in progress.
    Dropped,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Answered(count) => write!(f, "answered {count} address(es)"),
            Outcome::NoData => f.write_str("nodata"),
            Outcome::NxDomain => f.write_str("nxdomain"),
            Outcome::NotImp => f.write_str("notimp"),
            Outcome::Forwarded(upstream) => write!(f, "forwarded to {upstream}"),
            Outcome::ServFail(why) => write!(f, "servfail ({why})"),
            Outcome::Dropped => f.write_str("dropped (too busy)"),
        }
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("upstreams", &self.upstreams)
            .field("forward_timeout", &self.forward_timeout)
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl Outcome {
    fn result(&self) -> QueryResult {
        match self {
            Outcome::Answered(_) => QueryResult::Answered,
            Outcome::NoData => QueryResult::NoData,
            Outcome::NxDomain => QueryResult::NxDomain,
            Outcome::NotImp => QueryResult::NotImp,
            Outcome::Forwarded(_) => QueryResult::Forwarded,
            Outcome::ServFail(_) => QueryResult::ServFail,
            Outcome::Dropped => QueryResult::Dropped,
        }
    }
}

/// How a query ended, as an observer is told (see [`DnsServer::with_observer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryResult {
    /// Answered from the table with addresses.
    Answered,
    /// A name of the table without records of the type asked.
    NoData,
    /// A name under a domain of the table that does not exist.
    NxDomain,
    /// An opcode other than QUERY.
    NotImp,
    /// A query that could not be parsed (answered FORMERR, or ignored when not even that).
    FormErr,
    /// Relayed an upstream's reply.
    Forwarded,
    /// No upstream replied.
    ServFail,
    /// Not forwarded: too many queries in progress.
    Dropped,
}

impl QueryResult {
    /// The result as a metric label: `answered`, `nodata`, `nxdomain`, `notimp`, `formerr`,
    /// `forwarded`, `servfail`, `dropped`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryResult::Answered => "answered",
            QueryResult::NoData => "nodata",
            QueryResult::NxDomain => "nxdomain",
            QueryResult::NotImp => "notimp",
            QueryResult::FormErr => "formerr",
            QueryResult::Forwarded => "forwarded",
            QueryResult::ServFail => "servfail",
            QueryResult::Dropped => "dropped",
        }
    }
}

/// Told how each query ended.
pub type QueryObserver = Arc<dyn Fn(QueryResult) + Send + Sync>;

impl Resolver {
    /// Logs how `query` ended and tells the observer.
    fn query_event(&self, transport: Transport, query: &Query, outcome: Outcome) {
        debug!(
            %transport,
            name = %query.name,
            qtype = query.qtype,
            %outcome,
            "DNS query"
        );
        self.observe(outcome.result());
    }

    fn observe(&self, result: QueryResult) {
        if let Some(observer) = &self.observer {
            observer(result);
        }
    }

    /// Parses `packet` and answers it from the table when it can.
    fn local(&self, packet: &[u8], transport: Transport) -> Step {
        let query = match Query::parse(packet) {
            Ok(query) => query,
            Err(error) => {
                let reply = wire::formerr(packet);
                debug!(
                    %transport,
                    len = packet.len(),
                    %error,
                    outcome = if reply.is_some() { "formerr" } else { "dropped (no header or a response)" },
                    "DNS query"
                );
                self.observe(QueryResult::FormErr);
                return reply.map_or(Step::Nothing, Step::Reply);
            }
        };
        if query.opcode != 0 {
            self.query_event(transport, &query, Outcome::NotImp);
            return Step::Reply(query.notimp());
        }
        let lookup = self
            .names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .lookup(&query.name);
        let (reply, outcome) = match lookup {
            Lookup::Addrs(addrs) if query.qtype == TYPE_A && query.qclass == CLASS_IN => {
                let max_len = match transport {
                    Transport::Udp => UDP_MAX,
                    Transport::Tcp => TCP_MAX,
                };
                let reply = query.answer(&addrs, ANSWER_TTL, max_len);
                (reply, Outcome::Answered(addrs.len()))
            }
            Lookup::Addrs(_) => (query.nodata(), Outcome::NoData),
            Lookup::NoSuchName => (query.nxdomain(), Outcome::NxDomain),
            Lookup::NotOurs => return Step::Forward(query),
        };
        self.query_event(transport, &query, outcome);
        Step::Reply(reply)
    }

    /// The first upstream reply to `packet` (the raw bytes of `query`), or SERVFAIL.
    async fn forward(&self, query: &Query, packet: &[u8], transport: Transport) -> Vec<u8> {
        let mut failures = Vec::new();
        for &upstream in &self.upstreams {
            let attempt = async {
                match transport {
                    Transport::Udp => forward_udp(packet, upstream, query.id).await,
                    Transport::Tcp => forward_tcp(packet, upstream, query.id).await,
                }
            };
            match timeout(self.forward_timeout, attempt).await {
                Ok(Ok(reply)) => {
                    self.query_event(transport, query, Outcome::Forwarded(upstream));
                    return reply;
                }
                Ok(Err(error)) => failures.push(format!("{upstream}: {error}")),
                Err(_) => failures.push(format!("{upstream}: timed out")),
            }
        }
        let why = if failures.is_empty() {
            "no upstream".to_string()
        } else {
            failures.join("; ")
        };
        self.query_event(transport, query, Outcome::ServFail(why));
        query.servfail()
    }
}

/// Sends `packet` to `upstream` over UDP and waits for a response with message id `id`.
async fn forward_udp(packet: &[u8], upstream: SocketAddr, id: u16) -> io::Result<Vec<u8>> {
    let any: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(any).await?;
    socket.connect(upstream).await?;
    socket.send(packet).await?;
    let mut buf = vec![0; TCP_MAX];
    loop {
        let len = socket.recv(&mut buf).await?;
        let reply = buf.get(..len).unwrap_or_default();
        if wire::is_response_to(reply, id) {
            return Ok(reply.to_vec());
        }
    }
}

/// Sends `packet` to `upstream` over TCP and waits for a response with message id `id`.
async fn forward_tcp(packet: &[u8], upstream: SocketAddr, id: u16) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    write_message(&mut stream, packet).await?;
    loop {
        let reply = read_message(&mut stream, TCP_MAX).await?;
        if wire::is_response_to(&reply, id) {
            return Ok(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::{decode, query_packet};
    use std::net::IpAddr;
    use tokio::net::TcpSocket;

    const WAIT: Duration = Duration::from_secs(5);
    /// How long a refused UDP client waits to be sure no reply comes. The test first has an
    /// admitted client, which asked later, get its replies, so the refused queries have been
    /// handled by then; the wait only covers a reply that would still be on its way.
    const NO_REPLY_WAIT: Duration = Duration::from_millis(300);
    const RCODE_NXDOMAIN: u8 = 3;
    const RCODE_SERVFAIL: u8 = 2;
    const TYPE_AAAA: u16 = 28;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    fn localhost() -> SocketAddr {
        (Ipv4Addr::LOCALHOST, 0).into()
    }

    /// Another loopback address (all of 127/8 is local), for a client the tests admit.
    const ADMITTED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

    /// Admits the clients for which its function says yes.
    struct Admit(fn(IpAddr) -> bool);

    impl Clients for Admit {
        fn admits(&self, client: IpAddr) -> bool {
            (self.0)(client)
        }
    }

    fn everyone() -> Arc<dyn Clients> {
        Arc::new(Admit(|_| true))
    }

    /// Admits [`ADMITTED`] only: refuses 127.0.0.1, where the tests' other clients are.
    fn only_admitted() -> Arc<dyn Clients> {
        Arc::new(Admit(|client| client == IpAddr::V4(ADMITTED)))
    }

    fn names() -> Arc<RwLock<Names>> {
        let mut names = Names::new();
        names.upsert("ep-a", "workload-A", &["net1".to_string()], &[ip(1)]);
        names.upsert("ep-c", "workload-c", &["net1".to_string()], &[ip(3), ip(2)]);
        Arc::new(RwLock::new(names))
    }

    /// Starts a server on 127.0.0.1 with `upstreams`; it stops when the test's runtime ends.
    async fn start(upstreams: Vec<SocketAddr>, forward_timeout: Duration) -> SocketAddr {
        start_with(names(), upstreams, forward_timeout).await
    }

    async fn start_with(
        names: Arc<RwLock<Names>>,
        upstreams: Vec<SocketAddr>,
        forward_timeout: Duration,
    ) -> SocketAddr {
        start_on(localhost(), names, upstreams, forward_timeout, everyone()).await
    }

    async fn start_on(
        addr: SocketAddr,
        names: Arc<RwLock<Names>>,
        upstreams: Vec<SocketAddr>,
        forward_timeout: Duration,
        clients: Arc<dyn Clients>,
    ) -> SocketAddr {
        let server = DnsServer::bind(addr, names, upstreams, clients)
            .await
            .unwrap()
            .with_forward_timeout(forward_timeout);
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        tokio::spawn(server.run());
        addr
    }

    async fn client() -> UdpSocket {
        UdpSocket::bind(localhost()).await.unwrap()
    }

    /// Sends `packet` over UDP from `socket` and returns the reply.
    async fn ask_udp(socket: &UdpSocket, server: SocketAddr, packet: &[u8]) -> Vec<u8> {
        socket.send_to(packet, server).await.unwrap();
        let mut buf = vec![0; TCP_MAX];
        let (len, from) = timeout(WAIT, socket.recv_from(&mut buf))
            .await
            .expect("no UDP reply")
            .unwrap();
        assert_eq!(from, server);
        buf.truncate(len);
        buf
    }

    async fn udp(server: SocketAddr, packet: &[u8]) -> Vec<u8> {
        ask_udp(&client().await, server, packet).await
    }

    async fn ask_tcp(stream: &mut TcpStream, packet: &[u8]) -> Vec<u8> {
        write_message(stream, packet).await.unwrap();
        timeout(WAIT, read_message(stream, TCP_MAX))
            .await
            .expect("no TCP reply")
            .unwrap()
    }

    #[tokio::test]
    async fn answers_a_queries_over_udp() {
        let server = start(vec![], FORWARD_TIMEOUT).await;
        let d = decode(&udp(server, &query_packet(11, "Workload-A.net1", TYPE_A)).await);
        assert_eq!(
            (d.id, d.rcode, d.addrs, d.ttls),
            (11, 0, vec![ip(1)], vec![5])
        );
        let d = decode(&udp(server, &query_packet(12, "workload-c.", TYPE_A)).await);
        assert_eq!((d.id, d.rcode, d.addrs), (12, 0, vec![ip(2), ip(3)]));
    }

    #[tokio::test]
    async fn nxdomain_under_a_known_network_nodata_for_other_types() {
        let server = start(vec![], FORWARD_TIMEOUT).await;
        let d = decode(&udp(server, &query_packet(21, "ghost.net1", TYPE_A)).await);
        assert_eq!((d.id, d.rcode, d.ancount), (21, RCODE_NXDOMAIN, 0));
        assert_ne!(d.flags & 0x04, 0, "authoritative");
        let d = decode(&udp(server, &query_packet(22, "workload-a.net1", TYPE_AAAA)).await);
        assert_eq!((d.id, d.rcode, d.ancount), (22, 0, 0));
    }

    #[tokio::test]
    async fn answers_table_changes_at_once() {
        let names = names();
        let server = start_with(names.clone(), vec![], FORWARD_TIMEOUT).await;
        names
            .write()
            .unwrap()
            .upsert("ep-n", "newcomer", &["net1".to_string()], &[ip(9)]);
        let d = decode(&udp(server, &query_packet(31, "newcomer.net1", TYPE_A)).await);
        assert_eq!(d.addrs, vec![ip(9)]);
    }

    #[tokio::test]
    async fn formerr_for_bad_questions_and_silence_for_scraps() {
        let server = start(vec![], FORWARD_TIMEOUT).await;
        let socket = client().await;
        let mut bad = query_packet(41, "a.net1", TYPE_A);
        bad[5] = 2;
        let reply = ask_udp(&socket, server, &bad).await;
        assert_eq!(reply, [0, 41, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]);
        socket.send_to(&[1, 2, 3], server).await.unwrap();
        let d = decode(&ask_udp(&socket, server, &query_packet(42, "workload-a", TYPE_A)).await);
        assert_eq!(d.id, 42, "the 3-byte message got no reply");
    }

    #[tokio::test]
    async fn the_observer_is_told_how_each_query_ended() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let server = DnsServer::bind(localhost(), names(), vec![], everyone())
            .await
            .unwrap()
            .with_observer(Arc::new(move |result| record.lock().unwrap().push(result)));
        let addr = server.local_addr();
        tokio::spawn(server.run());
        let socket = client().await;
        ask_udp(&socket, addr, &query_packet(61, "workload-a.net1", TYPE_A)).await;
        ask_udp(&socket, addr, &query_packet(62, "ghost.net1", TYPE_A)).await;
        ask_udp(
            &socket,
            addr,
            &query_packet(63, "workload-a.net1", TYPE_AAAA),
        )
        .await;
        let mut bad = query_packet(64, "a.net1", TYPE_A);
        bad[5] = 2;
        ask_udp(&socket, addr, &bad).await;
        ask_udp(&socket, addr, &query_packet(65, "example.org", TYPE_A)).await;
        assert_eq!(
            *seen.lock().unwrap(),
            [
                QueryResult::Answered,
                QueryResult::NxDomain,
                QueryResult::NoData,
                QueryResult::FormErr,
                QueryResult::ServFail
            ]
        );
    }

    #[tokio::test]
    async fn notimp_for_other_opcodes() {
        let server = start(vec![], FORWARD_TIMEOUT).await;
        let mut notify = query_packet(51, "workload-a.net1", TYPE_A);
        notify[2] |= 4 << 3;
        let d = decode(&udp(server, &notify).await);
        assert_eq!((d.id, d.rcode), (51, 4));
    }

    #[tokio::test]
    async fn answers_several_queries_per_tcp_connection() {
        let server = start(vec![], FORWARD_TIMEOUT).await;
        let mut stream = TcpStream::connect(server).await.unwrap();
        let d = decode(&ask_tcp(&mut stream, &query_packet(61, "workload-c.net1", TYPE_A)).await);
        assert_eq!((d.id, d.addrs), (61, vec![ip(2), ip(3)]));
        let d = decode(&ask_tcp(&mut stream, &query_packet(62, "ghost.net1", TYPE_A)).await);
        assert_eq!((d.id, d.rcode), (62, RCODE_NXDOMAIN));
    }

    #[tokio::test]
    async fn closes_tcp_connections_sending_oversized_queries() {
        let server = start(vec![], FORWARD_TIMEOUT).await;
        let mut stream = TcpStream::connect(server).await.unwrap();
        stream.write_u16(MAX_TCP_QUERY as u16 + 1).await.unwrap();
        let mut rest = Vec::new();
        let read = timeout(WAIT, stream.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    }

    /// A canned upstream reply to `query` (its id, QR and RA set, one made-up record).
    fn canned_reply(query: &[u8]) -> Vec<u8> {
        let mut reply = query.to_vec();
        reply[2] |= 0x80;
        reply[3] = 0x80;
        reply[7] = 1;
        reply.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 192, 0, 2, 7]);
        reply
    }

    #[tokio::test]
    async fn forwards_other_names_upstream_over_udp() {
        let upstream = UdpSocket::bind(localhost()).await.unwrap();
        let server = start(vec![upstream.local_addr().unwrap()], WAIT).await;
        let query = query_packet(71, "example.com", TYPE_A);
        let expected = query.clone();
        let fake = tokio::spawn(async move {
            let mut buf = vec![0; 1024];
            let (len, from) = upstream.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..len], expected.as_slice(), "forwarded verbatim");
            let mut stray = canned_reply(&expected);
            stray[1] ^= 0xFF;
            upstream.send_to(&stray, from).await.unwrap();
            upstream
                .send_to(&canned_reply(&expected), from)
                .await
                .unwrap();
        });
        assert_eq!(udp(server, &query).await, canned_reply(&query));
        fake.await.unwrap();
    }

    #[tokio::test]
    async fn forwards_tcp_queries_over_tcp() {
        let upstream = TcpListener::bind(localhost()).await.unwrap();
        let server = start(vec![upstream.local_addr().unwrap()], WAIT).await;
        let fake = tokio::spawn(async move {
            let (mut conn, _) = upstream.accept().await.unwrap();
            let query = read_message(&mut conn, TCP_MAX).await.unwrap();
            write_message(&mut conn, &canned_reply(&query))
                .await
                .unwrap();
        });
        let mut stream = TcpStream::connect(server).await.unwrap();
        let query = query_packet(81, "example.org", TYPE_A);
        assert_eq!(ask_tcp(&mut stream, &query).await, canned_reply(&query));
        fake.await.unwrap();
    }

    #[tokio::test]
    async fn servfail_when_upstreams_are_silent_or_missing() {
        let silent = UdpSocket::bind(localhost()).await.unwrap();
        let server = start(
            vec![silent.local_addr().unwrap()],
            Duration::from_millis(200),
        )
        .await;
        let d = decode(&udp(server, &query_packet(91, "example.com", TYPE_A)).await);
        assert_eq!((d.id, d.rcode, d.ancount), (91, RCODE_SERVFAIL, 0));
        let server = start(vec![], FORWARD_TIMEOUT).await;
        let d = decode(&udp(server, &query_packet(92, "example.com", TYPE_A)).await);
        assert_eq!((d.id, d.rcode), (92, RCODE_SERVFAIL));
    }

    #[tokio::test]
    async fn a_slow_upstream_delays_no_other_query() {
        let silent = UdpSocket::bind(localhost()).await.unwrap();
        let server = start(vec![silent.local_addr().unwrap()], WAIT).await;
        let socket = client().await;
        let forwarded = query_packet(101, "example.com", TYPE_A);
        socket.send_to(&forwarded, server).await.unwrap();
        let d = decode(&ask_udp(&socket, server, &query_packet(102, "workload-a", TYPE_A)).await);
        assert_eq!(d.id, 102);
    }

    #[tokio::test]
    async fn bind_error_names_protocol_and_address() {
        let taken = UdpSocket::bind(localhost()).await.unwrap();
        let addr = taken.local_addr().unwrap();
        let error = DnsServer::bind(addr, names(), vec![], everyone())
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("UDP") && message.contains(&addr.to_string()),
            "{message}"
        );
        let taken = TcpListener::bind(localhost()).await.unwrap();
        let addr = taken.local_addr().unwrap();
        let error = DnsServer::bind(addr, names(), vec![], everyone())
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("TCP") && message.contains(&addr.to_string()),
            "{message}"
        );
    }

    /// Starts a server on 127.0.0.1 that admits [`ADMITTED`] only, forwarding to `upstreams`.
    async fn start_admitting_one(upstreams: Vec<SocketAddr>) -> SocketAddr {
        start_on(localhost(), names(), upstreams, WAIT, only_admitted()).await
    }

    /// A UDP client on [`ADMITTED`].
    async fn admitted_client() -> UdpSocket {
        UdpSocket::bind((ADMITTED, 0)).await.unwrap()
    }

    /// Asserts that nothing arrives on `socket` within [`NO_REPLY_WAIT`].
    async fn assert_silent(socket: &UdpSocket, what: &str) {
        let mut buf = vec![0; TCP_MAX];
        let received = timeout(NO_REPLY_WAIT, socket.recv_from(&mut buf)).await;
        assert!(received.is_err(), "{what}: {received:?}");
    }

    #[tokio::test]
    async fn refused_udp_clients_get_no_reply_and_nothing_is_forwarded_for_them() {
        let upstream = UdpSocket::bind(localhost()).await.unwrap();
        let server = start_admitting_one(vec![upstream.local_addr().unwrap()]).await;
        let refused = client().await;
        let table_query = query_packet(111, "workload-a.net1", TYPE_A);
        refused.send_to(&table_query, server).await.unwrap();
        let forwarded_query = query_packet(112, "example.com", TYPE_A);
        refused.send_to(&forwarded_query, server).await.unwrap();

        let admitted = admitted_client().await;
        let d = decode(&ask_udp(&admitted, server, &query_packet(113, "workload-a", TYPE_A)).await);
        assert_eq!(
            (d.id, d.addrs),
            (113, vec![ip(1)]),
            "admitted client answered"
        );
        let query = query_packet(114, "example.org", TYPE_A);
        admitted.send_to(&query, server).await.unwrap();
        let mut buf = vec![0; 1024];
        let (len, from) = timeout(WAIT, upstream.recv_from(&mut buf))
            .await
            .expect("the admitted query was not forwarded")
            .unwrap();
        assert_eq!(
            &buf[..len],
            query.as_slice(),
            "only the admitted query is forwarded"
        );
        upstream.send_to(&canned_reply(&query), from).await.unwrap();
        let mut reply = vec![0; 1024];
        let len = timeout(WAIT, admitted.recv(&mut reply))
            .await
            .expect("no forwarded reply")
            .unwrap();
        assert_eq!(&reply[..len], canned_reply(&query).as_slice());

        assert_silent(&refused, "a refused client got a reply").await;
        assert_silent(&upstream, "a refused query was forwarded").await;
    }

    #[tokio::test]
    async fn refused_tcp_connections_are_closed_unanswered() {
        let server = start_admitting_one(vec![]).await;
        let mut refused = TcpStream::connect(server).await.unwrap();
        let query = query_packet(121, "workload-a.net1", TYPE_A);
        // The query may or may not be written before the server closes: either way, no answer.
        let _ = write_message(&mut refused, &query).await;
        let mut rest = Vec::new();
        let read = timeout(WAIT, refused.read_to_end(&mut rest))
            .await
            .expect("a refused TCP connection stayed open");
        assert!(
            rest.is_empty() && matches!(read, Ok(0) | Err(_)),
            "a refused connection got {rest:?} ({read:?})"
        );

        let socket = TcpSocket::new_v4().unwrap();
        socket.bind((ADMITTED, 0).into()).unwrap();
        let mut admitted = socket.connect(server).await.unwrap();
        let d = decode(&ask_tcp(&mut admitted, &query).await);
        assert_eq!((d.id, d.addrs), (121, vec![ip(1)]));
    }

    #[tokio::test]
    async fn ipv4_clients_of_a_v4_mapped_address_are_judged_as_ipv4() {
        let mapped: SocketAddr = (Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 0).into();
        let server = start_on(mapped, names(), vec![], WAIT, only_admitted()).await;
        let server_v4: SocketAddr = (Ipv4Addr::LOCALHOST, server.port()).into();
        let admitted = admitted_client().await;
        admitted
            .send_to(&query_packet(131, "workload-a", TYPE_A), server_v4)
            .await
            .unwrap();
        let mut buf = vec![0; TCP_MAX];
        let len = timeout(WAIT, admitted.recv(&mut buf))
            .await
            .expect("an admitted IPv4 client was refused on a v4-mapped listener")
            .unwrap();
        assert_eq!(decode(&buf[..len]).id, 131);
    }
}
