//! `calicoctl profile ...`: calicoctl 0.x's profile commands over the same v1 `profile`
//! resources that `calicoctl get/apply` use. Inbound rules are `spec.ingress`, outbound rules
//! `spec.egress`; `rule json` and `rule update` speak the datastore rule form.
//!
//! `<PROFILE>` in `profile <PROFILE> tag|rule ...` names a profile; when no profile has that
//! name it is looked up as a Docker network (name, ID or unique ID prefix) and the profile
//! named after that network is used. Messages name the profile as it was typed.
//!
//! Output follows calicoctl 0.x word for word; failures go to stderr and exit 1. Unlike 0.x,
//! refusals (profile in use, `--at` out of range, unknown profile) also exit 1 and change
//! nothing.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use calico_model::{
    BackendRule, EntityRule, Kind, Profile, ProfileMetadata, ProfileSpec, Resource, ResourceKey,
    Rule,
};
use calico_store::resources::{Filter, ResourceError, ResourceStore};
use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::legacy::profile::{self, ProfileCommand, RemoveTarget, RuleOp, TagOp};
use crate::legacy::rule::{describe, same_rule, Direction};
use crate::legacy::{table, ParseError};
use crate::networks::{DockerNetworks, NetworkResolver};

/// `calicoctl profile WORDS...`.
pub async fn run(config: Option<&Path>, words: &[String]) -> Outcome {
    let invocation = match profile::parse(words) {
        Ok(invocation) => invocation,
        Err(e) => return parse_failure(e, profile::USAGE, profile::HELP),
    };
    let config = invocation.config.as_deref().or(config);
    let store = match super::resources::connect(config).await {
        Ok(store) => store,
        Err(outcome) => return outcome,
    };
    let mut stdin = std::io::stdin();
    execute(&store, &DockerNetworks, invocation.command, &mut stdin).await
}

/// What a legacy (`profile` or `pool`) command line that did not parse prints: the help, or
/// the reason and the usage lines (as docopt does), or the value problems.
pub(super) fn parse_failure(e: ParseError, usage: &str, help: &str) -> Outcome {
    match e {
        ParseError::Help => Outcome::ok(format!("{usage}{help}")),
        ParseError::Usage(reason) => Outcome::fail(format!("{reason}\n{usage}")),
        ParseError::Invalid(text) => Outcome::fail(text),
    }
}

/// Runs a parsed command; `stdin` is read by `rule update` only.
pub async fn execute(
    store: &ResourceStore,
    networks: &impl NetworkResolver,
    command: ProfileCommand,
    stdin: &mut dyn Read,
) -> Outcome {
    let result = match command {
        ProfileCommand::Show { detailed } => show(store, detailed).await,
        ProfileCommand::Add { name } => add(store, &name).await,
        ProfileCommand::Remove { name, no_check } => remove(store, &name, no_check).await,
        ProfileCommand::Tag { profile, op } => {
            let target = Target {
                store,
                networks,
                given: &profile,
            };
            tag(&target, op).await
        }
        ProfileCommand::Rule { profile, op } => {
            let target = Target {
                store,
                networks,
                given: &profile,
            };
            rule(&target, op, stdin).await
        }
    };
    result.unwrap_or_else(|failure| failure)
}

/// Commands return their output either way; `Err` lets `?` stop at the first failure.
type Output = Result<Outcome, Outcome>;

fn store_failure(e: ResourceError) -> Outcome {
    Outcome::fail(e.to_string())
}

fn profile_key(name: &str) -> ResourceKey {
    ResourceKey::Profile {
        name: name.to_string(),
    }
}

/// `profile show [--detailed]`: a table of profile names, or of names and the endpoints
/// using them (`None` cells for unused profiles).
async fn show(store: &ResourceStore, detailed: bool) -> Output {
    let names: Vec<String> = store
        .list(Kind::Profile, &Filter::default())
        .await
        .map_err(store_failure)?
        .into_iter()
        .filter_map(|r| match r {
            Resource::Profile(p) => Some(p.metadata.name),
            _ => None,
        })
        .collect();
    if !detailed {
        let mut rows: Vec<Vec<String>> = names.into_iter().map(|n| vec![n]).collect();
        rows.sort();
        return Ok(Outcome::ok(table::render(&["Name"], &rows)));
    }
    let members = members(store).await?;
    let mut rows = Vec::new();
    for name in names {
        let using: Vec<&Member> = members.iter().filter(|m| m.uses(&name)).collect();
        if using.is_empty() {
            rows.push(row(&name, ["None"; 5].map(String::from)));
        }
        for member in using {
            rows.push(row(&name, member.cells.clone()));
        }
    }
    rows.sort();
    let headings = [
        "Name",
        "Host",
        "Orchestrator ID",
        "Workload ID",
        "Endpoint ID",
        "State",
    ];
    Ok(Outcome::ok(table::render(&headings, &rows)))
}

