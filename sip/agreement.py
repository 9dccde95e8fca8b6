"""Reading submission agreements and delivery manifests (XML validated against our own XSDs).

Agreements: ``schemas/submission-agreement.xsd``. Delivery manifests: an optional ``delivery.xml``
(``schemas/delivery-manifest.xsd``) at the top of a delivery, or the bag-info fields
``Submission-Agreement`` (``ID`` or ``ID/vN``), ``SIP-Identifier`` and ``SIP-Sequence``.
XML is parsed without entities, DTDs or network access.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from lxml import etree

from oais.domain.agreement import (
    DEFAULT_AGREEMENT_ID,
    Agreement,
    DeliveryManifest,
    Mending,
    Requirement,
)
from oais.domain.issues import Issue, IssueCode, error

AGREEMENT_NS = "urn:oais-archive:submission-agreement:1"
MANIFEST_NS = "urn:oais-archive:delivery-manifest:1"
MANIFEST_NAME = "delivery.xml"


class AgreementError(ValueError):
    """An agreement document is not valid; ``issues`` say where."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


_SCHEMAS: dict[str, etree.XMLSchema] = {}


def _schema(name: str) -> etree.XMLSchema:
    if name not in _SCHEMAS:
        path = Path(str(resources.files("schemas") / name))
        _SCHEMAS[name] = etree.XMLSchema(etree.parse(str(path), _parser()))
    return _SCHEMAS[name]


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _parse(data: bytes, schema: str, name: str, code: IssueCode) -> etree._Element:
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise AgreementError([error(code, f"not well-formed XML: {exc}", name)]) from None
    if root.getroottree().docinfo.internalDTD is not None or b"<!ENTITY" in data:
        raise AgreementError([error(code, "DOCTYPE and entity declarations are not accepted", name)])
    xsd = _schema(schema)
    if not xsd.validate(root):
        raise AgreementError([error(code, f"line {e.line}: {e.message}", name) for e in xsd.error_log])
    return root


def parse_agreement(data: bytes, name: str = "agreement.xml") -> Agreement:
    root = _parse(data, "submission-agreement.xsd", name, IssueCode.AGREEMENT_INVALID)
    ns = {"a": AGREEMENT_NS}

    def texts(xpath: str) -> tuple[str, ...]:
        return tuple(e.text.strip() for e in root.findall(xpath, ns) if e.text)

    limits = root.find("a:limits", ns)
    checks = root.find("a:checks", ns)
    formats = root.find("a:formats", ns)
    algorithms = root.find("a:checksumAlgorithms", ns)
    title = root.find("a:title", ns)

    def limit(attr: str) -> int | None:
        return int(limits.get(attr)) if limits is not None and limits.get(attr) else None

    return Agreement(
        identifier=root.get("id", ""),
        version=int(root.get("version", "1")),
        title=title.text.strip() if title is not None and title.text else None,
        producer=texts("a:producer")[0],
        contacts=tuple((e.text.strip(), e.get("email")) for e in root.findall("a:contact", ns) if e.text),
        datasets=texts("a:datasets/a:dataset"),
        accepted_formats=frozenset(texts("a:formats/a:format")) if formats is not None else None,
        required_keywords=texts("a:requiredKeywords/a:keyword"),
        checksum_algorithms=(frozenset(texts("a:checksumAlgorithms/a:algorithm"))
                             if algorithms is not None else None),
        max_file_bytes=limit("maxFileBytes"),
        max_delivery_bytes=limit("maxDeliveryBytes"),
        max_files=limit("maxFiles"),
        virus_check=Requirement(checks.get("virus", "if-available") if checks is not None else "if-available"),
        fitsverify=Requirement(checks.get("fitsverify", "if-available") if checks is not None
                               else "if-available"),
        mending=frozenset(Mending(t) for t in texts("a:mending/a:allow")),
    )


def default_agreement_xml() -> bytes:
    """The agreement ``oais init`` records: every check, any format, no required keyword, no mending."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<agreement xmlns="{AGREEMENT_NS}" id="{DEFAULT_AGREEMENT_ID}" version="1">
  <title>Default agreement: applies when a delivery names none</title>
  <producer>*</producer>
  <datasets><dataset>*</dataset></datasets>
  <checks virus="if-available" fitsverify="if-available"/>
</agreement>
""".encode()


def read_delivery_manifest(root: Path, bag_info: dict[str, str] | None = None) -> tuple[DeliveryManifest, list[Issue]]:
    """The delivery's own statement: ``delivery.xml`` if present, else bag-info fields."""
    path = root / MANIFEST_NAME
    if path.is_file() and not path.is_symlink():
        try:
            doc = _parse(path.read_bytes(), "delivery-manifest.xsd", MANIFEST_NAME,
                         IssueCode.DELIVERY_MANIFEST_INVALID)
        except AgreementError as exc:
            return DeliveryManifest(source=MANIFEST_NAME), exc.issues
        ns = {"d": MANIFEST_NS}
        sip = doc.find("d:sip", ns)
        agr = doc.find("d:agreement", ns)

        def text(tag: str) -> str | None:
            e = doc.find(f"d:{tag}", ns)
            return e.text.strip() if e is not None and e.text and e.text.strip() else None

        return DeliveryManifest(
            sip_id=sip.get("id") if sip is not None else None,
            sequence=int(sip.get("sequence")) if sip is not None and sip.get("sequence") else None,
            project=sip.get("project") if sip is not None else None,
            agreement_id=agr.get("id") if agr is not None else None,
            agreement_version=int(agr.get("version")) if agr is not None and agr.get("version") else None,
            producer=text("producer"), dataset=text("dataset"), source=MANIFEST_NAME), []
    info = bag_info or {}
    ref = info.get("Submission-Agreement")
    agreement_id, version = (ref, None)
    issues: list[Issue] = []
    if ref and "/v" in ref:
        agreement_id, _, v = ref.rpartition("/v")
        version = int(v) if v.isdigit() else None
    seq = info.get("SIP-Sequence")
    if seq is not None and not seq.strip().isdigit():
        issues.append(error(IssueCode.DELIVERY_MANIFEST_INVALID, f"SIP-Sequence is not a number: {seq!r}",
                            "bag-info.txt"))
        seq = None
    return DeliveryManifest(sip_id=info.get("SIP-Identifier"), sequence=int(seq) if seq else None,
                            agreement_id=agreement_id, agreement_version=version,
                            source="bag-info.txt" if info else None), issues


def read_bag_info_fields(root: Path) -> dict[str, str]:
    """The few bag-info fields read before validation (agreement, SIP id); tolerant of bad lines.

    The full, strict reading of bag-info.txt is part of BagIt validation.
    """
    path = root / "bag-info.txt"
    if not path.is_file() or path.is_symlink():
        return {}
    text = path.read_bytes()[:1 << 20].decode("utf-8", "replace")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line and not line[:1].isspace():
            key, _, value = line.partition(":")
            if key.strip() in ("Submission-Agreement", "SIP-Identifier", "SIP-Sequence"):
                fields.setdefault(key.strip(), value.strip())
    return fields
