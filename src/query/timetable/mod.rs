//! A GTFS feed's timetable in memory, built once per feed version from its files' tables
//! ([`build`]): each stop's calls sorted by time, the days each service runs, and the trips'
//! stop sequences. It answers a stop's departures and arrivals on a service date (trips of the
//! day before that run past midnight included) and the stops a route serves, in microseconds.

mod build;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::dataset::gtfs::clock;
use crate::error::{Error, Result};
use crate::query::Loaded;
use crate::values::date_of_days;

/// The versions of a feed's tables a timetable is built from (all of one feed version).
pub struct Tables {
    pub stops: Arc<Loaded>,
    pub routes: Option<Arc<Loaded>>,
    pub trips: Arc<Loaded>,
    pub stop_times: Arc<Loaded>,
    pub calendar: Option<Arc<Loaded>>,
    pub calendar_dates: Option<Arc<Loaded>>,
}

#[derive(Default)]
pub struct Timetable {
    /// The feed version it was built from.
    pub version: String,
    stops: Vec<Stop>,
    stop_index: HashMap<String, u32>,
    /// Each stop's child stops (platforms of a station).
    children: Vec<Vec<u32>>,
    routes: Vec<Route>,
    route_index: HashMap<String, u32>,
    trips: Vec<Trip>,
    trip_index: HashMap<String, u32>,
    services: Vec<Days>,
    service_index: HashMap<String, u32>,
    /// The feed's first and last service dates, days since 1970-01-01.
    pub first_day: i32,
    pub last_day: i32,
    /// Each stop's calls a departure board shows, by time.
    departures: Vec<Vec<Call>>,
    /// Each stop's calls an arrival board shows, by time.
    arrivals: Vec<Vec<Call>>,
    calls_total: usize,
    dangling: usize,
    /// What the feed's data leaves unanswerable (trips on undefined services, unknown stops).
    pub warnings: Vec<String>,
}

struct Stop {
    id: String,
    name: String,
    lat: Option<f64>,
    lon: Option<f64>,
    parent: Option<u32>,
}

struct Route {
    id: String,
    short_name: Option<String>,
    long_name: Option<String>,
    color: Option<String>,
    text_color: Option<String>,
    kind: Option<i64>,
    trips: Vec<u32>,
}

struct Trip {
    id: String,
    route: Option<u32>,
    service: Option<u32>,
    headsign: Option<String>,
    direction: Option<i64>,
    /// Its stops in sequence order.
    stops: Vec<u32>,
}

/// A trip calling at a stop: seconds since its service day's start.
#[derive(Clone, Copy)]
struct Call {
    time: u32,
    trip: u32,
    seq: u32,
}

/// The days a service runs, a bit a day from the feed's first date.
#[derive(Clone)]
struct Days(Vec<u64>);

impl Days {
    fn new(span: usize) -> Self {
        Days(vec![0; span.div_ceil(64)])
    }

    fn set(&mut self, day: usize, on: bool) {
        if let Some(word) = self.0.get_mut(day / 64) {
            let bit = 1u64 << (day % 64);
            if on {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    fn get(&self, day: usize) -> bool {
        self.0
            .get(day / 64)
            .is_some_and(|w| w >> (day % 64) & 1 == 1)
    }
}

/// Which board.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Board {
    Departures,
    Arrivals,
}

/// One call on a board.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BoardCall {
    pub trip_id: String,
    pub route_id: Option<String>,
    pub route_short_name: Option<String>,
    pub route_long_name: Option<String>,
    /// The route's colour, six hex digits, as published.
    pub route_color: Option<String>,
    pub route_text_color: Option<String>,
    pub headsign: Option<String>,
    pub direction_id: Option<i64>,
    /// The stop called at: the stop asked for, or one of its platforms.
    pub stop_id: String,
    pub stop_sequence: u32,
    /// The service day the trip belongs to (the day before, for a trip past midnight).
    #[schema(value_type = String, format = Date)]
    pub service_date: String,
    /// Scheduled time since the service day's start, `HH:MM:SS` (past 24:00:00 after midnight).
    pub scheduled: String,
    /// Seconds since the service day's start.
    pub seconds: u32,
    /// Date and time on the clock of the feed's timezone, `YYYY-MM-DDTHH:MM:SS`.
    pub at: String,
}

/// A stop of a route's pattern.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RouteStop {
    pub sequence: u32,
    pub stop_id: String,
    pub stop_name: String,
    pub stop_lat: Option<f64>,
    pub stop_lon: Option<f64>,
}

