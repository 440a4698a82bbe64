//! The GTFS reference, as far as serving a feed needs it: which files a feed holds, the type of
//! each field (ids stay text, `YYYYMMDD` dates are dates, enumerations are integers whose codes
//! are documented) and which fields are service-day times (`25:10:00` and unpadded `5:30:00`
//! included), which are also stored as seconds since the service day's start.

use super::schema::ColumnType;

/// What a field of a GTFS file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// An id, a name, a URL, a colour: text as published.
    Text,
    Integer,
    Float,
    /// `YYYYMMDD`, stored as a date.
    Date,
    /// `H:MM:SS` since the service day's start, kept as published; `seconds` names the integer
    /// column added beside it.
    Time {
        seconds: &'static str,
    },
    /// An integer code with the meaning of each value.
    Enum(&'static str),
}

impl Field {
    /// The type the field is stored as.
    pub fn column_type(self) -> ColumnType {
        match self {
            Field::Text | Field::Time { .. } => ColumnType::String,
            Field::Integer | Field::Enum(_) => ColumnType::Integer,
            Field::Float => ColumnType::Float,
            Field::Date => ColumnType::Date,
        }
    }

    /// What the column's description says about its values.
    pub fn description(self) -> Option<String> {
        match self {
            Field::Enum(codes) => Some(codes.to_string()),
            Field::Date => Some("a date, published as YYYYMMDD".into()),
            Field::Time { seconds } => Some(format!(
                "time since the service day's start as published (past 24:00:00 for trips running after midnight); `{seconds}` holds it in seconds"
            )),
            _ => None,
        }
    }
}

/// A file of the GTFS reference.
pub struct FileRef {
    pub name: &'static str,
    pub about: &'static str,
    pub fields: &'static [(&'static str, Field)],
}

const PICKUP: Field = Field::Enum(
    "0 regularly scheduled, 1 not available, 2 phone the agency, 3 coordinate with the driver",
);
const CONTINUOUS: Field =
    Field::Enum("0 continuous stopping, 1 none, 2 phone the agency, 3 coordinate with the driver");
const WEEKDAY: Field = Field::Enum("1 the service runs on this day of the week, 0 it does not");

/// The files of the reference that a feed commonly holds.
pub const FILES: &[FileRef] = &[
    FileRef {
        name: "agency.txt",
        about: "Transit agencies whose services the feed describes",
        fields: &[],
    },
    FileRef {
        name: "stops.txt",
        about: "Stops, stations and their entrances, with coordinates",
        fields: &[
            ("stop_lat", Field::Float),
            ("stop_lon", Field::Float),
            (
                "location_type",
                Field::Enum(
                    "0 stop or platform, 1 station, 2 entrance or exit, 3 generic node, 4 boarding area",
                ),
            ),
            (
                "wheelchair_boarding",
                Field::Enum("0 no information, 1 possible for some vehicles, 2 not possible"),
            ),
        ],
    },
    FileRef {
        name: "routes.txt",
        about: "Routes: groups of trips shown to riders as one service",
        fields: &[
            (
                "route_type",
                Field::Enum(
                    "0 tram, 1 subway or metro, 2 rail, 3 bus, 4 ferry, 5 cable tram, 6 aerial lift, 7 funicular, 11 trolleybus, 12 monorail (100-1702: extended types)",
                ),
            ),
            ("route_sort_order", Field::Integer),
            ("continuous_pickup", CONTINUOUS),
            ("continuous_drop_off", CONTINUOUS),
        ],
    },
    FileRef {
        name: "trips.txt",
        about: "Trips: a vehicle's journey along a route on the days of a service",
        fields: &[
            (
                "direction_id",
                Field::Enum("0 one direction, 1 the opposite direction"),
            ),
            (
                "wheelchair_accessible",
                Field::Enum("0 no information, 1 at least one wheelchair, 2 none"),
            ),
            (
                "bikes_allowed",
                Field::Enum("0 no information, 1 at least one bicycle, 2 none"),
            ),
        ],
    },
    FileRef {
        name: "stop_times.txt",
        about: "Times a trip arrives at and leaves each of its stops",
        fields: &[
            (
                "arrival_time",
                Field::Time {
                    seconds: "arrival_seconds",
                },
            ),
            (
                "departure_time",
                Field::Time {
                    seconds: "departure_seconds",
                },
            ),
            ("stop_sequence", Field::Integer),
            ("pickup_type", PICKUP),
            ("drop_off_type", PICKUP),
            ("continuous_pickup", CONTINUOUS),
            ("continuous_drop_off", CONTINUOUS),
            ("shape_dist_traveled", Field::Float),
            (
                "timepoint",
                Field::Enum("0 approximate times, 1 exact times"),
            ),
        ],
    },
    FileRef {
        name: "calendar.txt",
        about: "Services by day of the week between two dates",
        fields: &[
            ("monday", WEEKDAY),
            ("tuesday", WEEKDAY),
            ("wednesday", WEEKDAY),
            ("thursday", WEEKDAY),
            ("friday", WEEKDAY),
            ("saturday", WEEKDAY),
            ("sunday", WEEKDAY),
            ("start_date", Field::Date),
            ("end_date", Field::Date),
        ],
    },
    FileRef {
        name: "calendar_dates.txt",
        about: "Dates a service is added or removed",
        fields: &[
            ("date", Field::Date),
            (
                "exception_type",
                Field::Enum("1 the service is added on this date, 2 it is removed"),
            ),
        ],
    },
    FileRef {
        name: "shapes.txt",
        about: "The paths vehicles travel, as points",
        fields: &[
            ("shape_pt_lat", Field::Float),
            ("shape_pt_lon", Field::Float),
            ("shape_pt_sequence", Field::Integer),
            ("shape_dist_traveled", Field::Float),
        ],
    },
    FileRef {
        name: "frequencies.txt",
        about: "Trips that run at a headway rather than at set times",
        fields: &[
            (
                "start_time",
                Field::Time {
                    seconds: "start_seconds",
                },
            ),
            (
                "end_time",
                Field::Time {
                    seconds: "end_seconds",
                },
            ),
            ("headway_secs", Field::Integer),
            (
                "exact_times",
                Field::Enum("0 frequency-based, 1 schedule-based"),
            ),
        ],
    },
    FileRef {
        name: "transfers.txt",
        about: "Rules for transfers between stops, routes and trips",
        fields: &[
            (
                "transfer_type",
                Field::Enum(
                    "0 recommended, 1 timed, 2 needs a minimum time, 3 not possible, 4 in-seat, 5 in-seat not allowed",
                ),
            ),
            ("min_transfer_time", Field::Integer),
        ],
    },
    FileRef {
        name: "feed_info.txt",
        about: "The feed's publisher, version and validity",
        fields: &[
            ("feed_start_date", Field::Date),
            ("feed_end_date", Field::Date),
        ],
    },
    FileRef {
        name: "fare_attributes.txt",
        about: "Fares",
        fields: &[
            ("price", Field::Float),
            (
                "payment_method",
                Field::Enum("0 paid on board, 1 paid before boarding"),
            ),
            (
                "transfers",
                Field::Enum("0 no transfers, 1 one, 2 two; empty: unlimited"),
            ),
            ("transfer_duration", Field::Integer),
        ],
    },
];

