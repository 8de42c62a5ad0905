//! CSV export and import of leads: `GET /leads/export`, `POST /leads/import`.
//!
//! **Columns.** `name,phone,source,group,assignee_email`, then one column per custom field key
//! (export: the union of the keys of the exported leads, sorted). A custom key that reads like
//! one of the five standard columns (any case) or starts with `custom.` is written as
//! `custom.<key>`; on import a `custom.` prefix is always taken off, so every key round-trips.
//! Standard column names are matched case-insensitively and may come in any order; only
//! `name` and `phone` are required. At most [`MAX_COLUMNS`] columns.
//!
//! **Cells.**
//! - `phone`: E.164 digits on export; on import anything `phone::normalize` accepts.
//! - `group`: the lead's group names, sorted, separated by `;` (a group whose name contains
//!   `;` can't be named in a file). Import resolves names exactly, else case-insensitively.
//! - `assignee_email`: the assignee's email; on import it must be a member of the workspace
//!   who is not deactivated (case-insensitive).
//! - custom fields: strings as they are, other JSON values as their JSON text; import stores
//!   every value as a string, and an empty cell means "no such key".
//! - Formula injection: a cell starting with `=`, `+`, `-`, `@`, tab or carriage return is
//!   exported with a leading `'` (so is a cell starting with `'` followed by one of those or
//!   another `'`). Import takes exactly that `'` off again, so export → import is exact, and a
//!   hand-written `'` before anything else is kept.
//!
//! **Import.** `Content-Type: text/csv` (charset, if given, UTF-8; else 415), at most
//! [`IMPORT_MAX_BYTES`] (else 413), UTF-8 with an optional BOM (else 400), header checked
//! (400). Each row is validated on its own; a bad row is reported as `{"line", "message"}`
//! and skipped, the others are written. `line` is the line of the file where the row starts
//! (the header is line 1; a quoted cell spanning lines moves later rows down, as in an
//! editor). At most [`MAX_ERRORS`] errors are listed; `error_count` has them all.
//! A row whose phone belongs to a lead updates it: the columns present in the header are
//! authoritative (an empty `source` clears it, an empty `group` takes the lead out of its
//! groups, an empty custom cell removes that key), except that an empty `assignee_email`
//! keeps the current assignee (a lead never goes back to unassigned); columns not in the
//! header are left alone. Rows repeating a phone apply in file order: the first creates (or
//! updates), later ones update. Import works on every lead of the workspace (it is an
//! integration permission, like auto-import), whether or not the importer can see it.
//! New leads get source `import` unless the row gives one, the same `lead.updated` event and
//! `lead_created` activity as other creations, written [`BATCH`] rows per transaction with
//! multi-row INSERTs (on PostgreSQL two transactions at once, see [`Writer`]). Each new row is
//! distributed (one decision per row, as for `POST /leads`; a row distributed without
//! `keep_copy` is not kept). Assignment rules then run for new leads without an assignee when
//! the workspace has assignment configured
//! (mode `round_robin` or any rule) — as for `POST /leads`, one decision per lead. In a
//! workspace left on `mode: "unassigned"` with no rules the engine can only choose nobody, so
//! it is not run: no per-lead decisions or pool alerts, and an export imported into a fresh
//! workspace keeps its unassigned leads unassigned.
//!
//! **Export.** Streamed: the custom keys are collected first (a keyset-paged scan of the
//! visible leads' custom fields), then the rows follow page by page ([`EXPORT_PAGE`] leads
//! per query), oldest first, never the whole table in memory. Only leads the caller can see
//! (the policy's lead predicate), created before the export began. No BOM.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::assignment::run;
use crate::clock::Clock;
use crate::db::{Db, Tx};
use crate::distribution::{self, Distributed, Origin};
use crate::error::{Error, Result};
use crate::events::{Hub, Work};
use crate::inbox::assignee::{self, Change, Holder};
use crate::inbox::leads::{self, COLS, Lead};
use crate::policy::{LEAD_VISIBLE, Viewer};
use crate::timeline::{self, AssignedData, NewActivity};
use crate::views::team::{Availability, MemberStatus};
use crate::views::timeline::ActivityKind;
use crate::{bind_viewer, on_db, on_tx};

/// Largest import body.
pub const IMPORT_MAX_BYTES: usize = 20 << 20;
/// Rows written per import transaction.
pub const BATCH: usize = 500;
/// Leads read per export query.
pub const EXPORT_PAGE: i64 = 500;
/// Errors listed in an import answer (`error_count` counts all).
pub const MAX_ERRORS: usize = 1000;
/// Columns in an import header or an export.
pub const MAX_COLUMNS: usize = 500;

const STANDARD: [&str; 5] = ["name", "phone", "source", "group", "assignee_email"];
const GROUP_SEP: char = ';';
const DEFAULT_SOURCE: &str = "import";
/// First characters a spreadsheet may read as a formula.
const FORMULA: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

// ---------------------------------------------------------------------------------------------
// Cells and columns.

/// Export form of a cell: a leading `'` when a spreadsheet could take it for a formula.
fn protect(s: &str) -> Cow<'_, str> {
    let mut chars = s.chars();
    let risky = match chars.next() {
        Some(c) if FORMULA.contains(&c) => true,
        Some('\'') => chars.next().is_some_and(|c| c == '\'' || FORMULA.contains(&c)),
        _ => false,
    };
    if risky { Cow::Owned(format!("'{s}")) } else { Cow::Borrowed(s) }
}

