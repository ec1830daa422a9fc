"""CSV answers of the analytics endpoints (`Accept: text/csv` or `?format=csv`).

UTF-8, RFC 4180 (CRLF line ends, quotes where needed), a header row, then one row per entry of
the view's `csv_rows` list (popular items, trends entries, ...) or, when the view names no
list, one row of the whole answer. Columns are the JSON fields in their order; null is an
empty cell. Sent as an attachment named `<csv_name>_<from>_<to>.csv` (`<csv_name>.csv` for an
answer without a window).

A view may name further lists of the same entries in `csv_series` (trends: `previous`, the
entries of the previous period with compare=previous_period). When the answer holds one of
them, every row starts with a `series` column naming the list it comes from (`trends`,
`previous`), the lists one after the other in that order: a spreadsheet filters or pivots on
it, and the rows stay exactly the JSON's entries.

An answer that is one row (user stats, summary) keeps its nested objects as columns named
`<object>_<field>` where they stand: the summary compared with the previous period is one row
with `previous_from`, `previous_views`, …, `change_views`, …, so a spreadsheet has both
periods and the change side by side.
"""

import csv
import io

from rest_framework.renderers import BaseRenderer

SERIES = "series"


def csv_table(data: dict, *, rows_field: str | None, columns: list[str], series: tuple[str, ...] = ()) -> str:
    """The CSV text of an answer: a header, then the entries of `rows_field` (or the answer
    itself as one row, its nested values left out); `columns` names the columns of an empty list.
    The lists of `series` found in the answer follow, each row led by the name of its list."""
    rows = data[rows_field] if rows_field else [_flat(data)]
    if rows:
        columns = [c for c, value in rows[0].items() if not isinstance(value, (dict, list))]
    lists = [rows_field, *(name for name in series if name in data)] if rows_field else [None]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    named = len(lists) > 1
    writer.writerow([SERIES, *columns] if named else columns)
    for name in lists:
        for row in data[name] if name else rows:
            cells = ["" if row.get(c) is None else row[c] for c in columns]
            writer.writerow([name, *cells] if named else cells)
    return out.getvalue()


def _flat(answer: dict) -> dict:
    """The answer with each nested object's fields in its place as `<object>_<field>`."""
    flat = {}
    for key, value in answer.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{field}": inner for field, inner in value.items()})
        else:
            flat[key] = value
    return flat


class AnalyticsCsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        view = renderer_context["view"]
        response = renderer_context["response"]
        rows_field = view.csv_rows
        columns = list(view.OutputSerializer().fields[rows_field].child.fields) if rows_field else []
        text = csv_table(data, rows_field=rows_field, columns=columns, series=view.csv_series)
        # An answer without a window (realtime) is named by the endpoint alone.
        dates = f'_{data["from"]}_{data["to"]}' if "from" in data and "to" in data else ""
        response["Content-Disposition"] = f'attachment; filename="{view.csv_name}{dates}.csv"'
        return text.encode("utf-8")
