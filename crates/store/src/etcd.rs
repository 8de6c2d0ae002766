//! etcd v3 backend: the KV API maps one to one, CAS through transactions on revisions.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Certificate, Client, CompactionOptions, Compare, CompareOp, ConnectOptions, EventType,
    GetOptions, Identity, TlsOptions, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchOptions,
    WatchStream,
};
use tokio::sync::mpsc;

use crate::{
    check_key, Datastore, EtcdConfig, KeyValue, Listing, Result, StoreError, Watch, WatchEvent,
};

/// How long establishing a connection to an endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on every request, so an unreachable cluster is an error and not a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 keep-alive ping interval and timeout, so a dead connection under a watch is noticed.
const KEEP_ALIVE: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(5));
/// Keys per range request when listing.
const LIST_PAGE: i64 = 1000;
/// First and longest wait before re-establishing a broken watch.
const WATCH_RETRY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));
/// The key `connect` reads (count only) to check the client may read Calico's data.
const ACCESS_CHECK_KEY: &str = "/calico/";

/// etcd's messages (`api/v3rpc/rpctypes`) for the authentication failures told apart here.
const AUTH_FAILED: &str = "etcdserver: authentication failed, invalid user ID or password";
const AUTH_NOT_ENABLED: &str = "etcdserver: authentication is not enabled";
const USER_EMPTY: &str = "etcdserver: user name is empty";
const PERMISSION_DENIED: &str = "etcdserver: permission denied";
const INVALID_TOKEN: &str = "etcdserver: invalid auth token";

/// The etcd v3 datastore.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    /// The endpoints, comma-separated, for messages.
    endpoints: String,
    /// The etcd user the client authenticated as, for messages (never the password).
    user: Option<String>,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user)
            .finish()
    }
}

impl EtcdStore {
    /// Connects to the cluster (TLS when certificate files are given; authenticated when
    /// credentials are given) and checks it answers and lets the client read `/calico/`.
    ///
    /// With credentials, etcd's `Authenticate` gives a token that goes with every request; a
    /// request refused for an expired or revoked token renews it once and is sent again. A
    /// cluster without authentication enabled is used without the credentials (with a warning).
    pub async fn connect(config: &EtcdConfig) -> Result<Self> {
        let endpoints = config.endpoints.join(",");
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(KEEP_ALIVE.0, KEEP_ALIVE.1);
        if let Some(tls) = tls_options(config, &endpoints)? {
            options = options.with_tls(tls);
        }
        let mut user = config.credentials.as_ref().map(|c| c.username.clone());
        let mut client = match &config.credentials {
            Some(credentials) => {
                let authenticated = options
                    .clone()
                    .with_user(&credentials.username, &credentials.password)
                    .with_auto_token_refresh(true);
                open_client(&config.endpoints, authenticated).await
            }
            None => open_client(&config.endpoints, options.clone()).await,
        };
        if user.is_some()
            && matches!(&client, Err(Some(e)) if status_message(e) == AUTH_NOT_ENABLED)
        {
            tracing::warn!(%endpoints, user = user.as_deref(), "etcd does not have authentication enabled; connecting without the configured user");
            user = None;
            client = open_client(&config.endpoints, options).await;
        }
        let client = client.map_err(|e| match e {
            Some(e) => failure(&endpoints, user.as_deref(), "connect", e),
            None => StoreError::Unavailable(format!(
                "etcd {endpoints}: connect: no answer within {REQUEST_TIMEOUT:?}"
            )),
        })?;
        let store = EtcdStore {
            client,
            endpoints,
            user,
        };
        let mut maintenance = store.client.maintenance_client();
        let status = store.call("status", maintenance.status()).await?;
        let mut kv = store.client.kv_client();
        let check = GetOptions::new().with_count_only();
        store
            .call(
                &format!("read {ACCESS_CHECK_KEY}"),
                kv.get(ACCESS_CHECK_KEY, Some(check)),
            )
            .await?;
        tracing::debug!(endpoints = %store.endpoints, user = store.user.as_deref(), version = status.version(), "connected to etcd");
        Ok(store)
    }

    /// Discards history before `revision` (physically); watches from before it get `Relist`.
    pub async fn compact(&self, revision: i64) -> Result<()> {
        let mut kv = self.client.kv_client();
        let options = CompactionOptions::new().with_physical();
        self.call(
            &format!("compact to {revision}"),
            kv.compact(revision, Some(options)),
        )
        .await?;
        Ok(())
    }