/// Inverse of [`protect`].
fn unprotect(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if rest.starts_with(|c: char| c == '\'' || FORMULA.contains(&c)) => rest,
        _ => s,
    }
}

const CUSTOM_PREFIX: &str = "custom.";

fn has_custom_prefix(s: &str) -> bool {
    s.get(..CUSTOM_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(CUSTOM_PREFIX))
}

/// The export column of a custom field key.
fn custom_column(key: &str) -> Cow<'_, str> {
    if STANDARD.iter().any(|s| s.eq_ignore_ascii_case(key)) || has_custom_prefix(key) {
        Cow::Owned(format!("{CUSTOM_PREFIX}{key}"))
    } else {
        Cow::Borrowed(key)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Col {
    Name,
    Phone,
    Source,
    Group,
    Assignee,
    Custom(usize),
}

/// An import file's header.
#[derive(Debug)]
struct Header {
    cols: Vec<Col>,
    custom_keys: Vec<String>,
}

fn header_error(message: impl Into<String>) -> Error {
    Error::bad_request("invalid_csv_header", message)
}

fn parse_header(rec: &csv::StringRecord) -> Result<Header> {
    if rec.len() > MAX_COLUMNS {
        return Err(header_error(format!("at most {MAX_COLUMNS} columns")));
    }
    let mut cols = Vec::with_capacity(rec.len());
    let mut custom_keys: Vec<String> = Vec::new();
    for (i, raw) in rec.iter().enumerate() {
        let h = unprotect(raw.trim());
        if h.is_empty() {
            return Err(header_error(format!("column {} has no name", i + 1)));
        }
        let col = match STANDARD.iter().position(|s| s.eq_ignore_ascii_case(h)) {
            Some(0) => Col::Name,
            Some(1) => Col::Phone,
            Some(2) => Col::Source,
            Some(3) => Col::Group,
            Some(_) => Col::Assignee,
            None => {
                let key = if has_custom_prefix(h) { &h[CUSTOM_PREFIX.len()..] } else { h };
                if key.is_empty() || key.len() > 100 {
                    return Err(header_error(format!("column {} needs a custom field name of 1 to 100 bytes", i + 1)));
                }
                if custom_keys.iter().any(|k| k == key) {
                    return Err(header_error(format!("column \"{h}\" appears twice")));
                }
                custom_keys.push(key.to_owned());
                Col::Custom(custom_keys.len() - 1)
            }
        };
        if cols.contains(&col) {
            return Err(header_error(format!("column \"{h}\" appears twice")));
        }
        cols.push(col);
    }
    if !cols.contains(&Col::Name) || !cols.contains(&Col::Phone) {
        return Err(Error::bad_request("missing_column", "the header row needs a name and a phone column"));
    }
    Ok(Header { cols, custom_keys })
}

// ---------------------------------------------------------------------------------------------
// Import.

/// Groups and members of the workspace, loaded once per import.
struct Directory {
    groups_exact: HashMap<String, Uuid>,
    groups_folded: HashMap<String, Vec<Uuid>>,
    /// email (lower case) → (id, not deactivated)
    members: HashMap<String, (Uuid, bool)>,
}

impl Directory {
    async fn load(db: &Db, ws: Uuid) -> Result<Directory> {
        let groups: Vec<(Uuid, String)> =
            on_db!(db, |p| sqlx::query_as("SELECT id, name FROM crm_groups WHERE workspace_id = $1")
                .bind(ws)
                .fetch_all(p)
                .await)?;
        let members: Vec<(Uuid, String, MemberStatus)> =
            on_db!(db, |p| sqlx::query_as("SELECT id, email, status FROM users WHERE workspace_id = $1")
                .bind(ws)
                .fetch_all(p)
                .await)?;
        let mut d = Directory { groups_exact: HashMap::new(), groups_folded: HashMap::new(), members: HashMap::new() };
        for (id, name) in groups {
            d.groups_folded.entry(name.to_lowercase()).or_default().push(id);
            d.groups_exact.insert(name, id);
        }
        for (id, email, status) in members {
            d.members.insert(email.to_lowercase(), (id, status != MemberStatus::Deactivated));
        }
        Ok(d)
    }

    fn group(&self, name: &str) -> std::result::Result<Uuid, String> {
        if let Some(id) = self.groups_exact.get(name) {
            return Ok(*id);
        }
        match self.groups_folded.get(&name.to_lowercase()).map(Vec::as_slice) {
            Some([id]) => Ok(*id),
            Some(_) => Err(format!("group name \"{}\" is ambiguous (differs only in case)", clip(name))),
            None => Err(format!("unknown group \"{}\"", clip(name))),
        }
    }
}

/// A value quoted in an error message, shortened.
fn clip(s: &str) -> Cow<'_, str> {
    if s.chars().count() <= 60 {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("{}…", s.chars().take(60).collect::<String>()))
    }
}

/// A validated row.
#[derive(Clone)]
struct Row {
    line: u64,
    name: String,
    phone: String,
    /// `None`: no source column.
    source: Option<Option<String>>,
    /// `None`: no group column.
    groups: Option<Vec<Uuid>>,
    assignee: Option<Uuid>,
    /// Aligned with `Header::custom_keys`; `None` = empty cell.
    custom: Vec<Option<String>>,
}

