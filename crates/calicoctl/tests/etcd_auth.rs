//! calicoctl with a calicoctl v1.6 config file (`datastoreType: etcdv2`, `etcdAuthority` and
//! `etcdScheme`, `etcdUsername` and `etcdPassword`) against a real etcd with authentication
//! enabled: every verb works, and wrong or missing credentials are refused with a clear error.

mod common;

/// `calicoctl node run` hands calico-node the credentials; `--dryrun` does not print the password.
#[test]
fn node_run_passes_the_credentials_and_dryrun_hides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("calicoctl.cfg");
    std::fs::write(
        &cfg,
        "apiVersion: v1\nkind: calicoApiConfig\nspec:\n  datastoreType: etcdv2\n  \
         etcdScheme: https\n  etcdAuthority: etcd.example:2379\n  etcdCACertFile: /ca.pem\n  \
         etcdUsername: calico\n  etcdPassword: s3cret\n",
    )
    .unwrap();
    let args = [
        std::ffi::OsStr::new("node"),
        "run".as_ref(),
        "--dryrun".as_ref(),
        "-c".as_ref(),
        cfg.as_os_str(),
    ];
    let out = common::calicoctl(&args, &[], "").ok().to_string();
    for var in [
        "DATASTORE_TYPE=etcdv3 ",
        "ETCD_ENDPOINTS=https://etcd.example:2379 ",
        "ETCD_CA_CERT_FILE=/ca.pem ",
        "ETCD_USERNAME=calico ",
        "ETCD_PASSWORD=<hidden> ",
    ] {
        assert!(out.contains(var), "{var}: {out}");
    }
    assert!(!out.contains("s3cret"), "{out}");
}

mod e2e_etcd_auth {
    use std::ffi::OsStr;
    use std::net::IpAddr;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use calico_ipam::Ipam;
    use calico_store::resources::ResourceStore;
    use calico_store::{DatastoreConfig, EtcdConfig, EtcdCredentials};
    use calico_testkit::etcd::{EtcdServer, AUTH_USER};

    use super::common::{calicoctl, Run};

    const PASSWORD: &str = "v1.6-pa55word";
    /// etcd's default token lifetime: no token expires during these tests.
    const TOKEN_TTL: Duration = Duration::from_secs(300);

    const PROFILE: &str = "apiVersion: v1\nkind: profile\nmetadata:\n  name: web\n  labels:\n    \
                           tier: frontend\nspec:\n  ingress:\n  - action: allow\n";
    const POOL: &str = "apiVersion: v1\nkind: ipPool\nmetadata:\n  cidr: 10.77.0.0/24\nspec:\n  \
                        nat-outgoing: true\n";

    /// etcd's `host:port`, the v1.6 `etcdAuthority`.
    fn authority(server: &EtcdServer) -> &str {
        server
            .endpoint
            .strip_prefix("http://")
            .expect("the auth etcd serves plain HTTP")
    }

