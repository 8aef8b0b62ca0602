"""Self-billed e-invoices (DESIGN.md section 7b; issue 21): what a UBL 2.1 invoice per Peppol BIS Self-Billing 3.0
says of a payment authorization, and what stops one being issued.

Every payment authorization is a self-billed invoice: the organization (the buyer, ``AccountingCustomerParty``)
issues it for the contractor (the seller, ``AccountingSupplierParty``). Its amounts come from the authorization, in
integer minor units, with the one rounding rule of domain.money:

- **What it invoices** is what the authorization makes payable now: its gross less the retainage it withholds,
  which is invoiced again by the retainage release that pays it. So the invoices of an engagement add up to what
  it pays, and no amount is taxed twice. The retainage appears as a document-level allowance on the gross.
- **VAT**: the amounts an engagement agrees are what the organization pays, VAT included where the contractor
  charges it (category S). The taxable amount is round_half_up(paid × 10000 / (10000 + rate)), the VAT
  round_half_up(taxable × rate / 10000) (EN 16931 BR-CO-17), and the unit or so left by the two roundings is the
  invoice's rounding amount (BT-114), so that the amount due is exactly what is paid. Zero-rated, exempt, reverse
  charge and not-subject contractors invoice the amount itself with no VAT.
- **Decimals**: EN 16931 allows at most two decimals in any amount (BR-DEC). In a currency with three (KWD, BHD…)
  an amount with a non-zero third decimal cannot be written; ``einvoice_problems`` says so and nothing is issued.

The official rules (OpenPEPPOL's PEPPOL-EN16931-UBL-SB.sch and CEN's EN16931-UBL.sch 1.3.13) are run against the
documents by the tests (tests/kit/peppol.py); ``einvoice_problems`` is what the product checks before issuing, in
words that say what to fix and where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from backoffice.domain.currency import minor_units
from backoffice.domain.endpoint_ids import endpoint_problem
from backoffice.domain.money import allocate, round_half_up

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:selfbilling:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:selfbilling:01:1.0"
INVOICE_TYPE_CODE = "389"  # self-billed invoice (UNCL1001)
CREDIT_NOTE_TYPE_CODE = "261"  # self-billed credit note
MAX_DECIMALS = 2  # EN 16931 BR-DEC-*: no amount of the document has more
CREDIT_NOTE_SUFFIX = "-CN"

# Peppol's Electronic Address Scheme codes (PEPPOL-EN16931-CL008, the code list of the 2025 March release) that an
# endpoint may name: the form offers these, the database keeps any four digits.
ENDPOINT_SCHEMES: dict[str, str] = {
    "0002": "SIRENE (FR)",
    "0007": "Organisationsnummer (SE)",
    "0009": "SIRET (FR)",
    "0037": "LY-tunnus (FI)",
    "0060": "DUNS number",
    "0088": "GLN (Global Location Number)",
    "0096": "DANISH CHAMBER OF COMMERCE (DK)",
    "0106": "KvK number (NL)",
    "0130": "EU directorates-general",
    "0135": "SIA object identifier (IT)",
    "0142": "SECETI object identifier (IT)",
    "0151": "Australian Business Number (AU)",
    "0183": "Swiss Unique Business Identification Number (CH)",
    "0184": "DIGSTORG (DK)",
    "0188": "Corporate number (JP)",
    "0190": "OIN (NL)",
    "0191": "Centre of Registers and Information Systems (EE)",
    "0192": "Organisasjonsnummer (NO)",
    "0193": "UBL.BE party identifier (BE)",
    "0195": "Singapore UEN (SG)",
    "0196": "Kennitala (IS)",
    "0198": "ERSTORG (DK)",
    "0199": "Legal Entity Identifier (LEI)",
    "0200": "Legal entity code (LT)",
    "0201": "Codice Univoco Unità Organizzativa iPA (IT)",
    "0202": "Indirizzo di Posta Elettronica Certificata (IT)",
    "0204": "Leitweg-ID (DE)",
    "0208": "Numero d'entreprise / Ondernemingsnummer (BE)",
    "0209": "GS1 identification keys",
    "0210": "Codice fiscale (IT)",
    "0211": "Partita IVA (IT)",
    "0212": "Finnish organization identifier (FI)",
    "0213": "Finnish VAT number (FI)",
    "0215": "Net service ID (FI)",
    "0216": "OVTcode (FI)",
    "0218": "Unified registration number (LV)",
    "0221": "Registered Number of Qualified Invoice Issuer (JP)",
    "0230": "National e-invoicing framework (MY)",
    "0235": "UAE Tax Identification Number (AE)",
    "9901": "Danish CVR number (DK)",
    "9906": "Partita IVA, legacy (IT)",
    "9907": "Codice fiscale, legacy (IT)",
    "9910": "Hungary VAT number (HU)",
    "9913": "Business Registers Network",
    "9914": "Österreichische Umsatzsteuer-Identifikationsnummer (AT)",
    "9915": "Österreichisches Verwaltungs bzw. Organisationskennzeichen (AT)",
    "9918": "SOCIETY FOR WORLDWIDE INTERBANK FINANCIAL, TELECOMMUNICATION S.W.I.F.T",
    "9919": "Kennziffer des Unternehmensregisters (AT)",
    "9920": "Agencia Española de Administración Tributaria (ES)",
    "9922": "Andorra VAT number (AD)",
    "9923": "Albania VAT number (AL)",
    "9924": "Bosnia and Herzegovina VAT number (BA)",
    "9925": "Belgium VAT number (BE)",
    "9926": "Bulgaria VAT number (BG)",
    "9927": "Switzerland VAT number (CH)",
    "9928": "Cyprus VAT number (CY)",
    "9929": "Czech Republic VAT number (CZ)",
    "9930": "Germany VAT number (DE)",
    "9931": "Estonia VAT number (EE)",
    "9932": "United Kingdom VAT number (GB)",
    "9933": "Greece VAT number (GR)",
    "9934": "Croatia VAT number (HR)",
    "9935": "Ireland VAT number (IE)",
    "9936": "Liechtenstein VAT number (LI)",
    "9937": "Lithuania VAT number (LT)",
    "9938": "Luxemburg VAT number (LU)",
    "9939": "Latvia VAT number (LV)",
    "9940": "Monaco VAT number (MC)",
    "9941": "Montenegro VAT number (ME)",
    "9942": "Macedonia, the former Yugoslav Republic of VAT number (MK)",
    "9943": "Malta VAT number (MT)",
    "9944": "Netherlands VAT number (NL)",
    "9945": "Poland VAT number (PL)",
    "9946": "Portugal VAT number (PT)",
    "9947": "Romania VAT number (RO)",
    "9948": "Serbia VAT number (RS)",
    "9949": "Slovenia VAT number (SI)",
    "9950": "Slovakia VAT number (SK)",
    "9951": "San Marino VAT number (SM)",
    "9952": "Turkey VAT number (TR)",
    "9953": "Holy See (Vatican City State) VAT number (VA)",
    "9957": "French VAT number (FR)",
    "9959": "Employer Identification Number (EIN, USA)",
}


class VatCategory(StrEnum):
    """The contractor's VAT category (UNCL5305, as EN 16931 uses it)."""

    STANDARD = "S"
    ZERO = "Z"
    EXEMPT = "E"
    REVERSE_CHARGE = "AE"
    NOT_SUBJECT = "O"

    @property
    def label(self) -> str:
        return {
            "S": "Standard rate",
            "Z": "Zero rated",
            "E": "Exempt from VAT",
            "AE": "Reverse charge",
            "O": "Not subject to VAT",
        }[self.value]

    @property
    def charges_vat(self) -> bool:
        """Whether the invoice charges VAT at a rate above zero (only the standard rate does)."""
        return self is VatCategory.STANDARD

    @property
    def exemption(self) -> tuple[str, str] | None:
        """The exemption reason code and text the rules want with this category (BR-E-10, BR-AE-10, BR-O-10)."""
        return {
            "E": ("VATEX-EU-132", "Exempt from VAT"),
            "AE": ("VATEX-EU-AE", "Reverse charge"),
            "O": ("VATEX-EU-O", "Not subject to VAT"),
        }.get(self.value)

    @property
    def states_rate(self) -> bool:
        """Whether the document states a rate (BR-O-05 and its kin: a not-subject line states none)."""
        return self is not VatCategory.NOT_SUBJECT


