"""The reports over the read-model document, for people.

- ``terminal``: ``render_terminal(document, console)``, rich tables (``leadflow report``,
  ``leadflow replay``, the demo);
- ``html``: ``write_html`` / ``render_html``, one self-contained HTML file with its charts;
- ``history``: a lead's lifecycle events in words (the HTML report's sample lead, the audit
  commands);
- ``formatting``: what they share: labels, reading the document defensively, how numbers,
  money, rates and durations are written.

The terminal and HTML reports import ``formatting``, never each other.
"""
