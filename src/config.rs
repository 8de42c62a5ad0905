//! Server configuration: the contract's environment variables, each with a matching flag.

use clap::Args;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://switchboard.db";
/// Where media bytes are kept unless `SWITCHBOARD_DATA_DIR` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "./switchboard-data";

#[derive(Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://…`
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

#[derive(Args, Clone, Debug)]
pub struct Config {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Address to listen on; port 0 picks a free port (the bound address is logged)
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Meta app secret(s) for X-Hub-Signature-256; several may be given comma-separated (rotation)
    #[arg(long = "app-secret", env = "WHATSAPP_APP_SECRET", hide_env_values = true)]
    pub app_secret: Option<String>,
    /// Token Meta echoes in the webhook verification handshake
    #[arg(long, env = "WHATSAPP_VERIFY_TOKEN", hide_env_values = true)]
    pub verify_token: Option<String>,
    /// Graph API base URL
    #[arg(long, env = "WHATSAPP_GRAPH_URL", default_value = "https://graph.facebook.com")]
    pub graph_url: String,
    /// Graph API version
    #[arg(long, env = "WHATSAPP_GRAPH_VERSION", default_value = "v23.0")]
    pub graph_version: String,
    /// Overrides every workspace's WhatsApp session gap (seconds)
    #[arg(long, env = "SWITCHBOARD_SESSION_GAP_SECS")]
    pub session_gap_secs: Option<i64>,
    /// Days a processed webhook journal entry is kept
    #[arg(long, env = "SWITCHBOARD_JOURNAL_RETENTION_DAYS", default_value_t = 7)]
    pub journal_retention_days: i64,
    /// Address of the Prometheus `/metrics` listener (unset: no metrics); never the public one
    #[arg(long, env = "SWITCHBOARD_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Reverse proxies whose X-Forwarded-For/-Proto/-Host are believed (comma-separated CIDRs)
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// 32 bytes in base64: encrypts numbers' access tokens at rest
    #[arg(long, env = "SWITCHBOARD_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// SMTP server for outgoing mail: `smtp://user:pass@host:port` (add `?tls=starttls` to
    /// upgrade the connection), or `smtps://…` for implicit TLS; unset: no mail is sent
    #[arg(long, env = "SWITCHBOARD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of outgoing mail, e.g. `switchboard@example.com` or `Acme Inbox <inbox@example.com>`
    #[arg(long, env = "SWITCHBOARD_MAIL_FROM", default_value = "switchboard@localhost")]
    pub mail_from: String,
    /// The server's address as people reach it, for links in mails (e.g. `https://inbox.example.com`)
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL", default_value = "http://localhost:8080")]
    pub public_url: String,
    /// Directory for media bytes (uploads and fetched inbound media); created if missing
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: std::path::PathBuf,
}

impl Config {
    /// Defaults with the given database, listening on an ephemeral loopback port (tests, tools).
    pub fn for_database(database_url: &str) -> Config {
        Config {
            db: DatabaseArgs { database_url: database_url.to_owned() },
            listen: "127.0.0.1:0".to_owned(),
            app_secret: None,
            verify_token: None,
            graph_url: "https://graph.facebook.com".to_owned(),
            graph_version: "v23.0".to_owned(),
            session_gap_secs: None,
            journal_retention_days: 7,
            metrics_listen: None,
            trusted_proxies: None,
            secret_key: None,
            smtp_url: None,
            mail_from: "switchboard@localhost".to_owned(),
            public_url: "http://localhost:8080".to_owned(),
            data_dir: DEFAULT_DATA_DIR.into(),
        }
    }

    /// The configured app secrets (empty: webhooks are refused with 503).
    pub fn app_secrets(&self) -> Vec<Vec<u8>> {
        self.app_secret
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect()
    }
}
