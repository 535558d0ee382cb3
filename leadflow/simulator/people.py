"""People: the made-up profiles identified persons give, and the forms they fill in."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic

from contracts.interactions import FormSubmitted
from contracts.vocabulary import FormKind
from leadflow.simulator.draws import _Draws, _Weighted
from leadflow.simulator.sink import _Payload, _Sink

_FIRST = (
    "Anna", "Ben", "Chloe", "David", "Elif", "Felix", "Greta", "Hugo", "Ines", "Jan",
    "Kira", "Lars", "Maya", "Noah", "Olga", "Paul", "Rosa", "Sam", "Tara", "Umar",
    "Vera", "Wim", "Yara", "Zoe", "Luca", "Nina", "Omar", "Petra", "Rui", "Sofia",
)  # fmt: skip
_LAST = (
    "Adler", "Berger", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvath",
    "Jansen", "Keller", "Lindqvist", "Moreau", "Novak", "Okafor", "Peeters", "Quinn",
    "Rossi", "Schmidt", "Tanaka", "Urban", "Vogel", "Weber", "Yilmaz", "Zimmer",
)  # fmt: skip
_COMPANY_A = (
    "Alpen", "Blue", "Nord", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris",
    "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Orbit", "Pioneer", "Quartz",
)  # fmt: skip
_COMPANY_B = ("Labs", "Systems", "Logistics", "Health", "Software", "Partners", "Foods", "Energy")
_INDUSTRIES = (
    "software", "manufacturing", "logistics", "healthcare", "financial services",
    "retail", "professional services", "education", "energy",
)  # fmt: skip
_COUNTRIES = ("DE", "FR", "NL", "GB", "ES", "IT", "SE", "AT", "CH", "PL", "BE", "DK")
_SENIORITY = ("intern", "individual", "manager", "director", "vp", "c-level")
_SENIORITY_SHARES = (0.05, 0.35, 0.28, 0.18, 0.08, 0.06)
_TITLES: dict[str, tuple[str, ...]] = {
    "intern": ("Marketing Intern", "Working Student"),
    "individual": ("Marketing Specialist", "Sales Representative", "Analyst"),
    "manager": ("Marketing Manager", "Sales Manager", "RevOps Manager"),
    "director": ("Director of Marketing", "Director of Sales"),
    "vp": ("VP Marketing", "VP Sales", "VP Revenue"),
    "c-level": ("CEO", "CMO", "CRO"),
}
_SENIORITY_PICK = _Weighted.of(_SENIORITY, _SENIORITY_SHARES)


@dataclass(slots=True)
class _Person:
    """The profile a lead gives on forms; ``fit`` says whether sales will like it."""

    first: str
    last: str
    email: str
    company: str
    seniority: str
    job_title: str
    company_size: int
    industry: str
    country: str
    fit: bool


class _People(Generic[_Payload]):
    """Draws a person's profile, and makes the forms they fill in."""

    def __init__(self, rng: _Draws, sink: _Sink[_Payload]) -> None:
        self.rng = rng
        self.sink = sink

    def person(self, n: int) -> _Person:
        """A made-up person with a profile good enough for fit scoring."""
        rng = self.rng
        first, last = rng.one(_FIRST), rng.one(_LAST)
        company = f"{rng.one(_COMPANY_A)} {rng.one(_COMPANY_B)}"
        seniority = rng.pick(_SENIORITY_PICK)
        size = max(1, min(20_000, int(rng.lognormvariate(math.log(80), 1.5))))
        domain = company.lower().replace(" ", "-")
        return _Person(
            first=first,
            last=last,
            email=f"{first.lower()}.{last.lower()}.{n}@{domain}.example",
            company=company,
            seniority=seniority,
            job_title=rng.one(_TITLES[seniority]),
            company_size=size,
            industry=rng.one(_INDUSTRIES),
            country=rng.one(_COUNTRIES),
            fit=size >= 20 and seniority not in ("intern", "individual"),
        )

    def form(self, kind: FormKind, who: _Person, message: str | None = None) -> _Payload:
        """A form as the person fills it in (short forms ask less)."""
        short = kind in (FormKind.NEWSLETTER, FormKind.WEBINAR_REGISTRATION)
        return self.sink.data(
            FormSubmitted,
            form_kind=kind,
            email=who.email,
            phone=None,
            first_name=who.first,
            last_name=None if kind is FormKind.NEWSLETTER else who.last,
            company=None if short else who.company,
            job_title=None if short else who.job_title,
            seniority=None if short else who.seniority,
            company_size=None if short else who.company_size,
            industry=None if short else who.industry,
            country=who.country,
            message=message,
        )