/// A route's stops in one direction: those of its most common stop pattern, in order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RouteDirection {
    pub direction_id: Option<i64>,
    /// The most common headsign of the direction's trips.
    pub headsign: Option<String>,
    /// Trips of the route in this direction.
    pub trips: usize,
    /// Trips that call at exactly these stops.
    pub pattern_trips: usize,
    /// Other stop patterns of the direction (short turns, expresses).
    pub other_patterns: usize,
    pub stops: Vec<RouteStop>,
}

impl Timetable {
    /// The stop's index, or a 404 that shows what stop ids look like.
    fn stop(&self, id: &str, feed: &str) -> Result<u32> {
        self.stop_index.get(id).copied().ok_or_else(|| {
            let mut some: Vec<&str> = self.stops.iter().take(5).map(|s| s.id.as_str()).collect();
            if some.is_empty() {
                some.push("none");
            }
            Error::NotFound(format!(
                "no stop `{id}` in feed `{feed}` (stops.txt has {} stops, such as {})",
                self.stops.len(),
                some.join(", ")
            ))
        })
    }

    /// The stop's name and the date range the feed covers, for a board's metadata.
    pub fn stop_name(&self, id: &str) -> Option<&str> {
        let s = self.stop_index.get(id)?;
        Some(self.stops[*s as usize].name.as_str())
    }

    /// Checks that a date (days since 1970-01-01) is one the feed covers.
    pub fn check_day(&self, day: i32) -> Result<()> {
        if (self.first_day..=self.last_day).contains(&day) {
            return Ok(());
        }
        Err(Error::bad_request(format!(
            "date {} is outside the feed, which covers {} to {}",
            iso(day),
            iso(self.first_day),
            iso(self.last_day)
        )))
    }

    fn runs(&self, trip: &Trip, day: i32) -> bool {
        let Some(s) = trip.service else { return false };
        day >= self.first_day && self.services[s as usize].get((day - self.first_day) as usize)
    }

    /// The calls at a stop (and its platforms) from `after` seconds past midnight of `day`, in
    /// time order: the day's own trips, and the day before's that run past midnight.
    pub fn board(
        &self,
        feed: &str,
        stop: &str,
        day: i32,
        after: u32,
        limit: usize,
        board: Board,
    ) -> Result<Vec<BoardCall>> {
        let s = self.stop(stop, feed)?;
        self.check_day(day)?;
        let mut stops = vec![s];
        let mut k = 0;
        while k < stops.len() {
            stops.extend(self.children[stops[k] as usize].iter().copied());
            k += 1;
        }
        let lists = match board {
            Board::Departures => &self.departures,
            Board::Arrivals => &self.arrivals,
        };
        // (time since `day`'s midnight, service day, call, stop)
        let mut found: Vec<(u32, i32, Call, u32)> = Vec::new();
        for &st in &stops {
            let calls = &lists[st as usize];
            for (service_day, offset) in [(day, 0u32), (day - 1, 86_400)] {
                let from = calls.partition_point(|c| c.time < after + offset);
                let mut taken = 0;
                for c in &calls[from..] {
                    if taken == limit {
                        break;
                    }
                    if self.runs(&self.trips[c.trip as usize], service_day) {
                        found.push((c.time - offset, service_day, *c, st));
                        taken += 1;
                    }
                }
            }
        }
        // Ties in time go by trip id: the same order whatever the files' order.
        found.sort_unstable_by(|a, b| {
            let id = |f: &(u32, i32, Call, u32)| self.trips[f.2.trip as usize].id.as_str();
            (a.0, id(a)).cmp(&(b.0, id(b)))
        });
        found.truncate(limit);
        Ok(found
            .into_iter()
            .map(|(since, service_day, c, st)| self.call(c, st, service_day, day, since))
            .collect())
    }

    fn call(&self, c: Call, stop: u32, service_day: i32, day: i32, since: u32) -> BoardCall {
        let trip = &self.trips[c.trip as usize];
        let route = trip.route.map(|r| &self.routes[r as usize]);
        let at_day = day + (since / 86_400) as i32;
        BoardCall {
            trip_id: trip.id.clone(),
            route_id: route.map(|r| r.id.clone()),
            route_short_name: route.and_then(|r| r.short_name.clone()),
            route_long_name: route.and_then(|r| r.long_name.clone()),
            route_color: route.and_then(|r| r.color.clone()),
            route_text_color: route.and_then(|r| r.text_color.clone()),
            headsign: trip.headsign.clone(),
            direction_id: trip.direction,
            stop_id: self.stops[stop as usize].id.clone(),
            stop_sequence: c.seq,
            service_date: iso(service_day),
            scheduled: clock(c.time),
            seconds: c.time,
            at: format!("{}T{}", iso(at_day), clock(since % 86_400)),
        }
    }