fn parse_row(h: &Header, d: &Directory, rec: &csv::StringRecord, line: u64) -> std::result::Result<Row, String> {
    if rec.len() != h.cols.len() {
        return Err(format!("expected {} fields, found {}", h.cols.len(), rec.len()));
    }
    let mut problems: Vec<String> = Vec::new();
    let mut row = Row {
        line,
        name: String::new(),
        phone: String::new(),
        source: None,
        groups: None,
        assignee: None,
        custom: vec![None; h.custom_keys.len()],
    };
    for (col, raw) in h.cols.iter().zip(rec.iter()) {
        let cell = unprotect(raw);
        match col {
            Col::Name => match crate::workspace::validate_name(cell, "name") {
                Ok(n) => row.name = n,
                Err(_) if cell.trim().is_empty() => problems.push("name is required".to_owned()),
                Err(e) => problems.push(e.to_string()),
            },
            Col::Phone => match crate::phone::normalize(cell) {
                Some(p) => row.phone = p,
                None if cell.trim().is_empty() => problems.push("phone is required".to_owned()),
                None => problems.push(format!("invalid phone \"{}\"", clip(cell))),
            },
            Col::Source => match leads::validate_source(Some(cell.to_owned())) {
                Ok(s) => row.source = Some(s),
                Err(e) => problems.push(e.to_string()),
            },
            Col::Group => {
                let mut ids = Vec::new();
                for name in cell.split(GROUP_SEP).map(str::trim).filter(|n| !n.is_empty()) {
                    match d.group(name) {
                        Ok(id) => ids.push(id),
                        Err(e) => problems.push(e),
                    }
                }
                ids.sort();
                ids.dedup();
                row.groups = Some(ids);
            }
            Col::Assignee => {
                let email = cell.trim();
                if !email.is_empty() {
                    match d.members.get(&email.to_lowercase()) {
                        Some((id, true)) => row.assignee = Some(*id),
                        Some((_, false)) => problems.push(format!("assignee \"{}\" is deactivated", clip(email))),
                        None => problems.push(format!("unknown assignee email \"{}\"", clip(email))),
                    }
                }
            }
            Col::Custom(i) => row.custom[*i] = (!cell.is_empty()).then(|| cell.to_owned()),
        }
    }
    if problems.is_empty() { Ok(row) } else { Err(problems.join("; ")) }
}

#[derive(Serialize, utoipa::ToSchema)]
struct LineError {
    line: u64,
    message: String,
}

/// The answer of an import.
#[derive(Default, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    created: u64,
    updated: u64,
    errors: Vec<LineError>,
    error_count: u64,
}

impl Outcome {
    fn error(&mut self, line: u64, message: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(LineError { line, message });
        }
    }

    /// Adds a batch's outcome.
    fn merge(&mut self, batch: Outcome) {
        self.created += batch.created;
        self.updated += batch.updated;
        let room = MAX_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(batch.errors.into_iter().take(room));
        self.error_count += batch.error_count;
    }
}

pub fn check_content_type(headers: &HeaderMap) -> Result<()> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or("").trim();
    let utf8 = parts.all(|p| match p.split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
            let v = v.trim().trim_matches('"');
            v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    });
    if essence.eq_ignore_ascii_case("text/csv") && utf8 {
        Ok(())
    } else {
        Err(Error::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: text/csv (UTF-8)",
        ))
    }
}

/// The body as UTF-8 text without a BOM (400 otherwise, naming the line).
pub fn decode(bytes: &[u8]) -> Result<&str> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        Error::bad_request("invalid_encoding", format!("the file is not UTF-8 text (line {line})"))
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// What an import works with, given by the edge that runs it (batches are written by tasks of
/// their own, so it is owned).
#[derive(Clone)]
pub struct Importer {
    pub db: Db,
    pub hub: Hub,
    pub clock: Clock,
    /// Who is available now, for the assignment engine.
    pub presence: Arc<dyn Fn(Uuid) -> Availability + Send + Sync>,
    pub workspace_id: Uuid,
    /// The member importing.
    pub by: Uuid,
    /// What distributing the new leads needs of the server.
    pub distribution: distribution::Setup,
}

/// The line of the file where a record starts, counted from its byte offset: the csv crate's
/// own line count under-counts `\r\n` line ends (rust-csv issue 395), so files written by
/// Excel or Python's `csv` module reported each row one line too low. A line ends at `\n`,
/// `\r\n` or a lone `\r`, as the reader has it. Offsets must be asked in increasing order.
struct Lines<'a> {
    text: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines { text: text.as_bytes(), at: 0, line: 1 }
    }

    /// The line of the first character at or after `byte` that ends no line (the reader's
    /// position may point at the `\n` of the `\r\n` before a record, or at skipped empty lines).
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut end = (byte as usize).min(self.text.len());
        while self.text.get(end).is_some_and(|&b| b == b'\r' || b == b'\n') {
            end += 1;
        }
        if end > self.at {
            let span = &self.text[self.at..end];
            let ends = span
                .iter()
                .enumerate()
                .filter(|&(i, &b)| {
                    b == b'\n' || (b == b'\r' && self.text.get(self.at + i + 1).is_none_or(|&next| next != b'\n'))
                })
                .count();
            self.line += ends as u64;
            self.at = end;
        }
        self.line
    }
}

