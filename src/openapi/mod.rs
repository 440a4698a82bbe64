//! The OpenAPI 3.1 document's frame: its information, tags and shared schemas, and the
//! completion with the catalog's dataset ids. The paths come from the routed handlers: the
//! HTTP layer assembles the document from its routers (`http::openapi_document`). Each
//! dataset also has a typed document of its own ([`dataset`]).

pub mod dataset;

use utoipa::OpenApi;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

/// Document-level information; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "qanat",
        description = "Published open-data CSV files served as filterable, sortable, paginated JSON, CSV and NDJSON. \
The query grammar is data.gouv.fr's tabular API: `column__operator=value`.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "datasets", description = "The catalog and each dataset's metadata"),
        (name = "data", description = "Rows of a dataset, filtered, sorted, paged or aggregated"),
        (name = "service", description = "Process health"),
    ),
    components(schemas(crate::error::Problem))
)]
pub struct ApiDoc;

/// Completes the routed document: the dataset ids as the `id` parameter's allowed values (and
/// the resource ids as `rid`'s), so that generated clients know them, page bounds as
/// configured, and the answers of the guard in front of every route but the monitor's.
pub fn finish(
    mut api: utoipa::openapi::OpenApi,
    ids: &[String],
    rids: &[String],
    limits: &crate::config::Limits,
) -> utoipa::openapi::OpenApi {
    use crate::query::params::MAX_PAGE;
    api.info.version = env!("CARGO_PKG_VERSION").to_string();
    let one_of = |values: &[String]| -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().cloned()))
            .into()
    };
    let (ids, rids) = (one_of(ids), one_of(rids));
    let page = |max: u64| -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(1))
            .maximum(Some(max))
            .into()
    };
    for (path, item) in api.paths.paths.iter_mut() {
        let monitored = crate::rates::unlimited(path);
        for op in [&mut item.get].into_iter().flatten() {
            if !monitored {
                guard_responses(&mut op.responses);
            }
            for param in op.parameters.iter_mut().flatten() {
                let RefOr::T(param) = param else { continue };
                param.schema = match param.name.as_str() {
                    "id" => Some(ids.clone()),
                    "rid" => Some(rids.clone()),
                    "page" => Some(page(MAX_PAGE)),
                    "page_size" => Some(page(limits.max_page_size)),
                    _ => continue,
                };
            }
        }
    }
    api
}

/// `414` and `429`, which the guard answers before any route, as problem+json.
fn guard_responses(responses: &mut utoipa::openapi::Responses) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build()
    };
    let integer =
        || HeaderBuilder::new().schema(Some(ObjectBuilder::new().schema_type(Type::Integer)));
    let limited = ResponseBuilder::new()
        .description("Over the client's rate: Retry-After says when to ask again")
        .content("application/problem+json", problem())
        .header(
            "Retry-After",
            integer().description(Some("Seconds to wait")).build(),
        )
        .header(
            "RateLimit-Limit",
            integer()
                .description(Some("Requests a client may make at once"))
                .build(),
        )
        .header("RateLimit-Remaining", integer().build())
        .header(
            "RateLimit-Reset",
            integer()
                .description(Some("Seconds until the client's budget is whole again"))
                .build(),
        )
        .build();
    let long = ResponseBuilder::new()
        .description("The request target is longer than the server accepts")
        .content("application/problem+json", problem())
        .build();
    responses
        .responses
        .entry("429".into())
        .or_insert(RefOr::T(limited));
    responses
        .responses
        .entry("414".into())
        .or_insert(RefOr::T(long));
}
