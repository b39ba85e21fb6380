"""Search quality of optunapi's parallel TPE: the pieces behind ``benchmarks/quality.py``.

``problems`` (the objectives, their optima and tolerances), ``server`` (a real
``optunapi serve``), ``parallel`` (workers through the server), ``inprocess`` (sequential TPE,
random search, and the in-process batch diagnostic), ``runs`` (what a search leaves behind),
``verdict`` (regrets and the criteria), ``plots`` and ``report`` (the markdown table).
See ``docs/search-quality.md``.
"""