/// Creates and updates leads from the text of a CSV file (see the module docs).
pub async fn import(imp: &Importer, text: &str) -> Result<Outcome> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
    let header = match reader.headers() {
        Ok(h) if h.iter().any(|c| !c.trim().is_empty()) => parse_header(h)?,
        Ok(_) => return Err(Error::bad_request("missing_column", "the file has no header row")),
        Err(e) => return Err(header_error(format!("unreadable header row: {e}"))),
    };
    let dir = Directory::load(&imp.db, imp.workspace_id).await?;
    let header = Arc::new(header);
    let mut out = Outcome::default();
    let mut writer = Writer::new(&imp.db);
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
    let mut phones: HashSet<String> = HashSet::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    let mut lines = Lines::new(text);
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
                match parse_row(&header, &dir, &record, line) {
                    Ok(row) => {
                        // A phone already waiting in this batch: write the batch first, so
                        // the later row updates what the earlier one created.
                        if phones.contains(&row.phone) {
                            writer.send(imp, &header, &mut batch, &mut phones, &mut out).await?;
                        }
                        writer.order_after(&row.phone);
                        phones.insert(row.phone.clone());
                        batch.push(row);
                        if batch.len() >= BATCH {
                            writer.send(imp, &header, &mut batch, &mut phones, &mut out).await?;
                        }
                    }
                    Err(message) => out.error(line, message),
                }
            }
            Err(e) => {
                // The text is UTF-8 and rows may have any length, so this is not expected;
                // report it and stop rather than risk reading the same bytes forever.
                let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
                out.error(line, format!("unreadable row: {e}"));
                break;
            }
        }
    }
    writer.send(imp, &header, &mut batch, &mut phones, &mut out).await?;
    writer.finish(&imp.db, &mut out).await?;
    out.errors.sort_by_key(|e| e.line);
    tracing::info!(created = out.created, updated = out.updated, errors = out.error_count, "leads imported");
    Ok(out)
}

/// Writes the batches of an import while the rows of the next are read and checked.
///
/// On PostgreSQL two batches are in flight at once: each writes the rows that touch nothing
/// another batch touches first (unassigned new leads with their identities, groups and
/// activities; updates that keep the assignee and groups), then takes the import's turn
/// ([`Writer::turn`], one batch at a time) for what locks shared rows until commit: report
/// counters (assigned leads, reassignments, regrouping), the event log and assignment
/// rules. SQLite has one writer, so there one batch is in flight.
///
/// A batch holding a phone that an earlier batch in flight also holds starts only after
/// everything before it has committed, so a phone repeated in the file finds the lead its
/// earlier row created.
struct Writer {
    /// Oldest first, with the phones of each.
    inflight: std::collections::VecDeque<(JoinHandle<Result<Outcome>>, HashSet<String>)>,
    limit: usize,
    /// The next batch must wait for every batch before it.
    barrier: bool,
    turn: Arc<tokio::sync::Mutex<()>>,
    statistics: Statistics,
}

impl Writer {
    fn new(db: &Db) -> Writer {
        let limit = match db.backend() {
            crate::db::Backend::Postgres => 2,
            crate::db::Backend::Sqlite => 1,
        };
        Writer {
            inflight: Default::default(),
            limit,
            barrier: false,
            turn: Default::default(),
            statistics: Statistics::default(),
        }
    }

    /// Notes that the batch being read holds `phone`: if a batch in flight holds it too, the
    /// batch being read starts after that one has committed.
    fn order_after(&mut self, phone: &str) {
        if !self.barrier && self.inflight.iter().any(|(_, phones)| phones.contains(phone)) {
            self.barrier = true;
        }
    }

    /// Starts writing `batch` (emptying it and `phones`) once it may: after every batch before
    /// it when ordered so, else when fewer than `limit` are in flight.
    async fn send(
        &mut self,
        imp: &Importer,
        h: &Arc<Header>,
        batch: &mut Vec<Row>,
        phones: &mut HashSet<String>,
        out: &mut Outcome,
    ) -> Result<()> {
        let keep = if std::mem::take(&mut self.barrier) { 0 } else { self.limit - 1 };
        while self.inflight.len() > keep {
            self.wait_oldest(&imp.db, out).await?;
        }
        if batch.is_empty() {
            return Ok(());
        }
        let rows = std::mem::replace(batch, Vec::with_capacity(BATCH));
        let phones = std::mem::replace(phones, HashSet::with_capacity(BATCH));
        let (imp, h, turn) = (imp.clone(), h.clone(), self.turn.clone());
        let task = tokio::spawn(async move {
            let mut tries = 1;
            loop {
                let mut out = Outcome::default();
                match flush(&imp, &h, rows.clone(), &turn, &mut out).await {
                    // The batch was rolled back whole (e.g. chosen as a deadlock's victim
                    // against webhook processing): write it again.
                    Err(e) if e.is_transient() && tries < crate::db::TRANSIENT_TRIES => {
                        tracing::warn!(error = %e, tries, "import batch rolled back; writing it again");
                        crate::db::pause_before_retry(tries).await;
                        tries += 1;
                    }
                    done => return done.map(|()| out),
                }
            }
        });
        self.inflight.push_back((task, phones));
        Ok(())
    }

    /// Waits for the oldest batch in flight and adds its outcome to `out`.
    async fn wait_oldest(&mut self, db: &Db, out: &mut Outcome) -> Result<()> {
        let Some((batch, _)) = self.inflight.pop_front() else { return Ok(()) };
        let written = batch.await.map_err(|e| Error::internal(format!("import batch: {e}")))??;
        out.merge(written);
        self.statistics.after_batch(db, out.created);
        Ok(())
    }

    /// Waits for the last batches and brings the planner's statistics up to date.
    async fn finish(&mut self, db: &Db, out: &mut Outcome) -> Result<()> {
        while !self.inflight.is_empty() {
            self.wait_oldest(db, out).await?;
        }
        self.statistics.finish(db, out.created).await;
        Ok(())
    }
}