    /// Writes a v1.6-style calicoctl.cfg for `server` with the given `etcdUsername`/`etcdPassword`.
    fn config_file(dir: &Path, server: &EtcdServer, credentials: Option<(&str, &str)>) -> PathBuf {
        let mut spec = format!(
            "  datastoreType: \"etcdv2\"\n  etcdScheme: \"http\"\n  etcdAuthority: \"{}\"\n",
            authority(server)
        );
        if let Some((user, password)) = credentials {
            spec.push_str(&format!(
                "  etcdUsername: \"{user}\"\n  etcdPassword: \"{password}\"\n"
            ));
        }
        let name = match credentials {
            Some((_, password)) if password == PASSWORD => "calicoctl.cfg",
            Some(_) => "wrong-password.cfg",
            None => "anonymous.cfg",
        };
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("apiVersion: v1\nkind: calicoApiConfig\nmetadata:\nspec:\n{spec}"),
        )
        .unwrap();
        path
    }

    /// Runs `calicoctl ARGS -c <config>` with `stdin`.
    fn run(config: &Path, args: &[&str], stdin: &str) -> Run {
        let mut argv: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        argv.push(OsStr::new("-c"));
        argv.push(config.as_os_str());
        calicoctl(&argv, &[], stdin)
    }

    /// Assigns `ip` to `node` through the library, authenticated as calicoctl is.
    fn assign(server: &EtcdServer, node: &str, ip: IpAddr) {
        let config = DatastoreConfig::Etcd(EtcdConfig {
            endpoints: vec![server.endpoint.clone()],
            credentials: Some(EtcdCredentials {
                username: AUTH_USER.into(),
                password: PASSWORD.into(),
            }),
            ..EtcdConfig::default()
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let ds = config.connect().await.unwrap();
            Ipam::new(ResourceStore::new(ds))
                .assign(node, ip)
                .await
                .unwrap();
        });
    }

    #[test]
    fn every_verb_through_a_v1_6_config_with_user_and_password() {
        let server = EtcdServer::start_with_auth(PASSWORD, TOKEN_TTL);
        let dir = tempfile::tempdir().unwrap();
        let cfg = config_file(dir.path(), &server, Some((AUTH_USER, PASSWORD)));

        assert_eq!(
            run(
                &cfg,
                &["create", "-f", "-"],
                &format!("{PROFILE}---\n{POOL}")
            )
            .ok(),
            "Successfully created 2 resource(s)\n"
        );
        let yaml = run(&cfg, &["get", "profile", "web", "-o", "yaml"], "")
            .ok()
            .to_string();
        assert!(yaml.contains("tier: frontend"), "{yaml}");

        let applied = PROFILE.replace("frontend", "edge");
        assert_eq!(
            run(&cfg, &["apply", "-f", "-"], &applied).ok(),
            "Successfully applied 1 'profile' resource(s)\n"
        );
        let yaml = run(&cfg, &["get", "profile", "-o", "yaml"], "")
            .ok()
            .to_string();
        assert!(yaml.contains("tier: edge"), "{yaml}");

        let replaced = PROFILE.replace("frontend", "backend");
        assert_eq!(
            run(&cfg, &["replace", "-f", "-"], &replaced).ok(),
            "Successfully replaced 1 'profile' resource(s)\n"
        );
        let yaml = run(&cfg, &["get", "profile", "web", "-o", "yaml"], "")
            .ok()
            .to_string();
        assert!(yaml.contains("tier: backend"), "{yaml}");

        assert_eq!(
            run(&cfg, &["config", "get", "asNumber"], "").ok(),
            "64512\n"
        );
        assert_eq!(
            run(&cfg, &["config", "set", "asNumber", "64513"], "").ok(),
            ""
        );
        assert_eq!(
            run(&cfg, &["config", "get", "asNumber"], "").ok(),
            "64513\n"
        );

        assert_eq!(
            run(&cfg, &["ipam", "show", "--ip=10.77.0.5"], "").ok(),
            "IP 10.77.0.5 is not assigned\n"
        );
        assign(&server, "host-1", "10.77.0.5".parse().unwrap());
        let shown = run(&cfg, &["ipam", "show", "--ip=10.77.0.5"], "")
            .ok()
            .to_string();
        assert!(
            shown.starts_with("IP 10.77.0.5 is assigned in block 10.77.0.0/26\n"),
            "{shown}"
        );
        assert!(shown.contains("  node: host-1\n"), "{shown}");

        assert_eq!(
            run(&cfg, &["delete", "profile", "web"], "").ok(),
            "Successfully deleted 1 'profile' resource(s)\n"
        );
        let gone = run(&cfg, &["get", "profile", "-o", "yaml"], "")
            .ok()
            .to_string();
        assert!(!gone.contains("name: web"), "{gone}");
    }

    #[test]
    fn wrong_password_and_missing_credentials_are_clear_errors() {
        let server = EtcdServer::start_with_auth(PASSWORD, TOKEN_TTL);
        let dir = tempfile::tempdir().unwrap();

        let wrong = config_file(dir.path(), &server, Some((AUTH_USER, "guessed")));
        for args in [&["get", "profile"][..], &["config", "get", "asNumber"]] {
            let stderr = run(&wrong, args, "").failed().to_string();
            assert!(stderr.contains(&server.endpoint), "{args:?}: {stderr}");
            assert!(stderr.contains("user \"root\""), "{args:?}: {stderr}");
            assert!(stderr.contains("wrong password"), "{args:?}: {stderr}");
            assert!(!stderr.contains("guessed"), "{args:?}: {stderr}");
        }

        let anonymous = config_file(dir.path(), &server, None);
        for args in [&["get", "profile"][..], &["ipam", "show", "--ip=10.77.0.5"]] {
            let stderr = run(&anonymous, args, "").failed().to_string();
            assert!(stderr.contains(&server.endpoint), "{args:?}: {stderr}");
            assert!(
                stderr.contains("authentication enabled and no user is configured"),
                "{args:?}: {stderr}"
            );
            assert!(stderr.contains("etcdUsername"), "{args:?}: {stderr}");
        }
    }
}
