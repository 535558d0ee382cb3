"""Accounts: the companies identified people name, several people to one (B2B)."""

from __future__ import annotations

import hashlib

from leadflow.simulator.config import SimulationConfig

PEOPLE_PER_ACCOUNT = 3
"""How many identified people share an account (company) on average."""

_WITHOUT_ACCOUNT = 10
"""One identified person in this many names no account (a personal address, a freelancer)."""


class _Accounts:
    """The account each identified person's interactions name, found once per person."""

    def __init__(self, config: SimulationConfig) -> None:
        self.seed = config.seed
        self.count = max(1, (config.leads + config.contacts) // PEOPLE_PER_ACCOUNT)
        self.of: dict[str, str | None] = {}

    def account(self, lead: str | None) -> str | None:
        """The account (company) an identified person's interactions name, B2B: several people
        share one. Chosen from a hash of the seed and the person's id, never drawn from the
        generator, so every other draw (and so the rest of the stream) is the same as without
        accounts; one person in ``_WITHOUT_ACCOUNT`` names none. Visitors name none."""
        if lead is None:
            return None
        if lead in self.of:
            return self.of[lead]
        digest = hashlib.blake2b(f"{self.seed}:{lead}".encode(), digest_size=8).digest()
        number = int.from_bytes(digest, "big")
        found = None
        if number % _WITHOUT_ACCOUNT:
            found = f"acct-{self.seed}-{number // _WITHOUT_ACCOUNT % self.count:05d}"
        self.of[lead] = found
        return found
