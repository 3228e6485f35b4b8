"""PDF/A-3 rendering of invoices and credit notes, with the Factur-X XML embedded.

Pure rendering (Typst, pypdf, factur-x): no Django here, so the app around it, the
benchmarks and the tests can all call it directly.
"""

from .render import embed_facturx, facturx_xml_from_pdf, render_pdf

__all__ = ["embed_facturx", "facturx_xml_from_pdf", "render_pdf"]
