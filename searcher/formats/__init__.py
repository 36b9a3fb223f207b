"""Readers, one module per format: html, markdown, rst, jsonl, code (heading paths of source code), outline (those
of Org, AsciiDoc and LaTeX), notebook (Jupyter), pdf, docx, pptx, opendocument (odt, odp), epub, spreadsheet (xlsx,
ods), mail (eml); with their shared types in document.py (Document, UnreadableFileError).

Each turns a file's text or bytes into Documents plus where their parts are (lines, pages, headings, anchors), or
raises UnreadableFileError with a one-line reason. ingest.py walks the folder and dispatches to them by extension.
"""
