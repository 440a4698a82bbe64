"""Checks qanat's timetable answers against an independent computation over the same GTFS files.

Usage: gtfs_check.py BASE_URL FEED_ID FEED_DIR CASES

FEED_DIR holds the feed's .txt files (as published); CASES is a list of `stop_id|date|after|limit`
separated by `;`. For each case, the departures and arrivals qanat serves at
/api/gtfs/FEED_ID/stops/STOP/{departures,arrivals} must equal what this script computes with the
csv module alone: the services running on a date (calendar.txt's weekdays and range, then
calendar_dates.txt's additions and removals), the stop and its child stops (parent_station), the
day's trips and the day before's that run past midnight (times of 24:00:00 and later), a trip's
last stop and pickup_type 1 left out of departures, its first stop and drop_off_type 1 out of
arrivals, ordered by time then trip id. Exits non-zero on the first difference.
"""

import csv
import datetime
import json
import os
import sys
import urllib.parse
import urllib.request


def rows(feed_dir, name):
    path = os.path.join(feed_dir, name)
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return []
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [{k.strip(): (v or "") for k, v in r.items()} for r in csv.DictReader(f)]


def seconds(text):
    h, m, s = text.strip().split(":")
    return int(h) * 3600 + int(m) * 60 + int(s)


def parse_date(text):
    return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))


class Feed:
    def __init__(self, feed_dir):
        self.weekly = {}
        for r in rows(feed_dir, "calendar.txt"):
            days = [r[d] == "1" for d in ("monday", "tuesday", "wednesday", "thursday",
                                          "friday", "saturday", "sunday")]
            self.weekly[r["service_id"]] = (parse_date(r["start_date"]), parse_date(r["end_date"]), days)
        self.exceptions = {}
        for r in rows(feed_dir, "calendar_dates.txt"):
            self.exceptions[(r["service_id"], parse_date(r["date"]))] = r["exception_type"] == "1"
        self.trips = {r["trip_id"]: r for r in rows(feed_dir, "trips.txt")}
        self.routes = {r["route_id"]: r for r in rows(feed_dir, "routes.txt")}
        self.stops = rows(feed_dir, "stops.txt")
        self.calls = {}
        for r in rows(feed_dir, "stop_times.txt"):
            self.calls.setdefault(r["trip_id"], []).append(r)
        for calls in self.calls.values():
            calls.sort(key=lambda c: int(c["stop_sequence"]))

    def runs(self, service, day):
        if (service, day) in self.exceptions:
            return self.exceptions[(service, day)]
        if service in self.weekly:
            start, end, days = self.weekly[service]
            return start <= day <= end and days[day.weekday()]
        return False

    def board(self, stop, day, after, limit, departures):
        stops = {stop}
        grew = True
        while grew:
            more = {s["stop_id"] for s in self.stops if s.get("parent_station") in stops}
            grew = not more <= stops
            stops |= more
        found = []
        for trip_id, calls in self.calls.items():
            trip = self.trips.get(trip_id)
            if trip is None:
                continue
            for i, c in enumerate(calls):
                if c["stop_id"] not in stops:
                    continue
                if departures and (i == len(calls) - 1 or c.get("pickup_type") == "1"):
                    continue
                if not departures and (i == 0 or c.get("drop_off_type") == "1"):
                    continue
                text = c["departure_time"] if departures else c["arrival_time"]
                text = text or (c["arrival_time"] if departures else c["departure_time"])
                if not text.strip():
                    continue
                t = seconds(text)
                for service_day, offset in ((day, 0), (day - datetime.timedelta(days=1), 86400)):
                    if t - offset >= after and self.runs(trip["service_id"], service_day):
                        found.append((t - offset, trip_id, c["stop_id"], service_day.isoformat(), t))
        found.sort(key=lambda f: (f[0], f[1]))
        return found[:limit]


def fetch(url):
    with urllib.request.urlopen(url) as r:
        return json.load(r)


def main():
    base, feed_id, feed_dir, cases = sys.argv[1:5]
    feed = Feed(feed_dir)
    checked = past_midnight = 0
    for case in cases.split(";"):
        stop, date, after, limit = case.split("|")
        day = datetime.date.fromisoformat(date)
        after_s = seconds(after + ":00" if after.count(":") == 1 else after)
        for board in ("departures", "arrivals"):
            expected = feed.board(stop, day, after_s, int(limit), board == "departures")
            query = urllib.parse.urlencode({"date": date, "after": after, "limit": limit})
            url = f"{base}/api/gtfs/{feed_id}/stops/{urllib.parse.quote(stop, safe='')}/{board}?{query}"
            got = fetch(url)["data"]
            got_rows = [(g["trip_id"], g["stop_id"], g["service_date"], g["seconds"]) for g in got]
            want_rows = [(f[1], f[2], f[3], f[4]) for f in expected]
            if got_rows != want_rows:
                for i, (g, w) in enumerate(zip(got_rows, want_rows)):
                    if g != w:
                        print(f"first difference at {i}: qanat {g}, expected {w}")
                        break
                sys.exit(f"{feed_id} {board} {case}: qanat gave {len(got_rows)} calls, expected {len(want_rows)}")
            past_midnight += sum(1 for f in expected if f[3] != date)
            checked += len(expected)
    print(f"{feed_id}: {checked} calls on {len(cases.split(';'))} boards x 2 equal the independent computation "
          f"({past_midnight} of them by trips of the day before, past midnight)")


if __name__ == "__main__":
    main()
