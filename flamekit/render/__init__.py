"""Render stage: turns analysis results into files a reader opens.

    format      how figures read (percent, points, units, markdown tables, relative links)
    markdown    the analysis report of a run (write_report) and the run comparison
    html        the run index and the differential flame graph (jinja2, templates/)

Imports the analysis stage and the run store; never invoke, targets, capture or print.
"""
