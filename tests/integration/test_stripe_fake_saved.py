"""The Stripe fake's state on disk (``SavedStripeFake``, for ``backoffice serve --stripe-fake``): what a caller was
told Stripe did is still there after the fake restarts, as it would be at Stripe. No database."""

from __future__ import annotations

import json

import pytest
import stripe

from backoffice.dev.stripe_fake import SavedStripeFake


def test_accounts_transfers_the_balance_and_idempotency_keys_survive_a_restart(tmp_path):
    state = tmp_path / "stripe_fake.json"
    with SavedStripeFake(state) as fake:
        assert fake.restored is False
        fake.set_balance("usd", 50_000)
        client = fake.client()
        account = client.v1.accounts.create(
            params={"type": "express", "capabilities": {"transfers": {"requested": True}}},
            options={"idempotency_key": "account-1"},
        )
        fake.make_ready(account.id)
        transfer = client.v1.transfers.create(
            {"amount": 12_345, "currency": "usd", "destination": account.id}, options={"idempotency_key": "payout-1"}
        )

    with SavedStripeFake(state) as again:
        assert again.restored is True
        client = again.client()
        assert client.v1.accounts.retrieve(account.id).to_dict()["capabilities"]["transfers"] == "active"
        assert client.v1.transfers.retrieve(transfer.id).amount == 12_345
        assert again.balance("usd") == 50_000 - 12_345
        # The same key gets the same transfer back, not a second one; the same account too.
        replayed = client.v1.transfers.create(
            {"amount": 12_345, "currency": "usd", "destination": account.id}, options={"idempotency_key": "payout-1"}
        )
        assert replayed.id == transfer.id and len(again.transfers()) == 1
        assert (
            client.v1.accounts.create(
                params={"type": "express", "capabilities": {"transfers": {"requested": True}}},
                options={"idempotency_key": "account-1"},
            ).id
            == account.id
        )
        with pytest.raises(stripe.IdempotencyError):
            client.v1.transfers.create(
                {"amount": 1, "currency": "usd", "destination": account.id}, options={"idempotency_key": "payout-1"}
            )
        assert [e["type"] for e in again.events()] == ["account.updated", "transfer.created"]


def test_a_file_the_fake_did_not_write_is_refused(tmp_path):
    state = tmp_path / "stripe_fake.json"
    state.write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="not a saved state of this Stripe fake"):
        SavedStripeFake(state).start()
