//! Building a feed version's timetable from its files' tables: stops with their children,
//! routes, trips, the days each service runs (calendar.txt, then calendar_dates.txt's additions
//! and removals), and each stop's calls in time order.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Float64Type, Int64Type,
};

use super::{Call, Days, Route, Stop, Tables, Timetable, Trip};
use crate::error::{Error, Result};
use crate::query::Loaded;
use crate::query::engine::Engine;

/// A table's columns, read whole (the feed's tables are a few hundred thousand rows at most).
struct Columns {
    batches: Vec<RecordBatch>,
}

impl Columns {
    async fn read(engine: &Engine, v: &Loaded, wanted: &[&str]) -> Result<Self> {
        let have: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|w| v.manifest.schema.iter().any(|c| c.name == *w))
            .collect();
        let df = engine.read(Arc::clone(&v.table))?.select_columns(&have)?;
        Ok(Columns {
            batches: engine.collect_all(df).await?,
        })
    }

    /// Each row's value of a column, cast to `to`; `None` when the table has no such column.
    fn column(&self, name: &str, to: &DataType) -> Result<Option<Vec<ArrayRef>>> {
        let mut out = Vec::with_capacity(self.batches.len());
        for b in &self.batches {
            let Some(col) = b.column_by_name(name) else {
                return Ok(None);
            };
            out.push(cast(col, to)?);
        }
        Ok(Some(out))
    }

    fn text(&self, name: &str) -> Result<Vec<Option<String>>> {
        let Some(arrays) = self.column(name, &DataType::Utf8)? else {
            return Ok(vec![None; self.rows()]);
        };
        Ok(arrays
            .iter()
            .flat_map(|a| {
                let a = a.as_string::<i32>();
                (0..a.len()).map(move |i| a.is_valid(i).then(|| a.value(i).to_string()))
            })
            .collect())
    }

    fn int(&self, name: &str) -> Result<Vec<Option<i64>>> {
        self.primitive::<Int64Type>(name)
    }

    fn float(&self, name: &str) -> Result<Vec<Option<f64>>> {
        self.primitive::<Float64Type>(name)
    }

    fn date(&self, name: &str) -> Result<Vec<Option<i32>>> {
        self.primitive::<Date32Type>(name)
    }

    fn primitive<T: ArrowPrimitiveType>(&self, name: &str) -> Result<Vec<Option<T::Native>>> {
        let Some(arrays) = self.column(name, &T::DATA_TYPE)? else {
            return Ok(vec![None; self.rows()]);
        };
        Ok(arrays
            .iter()
            .flat_map(|a| {
                let a = a.as_primitive::<T>();
                (0..a.len()).map(move |i| a.is_valid(i).then(|| a.value(i)))
            })
            .collect())
    }

    fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// A row of stop_times.txt: trip, stop_sequence, stop, arrival and departure seconds, and
/// flags (1: no pickup, 2: no drop-off).
type RawCall = (u32, u32, u32, Option<u32>, Option<u32>, u8);

fn text_or_empty(v: Option<String>) -> String {
    v.unwrap_or_default()
}

impl Timetable {
    /// The timetable of one version of a feed's tables.
    pub async fn build(engine: &Engine, version: &str, t: Tables) -> Result<Timetable> {
        let started = std::time::Instant::now();
        let mut tt = Timetable {
            version: version.to_string(),
            ..Timetable::default()
        };
        tt.read_stops(engine, &t.stops).await?;
        if let Some(routes) = &t.routes {
            tt.read_routes(engine, routes).await?;
        }
        tt.read_services(engine, t.calendar.as_deref(), t.calendar_dates.as_deref())
            .await?;
        tt.read_trips(engine, &t.trips).await?;
        tt.read_calls(engine, &t.stop_times).await?;
        tracing::info!(
            version,
            calls = tt.calls_total,
            ms = started.elapsed().as_millis() as u64,
            "timetable built"
        );
        Ok(tt)
    }

    async fn read_stops(&mut self, engine: &Engine, v: &Loaded) -> Result<()> {
        let c = Columns::read(
            engine,
            v,
            &[
                "stop_id",
                "stop_name",
                "stop_lat",
                "stop_lon",
                "parent_station",
            ],
        )
        .await?;
        let (ids, names, lats, lons, parents) = (
            c.text("stop_id")?,
            c.text("stop_name")?,
            c.float("stop_lat")?,
            c.float("stop_lon")?,
            c.text("parent_station")?,
        );
        for (i, id) in ids.iter().enumerate() {
            let Some(id) = id else { continue };
            self.stop_index.insert(id.clone(), self.stops.len() as u32);
            self.stops.push(Stop {
                id: id.clone(),
                name: text_or_empty(names[i].clone()),
                lat: lats[i],
                lon: lons[i],
                parent: None,
            });
        }
        for (i, parent) in parents.into_iter().enumerate() {
            let (Some(child), Some(parent)) = (&ids[i], parent) else {
                continue;
            };
            if let (Some(&c), Some(&p)) = (self.stop_index.get(child), self.stop_index.get(&parent))
                && c != p
            {
                self.stops[c as usize].parent = Some(p);
            }
        }
        self.children = vec![Vec::new(); self.stops.len()];
        for (i, s) in self.stops.iter().enumerate() {
            if let Some(p) = s.parent {
                self.children[p as usize].push(i as u32);
            }
        }
        Ok(())
    }