/// A `--detailed` row: the profile name, then the endpoint's cells.
fn row(name: &str, cells: [String; 5]) -> Vec<String> {
    std::iter::once(name.to_string()).chain(cells).collect()
}

/// An endpoint and the profiles it uses.
struct Member {
    profiles: Vec<String>,
    /// Host, orchestrator, workload, endpoint, state.
    cells: [String; 5],
}

impl Member {
    fn uses(&self, profile: &str) -> bool {
        self.profiles.iter().any(|p| p == profile)
    }
}

/// Every workload and host endpoint (host endpoints have no orchestrator or workload).
async fn members(store: &ResourceStore) -> Result<Vec<Member>, Outcome> {
    let mut out = Vec::new();
    for kind in [Kind::WorkloadEndpoint, Kind::HostEndpoint] {
        let endpoints = store
            .list(kind, &Filter::default())
            .await
            .map_err(store_failure)?;
        out.extend(endpoints.into_iter().filter_map(|r| match r {
            Resource::WorkloadEndpoint(w) => Some(Member {
                profiles: w.spec.profiles,
                cells: [
                    w.metadata.node,
                    w.metadata.orchestrator,
                    w.metadata.workload,
                    w.metadata.name,
                    "active".into(),
                ],
            }),
            Resource::HostEndpoint(h) => Some(Member {
                profiles: h.spec.profiles,
                cells: [
                    h.metadata.node,
                    "None".into(),
                    "None".into(),
                    h.metadata.name,
                    "active".into(),
                ],
            }),
            _ => None,
        }));
    }
    Ok(out)
}

/// The profile the Docker plugin creates for a network: tagged with its name, admitting
/// traffic from that tag, allowing all outbound traffic.
pub fn default_profile(name: &str) -> Profile {
    Profile {
        metadata: ProfileMetadata {
            name: name.to_string(),
            tags: vec![name.to_string()],
            ..ProfileMetadata::default()
        },
        spec: ProfileSpec {
            ingress: vec![Rule {
                action: "allow".into(),
                source: EntityRule {
                    tag: name.to_string(),
                    ..EntityRule::default()
                },
                ..Rule::default()
            }],
            egress: vec![Rule {
                action: "allow".into(),
                ..Rule::default()
            }],
        },
    }
}

/// `profile add <PROFILE>`.
async fn add(store: &ResourceStore, name: &str) -> Output {
    match store.create(&default_profile(name).into()).await {
        Ok(()) => Ok(Outcome::ok(format!("Created profile {name}\n"))),
        Err(ResourceError::AlreadyExists(_)) => {
            Ok(Outcome::ok(format!("Profile {name} already exists.\n")))
        }
        Err(e) => Err(store_failure(e)),
    }
}

/// `profile remove <PROFILE> [--no-check]`: refused while an endpoint uses the profile.
async fn remove(store: &ResourceStore, name: &str, no_check: bool) -> Output {
    let key = profile_key(name);
    let not_found = || Outcome::fail(format!("Profile {name} not found."));
    if store.get(&key).await.map_err(store_failure)?.is_none() {
        return Err(not_found());
    }
    if !no_check && members(store).await?.iter().any(|m| m.uses(name)) {
        return Err(Outcome::fail(
            "Cannot remove profile - profile in use by endpoint(s).\n\
             Use the '--no-check' flag to remove the profile anyway.",
        ));
    }
    match store.delete(&key).await {
        Ok(()) => Ok(Outcome::ok(format!("Deleted profile {name}\n"))),
        Err(ResourceError::DoesNotExist(_)) => Err(not_found()),
        Err(e) => Err(store_failure(e)),
    }
}

/// The profile a `profile <PROFILE> ...` command acts on.
struct Target<'a, N> {
    store: &'a ResourceStore,
    networks: &'a N,
    /// `<PROFILE>` as typed.
    given: &'a str,
}

/// What an edit of a profile decided.
enum Edit {
    /// Write the edited profile, then print this.
    Write(String),
    /// Write nothing; this is the command's outcome.
    Done(Outcome),
}

