"""Search quality of optunapi's parallel TPE: the pieces behind ``benchmarks/quality.py``.

``problems`` (the objectives and their optima), ``server`` (a real ``optunapi serve``),
``modes`` (parallel through the server, sequential and random in process), ``verdict`` (the
criteria), ``plots``.
"""
