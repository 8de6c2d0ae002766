//! `create`, `apply`, `replace`, `delete` and `get`: calicoctl v1's resource verbs, with its
//! exact result lines. A file is decoded and validated whole before anything is written;
//! resources are then written in file order, stopping at the first error. An `ipPool` written
//! with `ipip` enabled adds a warning on stderr: calico-docker routes it without encapsulation.

use std::io::Read;
use std::path::Path;

use calico_model::{codec, Kind, Resource, ResourceKey};
use calico_store::resources::{Filter, ResourceError, ResourceStore};
use calico_store::{keys, DatastoreConfig};

use super::Outcome;
use crate::cli::{DeleteArgs, GetArgs, Identifiers};
use crate::output::{self, Context, Format, Group};

/// The global AS number Calico uses when none is configured.
const DEFAULT_AS_NUMBER: &str = "64512";

/// A verb that writes resources, and how it words its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create { skip_exists: bool },
    Apply,
    Replace,
    Delete { skip_not_exists: bool },
}

impl Verb {
    fn present(self) -> &'static str {
        match self {
            Verb::Create { .. } => "create",
            Verb::Apply => "apply",
            Verb::Replace => "replace",
            Verb::Delete { .. } => "delete",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Verb::Create { .. } => "created",
            Verb::Apply => "applied",
            Verb::Replace => "replaced",
            Verb::Delete { .. } => "deleted",
        }
    }
}

/// `calicoctl create -f FILE [--skip-exists]`.
pub async fn create(config: Option<&Path>, filename: &str, skip_exists: bool) -> Outcome {
    from_file(config, filename, Verb::Create { skip_exists }).await
}

/// `calicoctl apply -f FILE`.
pub async fn apply(config: Option<&Path>, filename: &str) -> Outcome {
    from_file(config, filename, Verb::Apply).await
}

/// `calicoctl replace -f FILE`.
pub async fn replace(config: Option<&Path>, filename: &str) -> Outcome {
    from_file(config, filename, Verb::Replace).await
}

/// `calicoctl delete (KIND [NAME] | -f FILE) [--skip-not-exists]`.
pub async fn delete(config: Option<&Path>, args: DeleteArgs) -> Outcome {
    let verb = Verb::Delete {
        skip_not_exists: args.skip_not_exists,
    };
    match (&args.filename, &args.kind) {
        (Some(filename), _) => from_file(config, filename, verb).await,
        (None, Some(kind)) => {
            let kind = match parse_kind(kind) {
                Ok(kind) => kind,
                Err(outcome) => return outcome,
            };
            let key = key_from_args(kind, args.name.as_deref(), &args.ids);
            let store = match connect(config).await {
                Ok(store) => store,
                Err(outcome) => return outcome,
            };
            let result = match key {
                Ok(key) => write_one(&store, verb, &key, None).await,
                Err(e) => Err(e),
            };
            let (handled, err) = match result {
                Ok(()) => (1, None),
                Err(e) => (0, Some(e)),
            };
            report(verb, 1, handled, Some(kind), err)
        }
        (None, None) => Outcome::fail("Either a resource kind or --filename is required"),
    }
}

/// `calicoctl get (KIND [NAME] | -f FILE) [-o FORMAT]`.
pub async fn get(config: Option<&Path>, args: GetArgs) -> Outcome {
    let format = match Format::parse(&args.output) {
        Ok(f) => f,
        Err(e) => return Outcome::fail(e.to_string()),
    };
    let queries: Vec<(Kind, Filter)> = match (&args.filename, &args.kind) {
        (Some(filename), _) => match load(filename) {
            Ok(resources) => resources.iter().map(query_for).collect(),
            Err(e) => return Outcome::fail(format!("Failed to execute command: {e}")),
        },
        (None, Some(kind)) => match parse_kind(kind) {
            Ok(kind) => match filter_from_args(args.name.as_deref(), &args.ids) {
                Ok(filter) => vec![(kind, filter)],
                Err(e) => return Outcome::fail(format!("Failed to get resources: {e}")),
            },
            Err(outcome) => return outcome,
        },
        (None, None) => return Outcome::fail("Either a resource kind or --filename is required"),
    };
    for (kind, _) in &queries {
        if let Err(e) = format.check_headings(*kind) {
            return Outcome::fail(e.to_string());
        }
    }
    let store = match connect(config).await {
        Ok(store) => store,
        Err(outcome) => return outcome,
    };
    let mut groups = Vec::new();
    for (kind, filter) in queries {
        match store.list(kind, &filter).await {
            Ok(resources) => groups.push(Group { kind, resources }),
            Err(e) => return Outcome::fail(format!("Failed to get resources: {e}")),
        }
    }
    let ctx = Context {
        global_as_number: global_as_number(&store).await,
    };
    Outcome::ok(output::render(&format, &groups, &ctx))
}