    async fn read_routes(&mut self, engine: &Engine, v: &Loaded) -> Result<()> {
        let wanted = [
            "route_id",
            "route_short_name",
            "route_long_name",
            "route_color",
            "route_text_color",
            "route_type",
        ];
        let c = Columns::read(engine, v, &wanted).await?;
        let (ids, short, long, color, text, kind) = (
            c.text("route_id")?,
            c.text("route_short_name")?,
            c.text("route_long_name")?,
            c.text("route_color")?,
            c.text("route_text_color")?,
            c.int("route_type")?,
        );
        for (i, id) in ids.into_iter().enumerate() {
            let Some(id) = id else { continue };
            self.route_index
                .insert(id.clone(), self.routes.len() as u32);
            self.routes.push(Route {
                id,
                short_name: short[i].clone(),
                long_name: long[i].clone(),
                color: color[i].clone().filter(|c| !c.is_empty()),
                text_color: text[i].clone().filter(|c| !c.is_empty()),
                kind: kind[i],
                trips: Vec::new(),
            });
        }
        Ok(())
    }

    /// The days each service runs, as bits from the feed's first date to its last.
    async fn read_services(
        &mut self,
        engine: &Engine,
        calendar: Option<&Loaded>,
        dates: Option<&Loaded>,
    ) -> Result<()> {
        const DAYS: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        let mut weekly = Vec::new();
        if let Some(v) = calendar {
            let mut wanted = vec!["service_id", "start_date", "end_date"];
            wanted.extend(DAYS);
            let c = Columns::read(engine, v, &wanted).await?;
            let (ids, starts, ends) = (
                c.text("service_id")?,
                c.date("start_date")?,
                c.date("end_date")?,
            );
            let days: Vec<Vec<Option<i64>>> =
                DAYS.iter().map(|d| c.int(d)).collect::<Result<_>>()?;
            for (i, id) in ids.into_iter().enumerate() {
                let (Some(id), Some(start), Some(end)) = (id, starts[i], ends[i]) else {
                    continue;
                };
                let mask: [bool; 7] = std::array::from_fn(|d| days[d][i] == Some(1));
                weekly.push((id, start, end, mask));
            }
        }
        let mut exceptions = Vec::new();
        if let Some(v) = dates {
            let c = Columns::read(engine, v, &["service_id", "date", "exception_type"]).await?;
            let (ids, days, kinds) = (
                c.text("service_id")?,
                c.date("date")?,
                c.int("exception_type")?,
            );
            for (i, id) in ids.into_iter().enumerate() {
                if let (Some(id), Some(day), Some(kind)) = (id, days[i], kinds[i]) {
                    exceptions.push((id, day, kind == 1));
                }
            }
        }
        let first = weekly
            .iter()
            .map(|w| w.1)
            .chain(exceptions.iter().map(|e| e.1))
            .min();
        let last = weekly
            .iter()
            .map(|w| w.2)
            .chain(exceptions.iter().map(|e| e.1))
            .max();
        let (Some(first), Some(last)) = (first, last) else {
            return Err(Error::bad_request(
                "the feed's calendar.txt and calendar_dates.txt name no date",
            ));
        };
        self.first_day = first;
        self.last_day = last;
        let span = (last - first + 1).max(0) as usize;
        let service = |id: &str, tt: &mut Timetable| -> usize {
            if let Some(&s) = tt.service_index.get(id) {
                return s as usize;
            }
            tt.service_index
                .insert(id.to_string(), tt.services.len() as u32);
            tt.services.push(Days::new(span));
            tt.services.len() - 1
        };
        for (id, start, end, mask) in weekly {
            let s = service(&id, self);
            for day in start.max(first)..=end.min(last) {
                // 1970-01-01 was a Thursday: day 0 is index 3 from Monday.
                if mask[((day + 3).rem_euclid(7)) as usize] {
                    self.services[s].set((day - first) as usize, true);
                }
            }
        }
        for (id, day, added) in exceptions {
            let s = service(&id, self);
            self.services[s].set((day - first) as usize, added);
        }
        Ok(())
    }

