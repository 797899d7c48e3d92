"""The knowledge base: Markdown articles in ``kb_dir``, indexed for full-text search.

``articles`` reads the files (front matter and text, each problem with file:line), ``terms``
turns any text into a safe query, ``index`` keeps the SQLite FTS5 or PostgreSQL full-text index
and searches it, ``holder`` re-indexes when the folder changes, ``suggest`` picks the articles for
a new ticket's acknowledgement.
"""