    /// Awaits one request with the request timeout, naming the endpoints and `what` on failure.
    async fn call<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(failure(&self.endpoints, self.user.as_deref(), what, e)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "etcd {}: {what}: no answer within {REQUEST_TIMEOUT:?}",
                self.endpoints
            ))),
        }
    }

    /// Runs a transaction guarded by `compares`; on failure tells `NotFound` from `Conflict`.
    async fn guarded(
        &self,
        what: &str,
        key: &str,
        compares: Vec<Compare>,
        op: TxnOp,
    ) -> Result<i64> {
        let txn = Txn::new()
            .when(compares)
            .and_then([op])
            .or_else([TxnOp::get(key, Some(GetOptions::new().with_keys_only()))]);
        let mut kv = self.client.kv_client();
        let response = self.call(&format!("{what} {key}"), kv.txn(txn)).await?;
        if response.succeeded() {
            return self.revision(&response, key);
        }
        let exists = response.op_responses().iter().any(|op| match op {
            TxnOpResponse::Get(get) => !get.kvs().is_empty(),
            _ => false,
        });
        Err(if exists {
            StoreError::Conflict(key.to_owned())
        } else {
            StoreError::NotFound(key.to_owned())
        })
    }

    fn revision(&self, response: &TxnResponse, key: &str) -> Result<i64> {
        header_revision(response.header(), &self.endpoints, key)
    }

    /// Opens an etcd watch on `prefix` starting at revision `start` and waits until etcd created
    /// it. etcd cancels a watch opened with an expired or revoked token: with credentials the
    /// token is renewed once and the watch opened again.
    async fn open_watch(&self, prefix: &str, start: i64) -> Result<WatchStream> {
        let what = format!("watch {prefix} from revision {start}");
        let mut renewed = false;
        loop {
            let mut watch = self.client.watch_client();
            let options = WatchOptions::new().with_prefix().with_start_revision(start);
            let mut stream = self.call(&what, watch.watch(prefix, Some(options))).await?;
            let created = self.call(&what, stream.message()).await?;
            match created {
                Some(response) if !response.canceled() => return Ok(stream),
                Some(response)
                    if response.cancel_reason().contains(INVALID_TOKEN)
                        && self.user.is_some()
                        && !renewed =>
                {
                    renewed = true;
                    self.call(
                        &format!("{what}: renew the auth token"),
                        self.client.refresh_token(),
                    )
                    .await?;
                }
                Some(response)
                    if response.cancel_reason().contains(INVALID_TOKEN)
                        || response.cancel_reason().contains(PERMISSION_DENIED) =>
                {
                    return Err(StoreError::AccessDenied(format!(
                        "etcd {}: {what}: refused for {}: {}",
                        self.endpoints,
                        who(self.user.as_deref()),
                        response.cancel_reason()
                    )))
                }
                Some(response) => {
                    return Err(StoreError::Unavailable(format!(
                        "etcd {}: {what}: cancelled by etcd: {}",
                        self.endpoints,
                        response.cancel_reason()
                    )))
                }
                None => {
                    return Err(StoreError::Unavailable(format!(
                        "etcd {}: {what}: the stream ended before the watch was created",
                        self.endpoints
                    )))
                }
            }
        }
    }

    /// Forwards etcd watch responses, re-establishing a broken stream from the next revision.
    async fn follow(
        self,
        prefix: String,
        mut next: i64,
        mut stream: WatchStream,
        tx: mpsc::Sender<WatchEvent>,
    ) {
        let mut retry = WATCH_RETRY.0;
        loop {
            let message = tokio::select! {
                () = tx.closed() => return,
                message = stream.message() => message,
            };
            match message {
                Ok(Some(response)) if response.compact_revision() > 0 => {
                    tracing::info!(%prefix, next, compacted = response.compact_revision(), "etcd history compacted; watcher must relist");
                    let _ = tx.send(WatchEvent::Relist).await;
                    return;
                }
                Ok(Some(response)) if response.canceled() => {
                    tracing::warn!(%prefix, reason = response.cancel_reason(), "etcd cancelled the watch; re-establishing");
                }
                Ok(Some(response)) => {
                    retry = WATCH_RETRY.0;
                    for event in response.events() {
                        let Some(kv) = event.kv() else {
                            tracing::error!(%prefix, "etcd watch event without a key; watcher must relist");
                            let _ = tx.send(WatchEvent::Relist).await;
                            return;
                        };
                        let converted = match event.event_type() {
                            EventType::Put => key_value(kv, &self.endpoints).map(WatchEvent::Put),
                            EventType::Delete => {
                                key_string(kv, &self.endpoints).map(|key| WatchEvent::Delete {
                                    key,
                                    revision: kv.mod_revision(),
                                })
                            }
                        };
                        let event = match converted {
                            Ok(event) => event,
                            Err(e) => {
                                tracing::error!(%prefix, error = %e, "unreadable etcd watch event; watcher must relist");
                                let _ = tx.send(WatchEvent::Relist).await;
                                return;
                            }
                        };
                        next = kv.mod_revision() + 1;
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                Ok(None) => tracing::warn!(%prefix, "etcd watch stream ended; re-establishing"),
                Err(e) => {
                    tracing::warn!(%prefix, error = %e, "etcd watch stream failed; re-establishing")
                }
            }
            loop {
                tokio::select! {
                    () = tx.closed() => return,
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(WATCH_RETRY.1);
                match self.open_watch(&prefix, next).await {
                    Ok(reopened) => {
                        stream = reopened;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(%prefix, error = %e, "re-establishing etcd watch failed")
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Datastore for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        check_key(key)?;
        let mut kv = self.client.kv_client();
        let response = self.call(&format!("get {key}"), kv.get(key, None)).await?;
        response
            .kvs()
            .first()
            .map(|kv| key_value(kv, &self.endpoints))
            .transpose()
    }

    async fn list(&self, prefix: &str) -> Result<Listing> {
        let (mut start, end) = prefix_range(prefix);
        let mut kv = self.client.kv_client();
        let mut items = Vec::new();
        let mut revision = None;
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LIST_PAGE);
            if let Some(revision) = revision {
                options = options.with_revision(revision);
            }
            let what = format!("list {prefix}");
            let response = self.call(&what, kv.get(start, Some(options))).await?;
            let at = header_revision(response.header(), &self.endpoints, prefix)?;
            revision.get_or_insert(at);
            for kv in response.kvs() {
                items.push(key_value(kv, &self.endpoints)?);
            }
            match response.kvs().last() {
                Some(last) if response.more() => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => break,
            }
        }
        Ok(Listing {
            items,
            revision: revision.unwrap_or_default(),
        })
    }

    async fn create(&self, key: &str, value: &[u8]) -> Result<i64> {
        check_key(key)?;
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        let mut kv = self.client.kv_client();
        let response = self.call(&format!("create {key}"), kv.txn(txn)).await?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_owned()));
        }
        self.revision(&response, key)
    }

    async fn update(&self, key: &str, value: &[u8], expected_mod_revision: i64) -> Result<i64> {
        check_key(key)?;
        let compares = vec![
            Compare::create_revision(key, CompareOp::Greater, 0),
            Compare::mod_revision(key, CompareOp::Equal, expected_mod_revision),
        ];
        self.guarded("update", key, compares, TxnOp::put(key, value, None))
            .await
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<i64>) -> Result<i64> {
        check_key(key)?;
        let mut compares = vec![Compare::create_revision(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected_mod_revision {
            compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        self.guarded("delete", key, compares, TxnOp::delete(key, None))
            .await
    }

    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<Watch> {
        let next = after_revision.max(0) + 1;
        let stream = self.open_watch(prefix, next).await?;
        let store = self.clone();
        let prefix = prefix.to_owned();
        Ok(Watch::spawn(move |tx| {
            store.follow(prefix, next, stream, tx)
        }))
    }
}

/// Connects with the request timeout; `Err(None)` when the cluster did not answer in time.
async fn open_client(
    endpoints: &[String],
    options: ConnectOptions,
) -> std::result::Result<Client, Option<etcd_client::Error>> {
    match tokio::time::timeout(REQUEST_TIMEOUT, Client::connect(endpoints, Some(options))).await {
        Ok(result) => result.map_err(Some),
        Err(_) => Err(None),
    }
}

/// The message of an etcd error status, or "" for other errors.
fn status_message(e: &etcd_client::Error) -> &str {
    match e {
        etcd_client::Error::GRpcStatus(status) => status.message(),
        _ => "",
    }
}

/// "user \"name\"" or "no user", for messages.
fn who(user: Option<&str>) -> String {
    match user {
        Some(user) => format!("user {user:?}"),
        None => "no user".into(),
    }
}

/// A failed etcd request as a store error naming the endpoints, the user and `what` was asked:
/// refused credentials and permissions are `AccessDenied`, everything else `Unavailable`.
fn failure(endpoints: &str, user: Option<&str>, what: &str, e: etcd_client::Error) -> StoreError {
    let denied = |why: String| StoreError::AccessDenied(format!("etcd {endpoints}: {what}: {why}"));
    match status_message(&e) {
        AUTH_FAILED => denied(format!(
            "{} was refused: wrong password or no such user (etcdUsername/etcdPassword or \
             ETCD_USERNAME/ETCD_PASSWORD)",
            who(user)
        )),
        USER_EMPTY => denied(
            "the cluster has authentication enabled and no user is configured: set etcdUsername \
             and etcdPassword (or ETCD_USERNAME and ETCD_PASSWORD)"
                .into(),
        ),
        PERMISSION_DENIED => denied(format!("permission denied to {}", who(user))),
        INVALID_TOKEN => denied(format!(
            "the auth token of {} was refused, also after renewing it",
            who(user)
        )),
        _ => StoreError::Unavailable(format!("etcd {endpoints}: {what}: {e}")),
    }
}

/// The etcd key range of all keys starting with `prefix` (`\0`..`\0` is every key).
fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let start = prefix.as_bytes().to_vec();
    let mut end = start.clone();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return (start, end);
        }
    }
    if start.is_empty() {
        (vec![0], vec![0])
    } else {
        (start, vec![0])
    }
}

fn header_revision(
    header: Option<&etcd_client::ResponseHeader>,
    endpoints: &str,
    key: &str,
) -> Result<i64> {
    header.map(|h| h.revision()).ok_or_else(|| {
        StoreError::Unavailable(format!(
            "etcd {endpoints}: response for {key} has no header"
        ))
    })
}

fn key_string(kv: &etcd_client::KeyValue, endpoints: &str) -> Result<String> {
    kv.key_str().map(str::to_owned).map_err(|_| {
        StoreError::Corrupt(format!(
            "etcd {endpoints}: key {:?} is not UTF-8",
            String::from_utf8_lossy(kv.key())
        ))
    })
}

fn key_value(kv: &etcd_client::KeyValue, endpoints: &str) -> Result<KeyValue> {
    Ok(KeyValue {
        key: key_string(kv, endpoints)?,
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

/// TLS settings from the certificate files, if any are configured.
fn tls_options(config: &EtcdConfig, endpoints: &str) -> Result<Option<TlsOptions>> {
    let config_error = |what: String| StoreError::Config(format!("etcd {endpoints}: {what}"));
    let https = config.endpoints.iter().any(|e| e.starts_with("https://"));
    if config.ca_cert_file.is_none() && config.cert_file.is_none() && config.key_file.is_none() {
        if https {
            return Err(config_error(
                "https endpoints need a CA certificate file (etcdCACertFile / ETCD_CA_CERT_FILE)"
                    .into(),
            ));
        }
        return Ok(None);
    }
    if let Some(plain) = config.endpoints.iter().find(|e| !e.starts_with("https://")) {
        return Err(config_error(format!(
            "TLS certificate files are configured, so every endpoint must be https://, not {plain}"
        )));
    }
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|e| config_error(format!("cannot read {}: {e}", path.display())))
    };
    let mut tls = TlsOptions::new();
    match &config.ca_cert_file {
        Some(ca) => tls = tls.ca_certificate(Certificate::from_pem(read(ca)?)),
        None => {
            return Err(config_error(
                "a client certificate needs the CA certificate file too (etcdCACertFile / ETCD_CA_CERT_FILE)".into(),
            ))
        }
    }
    match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?)),
        (None, None) => {}
        _ => {
            return Err(config_error(
                "the client certificate and key files must be given together".into(),
            ))
        }
    }
    Ok(Some(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_matches_etcd() {
        assert_eq!(prefix_range("/a/b"), (b"/a/b".to_vec(), b"/a/c".to_vec()));
        assert_eq!(prefix_range(""), (vec![0], vec![0]));
        assert_eq!(
            prefix_range("/a\u{10FFFF}"),
            (
                "/a\u{10FFFF}".as_bytes().to_vec(),
                vec![b'/', b'a', 0xF4, 0x8F, 0xBF, 0xC0]
            )
        );
    }

    fn config(
        endpoints: &[&str],
        ca: Option<&str>,
        cert: Option<&str>,
        key: Option<&str>,
    ) -> EtcdConfig {
        EtcdConfig {
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            ca_cert_file: ca.map(Into::into),
            cert_file: cert.map(Into::into),
            key_file: key.map(Into::into),
            credentials: None,
        }
    }

    fn tls_error(config: &EtcdConfig) -> String {
        match tls_options(config, "test") {
            Err(StoreError::Config(message)) => message,
            Err(other) => panic!("expected a config error, got {other:?}"),
            Ok(tls) => panic!("expected a config error, got {}", tls.is_some()),
        }
    }

    #[test]
    fn tls_settings_are_validated_before_connecting() {
        assert!(
            tls_options(&config(&["http://e:2379"], None, None, None), "t")
                .unwrap()
                .is_none()
        );
        let message = tls_error(&config(&["https://e:2379"], None, None, None));
        assert!(message.contains("CA certificate"), "{message}");
        let message = tls_error(&config(&["http://e:2379"], Some("/ca.pem"), None, None));
        assert!(message.contains("http://e:2379"), "{message}");
        let message = tls_error(&config(&["https://e:2379"], None, Some("/c"), Some("/k")));
        assert!(message.contains("CA certificate"), "{message}");
        let message = tls_error(&config(
            &["https://e:2379"],
            Some("/nonexistent/ca.pem"),
            None,
            None,
        ));
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }
}