/// Keeps the planner's statistics in step with a large import (see
/// [`Db::refresh_statistics`]): refreshed whenever the leads created since the last refresh
/// reach [`REFRESH_AFTER`] and as many as were created before it (so a few times per import,
/// geometrically), in the background while the next batches are written, and once more at
/// the end.
#[derive(Default)]
struct Statistics {
    refreshed_at: u64,
    running: Option<JoinHandle<()>>,
}

/// Leads created before the planner's statistics are first refreshed. `ANALYZE` samples a
/// bounded number of rows, so even at 100k leads a refresh takes a small fraction of a second.
pub const REFRESH_AFTER: u64 = 1000;

const IMPORTED_TABLES: [&str; 4] = ["leads", "lead_identities", "lead_groups", "lead_facts"];

impl Statistics {
    fn after_batch(&mut self, db: &Db, created: u64) {
        let fresh = created - self.refreshed_at;
        if fresh < REFRESH_AFTER || fresh < self.refreshed_at || self.running.as_ref().is_some_and(|r| !r.is_finished())
        {
            return;
        }
        self.refreshed_at = created;
        let db = db.clone();
        self.running = Some(tokio::spawn(async move { refresh(&db).await }));
    }

    async fn finish(&mut self, db: &Db, created: u64) {
        if let Some(running) = self.running.take() {
            let _ = running.await;
        }
        if created - self.refreshed_at >= REFRESH_AFTER {
            refresh(db).await;
        }
    }
}

async fn refresh(db: &Db) {
    if let Err(e) = db.refresh_statistics(&IMPORTED_TABLES).await {
        // Only plans suffer; autovacuum will catch up.
        tracing::warn!(error = %e, "refreshing planner statistics during an import failed");
    }
}

/// Writes a batch of validated rows in one transaction, in two parts (see [`Writer`]): the
/// rows no other batch touches, then, holding `turn`, those that lock shared rows.
async fn flush(
    imp: &Importer,
    h: &Header,
    mut batch: Vec<Row>,
    turn: &tokio::sync::Mutex<()>,
    out: &mut Outcome,
) -> Result<()> {
    let ws = imp.workspace_id;
    let now = imp.clock.now();
    let mut work = Work::begin(&imp.db, now).await?;
    let mut existing = existing_by_phone(work.tx(), ws, &batch).await?;
    let (mut plain, mut shared) = (Vec::new(), Vec::new());
    let (mut quiet, mut counted) = (Changes::default(), Changes::default());
    for row in batch.drain(..) {
        let result = match existing.remove(&row.phone) {
            Some(lead) => update(now, imp.by, h, row, lead, &mut quiet, &mut counted).map(|()| out.updated += 1),
            None => new_lead(ws, now, h, row).map(|created| {
                if created.1.assignee_id.is_some() { shared.push(created) } else { plain.push(created) }
            }),
        };
        if let Err((line, message)) = result {
            out.error(line, message);
        }
    }
    apply_updates(&mut work, quiet).await?;
    let mut created = insert_all(&mut work, plain, out).await?;
    let _turn = turn.lock().await;
    apply_updates(&mut work, counted).await?;
    created.extend(insert_all(&mut work, shared, out).await?);
    if !created.is_empty() {
        // Each new row is distributed, then assigned, as any new lead.
        let plan = distribution::plan(work.tx(), ws).await?;
        let s = crate::assignment::load(work.tx(), ws).await?;
        let assigning =
            crate::assignment::Mode::parse(&s.mode) != Some(crate::assignment::Mode::Unassigned) || !s.rules.is_empty();
        let presence = |id| (imp.presence)(id);
        for mut lead in created {
            let distributed = match &plan {
                Some(plan) => plan.apply(&mut work, &lead, imp.distribution, Origin::Entered).await?,
                None => Distributed::No,
            };
            if assigning && lead.assignee_id.is_none() && distributed != Distributed::Dropped {
                run::new_lead(&mut work, &presence, &mut lead).await?;
            }
        }
    }
    work.commit(&imp.hub).await
}

/// The workspace's leads with the batch's phones, with their groups.
async fn existing_by_phone(tx: &mut Tx, ws: Uuid, batch: &[Row]) -> Result<HashMap<String, Lead>> {
    let found: Vec<Lead> = on_tx!(tx, |c| {
        let mut qb = sqlx::QueryBuilder::new(format!("SELECT {COLS} FROM leads l WHERE l.workspace_id = "));
        qb.push_bind(ws).push(" AND l.phone IN (");
        let mut sep = qb.separated(", ");
        for r in batch {
            sep.push_bind(r.phone.as_str());
        }
        qb.push(")");
        // Planned per call: a plan cached while the table was small would scan it whole.
        qb.build_query_as().persistent(false).fetch_all(c).await
    })?;
    let mut leads: HashMap<Uuid, Lead> = found.into_iter().map(|l| (l.id, l)).collect();
    let ids: Vec<Uuid> = leads.keys().copied().collect();
    for (lead, groups) in leads::group_ids_in(tx, &ids).await? {
        if let Some(l) = leads.get_mut(&lead) {
            l.group_ids = groups;
        }
    }
    Ok(leads.into_values().filter_map(|l| Some((l.phone.clone()?, l))).collect())
}

type RowError = (u64, String);

