"""Experiment statistics and readouts, as pure functions over arrays and tables.

The statistics (:mod:`~experiments.estimates`, :mod:`~experiments.cuped`,
:mod:`~experiments.sequential`, :mod:`~experiments.srm`, :mod:`~experiments.multiple`,
:mod:`~experiments.power`) take numpy arrays and return small dataclasses; they know nothing
of stores, servers or pricing. :mod:`~experiments.attribution` turns exposure and event tables
into one row per shopper, :mod:`~experiments.readout` computes the readout of an experiment
from those rows, and :mod:`~experiments.render` writes it as Markdown, JSON or HTML with plots.
The stores and the server feed these functions; nothing here reads a database.
"""