impl<N: NetworkResolver> Target<'_, N> {
    /// The stored profile and its revision: the profile named `given`, else the one named
    /// after the Docker network `given` names.
    async fn load(&self) -> Result<(Profile, i64), Outcome> {
        if let Some(found) = self.get(self.given).await? {
            return Ok(found);
        }
        if let Some(network) = self.networks.network_name(self.given).await {
            if network != self.given {
                if let Some(found) = self.get(&network).await? {
                    return Ok(found);
                }
            }
        }
        Err(Outcome::fail(format!("Profile {} not found.", self.given)))
    }

    async fn get(&self, name: &str) -> Result<Option<(Profile, i64)>, Outcome> {
        let stored = self
            .store
            .get(&profile_key(name))
            .await
            .map_err(store_failure)?;
        Ok(stored.and_then(|s| match s.resource {
            Resource::Profile(p) => Some((p, s.mod_revision)),
            _ => None,
        }))
    }

    /// Applies `edit` to the profile and writes it back, starting over if another writer
    /// changed the profile in between.
    async fn edit(&self, mut edit: impl FnMut(&mut Profile) -> Edit) -> Output {
        loop {
            let (mut profile, revision) = self.load().await?;
            let stdout = match edit(&mut profile) {
                Edit::Done(outcome) => return Ok(outcome),
                Edit::Write(stdout) => stdout,
            };
            match self.store.update(&profile.into(), revision).await {
                Ok(_) => return Ok(Outcome::ok(stdout)),
                Err(ResourceError::Conflict(_) | ResourceError::DoesNotExist(_)) => continue,
                Err(e) => return Err(store_failure(e)),
            }
        }
    }
}

/// `profile <PROFILE> tag show|add|remove`.
async fn tag<N: NetworkResolver>(target: &Target<'_, N>, op: TagOp) -> Output {
    let given = target.given;
    match op {
        TagOp::Show => {
            let (profile, _) = target.load().await?;
            let lines: String = profile
                .metadata
                .tags
                .iter()
                .map(|t| format!("{t}\n"))
                .collect();
            Ok(Outcome::ok(lines))
        }
        TagOp::Add(tag) => {
            let added = format!("Tag {tag} added to profile {given}\n");
            target
                .edit(|profile| {
                    let tags = &mut profile.metadata.tags;
                    if tags.contains(&tag) {
                        return Edit::Done(Outcome::ok(added.clone()));
                    }
                    tags.push(tag.clone());
                    Edit::Write(added.clone())
                })
                .await
        }
        TagOp::Remove(tag) => {
            target
                .edit(|profile| {
                    let tags = &mut profile.metadata.tags;
                    let Some(at) = tags.iter().position(|t| *t == tag) else {
                        return Edit::Done(Outcome::fail(format!(
                            "Tag {tag} is not on profile {given}"
                        )));
                    };
                    tags.remove(at);
                    Edit::Write(format!("Tag {tag} removed from profile {given}\n"))
                })
                .await
        }
    }
}

/// `profile <PROFILE> rule show|json|update|add|remove`.
async fn rule<N: NetworkResolver>(
    target: &Target<'_, N>,
    op: RuleOp,
    stdin: &mut dyn Read,
) -> Output {
    match op {
        RuleOp::Show => {
            let (profile, _) = target.load().await?;
            Ok(Outcome::ok(rule_listing(&profile)))
        }
        RuleOp::Json => {
            let (profile, _) = target.load().await?;
            Ok(Outcome::ok(rules_json(&profile)))
        }
        RuleOp::Update => update_rules(target, stdin).await,
        RuleOp::Add {
            direction,
            position,
            rule,
        } => {
            target
                .edit(|profile| add_rule(rules_mut(profile, direction), position, &rule))
                .await
        }
        RuleOp::Remove {
            direction,
            target: which,
        } => {
            target
                .edit(|profile| remove_rule(rules_mut(profile, direction), &which))
                .await
        }
    }
}

/// `rule update`: replaces both rule lists with the JSON document read from `stdin`.
async fn update_rules<N: NetworkResolver>(target: &Target<'_, N>, stdin: &mut dyn Read) -> Output {
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| Outcome::fail(format!("Failed to read the rules from stdin: {e}")))?;
    let rules = parse_rules_json(&text).map_err(Outcome::fail)?;
    let (profile, _) = target.load().await?;
    if let Some(id) = rules.id.as_deref() {
        if id != target.given && id != profile.metadata.name {
            return Err(Outcome::fail(format!(
                "Rules JSON \"id\"={id} doesn't match profile name {}.",
                target.given
            )));
        }
    }
    let updated = format!("Successfully updated rules on profile {}\n", target.given);
    target
        .edit(|profile| {
            profile.spec.ingress = rules.inbound_rules.iter().map(Rule::from).collect();
            profile.spec.egress = rules.outbound_rules.iter().map(Rule::from).collect();
            Edit::Write(updated.clone())
        })
        .await
}

