//! Links, routes and neighbours through rtnetlink, in the network namespace the connection was
//! opened in.
//!
//! Owned here: veth pairs created by [`Netlink::create_veth`]; routes in the main table tagged
//! with protocol [`ROUTE_PROTOCOL`] (only those are listed by [`Netlink::list_routes_on`] or
//! removed by [`Netlink::remove_route`], so routes added by people or other daemons survive);
//! permanent neighbour entries set by [`Netlink::ensure_neighbour`].
//!
//! Route protocol: Felix 2.x used `RTPROT_BOOT` (3), which is also what a bare `ip route add`
//! uses, so it cannot tell our routes from hand-made ones. [`ROUTE_PROTOCOL`] (80) is unassigned
//! in `/etc/iproute2/rt_protos`, is the value later Calico releases use for their own routes, and
//! is imported by BIRD's `kernel { learn; }` like any non-BIRD route.
//!
//! veth creation takes two requests: the pair is created with the host end up, then the peer is
//! set up, because a peer brought up inside the creating request fails with ENOTCONN
//! (`veth_open()` runs before the two ends are linked).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use calico_model::endpoint_naming::format_mac;
use futures_util::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags};
use netlink_packet_route::neighbour::NeighbourState;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use tracing::{debug, warn};

use crate::error::validate_ifname;
use crate::{DataplaneError, Result};

/// Routing protocol number on every route this crate installs (`proto 80` in `ip route`).
pub const ROUTE_PROTOCOL: u8 = 80;

/// One network interface as listed by [`Netlink::list_links`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface name.
    pub name: String,
    /// Kernel interface index.
    pub index: u32,
    /// Administratively up (`IFF_UP`); says nothing about carrier.
    pub up: bool,
}

/// An rtnetlink connection bound to the network namespace of the thread that opened it.
#[derive(Clone, Debug)]
pub struct Netlink {
    handle: Handle,
}

/// Converts an rtnetlink error into the errno-carrying `io::Error` the kernel reported.
fn os_error(err: rtnetlink::Error) -> io::Error {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

/// Builds a [`DataplaneError::Netlink`] naming the operation.
fn failed(what: impl Into<String>, error: io::Error) -> DataplaneError {
    DataplaneError::Netlink {
        what: what.into(),
        error,
    }
}

/// Rejects destinations that are not a single address.
pub(crate) fn host_route(dest: IpNet) -> Result<IpNet> {
    if dest.prefix_len() == dest.max_prefix_len() {
        Ok(dest)
    } else {
        Err(DataplaneError::NotHostRoute { dest })
    }
}

/// A main-table route message for `dest` with our protocol, optionally bound to `oif`.
fn route_message(dest: IpNet, scope: RouteScope, oif: Option<u32>) -> RouteMessage {
    fn finish<T>(
        builder: RouteMessageBuilder<T>,
        scope: RouteScope,
        oif: Option<u32>,
    ) -> RouteMessage {
        let builder = builder
            .table_id(RouteHeader::RT_TABLE_MAIN.into())
            .protocol(RouteProtocol::from(ROUTE_PROTOCOL))
            .scope(scope)
            .kind(RouteType::Unicast);
        match oif {
            Some(index) => builder.output_interface(index).build(),
            None => builder.build(),
        }
    }
    match dest {
        IpNet::V4(net) => finish(
            RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(net.addr(), net.prefix_len()),
            scope,
            oif,
        ),
        IpNet::V6(net) => finish(
            RouteMessageBuilder::<Ipv6Addr>::new().destination_prefix(net.addr(), net.prefix_len()),
            scope,
            oif,
        ),
    }
}

/// The destination and output interface of a dumped route, if it is one of ours.
fn our_route(msg: &RouteMessage) -> Option<(IpNet, u32)> {
    if u8::from(msg.header.protocol) != ROUTE_PROTOCOL || msg.header.kind != RouteType::Unicast {
        return None;
    }
    let mut table = u32::from(msg.header.table);
    let mut oif = None;
    let mut dest: Option<IpAddr> = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dest = Some((*a).into()),
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => dest = Some((*a).into()),
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return None;
    }
    let net = IpNet::new(dest?, msg.header.destination_prefix_length).ok()?;
    Some((net, oif?))
}

