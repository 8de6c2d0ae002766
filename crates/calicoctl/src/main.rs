//! calicoctl: Calico's command-line tool for Docker deployments.

mod cli;
mod commands;
mod legacy;
mod networks;
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, ConfigCommand, IpamCommand, NodeCommand, SelectorCommand, SelectorOutput};
use commands::Outcome;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Failed to start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    outcome.emit()
}

async fn run(cli: Cli) -> Outcome {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Create(args) => {
            commands::resources::create(config, &args.file.filename, args.skip_exists).await
        }
        Command::Apply(args) => commands::resources::apply(config, &args.filename).await,
        Command::Replace(args) => commands::resources::replace(config, &args.filename).await,
        Command::Delete(args) => commands::resources::delete(config, args).await,
        Command::Get(args) => commands::resources::get(config, args).await,
        Command::Version => commands::version::run(config).await,
        Command::Selector(SelectorCommand::Check { expr, output }) => Outcome::from(
            commands::selector::check(&expr, output == SelectorOutput::Json),
        ),
        Command::Selector(SelectorCommand::Match { expr, labels }) => {
            Outcome::from(commands::selector::matches(&expr, &labels))
        }
        Command::Profile(args) => commands::profile::run(config, &args.words).await,
        Command::Pool(args) => commands::pool::run(config, &args.words).await,
        Command::Node(NodeCommand::Run(args)) => commands::node::run(config, &args),
        Command::Node(NodeCommand::Status) => commands::node::status().await,
        Command::Ipam(IpamCommand::Show { ip }) => commands::ipam::show(config, &ip).await,
        Command::Ipam(IpamCommand::Release { ip }) => commands::ipam::release(config, &ip).await,
        Command::Config(ConfigCommand::Set { name, value, node }) => {
            use commands::config::Action;
            commands::config::run(config, &name, Action::Set(value), node.as_deref()).await
        }
        Command::Config(ConfigCommand::Unset { name, node }) => {
            use commands::config::Action;
            commands::config::run(config, &name, Action::Unset, node.as_deref()).await
        }
        Command::Config(ConfigCommand::Get { name, node }) => {
            use commands::config::Action;
            commands::config::run(config, &name, Action::Get, node.as_deref()).await
        }
    }
}

/// Help and version go to stdout as usual; anything else is calicoctl's "Invalid option" line.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "Invalid option: 'calicoctl {}'. Use flag '--help' to read about a specific subcommand.",
        args.join(" ")
    );
    let _ = write!(stderr, "{}", e.render());
    ExitCode::FAILURE
}
