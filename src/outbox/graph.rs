//! The Graph API client and the one classifier for its error codes (used for synchronous
//! errors; asynchronous `failed` statuses carry the same codes).

use std::time::Duration;

use serde_json::Value;

use crate::views::message::MessageStatus;

/// What to do after a Graph API error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Try again later (rate limits, transient errors).
    Retry,
    /// Give up on this message with this code.
    Fail,
    /// The number's token is dead: give up and flag the number.
    Reauth,
}

/// Classifies a Graph error by code, falling back on the HTTP status.
pub fn classify(http_status: u16, code: Option<i64>) -> Verdict {
    match code {
        Some(130429 | 131056 | 80007 | 4 | 131000 | 131016 | 2 | 133004 | 131057) => Verdict::Retry,
        Some(190) => Verdict::Reauth,
        Some(_) => Verdict::Fail,
        None if http_status >= 500 || http_status == 429 => Verdict::Retry,
        None => Verdict::Fail,
    }
}

/// A Graph API error as Meta answers it.
#[derive(Debug, Clone)]
pub struct GraphError {
    pub http_status: u16,
    pub code: Option<i64>,
    pub title: String,
    pub fbtrace_id: Option<String>,
}

impl GraphError {
    pub fn from_body(http_status: u16, body: &Value) -> GraphError {
        let e = &body["error"];
        let title = e["error_user_title"]
            .as_str()
            .or_else(|| e["message"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {http_status}"));
        GraphError {
            http_status,
            code: e["code"].as_i64(),
            title: title.chars().take(500).collect(),
            fbtrace_id: e["fbtrace_id"].as_str().map(str::to_owned),
        }
    }
    pub fn verdict(&self) -> Verdict {
        classify(self.http_status, self.code)
    }
}

/// The Graph API endpoint this server talks to.
#[derive(Clone)]
pub struct Graph {
    client: reqwest::Client,
    base: String,
    version: String,
}

/// Why a call did not succeed.
#[derive(Debug)]
pub enum CallError {
    /// No answer (connection refused, timeout): retry.
    Transport(String),
    Graph(GraphError),
}

impl Graph {
    pub fn new(base: &str, version: &str) -> Graph {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        Graph { client, base: base.trim_end_matches('/').to_owned(), version: version.to_owned() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}/{}", self.base, self.version, path.trim_start_matches('/'))
    }

    /// `POST /{version}/{phone_number_id}/messages`.
    pub async fn post_message(
        &self,
        phone_number_id: &str,
        token: &str,
        body: &impl serde::Serialize,
    ) -> Result<Value, CallError> {
        answer(self.client.post(self.url(&format!("{phone_number_id}/messages"))).bearer_auth(token).json(body)).await
    }

    /// `GET /{version}/{waba_id}/message_templates`, every page (`paging.next` until there is
    /// none; at most 50 pages of 100).
    pub async fn list_templates(&self, waba_id: &str, token: &str) -> Result<Vec<Value>, CallError> {
        const FIELDS: &str = "id,name,language,status,category,components,rejected_reason,quality_score";
        let mut url = format!("{}?fields={FIELDS}&limit=100", self.url(&format!("{waba_id}/message_templates")));
        let mut all = Vec::new();
        for _ in 0..50 {
            let body = answer(self.client.get(&url).bearer_auth(token)).await?;
            all.extend(body["data"].as_array().into_iter().flatten().cloned());
            match body.pointer("/paging/next").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => url = next.to_owned(),
                _ => return Ok(all),
            }
        }
        Ok(all)
    }

    /// `GET /{version}/{phone_number_id}?fields=…`: the number's own fields (its health: see
    /// `inbox::numbers::health_from_graph`). An API version that refuses a field
    /// (error 100) is asked again with `fallback`.
    pub async fn phone_number(
        &self,
        phone_number_id: &str,
        token: &str,
        fields: &str,
        fallback: &str,
    ) -> Result<Value, CallError> {
        match self.get_fields(phone_number_id, token, fields).await {
            Err(CallError::Graph(e)) if e.code == Some(100) && fields != fallback => {
                self.get_fields(phone_number_id, token, fallback).await
            }
            other => other,
        }
    }

    async fn get_fields(&self, node: &str, token: &str, fields: &str) -> Result<Value, CallError> {
        answer(self.client.get(self.url(node)).query(&[("fields", fields)]).bearer_auth(token)).await
    }

    /// `POST /{version}/{phone_number_id}/media` (multipart) → the media id.
    pub async fn upload_media(
        &self,
        phone_number_id: &str,
        token: &str,
        mime: &str,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Result<String, CallError> {
        self.upload_part(
            phone_number_id,
            token,
            mime,
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()),
        )
        .await
    }

    /// Uploads the file at `path` as [`Graph::upload_media`] does, streamed from disk (never
    /// whole in memory).
    pub async fn upload_media_file(
        &self,
        phone_number_id: &str,
        token: &str,
        mime: &str,
        file_name: &str,
        path: &std::path::Path,
    ) -> Result<String, CallError> {
        let file = tokio::fs::File::open(path).await.map_err(|e| CallError::Transport(format!("media file: {e}")))?;
        let len = file.metadata().await.map_err(|e| CallError::Transport(format!("media file: {e}")))?.len();
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::from(file), len)
            .file_name(file_name.to_owned());
        self.upload_part(phone_number_id, token, mime, part).await
    }