async fn from_file(config: Option<&Path>, filename: &str, verb: Verb) -> Outcome {
    let resources = match load(filename) {
        Ok(resources) => resources,
        Err(e) => return Outcome::fail(format!("Failed to execute command: {e}")),
    };
    if resources.is_empty() {
        return Outcome::fail("No resources specified in file");
    }
    let store = match connect(config).await {
        Ok(store) => store,
        Err(outcome) => return outcome,
    };
    let mut handled = 0;
    let mut err = None;
    for resource in &resources {
        let result = match resource.key() {
            Ok(key) => write_one(&store, verb, &key, Some(resource)).await,
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(()) => handled += 1,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let outcome = report(verb, resources.len(), handled, single_kind(&resources), err);
    match verb {
        Verb::Delete { .. } => outcome,
        _ => with_warnings(
            outcome,
            resources[..handled].iter().filter_map(ipip_warning),
        ),
    }
}

/// The warning for a written resource that asks for what calico-docker does not do: an
/// `ipPool` with `ipip` enabled.
pub(crate) fn ipip_warning(resource: &Resource) -> Option<String> {
    let Resource::IpPool(pool) = resource else {
        return None;
    };
    let cidr = pool.metadata.cidr?;
    pool.spec
        .ipip
        .as_ref()
        .is_some_and(|i| i.enabled)
        .then(|| calico_routing::ipip::pool_warning(&cidr.to_string()))
}

/// `outcome` with `warnings` on stderr, one a line, before anything it prints there.
pub(crate) fn with_warnings(
    mut outcome: Outcome,
    warnings: impl IntoIterator<Item = String>,
) -> Outcome {
    let mut stderr: String = warnings.into_iter().map(|w| w + "\n").collect();
    stderr.push_str(&outcome.stderr);
    outcome.stderr = stderr;
    outcome
}

/// Applies the verb to one resource; the skip flags turn the expected failure into success.
async fn write_one(
    store: &ResourceStore,
    verb: Verb,
    key: &ResourceKey,
    resource: Option<&Resource>,
) -> Result<(), ResourceError> {
    let result = match (verb, resource) {
        (Verb::Delete { .. }, _) => store.delete(key).await,
        (Verb::Create { .. }, Some(r)) => store.create(r).await,
        (Verb::Apply, Some(r)) => store.apply(r).await,
        (Verb::Replace, Some(r)) => store.replace(r).await,
        (_, None) => Err(ResourceError::DoesNotExist(key.clone())),
    };
    match (verb, result) {
        (Verb::Create { skip_exists: true }, Err(ResourceError::AlreadyExists(_))) => Ok(()),
        (
            Verb::Delete {
                skip_not_exists: true,
            },
            Err(ResourceError::DoesNotExist(_)),
        ) => Ok(()),
        (_, result) => result,
    }
}

/// calicoctl's result lines for a verb over `total` resources of which `handled` succeeded.
pub fn report(
    verb: Verb,
    total: usize,
    handled: usize,
    kind: Option<Kind>,
    err: Option<ResourceError>,
) -> Outcome {
    let (present, past) = (verb.present(), verb.past());
    match (err, handled, kind) {
        (None, _, Some(kind)) => Outcome::ok(format!(
            "Successfully {past} {handled} '{kind}' resource(s)\n"
        )),
        (None, _, None) => Outcome::ok(format!("Successfully {past} {handled} resource(s)\n")),
        (Some(e), 0, Some(kind)) if total == 1 => {
            Outcome::fail(format!("Failed to {present} '{kind}' resource: {e}"))
        }
        (Some(e), 0, Some(kind)) => {
            Outcome::fail(format!("Failed to {present} any '{kind}' resources: {e}"))
        }
        (Some(e), 0, None) => Outcome::fail(format!("Failed to {present} any resources: {e}")),
        (Some(e), _, kind) => {
            let what = match kind {
                Some(kind) => format!("'{kind}' resources"),
                None => "resources".to_string(),
            };
            Outcome::fail(format!(
                "Partial success: {past} the first {handled} out of {total} {what}:\nHit error: {e}"
            ))
        }
    }
}

/// The kind shared by every resource, if there is one.
fn single_kind(resources: &[Resource]) -> Option<Kind> {
    let first = resources.first()?.kind();
    resources.iter().all(|r| r.kind() == first).then_some(first)
}

/// Reads and decodes a file, or stdin for `-`; every resource is validated.
fn load(filename: &str) -> Result<Vec<Resource>, String> {
    let text = if filename == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        text
    } else {
        std::fs::read_to_string(filename).map_err(|e| format!("cannot read {filename}: {e}"))?
    };
    codec::decode(&text).map_err(|e| e.to_string())
}

/// Opens the configured datastore, or the "Failed to create Calico API client" outcome.
pub(crate) async fn connect(config: Option<&Path>) -> Result<ResourceStore, Outcome> {
    let failed = |e: calico_store::StoreError| {
        Outcome::fail(format!("Failed to create Calico API client: {e}"))
    };
    let cfg = DatastoreConfig::load(config, |name| std::env::var(name).ok()).map_err(failed)?;
    let ds = cfg.connect().await.map_err(failed)?;
    Ok(ResourceStore::new(ds))
}

fn parse_kind(arg: &str) -> Result<Kind, Outcome> {
    Kind::from_cli(arg)
        .ok_or_else(|| Outcome::fail(format!("Resource type '{arg}' is not supported")))
}

/// The filter that finds a resource named in a file (its identifying fields).
fn query_for(resource: &Resource) -> (Kind, Filter) {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let filter = match resource {
        Resource::Profile(r) => Filter {
            name: some(&r.metadata.name),
            ..Filter::default()
        },
        Resource::Policy(r) => Filter {
            name: some(&r.metadata.name),
            ..Filter::default()
        },
        Resource::Node(r) => Filter {
            name: some(&r.metadata.name),
            ..Filter::default()
        },
        Resource::IpPool(r) => Filter {
            name: r.metadata.cidr.map(|c| c.to_string()),
            ..Filter::default()
        },
        Resource::HostEndpoint(r) => Filter {
            name: some(&r.metadata.name),
            node: some(&r.metadata.node),
            ..Filter::default()
        },
        Resource::WorkloadEndpoint(r) => Filter {
            name: some(&r.metadata.name),
            node: some(&r.metadata.node),
            orchestrator: some(&r.metadata.orchestrator),
            workload: some(&r.metadata.workload),
            scope: None,
        },
        Resource::BgpPeer(r) => Filter {
            name: r.metadata.peer_ip.map(|ip| ip.to_string()),
            node: some(&r.metadata.node),
            scope: some(&r.metadata.scope),
            ..Filter::default()
        },
    };
    (resource.kind(), filter)
}

/// The wildcard filter of `get KIND [NAME] [--node ...]`.
fn filter_from_args(name: Option<&str>, ids: &Identifiers) -> Result<Filter, String> {
    if let Some(scope) = ids.scope.as_deref() {
        check_scope(scope)?;
    }
    Ok(Filter {
        name: name.map(str::to_string),
        node: ids.node.clone(),
        orchestrator: ids.orchestrator.clone(),
        workload: ids.workload.clone(),
        scope: ids.scope.clone(),
    })
}

fn check_scope(scope: &str) -> Result<(), String> {
    match scope {
        "global" | "node" => Ok(()),
        other => Err(format!(
            "Unrecognized scope '{other}', must be one of: global, node"
        )),
    }
}

/// The one resource `delete KIND NAME [--node ...]` names; the first missing identifier is
/// reported in Calico's order.
fn key_from_args(
    kind: Kind,
    name: Option<&str>,
    ids: &Identifiers,
) -> Result<ResourceKey, ResourceError> {
    let need = |value: Option<&str>, field: &'static str| {
        value
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or(calico_model::InsufficientIdentifiers(field))
    };
    let invalid = |message: String| ResourceError::Invalid(message);
    Ok(match kind {
        Kind::Profile => ResourceKey::Profile {
            name: need(name, "name")?,
        },
        Kind::Policy => ResourceKey::Policy {
            name: need(name, "name")?,
        },
        Kind::Node => ResourceKey::Node {
            name: need(name, "name")?,
        },
        Kind::HostEndpoint => ResourceKey::HostEndpoint {
            node: need(ids.node.as_deref(), "node")?,
            name: need(name, "name")?,
        },
        Kind::WorkloadEndpoint => ResourceKey::WorkloadEndpoint {
            node: need(ids.node.as_deref(), "node")?,
            orchestrator: need(ids.orchestrator.as_deref(), "orchestrator")?,
            workload: need(ids.workload.as_deref(), "workload")?,
            name: need(name, "name")?,
        },
        Kind::IpPool => {
            let cidr = need(name, "cidr")?;
            ResourceKey::IpPool {
                cidr: cidr
                    .parse()
                    .map_err(|_| invalid(format!("invalid CIDR address: {cidr}")))?,
            }
        }
        Kind::BgpPeer => {
            let scope = need(ids.scope.as_deref(), "scope")?;
            check_scope(&scope).map_err(invalid)?;
            let peer = need(name, "peerIP")?;
            let ip = peer
                .parse()
                .map_err(|_| invalid(format!("invalid peer IP address: {peer}")))?;
            if scope == "global" {
                ResourceKey::GlobalBgpPeer { ip }
            } else {
                ResourceKey::NodeBgpPeer {
                    node: need(ids.node.as_deref(), "node")?,
                    ip,
                }
            }
        }
    })
}

