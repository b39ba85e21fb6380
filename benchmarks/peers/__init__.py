"""The systems optunapi is compared with, each a program started as a subprocess on port 0.

Each prints one stdout line ``... serving on URL (...)`` once it listens, as ``optunapi serve``
does, so that the harness starts them all the same way.
"""
