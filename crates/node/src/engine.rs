//! Which Docker Engine this node serves: asked as soon as Docker answers and again at every
//! `Plugin.Activate` (a dockerd restart may bring another release), logged when it answers again,
//! written to `<CALICO_RUN_DIR>/docker-engine` for `calicoctl version` and `node status`, and
//! given to the driver, which refuses to create anything for an unsupported Engine.

use std::path::PathBuf;
use std::time::Duration;

use calico_docker::engine::{Engine, STATUS_FILE};
use calico_docker::{DockerClient, API_VERSION};
use calico_libnetwork::Driver;
use tracing::{debug, error, info, warn};

/// How often Docker is asked while it has not answered yet.
const UNTIL_ANSWERED: Duration = Duration::from_secs(1);
/// How often it is asked again after that (besides every `Plugin.Activate`).
const AFTER_ANSWERED: Duration = Duration::from_secs(30);

/// The watch; [`EngineWatch::run`] never returns.
pub struct EngineWatch {
    /// The daemon calico-node serves (`DOCKER_HOST`).
    pub docker: DockerClient,
    /// The driver whose gate follows the Engine.
    pub driver: Driver,
    /// calico-node's run directory.
    pub run_dir: PathBuf,
}

impl EngineWatch {
    /// Asks, records and gates, forever.
    pub async fn run(self) {
        let path = self.run_dir.join(STATUS_FILE);
        // A file from an earlier run would speak of a dockerd that may be gone.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                warn!(path = %path.display(), error = %e, "cannot remove the old Docker Engine status file")
            }
            _ => {}
        }
        let mut known: Option<Engine> = None;
        loop {
            match self.docker.engine().await {
                Ok(engine) if known.as_ref() != Some(&engine) => {
                    self.record(&engine, &path);
                    known = Some(engine);
                }
                Ok(_) => {}
                Err(e) => {
                    // Gone or restarting: ask every second until it answers, and log it again
                    // then (it may be another release).
                    debug!(error = %e, "Docker does not tell its Engine version");
                    known = None;
                }
            }
            let wait = if known.is_some() {
                AFTER_ANSWERED
            } else {
                UNTIL_ANSWERED
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.driver.next_activation() => {}
            }
        }
    }

    fn record(&self, engine: &Engine, path: &std::path::Path) {
        let support = engine.check(API_VERSION.trim_start_matches('v'));
        let socket = self.docker.socket().display();
        match &support {
            Ok(()) => info!(%socket, "Docker Engine {engine}"),
            Err(why) => error!(
                %socket,
                "{why}; refusing to create networks, addresses and endpoints until it is replaced"
            ),
        }
        let line = engine.status_line(&support) + "\n";
        if let Err(e) = std::fs::create_dir_all(&self.run_dir)
            .and_then(|()| crate::status_file::write_atomic(path, &line))
        {
            warn!(path = %path.display(), error = %e, "cannot write the Docker Engine status file");
        }
        self.driver.set_engine_support(support);
    }
}
