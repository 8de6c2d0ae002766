//! `calicoctl config set|unset|get <NAME> [<VALUE>]`: the cluster-wide BGP settings, as
//! calicoctl v1 (`calicoctl/commands/config.go`) manages them.
//!
//! | name | value | key |
//! | --- | --- | --- |
//! | `nodeToNodeMesh` | `on`, `off` (default on) | `/calico/bgp/v1/global/node_mesh` = `{"enabled": true\|false}` |
//! | `asNumber` | `0`-`4294967295` or dotted `1.10` (default 64512) | `/calico/bgp/v1/global/as_num`, decimal |
//!
//! Names are case-insensitive. Both settings are global: `--node` is refused. Errors print
//! `Error executing command: <why>` and exit 1. calico-node reconfigures BIRD when they change.

use std::path::Path;

use anyhow::Result;
use calico_model::AsNumber;
use calico_routing::inputs::{decode_node_mesh, encode_node_mesh, DEFAULT_AS_NUMBER};
use calico_store::keys::GLOBAL_AS_NUMBER;
use calico_store::keys::NODE_MESH;
use calico_store::{Datastore, DatastoreConfig, StoreError};

use super::Outcome;

/// A setting `calicoctl config` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `nodeToNodeMesh`: whether every node peers with every other.
    NodeToNodeMesh,
    /// `asNumber`: the AS number of nodes that set none.
    AsNumber,
}

/// What to do with a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store a value.
    Set(String),
    /// Return to the default.
    Unset,
    /// Print the value in effect.
    Get,
}

impl Setting {
    /// The setting called `name` (any case), or calicoctl's error.
    pub fn parse(name: &str) -> Result<Setting, String> {
        match name.to_ascii_lowercase().as_str() {
            "nodetonodemesh" => Ok(Setting::NodeToNodeMesh),
            "asnumber" => Ok(Setting::AsNumber),
            _ => Err(format!("unrecognised config name '{name}'")),
        }
    }

    /// The datastore key holding the setting.
    pub fn key(self) -> &'static str {
        match self {
            Setting::NodeToNodeMesh => NODE_MESH,
            Setting::AsNumber => GLOBAL_AS_NUMBER,
        }
    }

    /// The stored value for `value` as typed, or calicoctl's error.
    pub fn encode(self, value: &str) -> Result<String, String> {
        match self {
            Setting::NodeToNodeMesh => match value {
                "on" => Ok(encode_node_mesh(true)),
                "off" => Ok(encode_node_mesh(false)),
                _ => Err(format!("invalid value '{value}'")),
            },
            Setting::AsNumber => value
                .parse::<AsNumber>()
                .map(|asn| asn.to_string())
                .map_err(|_| "the supplied AS number is not valid".to_string()),
        }
    }

    /// What `get` prints for a stored value (`None`: absent), without the newline. A value that
    /// cannot be read counts as absent, as calico-node treats it.
    pub fn display(self, stored: Option<&[u8]>) -> String {
        match self {
            Setting::NodeToNodeMesh => {
                let on = stored.and_then(decode_node_mesh).unwrap_or(true);
                if on { "on" } else { "off" }.to_string()
            }
            Setting::AsNumber => stored
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|s| s.trim().parse::<AsNumber>().ok())
                .map_or(DEFAULT_AS_NUMBER, |a| a.0)
                .to_string(),
        }
    }
}

/// Checks the command line without touching the datastore: the setting, and for `set` the
/// value to store.
pub fn validate(
    name: &str,
    action: &Action,
    node: Option<&str>,
) -> Result<(Setting, Option<String>), String> {
    let setting = Setting::parse(name)?;
    if node.is_some() {
        return Err("--node should not be specified".into());
    }
    let value = match action {
        Action::Set(value) => Some(setting.encode(value)?),
        Action::Unset | Action::Get => None,
    };
    Ok((setting, value))
}

/// `calicoctl config set|unset|get`.
pub async fn run(config: Option<&Path>, name: &str, action: Action, node: Option<&str>) -> Outcome {
    let (setting, value) = match validate(name, &action, node) {
        Ok(v) => v,
        Err(why) => return Outcome::fail(format!("Error executing command: {why}")),
    };
    match execute(config, setting, &action, value).await {
        Ok(out) => Outcome::ok(out),
        Err(e) => Outcome::fail(format!("Error executing command: {e:#}")),
    }
}