/// The lead a row creates (not yet stored).
fn new_lead(ws: Uuid, now: DateTime<Utc>, h: &Header, row: Row) -> std::result::Result<(u64, Lead), RowError> {
    let mut custom = Map::new();
    for (key, value) in h.custom_keys.iter().zip(row.custom) {
        if let Some(v) = value {
            custom.insert(key.clone(), Value::String(v));
        }
    }
    leads::validate_custom(&custom).map_err(|e| (row.line, e.to_string()))?;
    let source = match row.source {
        Some(s) => s,
        None => Some(DEFAULT_SOURCE.to_owned()),
    };
    let lead = Lead {
        id: Uuid::now_v7(),
        workspace_id: ws,
        name: row.name,
        phone: Some(row.phone),
        source,
        assignee_id: row.assignee,
        group_ids: row.groups.unwrap_or_default(),
        custom_fields: sqlx::types::Json(custom),
        created_at: now,
        updated_at: now,
        progress: None,
        marketing_opt_out: false,
    };
    Ok((row.line, lead))
}

/// Changes to existing leads, written together by [`apply_updates`].
#[derive(Default)]
struct Changes {
    /// Leads as they are to be stored.
    leads: Vec<Lead>,
    /// Of those, the ones whose groups are replaced by their `group_ids`.
    regrouped: Vec<usize>,
    /// `assigned` activities for leads given another assignee.
    activities: Vec<NewActivity>,
    /// Leads given another assignee: (workspace, lead, new assignee, by), written through
    /// [`assignee::of_lead`] so the new assignee is alerted.
    reassigned: Vec<(Uuid, Uuid, Uuid, Uuid)>,
}

/// Applies a row to an existing lead (queued in `changes` when anything differs).
fn update(
    now: DateTime<Utc>,
    by: Uuid,
    h: &Header,
    row: Row,
    before: Lead,
    quiet: &mut Changes,
    counted: &mut Changes,
) -> std::result::Result<(), RowError> {
    let mut activities = Vec::new();
    let mut reassigned = None;
    let mut lead = before.clone();
    lead.name = row.name;
    if let Some(source) = row.source {
        lead.source = source;
    }
    for (key, value) in h.custom_keys.iter().zip(row.custom) {
        match value {
            Some(v) => lead.custom_fields.0.insert(key.clone(), Value::String(v)),
            None => lead.custom_fields.0.remove(key),
        };
    }
    leads::validate_custom(&lead.custom_fields.0).map_err(|e| (row.line, e.to_string()))?;
    if let Some(a) = row.assignee.filter(|a| lead.assignee_id != Some(*a)) {
        lead.assignee_id = Some(a);
        reassigned = Some((lead.workspace_id, lead.id, a, by));
        let data = AssignedData::by_member(before.assignee_id, a);
        activities.push(NewActivity::new(lead.workspace_id, lead.id, ActivityKind::Assigned, data).by(by));
    }
    let regrouped = match row.groups {
        Some(g) if g != lead.group_ids => {
            lead.group_ids = g;
            true
        }
        _ => false,
    };
    let changed = regrouped
        || lead.name != before.name
        || lead.source != before.source
        || lead.custom_fields.0 != before.custom_fields.0
        || lead.assignee_id != before.assignee_id;
    if changed {
        // Report counters move only with the assignee or the groups.
        let changes = if regrouped || lead.assignee_id != before.assignee_id { counted } else { quiet };
        if regrouped {
            changes.regrouped.push(changes.leads.len());
        }
        lead.updated_at = now;
        changes.leads.push(lead);
        changes.activities.append(&mut activities);
        changes.reassigned.extend(reassigned);
    }
    Ok(())
}