/// The configured global AS number, or Calico's default.
async fn global_as_number(store: &ResourceStore) -> String {
    match store.datastore().get(keys::GLOBAL_AS_NUMBER).await {
        Ok(Some(kv)) => String::from_utf8_lossy(&kv.value).trim().to_string(),
        _ => DEFAULT_AS_NUMBER.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_key(name: &str) -> ResourceKey {
        ResourceKey::Policy { name: name.into() }
    }

    #[test]
    fn success_lines_name_the_kind_when_there_is_one() {
        let out = report(Verb::Apply, 2, 2, Some(Kind::Profile), None);
        assert_eq!(
            out,
            Outcome::ok("Successfully applied 2 'profile' resource(s)\n")
        );
        let out = report(Verb::Create { skip_exists: false }, 3, 3, None, None);
        assert_eq!(out.stdout, "Successfully created 3 resource(s)\n");
    }

    #[test]
    fn failure_lines_depend_on_count_and_kinds() {
        let exists = || Some(ResourceError::AlreadyExists(policy_key("p")));
        let one = report(
            Verb::Create { skip_exists: false },
            1,
            0,
            Some(Kind::Policy),
            exists(),
        );
        assert_eq!(
            one,
            Outcome::fail(
                "Failed to create 'policy' resource: resource already exists: Policy(name=p)"
            )
        );
        let many = report(
            Verb::Create { skip_exists: false },
            2,
            0,
            Some(Kind::Policy),
            exists(),
        );
        assert_eq!(
            many.stderr,
            "Failed to create any 'policy' resources: resource already exists: Policy(name=p)\n"
        );
        let mixed = report(Verb::Replace, 2, 0, None, exists());
        assert!(mixed
            .stderr
            .starts_with("Failed to replace any resources: "));
        assert!(!mixed.success);
    }

    #[test]
    fn partial_success_names_how_far_it_got() {
        let out = report(
            Verb::Delete {
                skip_not_exists: false,
            },
            3,
            1,
            Some(Kind::Profile),
            Some(ResourceError::DoesNotExist(ResourceKey::Profile {
                name: "b".into(),
            })),
        );
        assert_eq!(
            out.stderr,
            "Partial success: deleted the first 1 out of 3 'profile' resources:\n\
             Hit error: resource does not exist: Profile(name=b)\n"
        );
        assert!(!out.success);
    }

    #[test]
    fn only_pools_with_ipip_enabled_warn() {
        let decode = |yaml: &str| codec::decode(yaml).unwrap().remove(0);
        let ipip = decode("{kind: ipPool, apiVersion: v1, metadata: {cidr: 10.9.0.0/16}, spec: {ipip: {enabled: true, mode: cross-subnet}}}");
        assert_eq!(
            ipip_warning(&ipip),
            Some(calico_routing::ipip::pool_warning("10.9.0.0/16"))
        );
        for quiet in [
            "{kind: ipPool, apiVersion: v1, metadata: {cidr: 10.9.0.0/16}, spec: {ipip: {enabled: false}}}",
            "{kind: ipPool, apiVersion: v1, metadata: {cidr: 10.9.0.0/16}, spec: {nat-outgoing: true}}",
            "{kind: profile, apiVersion: v1, metadata: {name: p}}",
        ] {
            assert_eq!(ipip_warning(&decode(quiet)), None, "{quiet}");
        }
        let out = with_warnings(
            Outcome::fail("Failed"),
            ["one".to_string(), "two".to_string()],
        );
        assert_eq!(out.stderr, "one\ntwo\nFailed\n");
        assert_eq!(with_warnings(Outcome::ok("x\n"), []), Outcome::ok("x\n"));
    }

    #[test]
    fn delete_args_report_the_first_missing_identifier() {
        let ids = Identifiers::default();
        let err = key_from_args(Kind::WorkloadEndpoint, Some("ep"), &ids).unwrap_err();
        assert_eq!(err.to_string(), "insufficient identifiers, missing 'node'");
        let err = key_from_args(Kind::BgpPeer, Some("10.0.0.1"), &ids).unwrap_err();
        assert_eq!(err.to_string(), "insufficient identifiers, missing 'scope'");
        let node_scope = Identifiers {
            scope: Some("node".into()),
            ..Identifiers::default()
        };
        let err = key_from_args(Kind::BgpPeer, Some("10.0.0.1"), &node_scope).unwrap_err();
        assert_eq!(err.to_string(), "insufficient identifiers, missing 'node'");
        let err = key_from_args(Kind::IpPool, Some("nonsense"), &ids).unwrap_err();
        assert_eq!(err.to_string(), "invalid CIDR address: nonsense");
        assert_eq!(
            key_from_args(Kind::Profile, Some("db"), &ids).unwrap(),
            ResourceKey::Profile { name: "db".into() }
        );
    }
}
