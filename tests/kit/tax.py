"""Shared by the tax-form tests: a contractor's user fills in its form through the service, with a key the tests
know; the app uses its own (app.config["TAX_ID_KEY"])."""

from __future__ import annotations

import base64

from backoffice.services import tax_profiles
from kit.engagements import sign_in

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
TIN = "12-3456789"
DIGITS = "123456789"


def w9(**changes) -> tax_profiles.TaxFormInput:
    values = {
        "kind": "w9",
        "name": "Xena X",
        "business_name": "X Studio",
        "classification": "individual",
        "tin_type": "ein",
        "tin": TIN,
        "address_line1": "1 Main St",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "certify": True,
    }
    return tax_profiles.TaxFormInput(**{**values, **changes})


def fill_in(act_as, person, org_id, form=None, *, key: str = KEY):
    session, actor = sign_in(act_as, person, org_id)
    return tax_profiles.save_profile(session, actor, form or w9(), key=key)