async fn execute(
    config: Option<&Path>,
    setting: Setting,
    action: &Action,
    value: Option<String>,
) -> Result<String> {
    let ds = DatastoreConfig::load(config, |name| std::env::var(name).ok())?
        .connect()
        .await?;
    let key = setting.key();
    match (action, value) {
        (Action::Get, _) => {
            let stored = ds.get(key).await?;
            Ok(format!(
                "{}\n",
                setting.display(stored.as_ref().map(|kv| kv.value.as_slice()))
            ))
        }
        (Action::Set(_), Some(value)) => {
            put(ds.as_ref(), key, value.as_bytes()).await?;
            Ok(String::new())
        }
        (Action::Unset, _) | (Action::Set(_), None) => {
            match ds.delete(key, None).await {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(String::new())
        }
    }
}

/// Creates or replaces `key`, retrying when another writer gets there first.
async fn put(ds: &dyn Datastore, key: &str, value: &[u8]) -> Result<()> {
    for _ in 0..10 {
        let result = match ds.get(key).await? {
            Some(kv) if kv.value == value => return Ok(()),
            Some(kv) => ds.update(key, value, kv.mod_revision).await,
            None => ds.create(key, value).await,
        };
        match result {
            Ok(_) => return Ok(()),
            Err(
                StoreError::Conflict(_) | StoreError::AlreadyExists(_) | StoreError::NotFound(_),
            ) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("{key} keeps changing; try again")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_checked() {
        assert_eq!(
            Setting::parse("nodeToNodeMesh"),
            Ok(Setting::NodeToNodeMesh)
        );
        assert_eq!(
            Setting::parse("NODETONODEMESH"),
            Ok(Setting::NodeToNodeMesh)
        );
        assert_eq!(Setting::parse("asNumber"), Ok(Setting::AsNumber));
        assert_eq!(Setting::parse("asnumber"), Ok(Setting::AsNumber));
        assert_eq!(
            Setting::parse("meshy"),
            Err("unrecognised config name 'meshy'".to_string())
        );
    }

    #[test]
    fn mesh_values() {
        let s = Setting::NodeToNodeMesh;
        assert_eq!(s.encode("on").unwrap(), encode_node_mesh(true));
        assert_eq!(s.encode("off").unwrap(), "{\"enabled\": false}");
        for bad in ["On", "true", "", "yes"] {
            assert_eq!(s.encode(bad), Err(format!("invalid value '{bad}'")));
        }
        assert_eq!(s.display(None), "on");
        assert_eq!(s.display(Some(b"{\"enabled\": false}")), "off");
        assert_eq!(s.display(Some(b"{\"enabled\": true}")), "on");
        assert_eq!(s.display(Some(b"garbage")), "on");
    }

    #[test]
    fn as_number_values() {
        let s = Setting::AsNumber;
        assert_eq!(s.encode("64513").unwrap(), "64513");
        assert_eq!(s.encode("0").unwrap(), "0");
        assert_eq!(s.encode("4294967295").unwrap(), "4294967295");
        assert_eq!(s.encode("1.10").unwrap(), "65546");
        for bad in ["4294967296", "-1", "abc", "", "1.65536", "1.2.3", " 5"] {
            assert_eq!(
                s.encode(bad),
                Err("the supplied AS number is not valid".to_string()),
                "{bad:?}"
            );
        }
        assert_eq!(s.display(None), "64512");
        assert_eq!(s.display(Some(b"65000")), "65000");
        assert_eq!(s.display(Some(b"1.10")), "65546");
        assert_eq!(s.display(Some(b"nonsense")), "64512");
    }

    #[test]
    fn node_is_refused_and_values_are_checked_before_connecting() {
        assert_eq!(
            validate("nodeToNodeMesh", &Action::Get, Some("n1")),
            Err("--node should not be specified".to_string())
        );
        assert_eq!(
            validate("asNumber", &Action::Set("x".into()), None),
            Err("the supplied AS number is not valid".to_string())
        );
        assert_eq!(
            validate("logLevel", &Action::Get, None),
            Err("unrecognised config name 'logLevel'".to_string())
        );
        assert_eq!(
            validate("asNumber", &Action::Set("65001".into()), None),
            Ok((Setting::AsNumber, Some("65001".to_string())))
        );
        assert_eq!(
            validate("nodeToNodeMesh", &Action::Unset, None),
            Ok((Setting::NodeToNodeMesh, None))
        );
    }
}
