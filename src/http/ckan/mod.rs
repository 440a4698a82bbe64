//! CKAN's action API, as CKAN 2.9 answers it, so that CKAN clients (`ckanapi`, CKAN's
//! previews, R and Python wrappers) read qanat's datasets unchanged: `GET` with query
//! parameters or `POST` with a JSON body to `/api/3/action/{action}` (or `/api/action/…`), the
//! envelope `{"help", "success", "result"}`, and CKAN's error shapes and statuses (`409` for a
//! bad argument, naming it; `404`; `400` with a bare JSON string for an unknown action or a body
//! that is not a JSON object). Each dataset is a package with one resource, whose id is the
//! dataset file's `resource_id` (or the dataset id).

mod datastore;
mod packages;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::base_url;
use crate::error::Error;
use crate::state::AppState;

pub use datastore::dump;

/// The CKAN version whose API this one follows.
pub const CKAN_VERSION: &str = "2.9.11";

/// The arguments of an action call: a JSON object.
type Args = Map<String, Value>;

/// What an action answers: its result, or an error CKAN's way.
type Outcome = std::result::Result<Value, Failure>;

/// CKAN's failures: an error of the action (in the envelope), or a request CKAN cannot read
/// (a bare JSON string, `400`).
pub enum Failure {
    Action(Error),
    BadRequest(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Action(e)
    }
}

/// The error object of the envelope and its status, as CKAN's API view writes them.
fn error_body(e: &Error) -> (StatusCode, Value) {
    match e {
        Error::Invalid { field, message } => (
            StatusCode::CONFLICT,
            json!({"__type": "Validation Error", field.clone(): [message]}),
        ),
        _ => match e.status() {
            StatusCode::NOT_FOUND => (
                StatusCode::NOT_FOUND,
                json!({"__type": "Not Found Error", "message": format!("Not found: {}", e.public_detail())}),
            ),
            StatusCode::BAD_REQUEST | StatusCode::GONE | StatusCode::PAYLOAD_TOO_LARGE => (
                StatusCode::CONFLICT,
                json!({"__type": "Validation Error", "message": [e.public_detail()]}),
            ),
            status => (
                status,
                json!({"__type": "Internal Server Error", "message": e.public_detail()}),
            ),
        },
    }
}

/// `GET|POST /api/3/action/{action}`.
pub async fn action(
    State(state): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let base = base_url(&headers, &state.settings);
    let help = format!("{base}/api/3/action/help_show?name={name}");
    let args = match read_args(&method, raw.as_deref().unwrap_or(""), &headers, &body) {
        Ok(args) => args,
        Err(msg) => return bare(StatusCode::BAD_REQUEST, msg),
    };
    let call = Call {
        state: &state,
        base: &base,
        name: &name,
        args: &args,
        raw: raw.as_deref().unwrap_or(""),
    };
    match call.run().await {
        Ok(result) => {
            Json(json!({"help": help, "success": true, "result": result})).into_response()
        }
        Err(Failure::BadRequest(msg)) => bare(StatusCode::BAD_REQUEST, msg),
        Err(Failure::Action(e)) => {
            let (status, error) = error_body(&e);
            let body = json!({"help": help, "success": false, "error": error});
            let mut resp = (status, Json(body)).into_response();
            e.set_retry_after(resp.headers_mut());
            resp
        }
    }
}

/// CKAN's `400`: a bare JSON string.
fn bare(status: StatusCode, msg: String) -> Response {
    (status, Json(Value::String(format!("Bad request - {msg}")))).into_response()
}

/// The arguments: a `POST` body (JSON, or form-encoded), else the query string; a key given
/// twice in a query string is a list.
fn read_args(
    method: &Method,
    raw: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> std::result::Result<Args, String> {
    let form = |text: &[u8]| {
        let mut args = Args::new();
        for (k, v) in url::form_urlencoded::parse(text) {
            let v = Value::String(v.into_owned());
            match args.get_mut(k.as_ref()) {
                Some(Value::Array(items)) => items.push(v),
                Some(first) => *first = Value::Array(vec![first.clone(), v]),
                None => {
                    args.insert(k.into_owned(), v);
                }
            }
        }
        args
    };
    if *method != Method::POST || body.is_empty() {
        return Ok(form(raw.as_bytes()));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return Ok(form(body));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(args)) => Ok(args),
        Ok(other) => Err(format!(
            "Bad request data: Request data JSON decoded to {other} but it needs to be a dictionary."
        )),
        Err(e) => Err(format!("JSON Error: {e}")),
    }
}

/// One action call.
struct Call<'a> {
    state: &'a AppState,
    base: &'a str,
    name: &'a str,
    args: &'a Args,
    /// The query string, from which `_links` are written.
    raw: &'a str,
}

impl Call<'_> {
    async fn run(&self) -> Outcome {
        match self.name {
            "status_show" => Ok(self.status_show()),
            "package_list" => self.package_list(),
            "package_search" => self.package_search().await,
            "package_show" => self.package_show().await,
            "resource_show" => self.resource_show().await,
            "datastore_search" => self.datastore_search().await,
            "datastore_info" => self.datastore_info().await,
            other => Err(Failure::BadRequest(format!(
                "Action name not known: {other}"
            ))),
        }
    }

    fn status_show(&self) -> Value {
        json!({
            "site_title": "qanat",
            "site_description": "Open-data CSV files served as queryable datasets",
            "site_url": self.base,
            "ckan_version": CKAN_VERSION,
            "error_emails_to": null,
            "locale_default": "en",
            "extensions": ["datastore", "qanat"],
        })
    }

    /// A text argument, if given.
    fn text(&self, key: &str) -> Option<String> {
        self.args.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// A required text argument: CKAN's `Missing value` when absent.
    fn required(&self, keys: &[&str]) -> std::result::Result<String, Failure> {
        keys.iter()
            .find_map(|k| self.text(k))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Failure::Action(Error::Invalid {
                    field: keys[0].to_string(),
                    message: "Missing value".into(),
                })
            })
    }

    /// A whole-number argument with a default, at most `max`.
    fn number(&self, key: &str, default: u64, max: u64) -> std::result::Result<u64, Failure> {
        match self.args.get(key) {
            None => Ok(default),
            Some(raw) => Ok(crate::query::datastore::natural(key, raw)?.min(max)),
        }
    }
}