def vat_rate_problem(category: str, vat_bps: int) -> str | None:
    """What is wrong with a contractor's VAT rate for its category, in words for the rate's field; None when fine."""
    if category == "":
        return None if vat_bps == 0 else "Choose the VAT category this rate is for."
    if VatCategory(category).charges_vat:
        return None if 0 < vat_bps <= 10_000 else "A standard rate is above 0% and at most 100%."
    return None if vat_bps == 0 else f"{VatCategory(category).label} charges no VAT: the rate is 0%."


@dataclass(frozen=True)
class Party:
    """What an e-invoice says of the buyer (the organization) or the seller (a contractor): its profile."""

    legal_name: str
    street: str
    city: str
    postal_code: str
    country: str  # ISO 3166-1 alpha-2
    tax_id: str = ""
    tax_scheme: str = "VAT"  # VAT: a VAT identifier; TAX: another tax registration identifier
    endpoint_scheme: str = ""
    endpoint_id: str = ""
    email: str = ""

    @property
    def vat_id(self) -> str:
        return self.tax_id if self.tax_scheme == "VAT" else ""


# What missing_details says of an endpoint id the official rules refuse (domain.endpoint_ids).
VALID_ENDPOINT = "a Peppol endpoint id the rules accept"
_REQUIRED = (("legal_name", "legal name"), ("street", "street"), ("city", "city"), ("country", "country"))


