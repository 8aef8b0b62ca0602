"""Whether a Peppol endpoint id is one the official rules accept for its scheme (issue 21; DESIGN.md section 7b).

OpenPEPPOL's Self-Billing rules (PEPPOL-EN16931-UBL-SB.sch, PEPPOL-COMMON-R040 to R050, flagged fatal) check the
format and check digits of six schemes wherever an id of that scheme appears: the party's EndpointID, its
PartyIdentification and a CompanyID. The UBL writer names the party by its endpoint in both of the first two, so an
endpoint the rules refuse makes the whole e-invoice refused. ``endpoint_problem`` restates those checks exactly (the
functions u:gln, u:mod11, u:mod97-0208, u:checkSEOrgnr and u:abn at the top of the schematron) so the form refuses
such an id where it is typed, and nothing is issued with one saved before; tests/unit/test_endpoint_ids.py runs the
rules themselves on the same ids to show the two agree. The rules' warnings (Italian codes) refuse nothing and are
not restated.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def _gln_ok(value: str) -> bool:
    """GS1's check digit (u:gln): the digits before the last, from the right, weighted 3, 1, 3, 1…; the rules ask no
    length (the official examples name a 19-digit GLN)."""
    body = [int(c) for c in reversed(value[:-1])]
    weighted = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(body))
    return (10 - weighted % 10) % 10 == int(value[-1])


def _mod11_ok(value: str) -> bool:
    """Norway's organization number (u:mod11): weights 2, 3, 4, 5, 6, 7, 2, 3 from the right of the first eight."""
    body = [int(c) for c in reversed(value[:-1])]
    weighted = sum(d * (i % 6 + 2) for i, d in enumerate(body))
    return int(value) > 0 and (11 - weighted % 11) % 11 == int(value[-1])


def _mod97_ok(value: str) -> bool:
    """Belgium's enterprise number (u:mod97-0208): the last two digits are 97 less the first eight mod 97."""
    return int(value[8:10]) == 97 - int(value[:8]) % 97


def _luhn_ok(value: str) -> bool:
    """Sweden's organization number (u:checkSEOrgnr): the tenth digit is the Luhn check digit of the first nine."""
    total = 0
    for i, d in enumerate(int(c) for c in reversed(value[:9])):
        doubled = d * 2 if i % 2 == 0 else d
        total += doubled % 10 + doubled // 10
    return (10 - total % 10) % 10 == int(value[9])


def _abn_ok(value: str) -> bool:
    """Australia's ABN (u:abn): one off the first digit, weights 10, 1, 3, 5 … 19, the sum a multiple of 89."""
    weights = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)
    digits = [int(value[0]) - 1] + [int(c) for c in value[1:]]
    return sum(w * d for w, d in zip(weights, digits, strict=True)) % 89 == 0


def _digits(value: str, length: int | None = None) -> bool:
    return bool(_DIGITS.fullmatch(value)) and (length is None or len(value) == length)


def endpoint_problem(scheme: str, identifier: str) -> str | None:
    """What is wrong with ``identifier`` as a Peppol endpoint id of ``scheme``, in words that say what to fix; None
    when the official rules accept it, check nothing of that scheme, or there is no id yet (missing_details says
    that)."""
    value = identifier.strip()
    if not value:
        return None
    if scheme == "0088":  # PEPPOL-COMMON-R040
        if not _digits(value):
            return "A GLN is digits only, like 7300010000001."
        if not _gln_ok(value):
            return "This GLN's last digit is not its GS1 check digit: check the number (like 7300010000001)."
    elif scheme == "0192":  # PEPPOL-COMMON-R041
        if not _digits(value, 9):
            return "A Norwegian organization number is 9 digits, without spaces, like 974760673."
        if not _mod11_ok(value):
            return "This organization number's last digit is not its check digit: check the number."
    elif scheme == "0184":  # PEPPOL-COMMON-R042
        if not (len(value) == 10 and value.startswith("DK") and _digits(value[2:])):
            return "A DIGSTORG endpoint is DK and the 8 digits of the CVR number, like DK12345678."
    elif scheme == "0208":  # PEPPOL-COMMON-R043
        if not _digits(value, 10):
            return "A Belgian enterprise number is 10 digits, without BE, dots or spaces, like 0403170701."
        if not _mod97_ok(value):
            return "This enterprise number's last two digits are not its check digits: check the number."
    elif scheme == "0007":  # PEPPOL-COMMON-R049
        if not _digits(value, 10):
            return "A Swedish organization number is 10 digits, without the dash, like 5560360793."
        if not _luhn_ok(value):
            return "This organization number's last digit is not its check digit: check the number."
    elif scheme == "0151":  # PEPPOL-COMMON-R050
        if not _digits(value, 11):
            return "An Australian Business Number is 11 digits, without spaces, like 51824753556."
        if not _abn_ok(value):
            return "This ABN's digits do not add up to a valid ABN: check the number."
    return None
