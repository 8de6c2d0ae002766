//! Datastore selection shared by calicoctl and calico-node: a calicoctl config file or the environment.
//!
//! Both forms follow calicoctl v1.6 / libcalico-go (`lib/api/apiconfig.go`, `lib/client/client.go`,
//! `lib/backend/etcd/etcd.go`): the same field names, `etcdEndpoints` over
//! `etcdScheme://etcdAuthority`, and `CALICO_`-prefixed environment names before the plain ones.

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::{Datastore, Result, SqliteStore, StoreError, DEFAULT_SQLITE_PATH};

/// The config file read when it exists and none is given explicitly.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/calico/calicoctl.cfg";
/// The etcd scheme used with `etcdAuthority` when `etcdScheme` is not given (as libcalico-go).
pub const DEFAULT_ETCD_SCHEME: &str = "http";
/// The etcd authority used when neither endpoints nor an authority are given (as libcalico-go).
pub const DEFAULT_ETCD_AUTHORITY: &str = "127.0.0.1:2379";
/// The etcd endpoint used when etcd is selected without endpoints or an authority (as Calico).
pub const DEFAULT_ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";

/// The accepted values of `DATASTORE_TYPE` / `spec.datastoreType`.
const DATASTORE_TYPES: &str = "sqlite, etcdv3, etcdv2";
/// The accepted values of `ETCD_SCHEME` / `spec.etcdScheme`.
const ETCD_SCHEMES: [&str; 2] = ["http", "https"];

/// Which datastore to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatastoreConfig {
    /// The local SQLite file.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// An etcd cluster (`etcdv3`, or calicoctl v1.6's `etcdv2`: both are our etcd v3 datastore).
    Etcd(EtcdConfig),
}