/// `rule add`: inserts the rule at its 1-based position (default: append), unless the
/// position is out of range or an equal rule is already in the list. Silent on success.
fn add_rule(rules: &mut Vec<Rule>, position: Option<i64>, rule: &Rule) -> Edit {
    let position = position.unwrap_or(rules.len() as i64 + 1);
    let Some(at) = index(position, rules.len() + 1) else {
        return Edit::Done(Outcome::fail(format!(
            "Position {position} is out-of-range."
        )));
    };
    if rules.iter().any(|r| same_rule(r, rule)) {
        return Edit::Done(Outcome::ok("Rule already present, skipping.\n"));
    }
    rules.insert(at, rule.clone());
    Edit::Write(String::new())
}

/// `rule remove`: removes the rule at a 1-based position, or the first rule equal to the
/// one given. Silent on success.
fn remove_rule(rules: &mut Vec<Rule>, which: &RemoveTarget) -> Edit {
    let at = match which {
        RemoveTarget::Position(position) => index(*position, rules.len())
            .ok_or_else(|| Outcome::fail("Rule position out-of-range.")),
        RemoveTarget::Rule(rule) => rules
            .iter()
            .position(|r| same_rule(r, rule))
            .ok_or_else(|| Outcome::fail("Rule not found.")),
    };
    match at {
        Ok(at) => {
            rules.remove(at);
            Edit::Write(String::new())
        }
        Err(refusal) => Edit::Done(refusal),
    }
}

/// The 0-based index of 1-based `position` among `len` slots.
fn index(position: i64, len: usize) -> Option<usize> {
    let at = usize::try_from(position).ok()?.checked_sub(1)?;
    (at < len).then_some(at)
}

fn rules_mut(profile: &mut Profile, direction: Direction) -> &mut Vec<Rule> {
    match direction {
        Direction::Inbound => &mut profile.spec.ingress,
        Direction::Outbound => &mut profile.spec.egress,
    }
}

/// `rule show`: `Inbound rules:` and `Outbound rules:`, each rule as ` %3d <text>`.
pub fn rule_listing(profile: &Profile) -> String {
    let mut out = String::new();
    for (heading, rules) in [
        ("Inbound rules:", &profile.spec.ingress),
        ("Outbound rules:", &profile.spec.egress),
    ] {
        out.push_str(heading);
        out.push('\n');
        for (i, rule) in rules.iter().enumerate() {
            out.push_str(&format!(" {:>3} {}\n", i + 1, describe(rule)));
        }
    }
    out
}

/// The document of `rule json` and `rule update`: the profile's rules in datastore form.
/// `update` also accepts calicoctl 0.x's `id` (the profile name).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesJson {
    #[serde(default, skip_serializing)]
    id: Option<String>,
    inbound_rules: Vec<BackendRule>,
    outbound_rules: Vec<BackendRule>,
}

/// `rule json`: the rules as indented JSON, then an empty line.
fn rules_json(profile: &Profile) -> String {
    let doc = RulesJson {
        id: None,
        inbound_rules: profile.spec.ingress.iter().map(BackendRule::from).collect(),
        outbound_rules: profile.spec.egress.iter().map(BackendRule::from).collect(),
    };
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push_str("\n\n");
    out
}

/// Reads `rule update` input, refusing rule keys the datastore form does not have (which
/// would otherwise be dropped, widening the rule).
fn parse_rules_json(text: &str) -> Result<RulesJson, String> {
    let invalid = |e: serde_json::Error| format!("Invalid rules JSON: {e}");
    let doc: RulesJson = serde_json::from_str(text).map_err(invalid)?;
    let raw: serde_json::Value = serde_json::from_str(text).map_err(invalid)?;
    for (list, rules) in [
        ("inbound_rules", &doc.inbound_rules),
        ("outbound_rules", &doc.outbound_rules),
    ] {
        let given = raw[list].as_array().into_iter().flatten();
        for (rule, given) in rules.iter().zip(given) {
            let known: BTreeSet<String> = match serde_json::to_value(rule) {
                Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
                _ => BTreeSet::new(),
            };
            let unknown = given
                .as_object()
                .into_iter()
                .flatten()
                .find(|(key, value)| !known.contains(*key) && !is_empty(value));
            if let Some((key, _)) = unknown {
                return Err(format!("Key {key} is not allowed on Rule."));
            }
        }
    }
    Ok(doc)
}

