//! The house rules of ARCHITECTURE.md, checked over the source so that CI fails when one
//! breaks: no import cycle between files, only `inbox/` writes chats, only the edges and the
//! wiring see `AppState`, `json!` only for error bodies, every "may" in `policy/`, and the two
//! migration trees alike.
//!
//! Imports are read from `crate::` and `super::` paths (including `use` groups); a `mod.rs`
//! re-exporting its own children is not an edge, and neither is `mod x;`. Test modules
//! (`#[cfg(test)]` to the end of a file) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// A source file under `src/`, by its path relative to `src/` (e.g. `inbox/chat.rs`).
struct Source {
    rel: String,
    /// The module path (`inbox::chat`; a `mod.rs` names its folder).
    module: Vec<String>,
    /// The text before its `#[cfg(test)]` module.
    text: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources() -> Vec<Source> {
    let src = root().join("src");
    let mut out = Vec::new();
    walk(&src, &mut |p| {
        let rel = p.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if rel.starts_with("bin/") || !rel.ends_with(".rs") {
            return;
        }
        let mut module: Vec<String> = rel.trim_end_matches(".rs").split('/').map(str::to_owned).collect();
        if matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main")) {
            module.pop();
        }
        let full = std::fs::read_to_string(p).unwrap();
        let text = full.split("#[cfg(test)]").next().unwrap_or_default().to_owned();
        out.push(Source { rel, module, text });
    });
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() { walk(&p, f) } else { f(&p) }
    }
}

/// The file defining the longest prefix of a module path.
fn resolve(files: &BTreeMap<Vec<String>, String>, parts: &[String]) -> Option<String> {
    (1..=parts.len()).rev().find_map(|n| files.get(&parts[..n]).cloned())
}

/// File → files it imports.
fn import_graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeMap<Vec<String>, String> = sources.iter().map(|s| (s.module.clone(), s.rel.clone())).collect();
    let path_re = Regex::new(r"\b(crate|super(?:::super)*)((?:::[A-Za-z_][A-Za-z0-9_]*)+)").unwrap();
    let group_re = Regex::new(r"\b(crate|super(?:::super)*)((?:::[a-z_][a-z0-9_]*)*)::\{([^}]*)\}").unwrap();
    let mut graph = BTreeMap::new();
    for s in sources {
        let is_mod = ["mod.rs", "lib.rs", "main.rs"].iter().any(|m| s.rel.ends_with(m));
        let folder = s.rel.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
        let mut refs: Vec<(String, Vec<String>)> = Vec::new();
        for m in path_re.captures_iter(&s.text) {
            refs.push((m[1].to_owned(), m[2].split("::").filter(|x| !x.is_empty()).map(str::to_owned).collect()));
        }
        for m in group_re.captures_iter(&s.text) {
            let prefix: Vec<String> = m[2].split("::").filter(|x| !x.is_empty()).map(str::to_owned).collect();
            for item in m[3].split(',') {
                let item = item.trim().split(" as ").next().unwrap_or_default();
                if item.is_empty() || item == "self" {
                    continue;
                }
                let mut path = prefix.clone();
                path.extend(item.split("::").filter(|x| !x.is_empty() && *x != "{").map(str::to_owned));
                refs.push((m[1].to_owned(), path));
            }
        }
        let mut out = BTreeSet::new();
        for (head, rest) in refs {
            let target = if head == "crate" {
                resolve(&files, &rest)
            } else {
                let ups = head.matches("super").count();
                let mut base: Vec<String> = s.module[..s.module.len().saturating_sub(ups)].to_vec();
                base.extend(rest);
                if base.is_empty() { None } else { resolve(&files, &base) }
            };
            let Some(target) = target else { continue };
            if target == s.rel {
                continue;
            }
            // A mod.rs re-exporting (or mounting) its own children.
            if is_mod && !folder.is_empty() && target.starts_with(&format!("{folder}/")) {
                continue;
            }
            if is_mod && folder.is_empty() {
                continue; // lib.rs / main.rs declare the crate's modules
            }
            out.insert(target);
        }
        graph.insert(s.rel.clone(), out);
    }
    graph
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(st: &mut State<'a>, v: &'a str) {
        let i = st.index.len();
        st.index.insert(v, i);
        st.low.insert(v, i);
        st.stack.push(v);
        st.on.insert(v);
        if let Some(next) = st.graph.get(v) {
            for w in next {
                let w = w.as_str();
                if !st.index.contains_key(w) {
                    visit(st, w);
                    let lw = st.low[w];
                    let lv = st.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if st.on.contains(w) {
                    let iw = st.index[w];
                    let lv = st.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
        }
        if st.low[v] == st.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = st.stack.pop().unwrap();
                st.on.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                st.out.push(comp);
            }
        }
    }
    let mut st = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: vec![],
    };
    for v in graph.keys() {
        if !st.index.contains_key(v.as_str()) {
            visit(&mut st, v);
        }
    }
    st.out
}

/// Lines of `text` (1-based) matching `re`.
fn lines_matching(text: &str, re: &Regex) -> Vec<usize> {
    text.lines().enumerate().filter(|(_, l)| re.is_match(l)).map(|(i, _)| i + 1).collect()
}