/// How to reach etcd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs, e.g. `http://10.0.0.1:2379` (`https://` when TLS files are given).
    pub endpoints: Vec<String>,
    /// PEM file of the CA that signed the etcd server certificate.
    pub ca_cert_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (needs `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The etcd user to authenticate as, when the cluster has authentication enabled.
    pub credentials: Option<EtcdCredentials>,
}

/// An etcd user name and password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdCredentials {
    /// The etcd user.
    pub username: String,
    /// The user's password.
    pub password: String,
}

impl fmt::Debug for EtcdCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdCredentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl EtcdConfig {
    /// The environment form of this config (`ETCD_ENDPOINTS`, the TLS files, the credentials),
    /// which [`DatastoreConfig::from_env`] reads back as the same config.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("ETCD_ENDPOINTS", self.endpoints.join(","))];
        for (name, file) in [
            ("ETCD_CA_CERT_FILE", &self.ca_cert_file),
            ("ETCD_CERT_FILE", &self.cert_file),
            ("ETCD_KEY_FILE", &self.key_file),
        ] {
            if let Some(file) = file {
                env.push((name, file.display().to_string()));
            }
        }
        if let Some(credentials) = &self.credentials {
            env.push(("ETCD_USERNAME", credentials.username.clone()));
            env.push(("ETCD_PASSWORD", credentials.password.clone()));
        }
        env
    }
}

/// Where settings came from: errors name the source and the field as that source spells it.
enum Source<'a> {
    Environment,
    File(&'a Path),
}

impl Source<'_> {
    /// The field's name in this source: the file's camelCase name or the environment variable.
    fn field(&self, file: &'static str, env: &'static str) -> &'static str {
        match self {
            Source::Environment => env,
            Source::File(_) => file,
        }
    }
}

impl fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment => f.write_str("environment"),
            Source::File(path) => write!(f, "config file {}", path.display()),
        }
    }
}

/// The settings before defaults and validation, from either source.
#[derive(Debug, Default)]
struct Settings {
    datastore_type: Option<String>,
    sqlite_path: Option<String>,
    etcd_endpoints: Option<String>,
    etcd_authority: Option<String>,
    etcd_scheme: Option<String>,
    etcd_username: Option<String>,
    etcd_password: Option<String>,
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
    etcd_authority: Option<String>,
    etcd_scheme: Option<String>,
    etcd_username: Option<String>,
    etcd_password: Option<String>,
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

    /// Reads `DATASTORE_TYPE`, `SQLITE_PATH` and the `ETCD_*` variables through `env`; each is
    /// also accepted as `CALICO_<name>`, which wins (libcalico-go's envconfig prefix).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let set = |name: String| env(&name).filter(|v| !v.trim().is_empty());
        let var = |name: &str| set(format!("CALICO_{name}")).or_else(|| set(name.to_owned()));
        Settings {
            datastore_type: var("DATASTORE_TYPE"),
            sqlite_path: var("SQLITE_PATH"),
            etcd_endpoints: var("ETCD_ENDPOINTS"),
            etcd_authority: var("ETCD_AUTHORITY"),
            etcd_scheme: var("ETCD_SCHEME"),
            etcd_username: var("ETCD_USERNAME"),
            etcd_password: var("ETCD_PASSWORD"),
            etcd_ca_cert_file: var("ETCD_CA_CERT_FILE"),
            etcd_cert_file: var("ETCD_CERT_FILE"),
            etcd_key_file: var("ETCD_KEY_FILE"),
        }
        .resolve(Source::Environment)
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
        etcd_authority: field(spec.etcd_authority),
        etcd_scheme: field(spec.etcd_scheme),
        etcd_username: field(spec.etcd_username),
        etcd_password: field(spec.etcd_password),
        etcd_ca_cert_file: field(spec.etcd_ca_cert_file),
        etcd_cert_file: field(spec.etcd_cert_file),
        etcd_key_file: field(spec.etcd_key_file),
    }
    .resolve(Source::File(path))
}

impl Settings {
    /// Applies defaults and validates; errors name the source and the field.
    fn resolve(self, source: Source<'_>) -> Result<DatastoreConfig> {
        let datastore_type = match self.datastore_type.as_deref().map(str::trim) {
            Some(t) => t,
            None if self.etcd_endpoints.is_some() || self.etcd_authority.is_some() => "etcdv3",
            None => "sqlite",
        };
        let error = |what: String| StoreError::Config(format!("{source}: {what}"));
        match datastore_type {
            "sqlite" => Ok(DatastoreConfig::Sqlite {
                path: PathBuf::from(self.sqlite_path.as_deref().unwrap_or(DEFAULT_SQLITE_PATH)),
            }),
            "etcdv3" | "etcdv2" => self.etcd(&source).map(DatastoreConfig::Etcd),
            other => Err(error(format!(
                "{} {other:?} is not a datastore type (allowed: {DATASTORE_TYPES})",
                source.field("datastoreType", "DATASTORE_TYPE")
            ))),
        }
    }

    /// The etcd settings: `etcdEndpoints` if given, else `etcdScheme://etcdAuthority` (libcalico-go's
    /// `NewEtcdClient`: the endpoints take precedence when both are given).
    fn etcd(self, source: &Source<'_>) -> Result<EtcdConfig> {
        let error = |what: String| StoreError::Config(format!("{source}: {what}"));
        let scheme_field = source.field("etcdScheme", "ETCD_SCHEME");
        let scheme = self.etcd_scheme.as_deref().map(str::trim);
        if let Some(scheme) = scheme.filter(|s| !ETCD_SCHEMES.contains(s)) {
            return Err(error(format!(
                "{scheme_field} {scheme:?} is not an etcd scheme (allowed: {})",
                ETCD_SCHEMES.join(", ")
            )));
        }
        let authority_field = source.field("etcdAuthority", "ETCD_AUTHORITY");
        let authority = self.etcd_authority.as_deref().map(str::trim);
        if let Some(authority) = authority.filter(|a| a.contains(['/', ',', ' '])) {
            return Err(error(format!(
                "{authority_field} {authority:?} is not an etcd authority: give one host:port \
                 (the scheme goes in {scheme_field}; several URLs go in {})",
                source.field("etcdEndpoints", "ETCD_ENDPOINTS")
            )));
        }
        let endpoints: Vec<String> = match &self.etcd_endpoints {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(String::from)
                .collect(),
            None => vec![format!(
                "{}://{}",
                scheme.unwrap_or(DEFAULT_ETCD_SCHEME),
                authority.unwrap_or(DEFAULT_ETCD_AUTHORITY)
            )],
        };
        if endpoints.is_empty() {
            return Err(error("etcd endpoints list is empty".into()));
        }
        if self.etcd_cert_file.is_some() != self.etcd_key_file.is_some() {
            return Err(error(
                "the etcd client certificate and key files must be given together".into(),
            ));
        }
        let credentials = match (self.etcd_username, self.etcd_password) {
            (Some(username), Some(password)) => Some(EtcdCredentials { username, password }),
            (None, None) => None,
            (username, _) => {
                let (given, missing) = (
                    source.field("etcdUsername", "ETCD_USERNAME"),
                    source.field("etcdPassword", "ETCD_PASSWORD"),
                );
                let (given, missing) = if username.is_some() {
                    (given, missing)
                } else {
                    (missing, given)
                };
                return Err(error(format!(
                    "{given} is set but {missing} is not: give both or neither"
                )));
            }
        };
        Ok(EtcdConfig {
            endpoints,
            ca_cert_file: self.etcd_ca_cert_file.map(PathBuf::from),
            cert_file: self.etcd_cert_file.map(PathBuf::from),
            key_file: self.etcd_key_file.map(PathBuf::from),
            credentials,
        })
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
            credentials: None,
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
                credentials: None,
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
        assert!(
            message.contains("DATASTORE_TYPE \"kubernetes\""),
            "{message}"
        );
        assert!(message.contains("sqlite, etcdv3, etcdv2"), "{message}");
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
                credentials: None,
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
            "apiVersion: v1\nkind: calicoApiConfig\nspec:\n  datastoreType: sqlite\n  etcdUser: bob\n",
        );
        let message = config_error(DatastoreConfig::from_file(&path));
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("etcdUser"), "{message}");
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
            "apiVersion: v1\nkind: calicoApiConfig\nspec:\n  datastoreType: kubernetes\n",
        );
        let message = config_error(DatastoreConfig::from_file(&path));
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("datastoreType \"kubernetes\""),
            "{message}"
        );
        assert!(message.contains("sqlite, etcdv3, etcdv2"), "{message}");
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

    fn credentials(username: &str, password: &str) -> Option<EtcdCredentials> {
        Some(EtcdCredentials {
            username: username.into(),
            password: password.into(),
        })
    }

    #[test]
    fn calicoctl_1_6_file_with_authority_scheme_and_credentials_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "calicoctl.cfg",
            "apiVersion: v1\nkind: calicoApiConfig\nmetadata:\nspec:\n  datastoreType: \"etcdv2\"\n  \
             etcdScheme: https\n  etcdAuthority: \"etcd.example:2379\"\n  etcdUsername: calico\n  \
             etcdPassword: \"s3cret\"\n  etcdCACertFile: /ca.pem\n",
        );
        assert_eq!(
            DatastoreConfig::from_file(&path).unwrap(),
            DatastoreConfig::Etcd(EtcdConfig {
                endpoints: vec!["https://etcd.example:2379".into()],
                ca_cert_file: Some("/ca.pem".into()),
                credentials: credentials("calico", "s3cret"),
                ..EtcdConfig::default()
            })
        );
    }

    #[test]
    fn authority_alone_selects_etcd_with_the_http_scheme() {
        let config =
            DatastoreConfig::from_env(env(&[("ETCD_AUTHORITY", "10.0.0.1:4001")])).unwrap();
        assert_eq!(config, etcd(&["http://10.0.0.1:4001"]));
        let config = DatastoreConfig::from_env(env(&[
            ("ETCD_AUTHORITY", "10.0.0.1:4001"),
            ("ETCD_SCHEME", "https"),
            ("ETCD_CA_CERT_FILE", "/ca.pem"),
        ]))
        .unwrap();
        assert_eq!(
            config,
            DatastoreConfig::Etcd(EtcdConfig {
                endpoints: vec!["https://10.0.0.1:4001".into()],
                ca_cert_file: Some("/ca.pem".into()),
                ..EtcdConfig::default()
            })
        );
    }

    #[test]
    fn etcdv2_without_a_location_uses_the_libcalico_default_authority() {
        let config = DatastoreConfig::from_env(env(&[("DATASTORE_TYPE", "etcdv2")])).unwrap();
        assert_eq!(config, etcd(&["http://127.0.0.1:2379"]));
        let config = DatastoreConfig::from_env(env(&[
            ("DATASTORE_TYPE", "etcdv2"),
            ("ETCD_SCHEME", "https"),
        ]))
        .unwrap();
        assert_eq!(config, etcd(&["https://127.0.0.1:2379"]));
    }

    #[test]
    fn endpoints_take_precedence_over_authority_and_scheme() {
        let config = DatastoreConfig::from_env(env(&[
            ("ETCD_ENDPOINTS", "http://a:2379,http://b:2379"),
            ("ETCD_AUTHORITY", "c:2379"),
            ("ETCD_SCHEME", "https"),
        ]))
        .unwrap();
        assert_eq!(config, etcd(&["http://a:2379", "http://b:2379"]));
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "both.cfg",
            "apiVersion: v1\nkind: calicoApiConfig\nspec:\n  datastoreType: etcdv2\n  \
             etcdAuthority: c:2379\n  etcdEndpoints: http://a:2379\n",
        );
        assert_eq!(
            DatastoreConfig::from_file(&path).unwrap(),
            etcd(&["http://a:2379"])
        );
    }

    #[test]
    fn calico_prefixed_variables_win_over_plain_ones() {
        let config = DatastoreConfig::from_env(env(&[
            ("CALICO_ETCD_AUTHORITY", "prefixed:2379"),
            ("ETCD_AUTHORITY", "plain:2379"),
            ("ETCD_USERNAME", "plain"),
            ("CALICO_ETCD_USERNAME", "prefixed"),
            ("ETCD_PASSWORD", "pw"),
            ("CALICO_DATASTORE_TYPE", "etcdv2"),
            ("DATASTORE_TYPE", "sqlite"),
        ]))
        .unwrap();
        assert_eq!(
            config,
            DatastoreConfig::Etcd(EtcdConfig {
                endpoints: vec!["http://prefixed:2379".into()],
                credentials: credentials("prefixed", "pw"),
                ..EtcdConfig::default()
            })
        );
    }

    #[test]
    fn bad_scheme_and_authority_name_the_field_and_what_is_allowed() {
        let message = config_error(DatastoreConfig::from_env(env(&[
            ("ETCD_AUTHORITY", "e:2379"),
            ("ETCD_SCHEME", "tcp"),
        ])));
        assert!(message.contains("environment"), "{message}");
        assert!(message.contains("ETCD_SCHEME \"tcp\""), "{message}");
        assert!(message.contains("http, https"), "{message}");
        let message = config_error(DatastoreConfig::from_env(env(&[(
            "ETCD_AUTHORITY",
            "http://e:2379",
        )])));
        assert!(
            message.contains("ETCD_AUTHORITY \"http://e:2379\""),
            "{message}"
        );
        assert!(message.contains("host:port"), "{message}");
        assert!(message.contains("ETCD_SCHEME"), "{message}");

        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "scheme.cfg",
            "apiVersion: v1\nkind: calicoApiConfig\nspec:\n  datastoreType: etcdv2\n  etcdScheme: HTTP\n",
        );
        let message = config_error(DatastoreConfig::from_file(&path));
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("etcdScheme \"HTTP\""), "{message}");
        assert!(message.contains("http, https"), "{message}");
    }

    #[test]
    fn user_and_password_go_together() {
        let message = config_error(DatastoreConfig::from_env(env(&[
            ("ETCD_ENDPOINTS", "http://e:2379"),
            ("ETCD_USERNAME", "calico"),
        ])));
        assert!(
            message.contains("ETCD_USERNAME is set but ETCD_PASSWORD is not"),
            "{message}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "password.cfg",
            "apiVersion: v1\nkind: calicoApiConfig\nspec:\n  datastoreType: etcdv2\n  etcdPassword: pw\n",
        );
        let message = config_error(DatastoreConfig::from_file(&path));
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("etcdPassword is set but etcdUsername is not"),
            "{message}"
        );
        assert!(!message.contains("pw"), "{message}");
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let config = DatastoreConfig::Etcd(EtcdConfig {
            endpoints: vec!["http://e:2379".into()],
            credentials: credentials("calico", "s3cret"),
            ..EtcdConfig::default()
        });
        let debug = format!("{config:?}");
        assert!(debug.contains("calico"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn environment_form_reads_back_as_the_same_config() {
        let config = EtcdConfig {
            endpoints: vec!["https://a:2379".into(), "https://b:2379".into()],
            ca_cert_file: Some("/ca.pem".into()),
            cert_file: Some("/cert.pem".into()),
            key_file: Some("/key.pem".into()),
            credentials: credentials("calico", "s3cret"),
        };
        let vars: Vec<(&str, String)> = config.env();
        let map: HashMap<String, String> =
            vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(
            DatastoreConfig::from_env(|name| map.get(name).cloned()).unwrap(),
            DatastoreConfig::Etcd(config)
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
