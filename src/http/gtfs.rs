//! Timetable answers from an ingested GTFS feed: a stop's departures and arrivals on a
//! service date, and the stops a route serves.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde::Serialize;

use crate::error::{Error, Problem, Result};
use crate::query::timetable::{Board, BoardCall, RouteDirection, iso, parse_after};
use crate::state::AppState;

/// Calls on a board at most, and by default.
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 20;

/// A stop's departures or arrivals.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BoardPage {
    pub data: Vec<BoardCall>,
    pub meta: BoardMeta,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BoardMeta {
    pub feed: String,
    pub stop_id: String,
    pub stop_name: Option<String>,
    #[schema(value_type = String, format = Date)]
    pub date: String,
    /// The time the board starts at, `HH:MM:SS`.
    pub after: String,
    pub limit: usize,
    /// The feed version answered from.
    pub version: String,
    /// The dates the feed covers.
    #[schema(value_type = String, format = Date)]
    pub first_date: String,
    #[schema(value_type = String, format = Date)]
    pub last_date: String,
    /// What in the feed leaves trips out of every board (services no calendar defines, calls
    /// naming unknown trips or stops).
    pub warnings: Vec<String>,
}

/// A route's stops.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RouteStops {
    pub data: Vec<RouteDirection>,
    pub meta: RouteMeta,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RouteMeta {
    pub feed: String,
    pub route_id: String,
    pub route_short_name: Option<String>,
    pub route_long_name: Option<String>,
    /// GTFS route_type: 0 tram, 1 subway or metro, 2 rail, 3 bus, 4 ferry, …
    pub route_type: Option<i64>,
    pub version: String,
}

/// `date`, `after` and `limit` of a board request; anything else is a 400.
struct BoardQuery {
    day: i32,
    date: String,
    after: u32,
    limit: usize,
}

fn board_query(raw: &str) -> Result<BoardQuery> {
    let (mut date, mut after, mut limit) = (None, 0, DEFAULT_LIMIT);
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "date" => date = Some(value.into_owned()),
            "after" => after = parse_after(&value)?,
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        Error::bad_request(format!(
                            "limit=`{value}` must be a whole number from 1 to {MAX_LIMIT}"
                        ))
                    })?;
            }
            other => {
                return Err(Error::bad_request(format!(
                    "unknown parameter `{other}`; a board takes date (YYYY-MM-DD), after (HH:MM) and limit"
                )));
            }
        }
    }
    let date = date.ok_or_else(|| {
        Error::bad_request("date is required: the service date, YYYY-MM-DD, e.g. date=2024-10-17")
    })?;
    let day = match crate::values::parse_date(&date) {
        Some((day, crate::values::DateLayout::Iso)) => day,
        _ => {
            return Err(Error::bad_request(format!(
                "date=`{date}` is not a date; write YYYY-MM-DD, e.g. 2024-10-17"
            )));
        }
    };
    Ok(BoardQuery {
        day,
        date,
        after,
        limit,
    })
}

async fn board(
    state: AppState,
    feed: String,
    stop: String,
    raw: Option<String>,
    which: Board,
) -> Result<Json<BoardPage>> {
    let q = board_query(&raw.unwrap_or_default())?;
    let timetable = state.catalog.timetable(&feed).await?;
    let data = timetable.board(&feed, &stop, q.day, q.after, q.limit, which)?;
    Ok(Json(BoardPage {
        data,
        meta: BoardMeta {
            stop_name: timetable.stop_name(&stop).map(str::to_string),
            feed,
            stop_id: stop,
            date: q.date,
            after: crate::dataset::gtfs::clock(q.after),
            limit: q.limit,
            version: timetable.version.clone(),
            first_date: iso(timetable.first_day),
            last_date: iso(timetable.last_day),
            warnings: timetable.warnings.clone(),
        },
    }))
}

#[utoipa::path(get, path = "/api/gtfs/{feed}/stops/{stop_id}/departures", tag = "gtfs",
    params(
        ("feed" = String, Path, description = "Feed id (the dataset file's id; its files are the datasets `{feed}-stops`, …)"),
        ("stop_id" = String, Path, description = "stop_id from stops.txt; a station includes its platforms"),
        ("date" = String, Query, format = Date, description = "The service date, YYYY-MM-DD (required)"),
        ("after" = Option<String>, Query, pattern = r"^([0-3]?[0-9]|4[0-7]):[0-5][0-9](:[0-5][0-9])?$", description = "From this time of the date, HH:MM or HH:MM:SS, up to 47:59:59 (default 00:00)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Calls at most (default 20)"),
    ),
    responses(
        (status = 200, description = "Trips leaving the stop from `after` on `date`, in time order, trips of the day before that run past midnight included; a trip's last stop and calls with pickup_type 1 are left out", body = BoardPage),
        (status = 400, description = "Bad parameter, a date outside the feed, or a feed that is not GTFS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such feed or stop", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn departures(
    State(state): State<AppState>,
    Path((feed, stop)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<BoardPage>> {
    board(state, feed, stop, raw, Board::Departures).await
}

#[utoipa::path(get, path = "/api/gtfs/{feed}/stops/{stop_id}/arrivals", tag = "gtfs",
    params(
        ("feed" = String, Path, description = "Feed id"),
        ("stop_id" = String, Path, description = "stop_id from stops.txt; a station includes its platforms"),
        ("date" = String, Query, format = Date, description = "The service date, YYYY-MM-DD (required)"),
        ("after" = Option<String>, Query, pattern = r"^([0-3]?[0-9]|4[0-7]):[0-5][0-9](:[0-5][0-9])?$", description = "From this time of the date, HH:MM or HH:MM:SS, up to 47:59:59 (default 00:00)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Calls at most (default 20)"),
    ),
    responses(
        (status = 200, description = "Trips arriving at the stop from `after` on `date`, in time order; a trip's first stop and calls with drop_off_type 1 are left out", body = BoardPage),
        (status = 400, description = "Bad parameter, a date outside the feed, or a feed that is not GTFS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such feed or stop", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn arrivals(
    State(state): State<AppState>,
    Path((feed, stop)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<BoardPage>> {
    board(state, feed, stop, raw, Board::Arrivals).await
}

#[utoipa::path(get, path = "/api/gtfs/{feed}/routes/{route_id}/stops", tag = "gtfs",
    params(
        ("feed" = String, Path, description = "Feed id"),
        ("route_id" = String, Path, description = "route_id from routes.txt"),
    ),
    responses(
        (status = 200, description = "The route's stops in each direction: its most common stop pattern, in order", body = RouteStops),
        (status = 400, description = "A parameter was given, or the feed is not GTFS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such feed or route", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn route_stops(
    State(state): State<AppState>,
    Path((feed, route)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<RouteStops>> {
    if let Some((key, _)) = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).next() {
        return Err(Error::bad_request(format!(
            "unknown parameter `{key}`; a route's stops take no parameter"
        )));
    }
    let timetable = state.catalog.timetable(&feed).await?;
    let (data, route_type) = timetable.route_stops(&feed, &route)?;
    let (short, long) = timetable.route_names(&route);
    Ok(Json(RouteStops {
        data,
        meta: RouteMeta {
            feed,
            route_id: route,
            route_short_name: short,
            route_long_name: long,
            route_type,
            version: timetable.version.clone(),
        },
    }))
}