#[test]
fn no_import_cycle_between_files() {
    let graph = import_graph(&sources());
    let found = cycles(&graph);
    assert!(found.is_empty(), "files importing each other (directly or around a circle): {found:#?}");
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let mut graph = BTreeMap::new();
    graph.insert("a.rs".to_owned(), BTreeSet::from(["b.rs".to_owned()]));
    graph.insert("b.rs".to_owned(), BTreeSet::from(["c.rs".to_owned()]));
    graph.insert("c.rs".to_owned(), BTreeSet::from(["a.rs".to_owned()]));
    graph.insert("d.rs".to_owned(), BTreeSet::from(["a.rs".to_owned()]));
    assert_eq!(cycles(&graph), vec![vec!["a.rs".to_owned(), "b.rs".to_owned(), "c.rs".to_owned()]]);
}

#[test]
fn only_inbox_writes_chats() {
    let write = Regex::new(r"(?i)(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(messages|conversations)\b").unwrap();
    let outside: Vec<String> = sources()
        .iter()
        .filter(|s| !s.rel.starts_with("inbox/"))
        .flat_map(|s| lines_matching(&s.text, &write).into_iter().map(move |l| format!("src/{}:{l}", s.rel)))
        .collect();
    assert!(outside.is_empty(), "SQL writing messages or conversations outside src/inbox/: {outside:?}");
}

/// Lines of `text` where an UPDATE's SET list (up to its WHERE, or the end of the Rust
/// statement) assigns `assignee_id`. An INSERT (creating a lead or a conversation) is not a change.
fn assignee_writes(text: &str) -> Vec<usize> {
    let set = Regex::new(r"(?i)\bSET\b").unwrap();
    let end = Regex::new(r"(?i)\bWHERE\b|;").unwrap();
    let assigns = Regex::new(r"(?i)\bassignee_id\s*=").unwrap();
    set.find_iter(text)
        .filter(|m| {
            let rest = &text[m.end()..];
            let list = end.find(rest).map_or(rest, |e| &rest[..e.start()]);
            assigns.is_match(list)
        })
        .map(|m| text[..m.start()].lines().count().max(1))
        .collect()
}

#[test]
fn only_inbox_assignee_changes_assignees() {
    let outside: Vec<String> = sources()
        .iter()
        .filter(|s| s.rel != "inbox/assignee.rs")
        .flat_map(|s| assignee_writes(&s.text).into_iter().map(move |l| format!("src/{}:{l}", s.rel)))
        .collect();
    assert!(
        outside.is_empty(),
        "assignee_id written outside src/inbox/assignee.rs (go through it, so the new assignee is alerted): {outside:?}"
    );
    let sample = "sqlx::query(\"UPDATE leads SET name = $1,\n assignee_id = $2 WHERE id = $3\")";
    assert_eq!(assignee_writes(sample), vec![1], "the check sees a write");
    assert!(assignee_writes("UPDATE t SET x = 1 WHERE assignee_id = $2;").is_empty(), "a WHERE is no write");
}

/// The wiring and the edges: the only files that may name `AppState`.
fn sees_app_state(rel: &str) -> bool {
    const WIRING: &[&str] = &["app.rs", "state.rs", "api.rs", "cli.rs", "main.rs"];
    WIRING.contains(&rel)
        || rel.ends_with("/http.rs")
        || rel.contains("/http/")
        || rel.ends_with("/worker.rs")
        || rel.ends_with("/jobs.rs")
        || rel == "live/ws.rs"
        || rel == "live/presence_writer.rs"
        || rel == "ui.rs"
        || rel == "webhook/journal/processor.rs"
}

#[test]
fn only_edges_and_wiring_see_app_state() {
    let named = Regex::new(r"\bAppState\b").unwrap();
    let leaks: Vec<String> = sources()
        .iter()
        .filter(|s| !sees_app_state(&s.rel) && named.is_match(&s.text))
        .map(|s| format!("src/{}", s.rel))
        .collect();
    assert!(leaks.is_empty(), "domain or ground files naming AppState (take what you need explicitly): {leaks:?}");
}

#[test]
fn json_macro_only_for_error_bodies() {
    let json = Regex::new(r"\bjson!\s*\(").unwrap();
    let uses: Vec<String> = sources()
        .iter()
        .filter(|s| s.rel != "error.rs")
        .flat_map(|s| lines_matching(&s.text, &json).into_iter().map(move |l| format!("src/{}:{l}", s.rel)))
        .collect();
    assert!(uses.is_empty(), "json! outside error bodies and tests (answer with a view struct): {uses:?}");
}

#[test]
fn every_may_is_in_the_policy() {
    let may = Regex::new(r"Role::Admin|\.permissions\.[a-z_]+|is_admin\(\)").unwrap();
    let leaks: Vec<String> = sources()
        .iter()
        .filter(|s| !s.rel.starts_with("policy/") && s.rel != "policy.rs")
        .flat_map(|s| lines_matching(&s.text, &may).into_iter().map(move |l| format!("src/{}:{l}", s.rel)))
        .collect();
    assert!(leaks.is_empty(), "role or permission checks outside src/policy/: {leaks:?}");
}

#[test]
fn both_migration_trees_have_the_same_files() {
    let names = |backend: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root().join("migrations").join(backend))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"), "migrations/sqlite and migrations/postgres differ in files");
}