/// Writes queued changes: one multi-row `UPDATE … FROM (VALUES …)` per chunk (`columnN` are
/// the VALUES columns' names on both backends), group memberships replaced, then the
/// `assigned` activities, with their events and the `lead.updated` events.
async fn apply_updates(w: &mut Work, changes: Changes) -> Result<()> {
    if changes.leads.is_empty() {
        return Ok(());
    }
    let tx = w.tx();
    // 5 parameters a row.
    for chunk in changes.leads.chunks(BATCH) {
        on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "UPDATE leads SET name = v.column2, source = v.column3, custom_fields = v.column4, \
                 updated_at = v.column5 FROM (",
            );
            qb.push_values(chunk, |mut b, l| {
                b.push_bind(l.id)
                    .push_bind(l.name.as_str())
                    .push_bind(l.source.as_deref())
                    .push_bind(&l.custom_fields)
                    .push_bind(l.updated_at);
            });
            qb.push(") AS v WHERE leads.id = v.column1");
            qb.build().persistent(false).execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    let regrouped: Vec<&Lead> = changes.regrouped.iter().map(|i| &changes.leads[*i]).collect();
    for chunk in regrouped.chunks(1000) {
        on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new("DELETE FROM lead_groups WHERE lead_id IN (");
            let mut sep = qb.separated(", ");
            for l in chunk {
                sep.push_bind(l.id);
            }
            qb.push(")");
            qb.build().persistent(false).execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    let memberships: Vec<(Uuid, Uuid)> =
        regrouped.iter().flat_map(|l| l.group_ids.iter().map(move |g| (l.id, *g))).collect();
    insert_memberships(tx, &memberships).await?;
    for (ws, lead, to, by) in changes.reassigned {
        assignee::of_lead(w, &mut Change::by_member(ws, by, "import"), lead, to, Holder::Anyone).await?;
    }
    timeline::record_many(w, &changes.activities).await?;
    for l in &changes.leads {
        leads::emit_updated(w, l);
    }
    Ok(())
}

async fn insert_memberships(tx: &mut Tx, memberships: &[(Uuid, Uuid)]) -> Result<()> {
    for chunk in memberships.chunks(1000) {
        on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO lead_groups (lead_id, group_id) ");
            qb.push_values(chunk, |mut b, (lead, group)| {
                b.push_bind(*lead).push_bind(*group);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Inserts new leads with multi-row INSERTs: leads, phone identities, groups, `lead_created`
/// activities, with their `lead.updated` and `timeline.created` events. A phone taken
/// meanwhile (by a concurrent creation) is reported on its row. Returns the stored leads.
async fn insert_all(w: &mut Work, creates: Vec<(u64, Lead)>, out: &mut Outcome) -> Result<Vec<Lead>> {
    if creates.is_empty() {
        return Ok(Vec::new());
    }
    let tx = w.tx();
    let mut stored: HashSet<Uuid> = HashSet::with_capacity(creates.len());
    // 9 parameters a row.
    for chunk in creates.chunks(BATCH) {
        let ids: Vec<Uuid> = on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO leads (id, workspace_id, name, phone, source, assignee_id, custom_fields, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, (_, l)| {
                b.push_bind(l.id)
                    .push_bind(l.workspace_id)
                    .push_bind(l.name.as_str())
                    .push_bind(l.phone.as_deref())
                    .push_bind(l.source.as_deref())
                    .push_bind(l.assignee_id)
                    .push_bind(&l.custom_fields)
                    .push_bind(l.created_at)
                    .push_bind(l.updated_at);
            });
            qb.push(" ON CONFLICT (workspace_id, phone) DO NOTHING RETURNING id");
            qb.build_query_scalar().fetch_all(c).await
        })?;
        stored.extend(ids);
    }
    let mut leads = Vec::with_capacity(stored.len());
    for (line, lead) in creates {
        if stored.contains(&lead.id) {
            leads.push(lead);
        } else {
            out.error(line, "a lead with this phone was created while importing; import the row again".to_owned());
        }
    }
    out.created += leads.len() as u64;
    if leads.is_empty() {
        return Ok(leads);
    }
    for chunk in leads.chunks(BATCH) {
        on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO lead_identities (workspace_id, kind, value, lead_id) ");
            qb.push_values(chunk, |mut b, l| {
                b.push_bind(l.workspace_id).push_bind("phone").push_bind(l.phone.as_deref()).push_bind(l.id);
            });
            qb.push(" ON CONFLICT (workspace_id, kind, value) DO UPDATE SET lead_id = excluded.lead_id");
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    let memberships: Vec<(Uuid, Uuid)> =
        leads.iter().flat_map(|l| l.group_ids.iter().map(move |g| (l.id, *g))).collect();
    insert_memberships(tx, &memberships).await?;
    for l in &leads {
        leads::emit_updated(w, l);
    }
    let activities: Vec<NewActivity> = leads.iter().map(leads::created_activity).collect();
    timeline::record_many(w, &activities).await?;
    Ok(leads)
}

// ---------------------------------------------------------------------------------------------
// Export.

static EXPORT_KEYS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT l.id, l.created_at, l.custom_fields FROM leads l WHERE {} AND l.created_at <= $6 \
         AND (l.created_at, l.id) > ($7, $8) ORDER BY l.created_at, l.id LIMIT $9",
        *LEAD_VISIBLE
    )
});

static EXPORT_ROWS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLS} FROM leads l WHERE {} AND l.created_at <= $6 \
         AND (l.created_at, l.id) > ($7, $8) ORDER BY l.created_at, l.id LIMIT $9",
        *LEAD_VISIBLE
    )
});

/// Before every lead: `(l.created_at, l.id) > START` holds for all (a row-value keyset
/// condition, which both backends answer from the `(workspace_id, created_at, id)` index).
const START: (DateTime<Utc>, Uuid) = (DateTime::<Utc>::UNIX_EPOCH, Uuid::nil());

type KeysRow = (Uuid, DateTime<Utc>, sqlx::types::Json<Map<String, Value>>);

/// Everything the export stream needs between pages.
pub struct Export {
    db: Db,
    viewer: Viewer,
    started: DateTime<Utc>,
    /// Keyset position: the last exported lead's `(created_at, id)`.
    after: (DateTime<Utc>, Uuid),
    keys: Vec<String>,
    group_names: HashMap<Uuid, String>,
    emails: HashMap<Uuid, String>,
    header: Option<Bytes>,
    done: bool,
}

impl Export {
    pub async fn prepare(db: Db, viewer: Viewer, started: DateTime<Utc>) -> Result<Export> {
        let ws = viewer.workspace_id;
        let group_names: HashMap<Uuid, String> =
            on_db!(&db, |p| sqlx::query_as("SELECT id, name FROM crm_groups WHERE workspace_id = $1")
                .bind(ws)
                .fetch_all(p)
                .await)?
            .into_iter()
            .collect();
        let emails: HashMap<Uuid, String> =
            on_db!(&db, |p| sqlx::query_as("SELECT id, email FROM users WHERE workspace_id = $1")
                .bind(ws)
                .fetch_all(p)
                .await)?
            .into_iter()
            .collect();
        // The custom keys first: they are columns of the header.
        let mut keys: BTreeSet<String> = BTreeSet::new();
        let mut after = START;
        loop {
            let page: Vec<KeysRow> = on_db!(&db, |p| bind_viewer!(sqlx::query_as(EXPORT_KEYS.as_str()), viewer)
                .bind(started)
                .bind(after.0)
                .bind(after.1)
                .bind(EXPORT_PAGE * 4)
                .fetch_all(p)
                .await)?;
            for (_, _, fields) in &page {
                for k in fields.0.keys() {
                    if !keys.contains(k) {
                        keys.insert(k.clone());
                    }
                }
            }
            if keys.len() + STANDARD.len() > MAX_COLUMNS {
                return Err(Error::unprocessable(
                    "too_many_columns",
                    format!("the leads have more than {} distinct custom fields", MAX_COLUMNS - STANDARD.len()),
                ));
            }
            match page.last() {
                Some((id, at, _)) if page.len() as i64 == EXPORT_PAGE * 4 => after = (*at, *id),
                _ => break,
            }
        }
        let keys: Vec<String> = keys.into_iter().collect();
        let mut w = csv::Writer::from_writer(Vec::new());
        let custom = keys.iter().map(|k| protect(&custom_column(k)).into_owned());
        w.write_record(STANDARD.iter().map(|s| (*s).to_owned()).chain(custom)).map_err(csv_error)?;
        let header = Bytes::from(w.into_inner().map_err(|e| Error::internal(e.to_string()))?);
        Ok(Export { db, viewer, started, after: START, keys, group_names, emails, header: Some(header), done: false })
    }