    async fn read_trips(&mut self, engine: &Engine, v: &Loaded) -> Result<()> {
        let wanted = [
            "trip_id",
            "route_id",
            "service_id",
            "trip_headsign",
            "direction_id",
        ];
        let c = Columns::read(engine, v, &wanted).await?;
        let (ids, routes, services, headsigns, directions) = (
            c.text("trip_id")?,
            c.text("route_id")?,
            c.text("service_id")?,
            c.text("trip_headsign")?,
            c.int("direction_id")?,
        );
        let mut unknown_services = std::collections::BTreeMap::<String, usize>::new();
        for (i, id) in ids.into_iter().enumerate() {
            let Some(id) = id else { continue };
            let service = services[i].as_deref().unwrap_or_default();
            let service_ix = self.service_index.get(service).copied();
            if service_ix.is_none() {
                *unknown_services.entry(service.to_string()).or_default() += 1;
            }
            let route = routes[i]
                .as_deref()
                .and_then(|r| self.route_index.get(r).copied());
            let t = self.trips.len() as u32;
            if let Some(r) = route {
                self.routes[r as usize].trips.push(t);
            }
            self.trip_index.insert(id.clone(), t);
            self.trips.push(Trip {
                id,
                route,
                service: service_ix,
                headsign: headsigns[i].clone().filter(|h| !h.is_empty()),
                direction: directions[i],
                stops: Vec::new(),
            });
        }
        for (service, n) in unknown_services {
            self.warnings.push(format!(
                "{n} trips name service_id `{service}`, which neither calendar.txt nor calendar_dates.txt defines: they never run"
            ));
        }
        Ok(())
    }

    /// Each stop's calls, by departure and by arrival: the times in seconds the ingest added,
    /// a call without a time (a stop between timepoints) left out of the boards.
    async fn read_calls(&mut self, engine: &Engine, v: &Loaded) -> Result<()> {
        let wanted = [
            "trip_id",
            "stop_id",
            "stop_sequence",
            "arrival_seconds",
            "departure_seconds",
            "pickup_type",
            "drop_off_type",
        ];
        let c = Columns::read(engine, v, &wanted).await?;
        let (trips, stops, seqs, arr, dep, pickup, drop) = (
            c.text("trip_id")?,
            c.text("stop_id")?,
            c.int("stop_sequence")?,
            c.int("arrival_seconds")?,
            c.int("departure_seconds")?,
            c.int("pickup_type")?,
            c.int("drop_off_type")?,
        );
        let mut rows: Vec<RawCall> = Vec::new();
        for i in 0..trips.len() {
            let trip = trips[i].as_deref().and_then(|t| self.trip_index.get(t));
            let stop = stops[i].as_deref().and_then(|s| self.stop_index.get(s));
            let (Some(&trip), Some(&stop)) = (trip, stop) else {
                self.dangling += 1;
                continue;
            };
            let flags = u8::from(pickup[i] == Some(1)) | (u8::from(drop[i] == Some(1)) << 1);
            let seq = seqs[i].unwrap_or_default().clamp(0, u32::MAX as i64) as u32;
            let secs = |v: Option<i64>| v.and_then(|s| u32::try_from(s).ok());
            rows.push((trip, seq, stop, secs(arr[i]), secs(dep[i]), flags));
        }
        // A trip's calls in sequence order tell its first and last stop.
        rows.sort_unstable_by_key(|r| (r.0, r.1));
        self.departures = vec![Vec::new(); self.stops.len()];
        self.arrivals = vec![Vec::new(); self.stops.len()];
        let mut start = 0;
        while start < rows.len() {
            let trip = rows[start].0;
            let end = start + rows[start..].iter().take_while(|r| r.0 == trip).count();
            let calls = &rows[start..end];
            self.trips[trip as usize].stops = calls.iter().map(|r| r.2).collect();
            for (k, &(trip, seq, stop, arr, dep, flags)) in calls.iter().enumerate() {
                let (first, last) = (k == 0, k + 1 == calls.len());
                // A departure board leaves out where a trip ends or takes no one on; an
                // arrival board where it starts or lets no one off.
                if let Some(t) = dep.or(arr)
                    && !last
                    && flags & 1 == 0
                {
                    self.departures[stop as usize].push(Call { time: t, trip, seq });
                }
                if let Some(t) = arr.or(dep)
                    && !first
                    && flags & 2 == 0
                {
                    self.arrivals[stop as usize].push(Call { time: t, trip, seq });
                }
            }
            self.calls_total += calls.len();
            start = end;
        }
        for list in self.departures.iter_mut().chain(self.arrivals.iter_mut()) {
            list.sort_unstable_by_key(|c| (c.time, c.trip));
            list.shrink_to_fit();
        }
        if self.dangling > 0 {
            self.warnings.push(format!(
                "{} stop_times rows name a trip or stop the feed does not define: left out",
                self.dangling
            ));
        }
        Ok(())
    }
}