    /// The stops a route serves, a direction at a time.
    pub fn route_stops(
        &self,
        feed: &str,
        route: &str,
    ) -> Result<(Vec<RouteDirection>, Option<i64>)> {
        let r = self.route_index.get(route).copied().ok_or_else(|| {
            let some: Vec<&str> = self.routes.iter().take(8).map(|r| r.id.as_str()).collect();
            Error::NotFound(format!(
                "no route `{route}` in feed `{feed}` (routes.txt has {} routes, such as {})",
                self.routes.len(),
                some.join(", ")
            ))
        })?;
        let route = &self.routes[r as usize];
        let mut by_direction: std::collections::BTreeMap<Option<i64>, Vec<&Trip>> =
            Default::default();
        for &t in &route.trips {
            let trip = &self.trips[t as usize];
            by_direction.entry(trip.direction).or_default().push(trip);
        }
        let directions = by_direction
            .into_iter()
            .map(|(direction, trips)| self.direction(direction, &trips))
            .collect();
        Ok((directions, route.kind))
    }

    fn direction(&self, direction: Option<i64>, trips: &[&Trip]) -> RouteDirection {
        let mut patterns: HashMap<&[u32], usize> = HashMap::new();
        let mut headsigns: HashMap<&str, usize> = HashMap::new();
        for t in trips {
            *patterns.entry(t.stops.as_slice()).or_default() += 1;
            if let Some(h) = &t.headsign {
                *headsigns.entry(h.as_str()).or_default() += 1;
            }
        }
        // Most trips, then most stops, then the first in stop order: the same answer each time.
        let best = patterns
            .iter()
            .filter(|(p, _)| !p.is_empty())
            .max_by(|a, b| (a.1, a.0.len(), b.0).cmp(&(b.1, b.0.len(), a.0)));
        let (pattern, pattern_trips) = best.map_or((&[][..], 0), |(p, n)| (*p, *n));
        let headsign = headsigns
            .into_iter()
            .max_by(|a, b| (a.1, b.0).cmp(&(b.1, a.0)))
            .map(|(h, _)| h.to_string());
        RouteDirection {
            direction_id: direction,
            headsign,
            trips: trips.len(),
            pattern_trips,
            other_patterns: patterns
                .len()
                .saturating_sub(usize::from(pattern_trips > 0)),
            stops: pattern
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    let stop = &self.stops[s as usize];
                    RouteStop {
                        sequence: i as u32 + 1,
                        stop_id: stop.id.clone(),
                        stop_name: stop.name.clone(),
                        stop_lat: stop.lat,
                        stop_lon: stop.lon,
                    }
                })
                .collect(),
        }
    }

    /// The route's names, for a response's metadata.
    pub fn route_names(&self, route: &str) -> (Option<String>, Option<String>) {
        self.route_index
            .get(route)
            .map(|&r| {
                let r = &self.routes[r as usize];
                (r.short_name.clone(), r.long_name.clone())
            })
            .unwrap_or_default()
    }
}

/// A day since 1970-01-01 as `YYYY-MM-DD`.
pub fn iso(day: i32) -> String {
    date_of_days(i64::from(day)).map_or_else(String::new, |d| d.to_string())
}

/// Seconds since midnight of `HH:MM` or `HH:MM:SS` (hours up to 47, for a service day's
/// times past midnight).
pub fn parse_after(text: &str) -> Result<u32> {
    let t = text.trim();
    let full = if t.matches(':').count() == 1 {
        format!("{t}:00")
    } else {
        t.to_string()
    };
    match crate::dataset::gtfs::seconds(&full) {
        Some(s) if s < 48 * 3600 => Ok(s),
        _ => Err(Error::bad_request(format!(
            "after=`{text}` is not a time; write HH:MM or HH:MM:SS, e.g. after=08:30"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_times() {
        let mut d = Days::new(130);
        d.set(0, true);
        d.set(129, true);
        d.set(64, true);
        d.set(64, false);
        assert!(d.get(0) && d.get(129) && !d.get(64) && !d.get(1) && !d.get(500));
        assert_eq!(parse_after("08:30").unwrap(), 30_600);
        assert_eq!(parse_after("25:00:10").unwrap(), 90_010);
        assert!(parse_after("8h30").is_err());
        assert!(parse_after("48:00").is_err());
    }
}
