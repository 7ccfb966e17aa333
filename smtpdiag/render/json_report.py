"""JSON renderer: the ``smtpdiag.report/1`` document, as plain text without rich."""

from __future__ import annotations

import json

from smtpdiag.models import Report


def render_json(report: Report) -> str:
    """Serialise ``report`` as indented UTF-8 JSON ending in a newline.

    The document is exactly ``Report.to_dict()``, and
    ``docs/schemas/smtpdiag.report-1.schema.json`` is its JSON Schema.
    """
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