/// Values a rule key may have and still be left out of the datastore form.
fn is_empty(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::String(s) => s.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use calico_store::SqliteStore;

    use super::*;

    /// Docker networks by ID prefix or name.
    struct FakeNetworks(BTreeMap<&'static str, &'static str>);

    impl NetworkResolver for FakeNetworks {
        async fn network_name(&self, id_or_name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(id, name)| id.starts_with(id_or_name) || **name == id_or_name)
                .map(|(_, name)| name.to_string())
        }
    }

    struct Fixture {
        store: ResourceStore,
        networks: FakeNetworks,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let ds = SqliteStore::open(dir.path().join("calico.db")).unwrap();
            Fixture {
                store: ResourceStore::new(Arc::new(ds)),
                networks: FakeNetworks(BTreeMap::from([("3f2a9c0d", "databases")])),
                _dir: dir,
            }
        }

        async fn run(&self, line: &str, stdin: &str) -> Outcome {
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            let command = profile::parse(&words).unwrap().command;
            execute(&self.store, &self.networks, command, &mut stdin.as_bytes()).await
        }
    }

    #[tokio::test]
    async fn network_ids_and_prefixes_name_the_network_profile() {
        let f = Fixture::new();
        assert!(f.run("add databases", "").await.success);
        let listing =
            "Inbound rules:\n   1 allow from tag databases\nOutbound rules:\n   1 allow\n";
        for given in ["databases", "3f2a9c0d", "3f2a"] {
            assert_eq!(
                f.run(&format!("{given} rule show"), "").await,
                Outcome::ok(listing)
            );
        }
        assert_eq!(
            f.run("3f2a tag add web", "").await,
            Outcome::ok("Tag web added to profile 3f2a\n")
        );
        assert_eq!(
            f.run("databases tag show", "").await,
            Outcome::ok("databases\nweb\n")
        );
        assert_eq!(
            f.run("ffff rule show", "").await,
            Outcome::fail("Profile ffff not found.")
        );
    }

    #[tokio::test]
    async fn a_network_without_a_profile_is_not_found() {
        let f = Fixture::new();
        assert_eq!(
            f.run("3f2a rule json", "").await,
            Outcome::fail("Profile 3f2a not found.")
        );
    }

    #[tokio::test]
    async fn rule_update_accepts_the_profile_name_or_the_given_name_as_id() {
        let f = Fixture::new();
        f.run("add databases", "").await;
        let doc = |id: &str| {
            format!(
                r#"{{"id": "{id}", "inbound_rules": [], "outbound_rules": [{{"action": "deny"}}]}}"#
            )
        };
        for id in ["3f2a", "databases"] {
            assert_eq!(
                f.run("3f2a rule update", &doc(id)).await,
                Outcome::ok("Successfully updated rules on profile 3f2a\n")
            );
        }
        assert_eq!(
            f.run("3f2a rule update", &doc("other")).await,
            Outcome::fail("Rules JSON \"id\"=other doesn't match profile name 3f2a.")
        );
        assert_eq!(
            f.run("databases rule show", "").await.stdout,
            "Inbound rules:\nOutbound rules:\n   1 deny\n"
        );
    }

    #[test]
    fn listing_right_aligns_indexes_in_three_columns() {
        let mut profile = default_profile("p");
        profile.spec.egress = vec![profile.spec.egress[0].clone(); 10];
        let listing = rule_listing(&profile);
        assert!(listing.contains("\n   9 allow\n  10 allow\n"), "{listing}");
    }

    #[test]
    fn rules_json_refuses_unknown_rule_keys_but_not_empty_ones() {
        let doc = |rule: &str| format!(r#"{{"inbound_rules": [{rule}], "outbound_rules": []}}"#);
        assert_eq!(
            parse_rules_json(&doc(r#"{"action": "allow", "dst_port": [80]}"#)).unwrap_err(),
            "Key dst_port is not allowed on Rule."
        );
        let ok = parse_rules_json(&doc(r#"{"action": "", "src_ports": [], "src_tag": null}"#));
        assert_eq!(ok.unwrap().inbound_rules, [BackendRule::default()]);
        assert!(parse_rules_json(r#"{"inbound_rules": []}"#)
            .unwrap_err()
            .starts_with("Invalid rules JSON: missing field `outbound_rules`"));
        assert!(
            parse_rules_json(r#"{"inbound_rules": [], "outbound_rules": [], "x": 1}"#)
                .unwrap_err()
                .starts_with("Invalid rules JSON: unknown field `x`")
        );
    }

    #[test]
    fn index_is_one_based_and_bounded() {
        assert_eq!(index(1, 1), Some(0));
        assert_eq!(index(2, 2), Some(1));
        assert_eq!(index(3, 2), None);
        assert_eq!(index(0, 2), None);
        assert_eq!(index(-1, 2), None);
    }
}