impl Netlink {
    /// Opens rtnetlink in the calling thread's netns, driving it on the current tokio runtime.
    pub fn connect() -> Result<Netlink> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|e| DataplaneError::Connect {
                error: io::Error::other(e),
            })?;
        let (connection, handle, _unsolicited) =
            rtnetlink::new_connection().map_err(|error| DataplaneError::Connect { error })?;
        runtime.spawn(connection);
        Ok(Netlink { handle })
    }

    /// The index of interface `name`, or `None` if there is no such interface.
    async fn link_index(&self, name: &str) -> Result<Option<u32>> {
        validate_ifname(name)?;
        let mut replies = self.handle.link().get().match_name(name).execute();
        match replies.try_next().await {
            Ok(reply) => Ok(reply.map(|msg| msg.header.index)),
            Err(err) => {
                let err = os_error(err);
                if err.raw_os_error() == Some(libc::ENODEV) {
                    Ok(None)
                } else {
                    Err(failed(format!("looking up interface {name}"), err))
                }
            }
        }
    }

    /// The index of interface `name`, or [`DataplaneError::NoSuchInterface`].
    pub(crate) async fn require_index(&self, name: &str) -> Result<u32> {
        self.link_index(name)
            .await?
            .ok_or_else(|| DataplaneError::NoSuchInterface {
                name: name.to_string(),
            })
    }

    /// Creates veth pair `host`/`peer`, both up, `mtu` on both (`None`/0: kernel default).
    pub async fn create_veth(&self, host: &str, peer: &str, mtu: Option<u32>) -> Result<()> {
        validate_ifname(host)?;
        validate_ifname(peer)?;
        if host == peer {
            return Err(DataplaneError::InvalidInterfaceName {
                name: peer.to_string(),
                reason: "same as the host end",
            });
        }
        let mut peer_msg = LinkUnspec::new_with_name(peer);
        let mut host_msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host)
            .up();
        if let Some(mtu) = mtu.filter(|&m| m != 0) {
            peer_msg = peer_msg.mtu(mtu);
            host_msg = host_msg.mtu(mtu);
        }
        let message = host_msg
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
            .build();
        if let Err(err) = self.handle.link().add(message).execute().await {
            let err = os_error(err);
            if err.raw_os_error() == Some(libc::EEXIST) {
                let name = if self.link_exists(host).await? {
                    host
                } else {
                    peer
                };
                return Err(DataplaneError::InterfaceExists {
                    name: name.to_string(),
                });
            }
            return Err(failed(format!("creating veth pair {host}/{peer}"), err));
        }
        // Not in the creating request: veth_open() fails with ENOTCONN until the ends are linked.
        let peer_up = LinkUnspec::new_with_name(peer).up().build();
        if let Err(err) = self.handle.link().set(peer_up).execute().await {
            let err = failed(format!("setting veth peer {peer} up"), os_error(err));
            if let Err(cleanup) = self.delete_link(host).await {
                warn!(%cleanup, "could not remove half-created veth pair");
            }
            return Err(err);
        }
        debug!(host, peer, ?mtu, "created veth pair");
        Ok(())
    }

    /// Deletes interface `name` (for a veth, both ends); `false` if it did not exist.
    pub async fn delete_link(&self, name: &str) -> Result<bool> {
        validate_ifname(name)?;
        let message = LinkUnspec::new_with_name(name).build();
        match self.handle.link().del_with_message(message).execute().await {
            Ok(()) => {
                debug!(name, "deleted link");
                Ok(true)
            }
            Err(err) => {
                let err = os_error(err);
                if err.raw_os_error() == Some(libc::ENODEV) {
                    Ok(false)
                } else {
                    Err(failed(format!("deleting interface {name}"), err))
                }
            }
        }
    }

    /// Whether interface `name` exists.
    pub async fn link_exists(&self, name: &str) -> Result<bool> {
        Ok(self.link_index(name).await?.is_some())
    }

    /// Every interface whose name starts with `prefix` (all if empty), sorted by name.
    pub async fn list_links(&self, prefix: &str) -> Result<Vec<LinkInfo>> {
        let what = || format!("listing interfaces {prefix}*");
        let mut replies = self.handle.link().get().execute();
        let mut links = Vec::new();
        while let Some(msg) = replies
            .try_next()
            .await
            .map_err(|e| failed(what(), os_error(e)))?
        {
            let name = msg.attributes.iter().find_map(|attr| match attr {
                LinkAttribute::IfName(name) => Some(name),
                _ => None,
            });
            if let Some(name) = name.filter(|n| n.starts_with(prefix)) {
                links.push(LinkInfo {
                    name: name.clone(),
                    index: msg.header.index,
                    up: msg.header.flags.contains(LinkFlags::Up),
                });
            }
        }
        links.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(links)
    }

    /// Installs or replaces `dest dev <dev> scope link proto 80` (main table; /32 or /128 only).
    pub async fn ensure_route(&self, dest: IpNet, dev: &str) -> Result<()> {
        let dest = host_route(dest)?;
        let index = self.require_index(dev).await?;
        let message = route_message(dest, RouteScope::Link, Some(index));
        self.handle
            .route()
            .add(message)
            .replace()
            .execute()
            .await
            .map_err(|e| failed(format!("adding route {dest} dev {dev}"), os_error(e)))?;
        debug!(%dest, dev, "ensured route");
        Ok(())
    }

    /// Removes our route to `dest` (whatever its device); `false` if there was none.
    pub async fn remove_route(&self, dest: IpNet) -> Result<bool> {
        self.delete_route(dest, None, "").await
    }

    /// Removes our route to `dest` only if it goes out of `dev`; `false` if none (or no `dev`).
    pub async fn remove_route_on(&self, dest: IpNet, dev: &str) -> Result<bool> {
        match self.link_index(dev).await? {
            Some(index) => self.delete_route(dest, Some(index), dev).await,
            None => Ok(false),
        }
    }

    /// Deletes our route to `dest`, restricted to output interface `oif` if given.
    async fn delete_route(&self, dest: IpNet, oif: Option<u32>, dev: &str) -> Result<bool> {
        let message = route_message(dest, RouteScope::NoWhere, oif);
        match self.handle.route().del(message).execute().await {
            Ok(()) => {
                debug!(%dest, dev, "removed route");
                Ok(true)
            }
            Err(err) => {
                let err = os_error(err);
                if err.raw_os_error() == Some(libc::ESRCH) {
                    Ok(false)
                } else if oif.is_some() {
                    Err(failed(format!("removing route {dest} dev {dev}"), err))
                } else {
                    Err(failed(format!("removing route {dest}"), err))
                }
            }
        }
    }

    /// Our main-table routes whose device starts with `prefix`, sorted by device, destination.
    pub async fn list_routes_on(&self, prefix: &str) -> Result<Vec<(IpNet, String)>> {
        let names: HashMap<u32, String> = self
            .list_links(prefix)
            .await?
            .into_iter()
            .map(|link| (link.index, link.name))
            .collect();
        let mut routes = Vec::new();
        let dumps = [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ];
        for request in dumps {
            let mut replies = self.handle.route().get(request).execute();
            while let Some(msg) = replies
                .try_next()
                .await
                .map_err(|e| failed(format!("listing routes on {prefix}*"), os_error(e)))?
            {
                if let Some((dest, oif)) = our_route(&msg) {
                    if let Some(name) = names.get(&oif) {
                        routes.push((dest, name.clone()));
                    }
                }
            }
        }
        routes.sort_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
        Ok(routes)
    }

    /// Sets a permanent neighbour entry `ip lladdr mac` on `dev`, replacing any existing one.
    pub async fn ensure_neighbour(&self, ip: IpAddr, mac: [u8; 6], dev: &str) -> Result<()> {
        let index = self.require_index(dev).await?;
        self.handle
            .neighbours()
            .add(index, ip)
            .link_layer_address(&mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|e| {
                let what = format!(
                    "setting neighbour {ip} lladdr {} dev {dev}",
                    format_mac(&mac)
                );
                failed(what, os_error(e))
            })?;
        debug!(%ip, dev, "ensured neighbour");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_addresses_are_host_routes() {
        for ok in ["10.65.0.5/32", "fd00::5/128"] {
            assert!(host_route(ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in ["10.65.0.0/26", "10.65.0.5/31", "fd00::/64", "0.0.0.0/0"] {
            assert!(
                matches!(
                    host_route(bad.parse().unwrap()),
                    Err(DataplaneError::NotHostRoute { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn route_messages_carry_our_protocol_and_are_recognised() {
        let dest: IpNet = "10.65.0.5/32".parse().unwrap();
        let msg = route_message(dest, RouteScope::Link, Some(7));
        assert_eq!(msg.header.scope, RouteScope::Link);
        assert_eq!(our_route(&msg), Some((dest, 7)));
        let mut foreign = msg.clone();
        foreign.header.protocol = RouteProtocol::Boot;
        assert_eq!(our_route(&foreign), None);
        let mut other_table = msg;
        other_table.attributes.push(RouteAttribute::Table(100));
        assert_eq!(our_route(&other_table), None);
        let v6: IpNet = "fd00::5/128".parse().unwrap();
        assert_eq!(
            our_route(&route_message(v6, RouteScope::NoWhere, Some(3))),
            Some((v6, 3))
        );
        assert_eq!(
            our_route(&route_message(v6, RouteScope::NoWhere, None)),
            None
        );
    }

    #[test]
    fn connecting_outside_a_runtime_is_an_error() {
        let err = Netlink::connect().unwrap_err();
        assert!(matches!(err, DataplaneError::Connect { .. }), "{err}");
    }
}
