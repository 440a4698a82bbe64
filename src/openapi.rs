//! The OpenAPI 3.1 document's frame: its information, tags and shared schemas, and the
//! completion with the catalog's dataset ids. The paths come from the routed handlers: the
//! HTTP layer assembles the document from its routers (`http::openapi_document`).

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

/// Lists the dataset ids as the `id` parameter's allowed values, so generated clients know them.
pub fn finish(mut api: utoipa::openapi::OpenApi, ids: &[String]) -> utoipa::openapi::OpenApi {
    api.info.version = env!("CARGO_PKG_VERSION").to_string();
    if ids.is_empty() {
        return api;
    }
    let schema: RefOr<Schema> = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ids.iter().cloned()))
        .into();
    for item in api.paths.paths.values_mut() {
        for op in [&mut item.get].into_iter().flatten() {
            for param in op.parameters.iter_mut().flatten() {
                if let RefOr::T(param) = param
                    && param.name == "id"
                {
                    param.schema = Some(schema.clone());
                }
            }
        }
    }
    api
}
