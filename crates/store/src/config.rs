//! Datastore selection shared by calicoctl and calico-node: a calicoctl config file or the environment.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::{Datastore, Result, SqliteStore, StoreError, DEFAULT_SQLITE_PATH};

/// The config file read when it exists and none is given explicitly.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/calico/calicoctl.cfg";
/// The etcd endpoint used when `etcdv3` is selected without endpoints (as Calico).
pub const DEFAULT_ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";

/// The accepted values of `DATASTORE_TYPE` / `spec.datastoreType`.
const DATASTORE_TYPES: &str = "sqlite, etcdv3";

/// Which datastore to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatastoreConfig {
    /// The local SQLite file.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// An etcd v3 cluster.
    Etcd(EtcdConfig),
}

/// How to reach etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs, e.g. `http://10.0.0.1:2379` (`https://` when TLS files are given).
    pub endpoints: Vec<String>,
    /// PEM file of the CA that signed the etcd server certificate.
    pub ca_cert_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (needs `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// The settings before defaults and validation, from either source.
#[derive(Debug, Default)]
struct Settings {
    datastore_type: Option<String>,
    sqlite_path: Option<String>,
    etcd_endpoints: Option<String>,
    etcd_ca_cert_file: Option<String>,
    etcd_cert_file: Option<String>,
    etcd_key_file: Option<String>,
}

/// A calicoctl config file (`apiVersion: v1`, `kind: calicoApiConfig`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigFile {
    api_version: String,
    kind: String,
    #[serde(default, rename = "metadata")]
    _metadata: Option<IgnoredAny>,
    #[serde(default)]
    spec: Option<ConfigSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigSpec {
    datastore_type: Option<String>,
    sqlite_path: Option<String>,
    etcd_endpoints: Option<String>,
    #[serde(rename = "etcdCACertFile")]
    etcd_ca_cert_file: Option<String>,
    etcd_cert_file: Option<String>,
    etcd_key_file: Option<String>,
}

impl DatastoreConfig {
    /// Resolves the config: `explicit_file` (must exist) > [`DEFAULT_CONFIG_FILE`] if it exists > `env`.
    pub fn load(
        explicit_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        load_with_default(explicit_file, Path::new(DEFAULT_CONFIG_FILE), env)
    }

    /// Reads `DATASTORE_TYPE`, `SQLITE_PATH`, `ETCD_ENDPOINTS` and `ETCD_*_FILE` through `env`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        Settings {
            datastore_type: var("DATASTORE_TYPE"),
            sqlite_path: var("SQLITE_PATH"),
            etcd_endpoints: var("ETCD_ENDPOINTS"),
            etcd_ca_cert_file: var("ETCD_CA_CERT_FILE"),
            etcd_cert_file: var("ETCD_CERT_FILE"),
            etcd_key_file: var("ETCD_KEY_FILE"),
        }
        .resolve("environment")
    }

    /// Reads a calicoctl config file; errors name the file (and line and column for YAML errors).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            StoreError::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        parse_file(&text, path)
    }

    /// Opens the configured datastore.
    pub async fn connect(&self) -> Result<Arc<dyn Datastore>> {
        match self {
            DatastoreConfig::Sqlite { path } => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(path))
                    .await
                    .map_err(|e| {
                        StoreError::Unavailable(format!("sqlite open task failed: {e}"))
                    })??;
                Ok(Arc::new(store))
            }
            #[cfg(feature = "etcd")]
            DatastoreConfig::Etcd(config) => Ok(Arc::new(crate::EtcdStore::connect(config).await?)),
            #[cfg(not(feature = "etcd"))]
            DatastoreConfig::Etcd(_) => Err(StoreError::Config(
                "datastore type etcdv3 needs a build with the `etcd` feature".into(),
            )),
        }
    }
}

/// [`DatastoreConfig::load`] with the default file location as a parameter.
fn load_with_default(
    explicit_file: Option<&Path>,
    default_file: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<DatastoreConfig> {
    if let Some(path) = explicit_file {
        return DatastoreConfig::from_file(path);
    }
    match std::fs::read_to_string(default_file) {
        Ok(text) => parse_file(&text, default_file),
        Err(e) if e.kind() == ErrorKind::NotFound => DatastoreConfig::from_env(env),
        Err(e) => Err(StoreError::Config(format!(
            "cannot read config file {}: {e}",
            default_file.display()
        ))),
    }
}

fn parse_file(text: &str, path: &Path) -> Result<DatastoreConfig> {
    let source = format!("config file {}", path.display());
    let file: ConfigFile =
        serde_saphyr::from_str(text).map_err(|e| StoreError::Config(format!("{source}: {e}")))?;
    if file.api_version != "v1" {
        return Err(StoreError::Config(format!(
            "{source}: apiVersion must be v1, got {:?}",
            file.api_version
        )));
    }
    if file.kind != "calicoApiConfig" {
        return Err(StoreError::Config(format!(
            "{source}: kind must be calicoApiConfig, got {:?}",
            file.kind
        )));
    }
    let spec = file.spec.unwrap_or_default();
    let field = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    Settings {
        datastore_type: field(spec.datastore_type),
        sqlite_path: field(spec.sqlite_path),
        etcd_endpoints: field(spec.etcd_endpoints),
        etcd_ca_cert_file: field(spec.etcd_ca_cert_file),
        etcd_cert_file: field(spec.etcd_cert_file),
        etcd_key_file: field(spec.etcd_key_file),
    }
    .resolve(&source)
}

impl Settings {
    /// Applies defaults and validates; `source` names where the settings came from.
    fn resolve(self, source: &str) -> Result<DatastoreConfig> {
        let datastore_type = match self.datastore_type.as_deref().map(str::trim) {
            Some(t) => t,
            None if self.etcd_endpoints.is_some() => "etcdv3",
            None => "sqlite",
        };
        match datastore_type {
            "sqlite" => Ok(DatastoreConfig::Sqlite {
                path: PathBuf::from(self.sqlite_path.as_deref().unwrap_or(DEFAULT_SQLITE_PATH)),
            }),
            "etcdv3" => {
                let endpoints: Vec<String> = self
                    .etcd_endpoints
                    .as_deref()
                    .unwrap_or(DEFAULT_ETCD_ENDPOINT)
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(String::from)
                    .collect();
                if endpoints.is_empty() {
                    return Err(StoreError::Config(format!(
                        "{source}: etcd endpoints list is empty"
                    )));
                }
                if self.etcd_cert_file.is_some() != self.etcd_key_file.is_some() {
                    return Err(StoreError::Config(format!(
                        "{source}: the etcd client certificate and key files must be given together"
                    )));
                }
                Ok(DatastoreConfig::Etcd(EtcdConfig {
                    endpoints,
                    ca_cert_file: self.etcd_ca_cert_file.map(PathBuf::from),
                    cert_file: self.etcd_cert_file.map(PathBuf::from),
                    key_file: self.etcd_key_file.map(PathBuf::from),
                }))
            }
            other => Err(StoreError::Config(format!(
                "{source}: unknown datastore type {other:?} (allowed: {DATASTORE_TYPES})"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn etcd(endpoints: &[&str]) -> DatastoreConfig {
        DatastoreConfig::Etcd(EtcdConfig {
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            ca_cert_file: None,
            cert_file: None,
            key_file: None,
        })
    }

    fn config_error(result: Result<DatastoreConfig>) -> String {
        match result {
            Err(StoreError::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn empty_environment_selects_the_default_sqlite_file() {
        assert_eq!(
            DatastoreConfig::from_env(env(&[])).unwrap(),
            DatastoreConfig::Sqlite {
                path: PathBuf::from("/var/lib/calico/calico.db")
            }
        );
    }

    #[test]
    fn sqlite_path_from_environment() {
        let config = DatastoreConfig::from_env(env(&[
            ("DATASTORE_TYPE", "sqlite"),
            ("SQLITE_PATH", "/tmp/x.db"),
        ]))
        .unwrap();
        assert_eq!(
            config,
            DatastoreConfig::Sqlite {
                path: PathBuf::from("/tmp/x.db")
            }
        );
    }

    #[test]
    fn etcd_endpoints_alone_select_etcd_and_are_split_and_trimmed() {
        let config = DatastoreConfig::from_env(env(&[(
            "ETCD_ENDPOINTS",
            "http://10.0.0.1:2379, http://10.0.0.2:2379,",
        )]))
        .unwrap();
        assert_eq!(
            config,
            etcd(&["http://10.0.0.1:2379", "http://10.0.0.2:2379"])
        );
    }

    #[test]
    fn explicit_sqlite_type_wins_over_etcd_endpoints() {
        let config = DatastoreConfig::from_env(env(&[
            ("DATASTORE_TYPE", "sqlite"),
            ("ETCD_ENDPOINTS", "http://10.0.0.1:2379"),
        ]))
        .unwrap();
        assert!(
            matches!(config, DatastoreConfig::Sqlite { .. }),
            "{config:?}"
        );
    }

    #[test]
    fn etcdv3_without_endpoints_uses_the_calico_default() {
        let config = DatastoreConfig::from_env(env(&[("DATASTORE_TYPE", "etcdv3")])).unwrap();
        assert_eq!(config, etcd(&["http://127.0.0.1:2379"]));
    }

    #[test]
    fn etcd_tls_files_from_environment() {
        let config = DatastoreConfig::from_env(env(&[
            ("ETCD_ENDPOINTS", "https://etcd:2379"),
            ("ETCD_CA_CERT_FILE", "/ca.pem"),
            ("ETCD_CERT_FILE", "/cert.pem"),
            ("ETCD_KEY_FILE", "/key.pem"),
        ]))
        .unwrap();
        assert_eq!(
            config,
            DatastoreConfig::Etcd(EtcdConfig {
                endpoints: vec!["https://etcd:2379".into()],
                ca_cert_file: Some("/ca.pem".into()),
                cert_file: Some("/cert.pem".into()),
                key_file: Some("/key.pem".into()),
            })
        );
    }

    #[test]
    fn certificate_without_key_is_rejected() {
        let message = config_error(DatastoreConfig::from_env(env(&[
            ("ETCD_ENDPOINTS", "https://etcd:2379"),
            ("ETCD_CERT_FILE", "/cert.pem"),
        ])));
        assert!(message.contains("environment"), "{message}");
        assert!(message.contains("certificate and key"), "{message}");
    }

    #[test]
    fn unknown_datastore_type_lists_the_allowed_values() {
        let message = config_error(DatastoreConfig::from_env(env(&[(
            "DATASTORE_TYPE",
            "kubernetes",
        )])));
        assert!(message.contains("\"kubernetes\""), "{message}");
        assert!(message.contains("sqlite, etcdv3"), "{message}");
    }

    #[test]
    fn endpoints_of_only_commas_are_rejected() {
        let message = config_error(DatastoreConfig::from_env(env(&[
            ("DATASTORE_TYPE", "etcdv3"),
            ("ETCD_ENDPOINTS", " , ,"),
        ])));
        assert!(message.contains("empty"), "{message}");
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn calico_style_file_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "calicoctl.cfg",
            "apiVersion: v1\nkind: calicoApiConfig\nmetadata:\nspec:\n  datastoreType: \"etcdv3\"\n  \
             etcdEndpoints: \"http://etcd1:2379,http://etcd2:2379\"\n  etcdCACertFile: /ca.pem\n  \
             etcdCertFile: /cert.pem\n  etcdKeyFile: /key.pem\n",
        );
        assert_eq!(
            DatastoreConfig::from_file(&path).unwrap(),
            DatastoreConfig::Etcd(EtcdConfig {
                endpoints: vec!["http://etcd1:2379".into(), "http://etcd2:2379".into()],
                ca_cert_file: Some("/ca.pem".into()),
                cert_file: Some("/cert.pem".into()),
                key_file: Some("/key.pem".into()),
            })
        );
        let path = write(
            dir.path(),
            "sqlite.cfg",
            "apiVersion: v1\nkind: calicoApiConfig\nspec:\n  sqlitePath: /data/c.db\n",
        );
        assert_eq!(
            DatastoreConfig::from_file(&path).unwrap(),
            DatastoreConfig::Sqlite {
                path: "/data/c.db".into()
            }
        );
    }

    #[test]
    fn unknown_field_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "bad.cfg",
            "apiVersion: v1\nkind: calicoApiConfig\nspec:\n  datastoreType: sqlite\n  etcdUsername: bob\n",
        );
        let message = config_error(DatastoreConfig::from_file(&path));
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("etcdUsername"), "{message}");
        assert!(message.contains("line 5"), "{message}");
    }

    #[test]
    fn wrong_kind_and_unknown_type_in_file_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "kind.cfg", "apiVersion: v1\nkind: ipPool\n");
        let message = config_error(DatastoreConfig::from_file(&path));
        assert!(
            message.contains("calicoApiConfig") && message.contains("ipPool"),
            "{message}"
        );
        let path = write(
            dir.path(),
            "type.cfg",
            "apiVersion: v1\nkind: calicoApiConfig\nspec:\n  datastoreType: etcdv2\n",
        );
        let message = config_error(DatastoreConfig::from_file(&path));
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("sqlite, etcdv3"), "{message}");
    }

    #[test]
    fn precedence_is_explicit_file_then_default_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let explicit = write(
            dir.path(),
            "explicit.cfg",
            "apiVersion: v1\nkind: calicoApiConfig\nspec:\n  sqlitePath: /explicit.db\n",
        );
        let default = write(
            dir.path(),
            "default.cfg",
            "apiVersion: v1\nkind: calicoApiConfig\nspec:\n  sqlitePath: /default.db\n",
        );
        let missing = dir.path().join("missing.cfg");
        let vars = [("SQLITE_PATH", "/env.db")];
        let sqlite = |p: &str| DatastoreConfig::Sqlite { path: p.into() };

        let loaded = load_with_default(Some(&explicit), &default, env(&vars)).unwrap();
        assert_eq!(loaded, sqlite("/explicit.db"));
        let loaded = load_with_default(None, &default, env(&vars)).unwrap();
        assert_eq!(loaded, sqlite("/default.db"));
        let loaded = load_with_default(None, &missing, env(&vars)).unwrap();
        assert_eq!(loaded, sqlite("/env.db"));

        let message = config_error(load_with_default(Some(&missing), &default, env(&vars)));
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );
    }

    #[tokio::test]
    async fn connect_opens_the_configured_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/calico.db");
        let store = DatastoreConfig::Sqlite { path: path.clone() }
            .connect()
            .await
            .unwrap();
        let rev = store.create("/k", b"v").await.unwrap();
        assert_eq!(store.get("/k").await.unwrap().unwrap().mod_revision, rev);
        assert!(path.exists());
    }
}