def missing_details(party: Party) -> list[str]:
    """The details an e-invoice needs that the party's profile lacks, in words ("street", "Peppol endpoint (scheme
    and id)"): the profile forms show them beside the fields, ``party_problems`` in a sentence."""
    missing = [words for field, words in _REQUIRED if not getattr(party, field).strip()]
    if not (party.endpoint_scheme and party.endpoint_id):
        missing.append("Peppol endpoint (scheme and id)")
    elif endpoint_problem(party.endpoint_scheme, party.endpoint_id):
        # Saved before the form checked it: the official rules refuse the whole e-invoice for it.
        missing.append(VALID_ENDPOINT)
    return missing


def party_problems(party: Party | None, who: str) -> list[str]:
    """What the party's profile lacks for an e-invoice, each saying where to fix it (``who``: "the organization's
    e-invoicing details (Settings → E-invoicing)" or "Acme's e-invoicing details")."""
    if party is None:
        return [f"No e-invoicing details yet: add {who}."]
    missing = [words for words in missing_details(party) if words != VALID_ENDPOINT]
    found = [f"Missing {', '.join(missing)} in {who}."] if missing else []
    problem = endpoint_problem(party.endpoint_scheme, party.endpoint_id) if party.endpoint_id else None
    if problem:
        found.append(f"The Peppol endpoint id {party.endpoint_id} in {who} is one the Peppol rules refuse. {problem}")
    return found


def vat_problems(
    seller: Party, buyer: Party, category: str, vat_bps: int, seller_who: str, buyer_who: str
) -> list[str]:
    """What the parties' tax ids lack for the contractor's VAT category (BR-S-02, BR-Z-02, BR-E-02, BR-AE-02/03)."""
    if category == "":
        return [f"No VAT category yet: choose one in {seller_who}."]
    rate = vat_rate_problem(category, vat_bps)
    if rate:
        return [f"{rate} ({seller_who})"]
    found = []
    if VatCategory(category) is VatCategory.NOT_SUBJECT:
        return found
    if not seller.tax_id:
        found.append(f"{VatCategory(category).label} needs the contractor's VAT or tax id: add it in {seller_who}.")
    if VatCategory(category) is VatCategory.REVERSE_CHARGE:
        if seller.tax_id and not seller.vat_id:
            found.append(f"Reverse charge needs the contractor's VAT id (scheme VAT): set it in {seller_who}.")
        if not buyer.vat_id:
            found.append(f"Reverse charge needs the organization's VAT id: add it in {buyer_who}.")
    return found


def document_scale(currency: str) -> int:
    """Minor units per unit of the document's last decimal: 1, or 10 in a currency with three decimals."""
    return 10 ** max(0, minor_units(currency) - MAX_DECIMALS)


def decimals_problem(currency: str, amounts: list[int]) -> str | None:
    """None when every amount can be written with EN 16931's two decimals at most."""
    scale = document_scale(currency)
    if scale == 1 or all(a % scale == 0 for a in amounts):
        return None
    return (
        f"EN 16931 allows at most {MAX_DECIMALS} decimals in an e-invoice's amounts, and {currency} amounts here have a"
        f" third: this authorization cannot be issued as a Peppol e-invoice (its PDF self-billed invoice stands)."
    )


