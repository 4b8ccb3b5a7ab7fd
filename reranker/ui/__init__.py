"""Gradio only: ``common`` (what the tabs share), ``inspector`` (the ranked table's handlers), ``page`` (layout)
and one module per tab.

Imports: every folder below it.
"""
