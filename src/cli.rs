//! Command line: `serve` (the default), `bootstrap`, `backup`, `rotate-key` and `webhook send`.

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

// Parsed once at start: the size of the `Serve` variant (the whole configuration) costs nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Copy a SQLite database while the server runs (the copy is integrity-checked)
    Backup {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Where to write the copy (must not exist)
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Re-encrypt numbers' access tokens with a new key (stop the servers first)
    RotateKey {
        #[command(flatten)]
        db: DatabaseArgs,
        /// The key the tokens are encrypted with now (none: they are plaintext)
        #[arg(long = "secret-key", env = "SWITCHBOARD_SECRET_KEY", hide_env_values = true)]
        secret_key: Option<String>,
        /// The new key: 32 bytes in base64 (`openssl rand -base64 32`)
        #[arg(long = "new-key", env = "SWITCHBOARD_NEW_SECRET_KEY", hide_env_values = true)]
        new_key: String,
    },
    /// Webhook tools (try the inbox without Meta)
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
}

#[derive(Subcommand, Debug)]
enum WebhookCommand {
    /// POST a payload file to a running server, signed like Meta signs it
    Send {
        /// The JSON payload file (sent byte for byte)
        file: std::path::PathBuf,
        /// Webhook URL of the server
        #[arg(long, default_value = "http://127.0.0.1:8080/webhooks/whatsapp")]
        url: String,
        /// The app secret the server has in WHATSAPP_APP_SECRET
        #[arg(long, env = "WHATSAPP_APP_SECRET", hide_env_values = true)]
        secret: String,
    },
}

async fn send_webhook(file: &std::path::Path, url: &str, secret: &str) -> anyhow::Result<()> {
    let body = std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let signature = crate::webhook::signature::sign(secret.as_bytes(), &body);
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    println!("{status}");
    if !status.is_success() {
        anyhow::bail!("the server answered {status}: {}", resp.text().await.unwrap_or_default());
    }
    Ok(())
}

async fn rotate_key(db: &DatabaseArgs, old: Option<&str>, new: &str) -> anyhow::Result<()> {
    let old = crate::secrets::Secrets::from_base64(old)?;
    let new = crate::secrets::Secrets::from_base64(Some(new)).map_err(|e| anyhow::anyhow!("--new-key: {e}"))?;
    let database = crate::db::Db::connect(&db.database_url).await?;
    database.migrate().await?;
    let n = crate::secrets::rotate(&database, &old, &new).await?;
    database.close().await;
    println!("{n} access token(s) re-encrypted: start the servers with the new SWITCHBOARD_SECRET_KEY");
    Ok(())
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
            Some(Command::Backup { db, out }) => {
                crate::backup::run(&db.database_url, &out).await?;
                println!("backup written to {} (integrity check: ok)", out.display());
                Ok(())
            }
            Some(Command::RotateKey { db, secret_key, new_key }) => {
                rotate_key(&db, secret_key.as_deref(), &new_key).await
            }
            Some(Command::Webhook { command: WebhookCommand::Send { file, url, secret } }) => {
                send_webhook(&file, &url, &secret).await
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
