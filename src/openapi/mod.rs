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
/// the resource ids as `rid`'s), so that generated clients know them, and page bounds as
/// configured.
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
    for item in api.paths.paths.values_mut() {
        for op in [&mut item.get].into_iter().flatten() {
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