    /// The next chunk of the file, `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        if let Some(h) = self.header.take() {
            return Ok(Some(h));
        }
        if self.done {
            return Ok(None);
        }
        let v = &self.viewer;
        let mut page: Vec<Lead> = on_db!(&self.db, |p| bind_viewer!(sqlx::query_as(EXPORT_ROWS.as_str()), v)
            .bind(self.started)
            .bind(self.after.0)
            .bind(self.after.1)
            .bind(EXPORT_PAGE)
            .fetch_all(p)
            .await)?;
        if (page.len() as i64) < EXPORT_PAGE {
            self.done = true;
        }
        let Some(last) = page.last() else { return Ok(None) };
        self.after = (last.created_at, last.id);
        let ids: Vec<Uuid> = page.iter().map(|l| l.id).collect();
        let mut groups = leads::group_ids(&self.db, &ids).await?;
        for l in &mut page {
            l.group_ids = groups.remove(&l.id).unwrap_or_default();
        }
        let mut w = csv::Writer::from_writer(Vec::with_capacity(page.len() * 96));
        let mut cells: Vec<String> = Vec::with_capacity(STANDARD.len() + self.keys.len());
        for l in &page {
            cells.clear();
            cells.push(l.name.clone());
            cells.push(l.phone.clone().unwrap_or_default());
            cells.push(l.source.clone().unwrap_or_default());
            let mut names: Vec<&str> =
                l.group_ids.iter().filter_map(|g| self.group_names.get(g)).map(String::as_str).collect();
            names.sort_unstable();
            cells.push(names.join(&GROUP_SEP.to_string()));
            cells.push(l.assignee_id.and_then(|a| self.emails.get(&a)).cloned().unwrap_or_default());
            for k in &self.keys {
                cells.push(match l.custom_fields.0.get(k) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                });
            }
            w.write_record(cells.iter().map(|c| protect(c).into_owned())).map_err(csv_error)?;
        }
        Ok(Some(Bytes::from(w.into_inner().map_err(|e| Error::internal(e.to_string()))?)))
    }
}

fn csv_error(e: csv::Error) -> Error {
    Error::internal(format!("csv: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line each data row starts on, as the import reports it.
    fn row_lines(text: &str) -> Vec<u64> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
        let mut lines = Lines::new(text);
        let mut record = csv::StringRecord::new();
        let mut out = Vec::new();
        while reader.read_record(&mut record).expect("readable") {
            out.push(lines.line_at(record.position().expect("a position").byte()));
        }
        out
    }

    #[test]
    fn rows_report_the_line_they_start_on_whatever_the_line_ends() {
        let rows = ["name,phone", "Ann,+4420", "Bob,+4421", "\"Cy\nLine two\nLine three\",+4422", "Di,+4423"];
        for end in ["\n", "\r\n", "\r"] {
            let text = rows.join(end) + end;
            assert_eq!(row_lines(&text), [2, 3, 4, 7], "line ends {end:?}");
        }
        // A quoted cell holding CRLF line ends, in a CRLF file; and no final line end.
        let text = "name,phone\r\n\"A\r\nB\",1\r\nC,2";
        assert_eq!(row_lines(text), [2, 4]);
    }

    #[test]
    fn formula_protection_round_trips() {
        for s in ["=1+2", "+44", "-5", "@SUM(A1)", "\tx", "\rx", "'", "'a", "''", "'=x", "plain", "", "O'Brien"] {
            assert_eq!(unprotect(&protect(s)), s, "{s:?}");
        }
        assert_eq!(protect("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(protect("'hello"), "'hello");
        assert_eq!(unprotect("'hello"), "'hello");
        assert!(!FORMULA.iter().any(|c| protect("=x").starts_with(*c)));
    }

    #[test]
    fn custom_columns_never_pass_for_standard_ones() {
        assert_eq!(custom_column("plan"), "plan");
        assert_eq!(custom_column("Phone"), "custom.Phone");
        assert_eq!(custom_column("custom.x"), "custom.custom.x");
        let rec = csv::StringRecord::from(vec!["Name", " phone ", "custom.Phone", "custom.custom.x", "plan"]);
        let h = parse_header(&rec).expect("valid header");
        assert_eq!(h.custom_keys, ["Phone", "custom.x", "plan"]);
        assert_eq!(h.cols[..2], [Col::Name, Col::Phone]);
    }

    #[test]
    fn bad_headers_are_refused() {
        for cols in [vec!["name"], vec!["phone", "source"], vec!["name", "phone", "name"], vec!["name", "phone", ""]] {
            let rec = csv::StringRecord::from(cols.clone());
            assert!(parse_header(&rec).is_err(), "{cols:?}");
        }
    }
}