@dataclass(frozen=True)
class Item:
    """One thing the invoice bills, VAT included where charged, in minor units: a milestone, a task, an advance."""

    name: str
    amount_minor: int
    description: str = ""


@dataclass(frozen=True)
class Line:
    name: str
    description: str
    amount: int  # without VAT, in the document's units (minor units / document_scale)


@dataclass(frozen=True)
class Totals:
    """An e-invoice's amounts in the document's units (minor units / document_scale): BT-106 to BT-115."""

    lines: tuple[Line, ...]
    allowance: int  # the retainage withheld, without VAT (BT-107)
    taxable: int  # BT-109 and BT-116
    vat: int  # BT-110 and BT-117
    rounding: int  # BT-114
    payable: int  # BT-115: exactly what the authorization pays

    @property
    def line_total(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def tax_inclusive(self) -> int:
        return self.taxable + self.vat


def without_vat(amount: int, vat_bps: int) -> int:
    """The taxable part of a VAT-inclusive ``amount``: round_half_up(amount × 10000 / (10000 + rate))."""
    return round_half_up(amount * 10_000, 10_000 + vat_bps)


def totals(items: list[Item], withheld_minor: int, category: str, vat_bps: int, currency: str) -> Totals:
    """The e-invoice's amounts for ``items`` (VAT included where charged) less ``withheld_minor`` of retainage.
    The amount due is exactly Σ items − withheld; ValueError when a currency's amounts need a third decimal
    (``decimals_problem`` says so first)."""
    if (
        not items
        or any(i.amount_minor < 0 for i in items)
        or not 0 <= withheld_minor <= sum(i.amount_minor for i in items)
    ):
        raise ValueError("an e-invoice bills one item or more, and withholds at most what they add up to")
    if decimals_problem(currency, [i.amount_minor for i in items] + [withheld_minor]):
        raise ValueError(f"{currency} amounts with a third decimal cannot be written in an EN 16931 e-invoice")
    scale = document_scale(currency)
    amounts = [i.amount_minor // scale for i in items]
    withheld = withheld_minor // scale
    gross, paid = sum(amounts), sum(amounts) - withheld
    rate = vat_bps if VatCategory(category).charges_vat else 0
    gross_taxable, taxable = without_vat(gross, rate), without_vat(paid, rate)
    parts = allocate(gross_taxable, amounts) if gross else [0] * len(amounts)
    vat = round_half_up(taxable * rate, 10_000)
    lines = tuple(Line(i.name, i.description, part) for i, part in zip(items, parts, strict=True))
    return Totals(lines, gross_taxable - taxable, taxable, vat, paid - taxable - vat, paid)


def to_decimal(amount: int, currency: str) -> str:
    """An amount in the document's units as the XML writes it: "1234.50", "1234" (JPY), "-0.01"."""
    decimals = min(minor_units(currency), MAX_DECIMALS)
    sign, amount = ("-", -amount) if amount < 0 else ("", amount)
    if decimals == 0:
        return f"{sign}{amount}"
    return f"{sign}{amount // 10**decimals}.{amount % 10**decimals:0{decimals}d}"


def to_percent(bps: int) -> str:
    """A rate in basis points as the XML writes it: 2000 → "20", 770 → "7.7", 825 → "8.25"."""
    whole, frac = divmod(bps, 100)
    return f"{whole}" if frac == 0 else f"{whole}.{frac:02d}".rstrip("0")


def credit_note_number(invoice_number: str) -> str:
    return f"{invoice_number}{CREDIT_NOTE_SUFFIX}"


_DOCUMENT_ID = re.compile(r"TX-[0-9A-F]{20}")


def document_ids_in(content: bytes) -> list[str]:
    """The data room's document ids (TX-…) a file names in its bytes, in order, once each: every PDF and UBL the
    organization issues carries its own (in the PDF's title and text, in the UBL's first note)."""
    seen: dict[str, None] = {}
    for match in _DOCUMENT_ID.finditer(content.decode("latin-1")):
        seen.setdefault(match.group(0))
    return list(seen)
