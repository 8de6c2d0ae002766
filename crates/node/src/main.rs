//! calico-node: Calico's per-host agent for Docker. It serves the `calico` and `calico-ipam`
//! plugin sockets, allocates addresses, plumbs workload interfaces and keeps Docker, the
//! datastore and the kernel in agreement.

mod adapters;
mod agent;
mod autodetect;
mod config;
mod dns_table;
mod engine;
mod health;
mod host_addresses;
mod http_server;
mod metrics;
mod networks;
mod reconcile;
mod routing;
mod startup;
mod status_file;

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
use tracing::{error, info, warn};

use adapters::{AgentPorts, NetlinkLinks, NodeIpam};
use agent::Agent;
use config::{Config, IpSetting, LogFormat};
use metrics::{Metrics, Scraper};
use reconcile::Reconciler;

/// How long calico-node keeps trying to reach its datastore at start.
const DATASTORE_WAIT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let format = match LogFormat::from_env(|name| std::env::var(name).ok()) {
        Ok(format) => format,
        Err(e) => {
            eprintln!("calico-node: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALICO_LOG_LEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => subscriber.init(),
        LogFormat::Json => subscriber.json().init(),
    }
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
    let health = health::start(config.health.as_ref(), &config.run_dir).await?;
    let starting = health.register("startup", true, None, Err("not finished".into()));
    let sockets = health.register("plugin sockets", true, None, Err("not served yet".into()));
    let ds = connect(&config.datastore).await?;
    tokio::spawn(health::datastore::probe(
        ds.clone(),
        health.register(
            health::datastore::NAME,
            true,
            Some(health::datastore::TIMEOUT),
            Err("not probed yet".into()),
        ),
    ));
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
    let metrics = config.metrics.as_ref().map(|_| Metrics::new());
    let server = calico_libnetwork::serve(
        &config.plugin_dir,
        driver.clone(),
        metrics.as_ref().map(Metrics::plugin_observer),
    )
    .with_context(|| {
        format!(
            "cannot serve the plugin sockets in {}",
            config.plugin_dir.display()
        )
    })?;
    sockets.ready();
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
        (true, std::net::IpAddr::V4(address)) => {
            let observer = metrics.as_ref().map(Metrics::dns_observer);
            dns_table::serve(address, &config.node_name, observer).await
        }
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
        ipam: ipam.clone(),
        netlink,
        docker,
        driver,
    };
    let reconciling = tokio::spawn(reconciler.run_forever(config.reconcile_interval));
    let mut failing = false;
    let first = host_addresses::read(&mut failing).unwrap_or_default();
    let (host_addresses_tx, host_addresses) = tokio::sync::watch::channel(first);
    let addressing = tokio::spawn(host_addresses::follow(
        host_addresses_tx,
        failing,
        health.register(
            host_addresses::HEALTH_NAME,
            false,
            Some(host_addresses::LIVENESS_TIMEOUT),
            Ok(()),
        ),
    ));
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
    agent = agent.with_health(health.register(
        agent::HEALTH_NAME,
        true,
        Some(agent::LIVENESS_TIMEOUT),
        Err("no full sync from the datastore yet".into()),
    ));
    let metrics_server = match (&metrics, &config.metrics) {
        (Some(metrics), Some(endpoint)) => {
            let (requests, received) = tokio::sync::mpsc::channel(4);
            agent = agent.with_metrics(metrics.agent(), received);
            let bird = config.run_bird.then(|| config.bird_socket.clone());
            let scraper = Scraper::new(
                metrics.clone(),
                ipam,
                config.node_name.clone(),
                bird,
                requests,
            );
            let host = endpoint.host.as_deref();
            let address = ipv4.addr();
            Some(metrics::start(host, endpoint.port, address, &config.run_dir, scraper).await?)
        }
        _ => None,
    };
    starting.ready();
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
    if let Some(metrics_server) = metrics_server {
        metrics_server.stop();
    }
    Ok(())
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
