//! The SMTP side of mail: `SWITCHBOARD_SMTP_URL` parsed into settings, and one send.
//!
//! `smtp://user:pass@host:port` speaks plain SMTP (port 25 by default), `?tls=starttls`
//! upgrades it with STARTTLS (port 587 by default), and `smtps://` is TLS from the first byte
//! (port 465 by default). User and password are optional and percent-decoded.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Mail;

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    None,
    StartTls,
    Implicit,
}

/// The parsed `SWITCHBOARD_SMTP_URL` (the password is never printed).
#[derive(Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    user: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("a bad %-escape in the SMTP URL")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "a bad %-escape in the SMTP URL")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the SMTP URL's user or password is not UTF-8".to_owned())
}

impl Settings {
    /// Parses an SMTP URL; the error says what is wrong without repeating the URL (it may hold
    /// a password).
    pub fn parse(raw: &str) -> Result<Settings, String> {
        let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("SWITCHBOARD_SMTP_URL is not a URL: {e}"))?;
        let mut security = match url.scheme() {
            "smtp" => Security::None,
            "smtps" => Security::Implicit,
            other => return Err(format!("SWITCHBOARD_SMTP_URL must start with smtp:// or smtps://, not {other}://")),
        };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "starttls") if security == Security::None => security = Security::StartTls,
                ("tls", "starttls") => return Err("smtps:// is TLS already: drop ?tls=starttls".into()),
                ("tls", "none") if security == Security::None => {}
                ("tls", other) => return Err(format!("SWITCHBOARD_SMTP_URL: unknown tls={other} (use starttls)")),
                (other, _) => return Err(format!("SWITCHBOARD_SMTP_URL: unknown parameter {other}")),
            }
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("SWITCHBOARD_SMTP_URL has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = url.port().unwrap_or(match security {
            Security::None => 25,
            Security::StartTls => 587,
            Security::Implicit => 465,
        });
        let user = Some(percent_decode(url.username())?).filter(|u| !u.is_empty());
        let password = url.password().map(percent_decode).transpose()?;
        Ok(Settings { host, port, security, user, password })
    }
}

/// Why a send did not go through.
#[derive(Debug)]
pub struct SendError {
    /// Worth trying again later (connection refused, timeout, a 4xx answer).
    pub transient: bool,
    pub reason: String,
}

/// A sender over one SMTP server, from one address.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// A connection or an answer that takes longer than this fails the attempt.
const TIMEOUT: Duration = Duration::from_secs(30);

impl Smtp {
    pub fn new(settings: &Settings, from: &str) -> Result<Smtp, String> {
        let from: Mailbox =
            from.parse().map_err(|e| format!("SWITCHBOARD_MAIL_FROM is not a mail address ({from}): {e}"))?;
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned()).map_err(|e| format!("TLS settings for the SMTP server: {e}"))
        };
        let tls = match settings.security {
            Security::None => Tls::None,
            Security::StartTls => Tls::Required(tls(&settings.host)?),
            Security::Implicit => Tls::Wrapper(tls(&settings.host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
            .port(settings.port)
            .tls(tls)
            .timeout(Some(TIMEOUT));
        if let Some(user) = &settings.user {
            builder =
                builder.credentials(Credentials::new(user.clone(), settings.password.clone().unwrap_or_default()));
        }
        Ok(Smtp { transport: builder.build(), from })
    }

    /// Sends one mail (text and HTML as alternatives).
    pub async fn send(&self, mail: &Mail) -> Result<(), SendError> {
        let permanent = |reason: String| SendError { transient: false, reason };
        let to: Mailbox = mail.to.parse().map_err(|e| permanent(format!("bad recipient address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text.clone()))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(mail.html.clone())),
            )
            .map_err(|e| permanent(format!("the mail could not be built: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err(SendError { transient: !e.is_permanent(), reason: e.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = Settings::parse("smtp://bo%40x:p%3Ass@mail.example:2525").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.security), ("mail.example", 2525, Security::None));
        assert_eq!(s.user.as_deref(), Some("bo@x"));
        assert_eq!(s.password.as_deref(), Some("p:ss"));
        let s = Settings::parse("smtp://mail.example?tls=starttls").unwrap();
        assert_eq!((s.port, s.security, s.user.is_none()), (587, Security::StartTls, true));
        let s = Settings::parse("smtps://u:p@mail.example").unwrap();
        assert_eq!((s.port, s.security), (465, Security::Implicit));
        assert!(Settings::parse("http://mail.example").is_err());
        assert!(Settings::parse("smtp://mail.example?tls=maybe").is_err());
        let e = Settings::parse("smtp://u:secret@").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert!(!format!("{:?}", Settings::parse("smtp://u:secret@h").unwrap()).contains("secret"));
    }
}
