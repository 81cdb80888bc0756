"""Reports operators can look at: what the WhatsApp channel did over a period and what it
cost, from the database alone (no Rasa, no running server).

``salon report --since 30d --out DIR`` (and the console's manager page) writes a folder:
one PNG per figure (:mod:`salon.report.plots`), one HTML page showing each with its
figures in tables (:mod:`salon.report.page`) and ``report.json``
(:mod:`salon.report.build`). How each figure is counted: :mod:`salon.report.figures`;
what is read: :mod:`salon.report.collect`; the period: :mod:`salon.report.period`.

This package's own import is light: matplotlib comes with :mod:`salon.report.build`.
"""

from salon.report.period import Period, PeriodError, parse_since, parse_until, parse_zone

__all__ = ["Period", "PeriodError", "parse_since", "parse_until", "parse_zone"]
