//! Email: a durable queue of mails (`mail_queue`), written in the transaction of whatever
//! caused the mail, and sent through SMTP by the mail sender ([`worker`]) with retries and
//! backoff. Every mail has a plain-text and an HTML body. The SMTP settings are in [`smtp`].

pub mod smtp;
pub mod worker;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Tx;
use crate::error::Result;
use crate::on_tx;

crate::string_enum! {
    /// Where a queued mail stands.
    pub enum MailState {
        Pending = "pending",
        Sent = "sent",
        Failed = "failed",
    }
}

/// A mail to queue: one recipient, a subject, and the same content as text and as HTML.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The longest subject kept (longer ones are cut): mail clients show far less anyway.
const MAX_SUBJECT: usize = 200;

const INSERT: &str = "INSERT INTO mail_queue (id, workspace_id, to_addr, subject, body_text, body_html, state, \
    attempts, due_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)";

/// Queues `mail` in `tx`: it goes out once the transaction commits (the sender polls; wake it
/// for speed). Returns the queued mail's id.
pub async fn enqueue(tx: &mut Tx, workspace_id: Option<Uuid>, mail: &Mail, now: DateTime<Utc>) -> Result<Uuid> {
    let id = Uuid::now_v7();
    let subject: String = mail.subject.chars().filter(|c| !c.is_control()).take(MAX_SUBJECT).collect();
    on_tx!(tx, |c| sqlx::query(INSERT)
        .bind(id)
        .bind(workspace_id)
        .bind(&mail.to)
        .bind(&subject)
        .bind(&mail.text)
        .bind(&mail.html)
        .bind(MailState::Pending)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(id)
}

/// A workspace's name, for the lines of a mail.
pub async fn workspace_name(tx: &mut Tx, workspace_id: Uuid) -> Result<String> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar("SELECT name FROM workspaces WHERE id = $1")
        .bind(workspace_id)
        .fetch_one(c)
        .await)?)
}

/// `text` made safe inside HTML.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML around a mail's paragraphs (already escaped).
fn html_page(paragraphs: &[String]) -> String {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!("<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif; line-height: 1.5\">\n{body}</body></html>\n")
}

/// Where a link in a mail points: the public URL joined with `fragment_path` (the UI's routes
/// are fragments, e.g. `#/accept/TOKEN`).
pub fn public_link(public_url: &str, fragment_path: &str) -> String {
    format!("{}/{fragment_path}", public_url.trim_end_matches('/'))
}

/// An invitation to join a workspace, with its accept link.
pub struct Invitation<'a> {
    pub to: &'a str,
    pub workspace: &'a str,
    pub inviter: &'a str,
    pub accept_url: &'a str,
    pub valid_days: i64,
}

impl Invitation<'_> {
    pub fn mail(&self) -> Mail {
        let intro = format!("{} invited you to join {} on switchboard.", self.inviter, self.workspace);
        let ask = "Accept the invitation and choose your password:";
        let validity = format!("The link works for {} days.", self.valid_days);
        let text = format!("{intro}\n\n{ask}\n{}\n\n{validity}\n", self.accept_url);
        let url = escape_html(self.accept_url);
        let html = html_page(&[
            escape_html(&intro),
            format!("{}<br><a href=\"{url}\">{url}</a>", escape_html(ask)),
            escape_html(&validity),
        ]);
        Mail { to: self.to.to_owned(), subject: format!("You're invited to {}", self.workspace), text, html }
    }
}

/// A lead forwarded to someone by a distribution rule: its details and who sent it.
pub struct ForwardedLead<'a> {
    pub to: &'a str,
    pub sender: &'a str,
    pub workspace: &'a str,
    /// (label, value) lines: name, phone, source, custom fields.
    pub details: &'a [(String, String)],
}

impl ForwardedLead<'_> {
    pub fn attribution(&self) -> String {
        format!("This lead was sent to you by {} at {}.", self.sender, self.workspace)
    }

    pub fn mail(&self) -> Mail {
        let name = self.details.iter().find(|(k, _)| k == "Name").map(|(_, v)| v.as_str()).unwrap_or("a lead");
        let lines: String = self.details.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        let text = format!("A new lead:\n\n{lines}\n{}\n", self.attribution());
        let rows: Vec<String> =
            self.details.iter().map(|(k, v)| format!("<b>{}</b>: {}", escape_html(k), escape_html(v))).collect();
        let html = html_page(&["A new lead:".to_owned(), rows.join("<br>\n"), escape_html(&self.attribution())]);
        Mail { to: self.to.to_owned(), subject: format!("New lead: {name}"), text, html }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_text_is_plain() {
        let m = Invitation {
            to: "bo@example.com",
            workspace: "Tom & <Jerry>",
            inviter: "Ada",
            accept_url: "https://x.example/#/accept/sb_1",
            valid_days: 7,
        }
        .mail();
        assert!(m.text.contains("Ada invited you to join Tom & <Jerry> on switchboard."));
        assert!(m.text.contains("https://x.example/#/accept/sb_1"));
        assert!(m.html.contains("Tom &amp; &lt;Jerry&gt;"));
        assert!(!m.html.contains("<Jerry>"));
        assert_eq!(public_link("https://x.example/", "#/accept/t"), "https://x.example/#/accept/t");
    }
}
