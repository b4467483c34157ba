"""Reporting layer: saved run directories -> tables (ours beside the paper's), figures, PDFs.

Modules: ``paper`` (transcribed numbers), ``suites`` (what each suite varies), ``aggregate``
(run dirs -> DataFrames + problems), ``stats`` (mean ± std, paired CIs, uniformity),
``tables`` / ``figures`` / ``pdf`` (rendering) and ``build`` (the CLI).
"""
