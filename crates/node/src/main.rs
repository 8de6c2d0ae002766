//! calico-node: Calico's per-host agent for Docker. It serves the `calico` and `calico-ipam`
//! plugin sockets, allocates addresses, plumbs workload interfaces and keeps Docker, the
//! datastore and the kernel in agreement.

mod adapters;
mod agent;
mod autodetect;
mod config;
mod dns_table;
mod engine;
mod networks;
mod reconcile;
mod routing;
mod startup;
mod status_file;

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use calico_dataplane::netlink::Netlink;
use calico_dataplane::nft::Nft;
use calico_docker::DockerClient;
use calico_ipam::Ipam;
use calico_libnetwork::Driver;
use calico_store::resources::ResourceStore;
use calico_store::{Datastore, DatastoreConfig};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{debug, error, info, warn};

use adapters::{AgentPorts, NetlinkLinks, NodeIpam};
use agent::{Agent, HostAddresses};
use config::{Config, IpSetting};
use reconcile::Reconciler;

/// How long calico-node keeps trying to reach its datastore at start.
const DATASTORE_WAIT: Duration = Duration::from_secs(60);
/// How often this host's interfaces and addresses are read again for the host endpoints.
const HOST_ADDRESSES_INTERVAL: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALICO_LOG_LEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("calico-node failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let config = Config::from_env(|name| std::env::var(name).ok())?;
    info!(node = %config.node_name, version = startup::VERSION, "starting calico-node");
    let ds = connect(&config.datastore).await?;
    let store = ResourceStore::new(ds.clone());
    let ipv4 = match &config.ip {
        IpSetting::Fixed(cidr) => *cidr,
        IpSetting::Detect(method) => method.detect()?,
    };
    startup::register_node(&store, &config, ipv4).await?;
    startup::ensure_default_pool(&store, &config).await?;
    startup::record_cluster_info(ds.as_ref()).await?;
    calico_dataplane::sysctl::enable_forwarding()?;

    let netlink = Netlink::connect()?;
    let docker = DockerClient::from_env()?;
    let ipam = Ipam::new(store.clone());
    let (published_ports, published) = tokio::sync::watch::channel(agent::Published::new());
    let driver = Driver::new(
        config.driver.clone(),
        store.clone(),
        Arc::new(NodeIpam {
            ipam: ipam.clone(),
            store: store.clone(),
            node: config.node_name.clone(),
        }),
        Arc::new(docker.clone()),
        Arc::new(NetlinkLinks {
            netlink: netlink.clone(),
        }),
        Arc::new(AgentPorts {
            published: published_ports,
        }),
    );
    let server =
        calico_libnetwork::serve(&config.plugin_dir, driver.clone()).with_context(|| {
            format!(
                "cannot serve the plugin sockets in {}",
                config.plugin_dir.display()
            )
        })?;
    let engine = tokio::spawn(
        engine::EngineWatch {
            docker: docker.clone(),
            driver: driver.clone(),
            run_dir: config.run_dir.clone(),
        }
        .run(),
    );
    let (stop_routing, routing_stopped) = tokio::sync::watch::channel(false);
    let routing = if config.run_bird {
        let routing = routing::Routing {
            node: config.node_name.clone(),
            store: store.clone(),
            ipam: ipam.clone(),
            config_dir: config.bird_dir.clone(),
            socket: config.bird_socket.clone(),
            refresh: config.routing_refresh_interval,
        };
        Some(tokio::spawn(routing.run(routing_stopped)))
    } else {
        info!("CALICO_NETWORKING_BACKEND=none: not running BIRD");
        None
    };
    let sharing = tokio::spawn(
        networks::NetworkSync {
            ds: ds.clone(),
            docker: docker.clone(),
            node: config.node_name.clone(),
            interval: config.network_sync_interval,
        }
        .run(),
    );
    let name_feed = match (config.dns, ipv4.addr()) {
        (true, std::net::IpAddr::V4(address)) => dns_table::serve(address, &config.node_name).await,
        (true, std::net::IpAddr::V6(_)) => {
            warn!("no IPv4 address: not answering DNS");
            None
        }
        (false, _) => {
            info!("CALICO_DNS=false: not answering DNS for workload names");
            None
        }
    };
    let reconciler = Reconciler {
        node: config.node_name.clone(),
        store,
        ipam,
        netlink,
        docker,
        driver,
    };
    let reconciling = tokio::spawn(reconciler.run_forever(config.reconcile_interval));
    let mut failing = false;
    let first = read_host_addresses(&mut failing).unwrap_or_default();
    let (host_addresses_tx, host_addresses) = tokio::sync::watch::channel(first);
    let addressing = tokio::spawn(follow_host_addresses(host_addresses_tx, failing));
    let mut agent = Agent::new(
        &config.node_name,
        ds,
        published,
        host_addresses,
        config.failsafe.clone(),
        Nft::new(),
        config.dataplane_resync_interval,
    );
    if let Some(feed) = name_feed {
        agent = agent.with_consumer(Box::new(feed));
    }
    let policing = tokio::spawn(agent.run());
    info!(sockets = %config.plugin_dir.display(), "Calico node started successfully");

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: stopping"),
        _ = int.recv() => info!("SIGINT: stopping"),
    }
    reconciling.abort();
    engine.abort();
    sharing.abort();
    policing.abort();
    addressing.abort();
    if let Some(routing) = routing {
        stop_routing.send_replace(true);
        if tokio::time::timeout(Duration::from_secs(5), routing)
            .await
            .is_err()
        {
            warn!("BIRD did not stop within 5 s");
        }
    }
    server.shutdown().await;
    Ok(())
}

