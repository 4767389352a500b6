"""`hw2 reproduce`: every part of the report, one ``hw2`` command after another, then report.md.

``options.py`` (the command's options), ``parts.py`` (the registry of parts and the two
profiles), ``manifest.py`` (a part folder's ``part.json``), ``run.py`` (the run: plan, lock,
resume, commit); its summary and JSON are hw2cli/report/render.py's (report/ imports this
package, never the reverse).
"""
