//! `calicoctl config set|unset|get` end to end: the real binary on a SQLite datastore, checked
//! through the keys calico-node reads (`calico_routing::inputs`).

mod common;

use std::ffi::OsStr;
use std::path::Path;

fn calicoctl(db: &Path, args: &[&str]) -> common::Run {
    let env = [
        ("DATASTORE_TYPE", OsStr::new("sqlite")),
        ("SQLITE_PATH", db.as_os_str()),
    ];
    common::calicoctl(args, &env, "")
}

#[track_caller]
fn ok(db: &Path, args: &[&str]) -> String {
    calicoctl(db, args).ok().to_string()
}

#[track_caller]
fn fails(db: &Path, args: &[&str]) -> String {
    calicoctl(db, args).failed().to_string()
}

fn stored(db: &Path, key: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ds = calico_store::DatastoreConfig::Sqlite {
            path: db.to_path_buf(),
        }
        .connect()
        .await
        .unwrap();
        ds.get(key)
            .await
            .unwrap()
            .map(|kv| String::from_utf8(kv.value).unwrap())
    })
}

#[test]
fn node_to_node_mesh_and_as_number() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calico.db");
    let mesh = calico_store::keys::NODE_MESH;
    let asn = calico_store::keys::GLOBAL_AS_NUMBER;

    // Defaults: mesh on, AS 64512, nothing stored.
    assert_eq!(ok(&db, &["config", "get", "nodeToNodeMesh"]), "on\n");
    assert_eq!(ok(&db, &["config", "get", "asNumber"]), "64512\n");
    assert_eq!(stored(&db, mesh), None);

    assert_eq!(ok(&db, &["config", "set", "nodeToNodeMesh", "off"]), "");
    assert_eq!(stored(&db, mesh).as_deref(), Some("{\"enabled\": false}"));
    assert_eq!(ok(&db, &["config", "get", "nodetonodemesh"]), "off\n");
    ok(&db, &["config", "set", "nodeToNodeMesh", "off"]); // unchanged: still fine
    ok(&db, &["config", "set", "NodeToNodeMesh", "on"]);
    assert_eq!(stored(&db, mesh).as_deref(), Some("{\"enabled\": true}"));
    assert_eq!(ok(&db, &["config", "get", "nodeToNodeMesh"]), "on\n");
    ok(&db, &["config", "set", "nodeToNodeMesh", "off"]);
    ok(&db, &["config", "unset", "nodeToNodeMesh"]);
    assert_eq!(stored(&db, mesh), None);
    assert_eq!(ok(&db, &["config", "get", "nodeToNodeMesh"]), "on\n");

    ok(&db, &["config", "set", "asNumber", "64513"]);
    assert_eq!(stored(&db, asn).as_deref(), Some("64513"));
    assert_eq!(ok(&db, &["config", "get", "asNumber"]), "64513\n");
    ok(&db, &["config", "set", "asNumber", "1.10"]);
    assert_eq!(ok(&db, &["config", "get", "asNumber"]), "65546\n");
    ok(&db, &["config", "unset", "asNumber"]);
    assert_eq!(ok(&db, &["config", "get", "asNumber"]), "64512\n");

    // Calico's messages; nothing is written.
    assert_eq!(
        fails(&db, &["config", "set", "nodeToNodeMesh", "maybe"]),
        "Error executing command: invalid value 'maybe'\n"
    );
    assert_eq!(
        fails(&db, &["config", "set", "asNumber", "4294967296"]),
        "Error executing command: the supplied AS number is not valid\n"
    );
    assert_eq!(
        fails(
            &db,
            &["config", "set", "asNumber", "64513", "--node", "calico-01"]
        ),
        "Error executing command: --node should not be specified\n"
    );
    assert_eq!(
        fails(&db, &["config", "get", "bgpLogLevel"]),
        "Error executing command: unrecognised config name 'bgpLogLevel'\n"
    );
    assert_eq!(stored(&db, mesh), None);
    assert_eq!(stored(&db, asn), None);
    assert!(fails(&db, &["config", "set", "asNumber"]).starts_with("Invalid option: "));
}
