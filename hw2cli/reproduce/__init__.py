"""`hw2 reproduce`: every part of the report, one ``hw2`` command after another, then report.md.

``options.py`` (the command's options), ``parts.py`` (the registry of parts and the two
profiles), ``manifest.py`` (a part folder's ``part.json``), ``run.py`` (the run: plan, lock,
resume, commit), ``render.py`` (its summary and JSON).
"""
