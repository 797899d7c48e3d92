"""Operations: health, metrics, heartbeats, archive import, privacy export/erase, backup/restore.

Each module is library code over the App and the database; the CLI modules in :mod:`maild.cli`
and the route module :mod:`maild.web.ops` are thin layers over them.
"""
