//! Calls to a portal's API: one GET, its JSON read within a size limit, and every way it can go
//! wrong said in words (an HTTP error, an HTML page, a truncated body), so that a listing page
//! or a package that fails is reported and the harvest goes on.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::ingest::source::causes;

/// The largest API answer read (a `package_search` page of 1,000 packages is a few MiB).
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// An HTTP client for one portal's API. The portal is the operator's choice, so its API is
/// reached wherever it is; the resources it lists are fetched later as untrusted sources.
pub struct Portal {
    client: reqwest::Client,
}

impl Portal {
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("qanat/", env!("CARGO_PKG_VERSION"), " (harvest)"))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Portal { client })
    }

    /// The body of `GET url`, or why there is none.
    pub async fn get(&self, url: &url::Url) -> Result<Vec<u8>, String> {
        let resp = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", causes(&e)))?;
        let status = resp.status();
        let mut body = Vec::new();
        let mut chunks = resp.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk =
                chunk.map_err(|e| format!("{url}: the answer broke off: {}", causes(&e)))?;
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!(
                    "{url}: the answer is larger than {MAX_ANSWER_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        // CKAN answers its errors as JSON with 4xx statuses: those bodies say more than the
        // status, and are read by the caller.
        if status.is_server_error() || (status.is_client_error() && !looks_like_json(&body)) {
            return Err(format!("{url} answered HTTP {status}"));
        }
        Ok(body)
    }

    /// The JSON of `GET url`.
    pub async fn json(&self, url: &url::Url) -> Result<Value, String> {
        let body = self.get(url).await?;
        parse(&body).map_err(|e| format!("{url}: {e}"))
    }
}

fn looks_like_json(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'[' | b'"'))
}

/// A body read as JSON, or what it is instead.
pub fn parse(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| {
        let start = String::from_utf8_lossy(&body[..body.len().min(80)])
            .trim()
            .to_string();
        if start.starts_with('<') {
            format!("the portal answered an HTML page, not JSON: `{start}`")
        } else if e.is_eof() {
            format!(
                "the portal's answer is truncated JSON ({} bytes)",
                body.len()
            )
        } else {
            format!("the portal's answer is not JSON ({e}): `{start}`")
        }
    })
}

/// `base` with `segments` appended to its path (a trailing slash or not).
pub fn join(base: &url::Url, segments: &str) -> url::Url {
    let mut url = base.clone();
    let path = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        segments.trim_start_matches('/')
    );
    url.set_path(&path);
    url.set_query(None);
    url
}