/// Keeps `tx` equal to this host's interfaces and addresses ([`autodetect::host_interfaces`]),
/// read every [`HOST_ADDRESSES_INTERVAL`] and sent only when they changed; `failing` says
/// whether the last read failed.
///
/// Polling, not a netlink subscription: one `getifaddrs` every 2 s costs little on a host with
/// few interfaces, needs no state to keep in step with the kernel (a subscription would still
/// need a periodic relist for the messages it drops, as Felix's interface monitor does every
/// 10 s), and a host endpoint found by its expected IPs follows an address moved to another
/// interface within 2 s.
async fn follow_host_addresses(tx: tokio::sync::watch::Sender<HostAddresses>, mut failing: bool) {
    let start = tokio::time::Instant::now() + HOST_ADDRESSES_INTERVAL;
    let mut ticks = tokio::time::interval_at(start, HOST_ADDRESSES_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(now) = read_host_addresses(&mut failing) else {
            continue;
        };
        tx.send_if_modified(|known| {
            if *known == now {
                return false;
            }
            let changed = changed_interfaces(known, &now);
            info!(?changed, "this host's interfaces or addresses changed");
            debug!(interfaces = ?now, "this host's interfaces and addresses");
            *known = now;
            true
        });
    }
}

/// The interfaces added, removed, or whose addresses differ between `before` and `after`.
fn changed_interfaces<'a>(
    before: &'a HostAddresses,
    after: &'a HostAddresses,
) -> BTreeSet<&'a String> {
    before
        .keys()
        .chain(after.keys())
        .filter(|name| before.get(*name) != after.get(*name))
        .collect()
}

/// This host's interfaces and addresses, or `None` when they cannot be read: logged with warn
/// when reading starts `failing`, at debug while it goes on failing, and at info when it works
/// again.
fn read_host_addresses(failing: &mut bool) -> Option<HostAddresses> {
    match autodetect::host_interfaces() {
        Ok(interfaces) => {
            if std::mem::replace(failing, false) {
                info!("reading this host's interface addresses works again");
            }
            Some(interfaces)
        }
        Err(e) if *failing => {
            debug!(error = %format!("{e:#}"), "still cannot read this host's interface addresses");
            None
        }
        Err(e) => {
            warn!(
                error = %format!("{e:#}"),
                "cannot read this host's interface addresses; host endpoints found by their \
                 expected IPs keep the interfaces known before; trying again every 2 s"
            );
            *failing = true;
            None
        }
    }
}

/// Opens the datastore, retrying while it is unreachable (etcd may still be starting).
async fn connect(config: &DatastoreConfig) -> Result<Arc<dyn Datastore>> {
    let deadline = tokio::time::Instant::now() + DATASTORE_WAIT;
    let mut delay = Duration::from_millis(100);
    loop {
        match config.connect().await {
            Ok(ds) => return Ok(ds),
            Err(e) if tokio::time::Instant::now() < deadline => {
                warn!(error = %e, "datastore not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e).context("cannot reach the datastore"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_interfaces_are_the_added_the_removed_and_the_readdressed() {
        let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
        let before = HostAddresses::from([
            ("eth0".to_string(), BTreeSet::from([ip("10.0.0.1")])),
            ("eth1".to_string(), BTreeSet::from([ip("10.0.1.1")])),
            ("lo".to_string(), BTreeSet::from([ip("127.0.0.1")])),
        ]);
        let after = HostAddresses::from([
            ("eth0".to_string(), BTreeSet::from([ip("10.0.0.2")])),
            ("eth2".to_string(), BTreeSet::new()),
            ("lo".to_string(), BTreeSet::from([ip("127.0.0.1")])),
        ]);
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let changed: Vec<String> = changed_interfaces(&before, &after)
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(changed, names(&["eth0", "eth1", "eth2"]));
        assert!(changed_interfaces(&after, &after).is_empty());
    }
}