    async fn upload_part(
        &self,
        phone_number_id: &str,
        token: &str,
        mime: &str,
        part: reqwest::multipart::Part,
    ) -> Result<String, CallError> {
        let part = part.mime_str(mime).map_err(|e| CallError::Transport(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime.to_owned())
            .part("file", part);
        let resp = self
            .client
            .post(self.url(&format!("{phone_number_id}/media")))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .map_err(|e| CallError::Transport(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match body["id"].as_str() {
            Some(id) if (200..300).contains(&status) => Ok(id.to_owned()),
            _ => Err(CallError::Graph(GraphError::from_body(status, &body))),
        }
    }

    /// Opens inbound media for download: `GET /{version}/{media-id}` for the URL, then the URL
    /// itself, both with the bearer token. Answers the MIME type, the announced length (if
    /// any) and the response, whose body the caller streams (`chunk()`).
    pub async fn open_media(
        &self,
        media_id: &str,
        token: &str,
    ) -> Result<(String, Option<u64>, reqwest::Response), CallError> {
        let resp = self
            .client
            .get(self.url(media_id))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| CallError::Transport(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let meta: Value = resp.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(CallError::Graph(GraphError::from_body(status, &meta)));
        }
        let Some(url) = meta["url"].as_str() else {
            return Err(CallError::Transport("media answer without url".to_owned()));
        };
        let resp = self
            .client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| CallError::Transport(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(CallError::Transport(format!("media download answered {}", resp.status())));
        }
        let mime = meta["mime_type"]
            .as_str()
            .or_else(|| resp.headers().get("content-type").and_then(|h| h.to_str().ok()))
            .unwrap_or("application/octet-stream")
            .to_owned();
        let len = resp.content_length();
        Ok((mime, len, resp))
    }
}

/// Sends a Graph API request and reads its JSON answer: the body on a 2xx, Meta's error
/// otherwise (a transport failure without the URL, which may carry a token).
async fn answer(req: reqwest::RequestBuilder) -> Result<Value, CallError> {
    let resp = req.send().await.map_err(|e| CallError::Transport(e.without_url().to_string()))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if (200..300).contains(&status) { Ok(body) } else { Err(CallError::Graph(GraphError::from_body(status, &body))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_documented_codes() {
        assert_eq!(classify(400, Some(130429)), Verdict::Retry);
        assert_eq!(classify(400, Some(131056)), Verdict::Retry);
        assert_eq!(classify(400, Some(80007)), Verdict::Retry);
        assert_eq!(classify(400, Some(131047)), Verdict::Fail);
        assert_eq!(classify(401, Some(190)), Verdict::Reauth);
        assert_eq!(classify(400, Some(131026)), Verdict::Fail);
        assert_eq!(classify(503, None), Verdict::Retry);
        assert_eq!(classify(404, None), Verdict::Fail);
    }
}

/// The body of a `POST /{phone_number_id}/messages`: a message, or a read receipt.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Outgoing<'a> {
    Message(Box<SendMessage<'a>>),
    Read {
        messaging_product: &'static str,
        status: MessageStatus,
        message_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        typing_indicator: Option<Typing>,
    },
}

/// Meta's typing indicator (`{"type": "text"}`).
#[derive(Debug, serde::Serialize)]
pub struct Typing {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl<'a> Outgoing<'a> {
    /// Marks the inbound message `wamid` read (blue ticks), and with `typing` shows the
    /// contact "typing…".
    pub fn read(wamid: Option<&'a str>, typing: bool) -> Outgoing<'a> {
        let typing_indicator = typing.then_some(Typing { kind: "text" });
        Outgoing::Read {
            messaging_product: "whatsapp",
            status: MessageStatus::Read,
            message_id: wamid,
            typing_indicator,
        }
    }
}

/// A message to send.
#[derive(Debug, serde::Serialize)]
pub struct SendMessage<'a> {
    pub messaging_product: &'static str,
    pub recipient_type: &'static str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Our message id, echoed in its status webhooks.
    pub biz_opaque_callback_data: String,
    /// The contact's phone, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<&'a str>,
    /// Else their WhatsApp user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateBody<'a>>,
    /// `{<kind>: <media object>}` for media messages.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub media: Option<std::collections::BTreeMap<&'a str, &'a Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Quoted<'a>>,
}

#[derive(Debug, serde::Serialize)]
pub struct TextBody<'a> {
    pub body: &'a str,
    pub preview_url: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct TemplateBody<'a> {
    pub name: &'a Value,
    pub language: Language<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<&'a Value>,
}

/// A template's language: a bare code becomes `{"code": …}`; an object is passed as given.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Language<'a> {
    Code { code: &'a str },
    Given(&'a Value),
}

#[derive(Debug, serde::Serialize)]
pub struct Quoted<'a> {
    pub message_id: &'a str,
}
