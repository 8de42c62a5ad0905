//! Command line: `serve` (the default) and `bootstrap`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, DatabaseArgs};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about = "Shared WhatsApp inbox server",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Config,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default)
    Serve(Config),
    /// Create the first workspace and its admin (idempotent)
    Bootstrap {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Workspace name
        #[arg(long)]
        workspace: String,
        /// Admin email
        #[arg(long)]
        email: String,
        /// Admin password (at least 8 characters)
        #[arg(long)]
        password: String,
        /// Admin display name (defaults to the part of the email before @)
        #[arg(long)]
        name: Option<String>,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None => crate::app::serve(cli.serve).await,
            Some(Command::Serve(config)) => crate::app::serve(config).await,
            Some(Command::Bootstrap { db, workspace, email, password, name }) => {
                let outcome =
                    crate::workspace::bootstrap_cli(&db.database_url, &workspace, &email, &password, name.as_deref())
                        .await?;
                println!("{outcome}");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
