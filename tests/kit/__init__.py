"""Helpers shared by the tests, in one package (``tests`` is on ``sys.path``: ``pythonpath`` in pyproject.toml).

- ``kit.web``: pages read as a browser shows them, forms posted with their CSRF token, a signed-in client;
- ``kit.engagements``: engagements built through the services as the people who would build them, acting as a
  person (``sign_in``, ``acting``), racing people, and rows read as the owner role;
- ``kit.milestones``: milestones moved through the real submission and review services;
- ``kit.money`` (integration tests) and ``kit.money_pages`` (web tests): approvals, exports and payments made
  through the services, and the money rows read back;
- ``kit.jobs``: the real job worker run until the queue is empty; ``kit.resend_stub``: a local Resend API;
- ``kit.browser``, ``kit.fresh_site``, ``kit.axe``, ``kit.a11y``: for the Chromium tests of tests/browser.

Never named ``conftest``-anything: pytest imports every folder's conftest under that one module name.
"""

from __future__ import annotations

PASSWORD = "correct horse battery"  # every person of the ``world`` fixture signs in with it
