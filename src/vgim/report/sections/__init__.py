"""The sections of the report, one module per section (or pair of related sections); each section function
takes the :class:`~vgim.report.context.ReportContext` and fills a :class:`~vgim.report.page.Section` with
its HTML, its notes and its numbers for ``report.json``."""
