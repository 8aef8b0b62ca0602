"""The country codes an e-invoice may name (issue 21): ISO 3166-1 alpha-2 as EN 16931 lists them.

The list is the one the CEN rules check (BR-CL-14 in CEN-EN16931-UBL.sch 1.3.13, vendored under tests/peppol/rules),
less its "1A" (Kosovo), which no profile can hold (the table keeps two capital letters). A VAT identifier starts with
one of them, or with "EL" for Greece (BR-CO-09). tests/unit/test_countries.py holds this list equal to the rules'.
"""

from __future__ import annotations

# As BR-CL-14 spells them, in one string to read against the rule's.
_BR_CL_14 = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY "
    "BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK "
    "FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR "
    "IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK "
    "ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF "
    "TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XI YE YT ZA ZM ZW"
)
COUNTRY_CODES = frozenset(_BR_CL_14.split())
VAT_PREFIXES = COUNTRY_CODES | {"EL"}  # Greece's VAT numbers start EL (BR-CO-09)


def vat_id_problem(vat_id: str) -> str | None:
    """Why ``vat_id`` cannot be a VAT identifier on an e-invoice (BR-CO-09); None when its prefix is fine."""
    if vat_id[:2] in VAT_PREFIXES:
        return None
    return (
        "A VAT number starts with its country's two letters, like DE123456789 (EL for Greece);"
        " for any other tax id choose “Other tax id”."
    )
