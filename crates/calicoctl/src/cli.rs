//! Command-line grammar (clap): calicoctl v1's commands, flags and short forms.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// calicoctl: manage Calico resources, policy and nodes.
#[derive(Debug, Parser)]
#[command(name = "calicoctl", version, disable_version_flag = true)]
pub struct Cli {
    /// Log level on stderr (panic, fatal, error, warn, info, debug).
    #[arg(
        short = 'l',
        long = "log-level",
        global = true,
        default_value = "panic"
    )]
    pub log_level: String,

    /// Datastore config file (default /etc/calico/calicoctl.cfg, else the environment).
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create resources from a file or stdin; fails if one already exists.
    Create(CreateArgs),
    /// Create or replace resources from a file or stdin.
    Apply(FileArgs),
    /// Replace existing resources from a file or stdin; fails if one is missing.
    Replace(FileArgs),
    /// Delete resources named on the command line or in a file.
    Delete(DeleteArgs),
    /// Show resources.
    Get(GetArgs),
    /// Print the client and cluster versions.
    Version,
    /// Check selectors and evaluate them against labels.
    #[command(subcommand)]
    Selector(SelectorCommand),
    /// Calico 0.x profile commands: show, add, remove, tags and rules (see `profile --help`).
    #[command(disable_help_flag = true)]
    Profile(LegacyArgs),
    /// Calico 0.x IP pool commands: add, remove, show (see `pool --help`).
    #[command(disable_help_flag = true)]
    Pool(LegacyArgs),
    /// Run calico-node on this host and report its status.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Inspect and release single IPAM addresses.
    #[command(subcommand)]
    Ipam(IpamCommand),
    /// Manage cluster-wide BGP settings: nodeToNodeMesh (on|off), asNumber.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set a setting: `config set nodeToNodeMesh off`, `config set asNumber 64513`.
    Set {
        /// nodeToNodeMesh or asNumber.
        name: String,
        /// on|off for nodeToNodeMesh; 0-4294967295 (or dotted, 1.10) for asNumber.
        value: String,
        /// A node name (refused: these settings are global).
        #[arg(short = 'n', long)]
        node: Option<String>,
    },
    /// Return a setting to its default (nodeToNodeMesh on, asNumber 64512).
    Unset {
        /// nodeToNodeMesh or asNumber.
        name: String,
        /// A node name (refused: these settings are global).
        #[arg(short = 'n', long)]
        node: Option<String>,
    },
    /// Print the value in effect.
    Get {
        /// nodeToNodeMesh or asNumber.
        name: String,
        /// A node name (refused: these settings are global).
        #[arg(short = 'n', long)]
        node: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Start calico-node on this host (in the background unless --init-system).
    Run(crate::commands::node::RunArgs),
    /// Tell whether calico-node runs on this host, and show BIRD's BGP sessions.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum IpamCommand {
    /// Show whether an address is assigned, and to whom.
    Show {
        /// The address.
        #[arg(long)]
        ip: String,
    },
    /// Release an address.
    Release {
        /// The address.
        #[arg(long)]
        ip: String,
    },
}

/// The words after a Calico 0.x command, which calicoctl parses with that CLI's own grammar.
#[derive(Debug, Args)]
pub struct LegacyArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub words: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// File with the resources (YAML or JSON); `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILENAME")]
    pub filename: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub file: FileArgs,
    /// Treat resources that already exist as created.
    #[arg(long = "skip-exists")]
    pub skip_exists: bool,
}

/// The identifiers that narrow a resource named on the command line.
#[derive(Debug, Args, Default)]
pub struct Identifiers {
    /// BGP peer scope (global or node).
    #[arg(long)]
    pub scope: Option<String>,
    /// Node name, for node-scoped resources.
    #[arg(short = 'n', long)]
    pub node: Option<String>,
    /// Orchestrator, for workload endpoints.
    #[arg(long)]
    pub orchestrator: Option<String>,
    /// Workload, for workload endpoints.
    #[arg(long)]
    pub workload: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Resource kind (e.g. profile, policy, ippool, workloadendpoint).
    #[arg(required_unless_present = "filename")]
    pub kind: Option<String>,
    /// Resource name (or CIDR, or peer IP).
    pub name: Option<String>,
    /// File with the resources to delete; `-` reads stdin.
    #[arg(short = 'f', long = "filename", conflicts_with = "kind")]
    pub filename: Option<String>,
    /// Treat resources that do not exist as deleted.
    #[arg(short = 's', long = "skip-not-exists")]
    pub skip_not_exists: bool,
    #[command(flatten)]
    pub ids: Identifiers,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Resource kind (e.g. profiles, policy, ippools, nodes).
    #[arg(required_unless_present = "filename")]
    pub kind: Option<String>,
    /// Only the resource with this name (or CIDR, or peer IP).
    pub name: Option<String>,
    /// File naming the resources to show; `-` reads stdin.
    #[arg(short = 'f', long = "filename", conflicts_with = "kind")]
    pub filename: Option<String>,
    /// Output format: ps, wide, yaml, json or custom-columns=A,B,...
    #[arg(short = 'o', long = "output", default_value = "ps")]
    pub output: String,
    #[command(flatten)]
    pub ids: Identifiers,
}

#[derive(Debug, Subcommand)]
pub enum SelectorCommand {
    /// Validate a selector; print its canonical form and ID.
    Check {
        /// The selector expression.
        expr: String,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = SelectorOutput::Text)]
        output: SelectorOutput,
    },
    /// Print whether a selector matches a set of labels.
    Match {
        /// The selector expression.
        expr: String,
        /// Labels as a JSON object of strings, e.g. '{"role": "db"}'.
        #[arg(long)]
        labels: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SelectorOutput {
    Text,
    Json,
}
