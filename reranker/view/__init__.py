"""Gradio-free rendering: the ranked table's HTML, the prompt view, plotly charts, and the page's CSS file.
Document text is data: everything rendered here is escaped.

Imports: ``storage``, ``scoring``, ``files``, ``ranking``.
"""
