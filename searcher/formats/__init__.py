"""Readers for document formats that are not plain text: one module per format (pdf.py, docx.py).

Each turns a file's bytes into the text of one Document plus where its parts are (pages, headings), or raises
ingest.UnreadableFileError with a one-line reason. ingest.py dispatches to them by file extension.
"""
