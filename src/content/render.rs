//! Filling in a `message`'s variables, and rendering a page's Markdown safely. Pure.
//!
//! Variables are `{{lead.name}}`, `{{lead.phone}}`, `{{member.name}}` and
//! `{{lead.custom.KEY}}` (spaces inside the braces allowed). One pass over the text: a value
//! put in is never read again, so a lead named `{{member.name}}` stays that text (no template
//! injection). A custom field the lead doesn't have renders empty; anything else in braces
//! stays as written.

use pulldown_cmark::{Event, Options, Parser, html};
use serde_json::{Map, Value};

/// What a message's variables are filled from.
#[derive(Debug, Clone, Default)]
pub struct Vars<'a> {
    pub lead_name: &'a str,
    pub lead_phone: Option<&'a str>,
    pub member_name: &'a str,
    pub custom: Option<&'a Map<String, Value>>,
}

fn value(name: &str, v: &Vars<'_>) -> Option<String> {
    match name {
        "lead.name" => Some(v.lead_name.to_owned()),
        "lead.phone" => Some(v.lead_phone.map(|p| format!("+{}", p.trim_start_matches('+'))).unwrap_or_default()),
        "member.name" => Some(v.member_name.to_owned()),
        other => other.strip_prefix("lead.custom.").filter(|k| !k.is_empty()).map(|k| {
            match v.custom.and_then(|c| c.get(k)) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            }
        }),
    }
}

/// `text` with its variables filled in.
pub fn fill(text: &str, v: &Vars<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => match value(after[..end].trim(), v) {
                Some(val) => {
                    out.push_str(&val);
                    rest = &after[end + 2..];
                }
                None => {
                    out.push_str("{{");
                    rest = after;
                }
            },
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A page's Markdown as HTML: raw HTML in the source (blocks and inline) is shown as text,
/// never passed through, and links keep only http(s), mailto and tel targets.
pub fn page_html(markdown: &str) -> String {
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, opts).map(|e| match e {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(pulldown_cmark::Tag::Link { link_type, dest_url, title, id }) => {
            let dest_url = if safe_url(&dest_url) { dest_url } else { "#".into() };
            Event::Start(pulldown_cmark::Tag::Link { link_type, dest_url, title, id })
        }
        Event::Start(pulldown_cmark::Tag::Image { link_type, dest_url, title, id }) => {
            let dest_url = if safe_url(&dest_url) { dest_url } else { "".into() };
            Event::Start(pulldown_cmark::Tag::Image { link_type, dest_url, title, id })
        }
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["https://", "http://", "mailto:", "tel:"].iter().any(|p| lower.starts_with(p)) || lower.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_variables_once_and_leaves_the_rest() {
        let mut custom = Map::new();
        custom.insert("plan".into(), Value::String("Pro".into()));
        custom.insert("seats".into(), Value::from(12));
        let v = Vars {
            lead_name: "{{member.name}}",
            lead_phone: Some("5511999990000"),
            member_name: "Ana",
            custom: Some(&custom),
        };
        assert_eq!(
            fill(
                "Hi {{lead.name}}, {{ member.name }} here. {{lead.custom.plan}}/{{lead.custom.seats}}/{{lead.custom.none}}.",
                &v
            ),
            "Hi {{member.name}}, Ana here. Pro/12/."
        );
        assert_eq!(
            fill("Call {{lead.phone}} {{unknown}} {{lead.name", &v),
            "Call +5511999990000 {{unknown}} {{lead.name"
        );
        assert_eq!(fill("{{{{lead.custom.plan}}}}", &v), "{{Pro}}");
    }

    #[test]
    fn pages_render_raw_html_inert() {
        let html = page_html(
            "# Plans\n\n<script>alert(1)</script>\n\nHi <b onclick=x>there</b> [x](javascript:alert(1)) [ok](https://example.com)",
        );
        assert!(html.contains("<h1>Plans</h1>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<b "), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
    }
}
