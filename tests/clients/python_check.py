"""Rows of a dataset read through a client that openapi-python-client generated from the
dataset's own OpenAPI document: typed values, not plain dicts.

usage: python_check.py BASE_URL DIR_HOLDING_THE_GENERATED_PACKAGE
"""

import datetime
import sys

sys.path.insert(0, sys.argv[2])

from events_client import Client  # noqa: E402
from events_client.api.default import get_resource_rows, get_rows  # noqa: E402
from events_client.models import Page, ResourcePage, ResourceRow, Row, SortOrder  # noqa: E402

client = Client(base_url=sys.argv[1], raise_on_unexpected_status=True)

page = get_rows.sync(client=client, code_in="01,971", places_sort=SortOrder.ASC)
assert isinstance(page, Page), page
rows = page.data
assert [type(r) for r in rows] == [Row, Row], rows
first, second = rows
assert first.code == "01" and isinstance(first.code, str), first
assert first.places == 120 and isinstance(first.places, int), first
assert first.montant == 12.5 and isinstance(first.montant, float), first
assert first.jour == datetime.date(2024, 6, 30), first
assert first.ouvert is True, first
assert second.code == "971" and second.places is None and second.ouvert is None, second
assert page.meta.total == 2, page.meta

# Typed parameters: a date and a boolean, serialized by the client.
page = get_rows.sync(client=client, jour_greater=datetime.date(2024, 7, 1), ouvert_exact=False)
assert [r.nom for r in page.data] == ["Fès"], page.data

# The tabular API's route, rows keyed by published header with their 1-based __id.
page = get_resource_rows.sync(client=client, code_exact="2A")
assert isinstance(page, ResourcePage), page
row = page.data[0]
assert isinstance(row, ResourceRow), row
assert row.to_dict()["__id"] == 2 and row.code == "2A", row.to_dict()
print("python client: typed rows OK")