/// The reference entry of a member file, by its name in the archive (any folder ignored).
pub fn file(name: &str) -> Option<&'static FileRef> {
    let base = name.rsplit('/').next().unwrap_or(name);
    FILES.iter().find(|f| f.name == base)
}

/// What the reference says a field of a file is: ids and other named text fields stay text
/// (`service_id` 000001, `route_short_name` 04 keep their zeros); a field it does not name is
/// `None` (its type is inferred).
pub fn field(file: Option<&FileRef>, name: &str) -> Option<Field> {
    if let Some(f) = file.and_then(|f| f.fields.iter().find(|(n, _)| *n == name)) {
        return Some(f.1);
    }
    let text = name.ends_with("_id")
        || name.ends_with("_name")
        || name.ends_with("_code")
        || name.ends_with("_url")
        || name.ends_with("_color")
        || name.ends_with("_headsign")
        || name.ends_with("_desc")
        || matches!(
            name,
            "parent_station" | "zone_id" | "agency_timezone" | "stop_timezone" | "feed_version"
        );
    text.then_some(Field::Text)
}

/// Seconds since the service day's start of a GTFS time: `HH:MM:SS`, hours past 23 allowed,
/// unpadded hours (`5:30:00`) and surrounding spaces accepted.
pub fn seconds(text: &str) -> Option<u32> {
    let mut parts = text.trim().split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || m.len() != 2 || s.len() != 2 || h.is_empty() || h.len() > 3 {
        return None;
    }
    let num = |t: &str| -> Option<u32> {
        t.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (h, m, s) = (num(h)?, num(m)?, num(s)?);
    (m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

/// A `YYYYMMDD` date written `YYYY-MM-DD`, when it is one.
pub fn iso_date(text: &str) -> Option<String> {
    let t = text.trim();
    if t.len() != 8 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let iso = format!("{}-{}-{}", &t[..4], &t[4..6], &t[6..]);
    chrono::NaiveDate::parse_from_str(&iso, "%Y-%m-%d")
        .is_ok()
        .then_some(iso)
}

/// `HH:MM:SS` of seconds since the service day's start (hours may pass 23).
pub fn clock(seconds: u32) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_midnight_and_unpadded() {
        assert_eq!(seconds("00:06:00"), Some(360));
        assert_eq!(seconds("5:30:00"), Some(19_800));
        assert_eq!(seconds(" 25:10:05 "), Some(90_605));
        assert_eq!(seconds("24:00:00"), Some(86_400));
        for bad in [
            "",
            "5:3:00",
            "12:60:00",
            "12:00",
            "aa:00:00",
            "-1:00:00",
            "1:00:00:00",
        ] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
        assert_eq!(clock(90_605), "25:10:05");
        assert_eq!(clock(360), "00:06:00");
    }

    #[test]
    fn compact_dates() {
        assert_eq!(iso_date("20241017").as_deref(), Some("2024-10-17"));
        assert_eq!(iso_date("20240230"), None);
        assert_eq!(iso_date("2024-10-17"), None);
    }

    #[test]
    fn ids_stay_text_and_codes_are_documented() {
        let stop_times = file("gtfs/stop_times.txt");
        assert_eq!(field(stop_times, "trip_id"), Some(Field::Text));
        assert!(matches!(
            field(stop_times, "pickup_type"),
            Some(Field::Enum(d)) if d.contains("1 not available")
        ));
        assert_eq!(
            field(file("calendar_dates.txt"), "service_id"),
            Some(Field::Text)
        );
        assert_eq!(
            field(file("routes.txt"), "route_short_name"),
            Some(Field::Text)
        );
        assert_eq!(field(file("stops.txt"), "platform_count"), None);
    }
}
