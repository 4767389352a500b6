"""`hw2 reproduce`: every part of the report, one ``hw2`` command after another, then report.md:
``options.py``, ``parts.py`` (the parts and profiles), ``manifest.py`` (``part.json``), ``run.py``
(plan, lock, resume, commit). hw2cli/report/ reads what it writes (and imports it, never the reverse).
"""
