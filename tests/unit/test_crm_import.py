"""CRM history import: rows of the built-in and custom mappings become the interactions that
replay their history; bad rows are rejected with precise problems; ids come from the record,
so an import replayed twice has one effect; the file is read as it is consumed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from contracts import ContractError, Problem, Stage
from leadflow.cli import app
from leadflow.crm_import import (
    CrmFileError,
    ImportCounts,
    MappingError,
    import_csv,
    load_mapping,
    parse_mapping,
    row_interactions,
)
from leadflow.rejects import RejectLog
from leadflow.replay import replay_lines
from lifecycle.lead import Lead
from lifecycle.policy import load_policy

NOW = datetime(2025, 6, 1, tzinfo=UTC)

HUBSPOT_HEADER = (
    "Record ID,First Name,Last Name,Email,Company Name,Job Title,Lifecycle Stage,Create Date,"
    "Became a Lead Date,Became a Marketing Qualified Lead Date,"
    "Became a Sales Qualified Lead Date,Became an Opportunity Date,Became a Customer Date,"
    "Original Source,Deal Stage,Amount,Close Date,Currency,Closed Lost Reason"
)

# Each row, and the stage it says its record is in (its stage column and its deal).
HUBSPOT_ROWS: list[tuple[str, str, Stage]] = [
    (
        "hubspot:101",
        "101,Ada,Lovelace,ada@example.com,Analytical,CTO,Customer,2024-01-02 09:00,"
        "2024-01-03 10:00,2024-01-05 11:00,2024-01-10 12:00,2024-01-15 13:00,2024-02-01 14:00,"
        'Organic Search,Closed Won,"12,500.00",2024-02-01,EUR,',
        Stage.CUSTOMER,
    ),
    (
        "hubspot:102",
        "102,Bob,Byte,bob@example.com,,,Subscriber,2023-06-01 08:00,,,,,,PAID_SEARCH,,,,,",
        Stage.CONTACT,
    ),
    (
        "hubspot:103",
        "103,Cy,Lost,cy@example.com,,,Opportunity,2024-03-01,2024-03-01,,2024-03-20,2024-03-25,,"
        "Referrals,closedlost,900,2024-04-01,,Chose a competitor",
        Stage.LOST,
    ),
    (
        "hubspot:104",
        "104,Ed,Mql,ed@example.com,,,Marketing Qualified Lead,2024-05-01 08:00,2024-05-02 08:00,"
        "2024-05-03 08:00,,,,Email Marketing,,,,,",
        Stage.MQL,
    ),
    (
        "hubspot:105",
        "105,Fay,Lead,fay@example.com,,,Lead,2022-11-01 08:00,2022-11-01 08:00,,,,,"
        "Direct Traffic,,,,,",
        Stage.LEAD,
    ),
    (
        # No opportunity or SQL date: a won deal implies them, at its close date.
        "hubspot:106",
        "106,Gus,Won,gus@example.com,,,Customer,2024-02-01 08:00,,,,,,,Closed Won,300,2024-02-20,,",
        Stage.CUSTOMER,
    ),
    (
        # An open deal and the stage column alone, without their dates.
        "hubspot:107",
        "107,Hal,Open,hal@example.com,,,Opportunity,2024-04-01 08:00,,,,,,,Contract Sent,4000,"
        "2024-09-30,,",
        Stage.OPPORTUNITY,
    ),
    (
        "hubspot:108",
        "108,Ivy,Sql,ivy@example.com,,,Sales Qualified Lead,2023-09-01 08:00,2023-09-02 08:00,,"
        "2023-09-09 08:00,,,,,,,,",
        Stage.SQL,
    ),
]

SALESFORCE_HEADER = (
    "Lead ID,First Name,Last Name,Title,Company,Email,Lead Source,Status,Created Date,"
    "Converted Date,Opportunity ID,Stage,Amount,Close Date"
)

SALESFORCE_ROWS: list[tuple[str, str, Stage]] = [
    (
        "salesforce:00Q1",
        "00Q1,Ann,Open,CEO,Acme,ann@example.com,Web,Open - Not Contacted,3/4/2024 9:15 AM,,,,,",
        Stage.LEAD,
    ),
    (
        "salesforce:00Q2",
        "00Q2,Ben,Conv,VP,Acme,ben@example.com,Trade Show,Closed - Converted,3/4/2024,3/8/2024,,,,",
        Stage.SQL,
    ),
    (
        "salesforce:00Q3",
        "00Q3,Cat,Won,CFO,Beta,cat@example.com,Partner Referral,Closed - Converted,"
        "1/10/2024,1/20/2024,006A,Closed Won,25000,3/1/2024",
        Stage.CUSTOMER,
    ),
    (
        "salesforce:00Q4",
        "00Q4,Dan,Lost,,Gamma,dan@example.com,Advertisement,Closed - Converted,1/10/2024,"
        "1/12/2024,006B,Closed Lost,800,2/1/2024",
        Stage.LOST,
    ),
    (
        "salesforce:00Q5",
        "00Q5,Eve,Open,,Delta,eve@example.com,Web,Closed - Converted,2/10/2024,2/12/2024,006C,"
        "Negotiation/Review,9000,12/1/2024",
        Stage.OPPORTUNITY,
    ),
    (
        "salesforce:00Q6",
        "00Q6,Flo,No,,Eps,flo@example.com,Purchased List,Closed - Not Converted,2/10/2024,,,,,",
        Stage.DISQUALIFIED,
    ),
]


def _csv(header: str, rows: list[tuple[str, str, Stage]]) -> str:
    return header + "\r\n" + "".join(row + "\r\n" for _, row, _ in rows)


def _row(header: str, line: str) -> dict[str, str]:
    names = next(csv.reader([header]))
    return dict(zip(names, next(csv.reader([line])), strict=True))


def _imported(text: str, mapping: str = "hubspot", **kwargs: Any) -> list[dict[str, Any]]:
    lines = import_csv(io.StringIO(text, newline=""), load_mapping(mapping), now=NOW, **kwargs)
    return [orjson.loads(line) for line in lines]


def _summary(objs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(o["id"], o["type"], o["occurred_at"]) for o in objs]


# -- what a row becomes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "line", "mapping", "expected"),
    [
        pytest.param(
            HUBSPOT_HEADER,
            HUBSPOT_ROWS[0][1],
            "hubspot",
            [
                ("hubspot:101:01-contact", "form_submitted", "2024-01-02T09:00:00Z"),
                ("hubspot:101:02-lead", "form_submitted", "2024-01-03T10:00:00Z"),
                ("hubspot:101:03-mql", "form_submitted", "2024-01-05T11:00:00Z"),
                ("hubspot:101:04-sql", "qualification_recorded", "2024-01-10T12:00:00Z"),
                ("hubspot:101:05-opportunity", "opportunity_opened", "2024-01-15T13:00:00Z"),
                ("hubspot:101:06-customer", "deal_won", "2024-02-01T14:00:00Z"),
            ],
            id="hubspot-every-stage-dated",
        ),
        pytest.param(
            HUBSPOT_HEADER,
            HUBSPOT_ROWS[1][1],
            "hubspot",
            [("hubspot:102:01-contact", "form_submitted", "2023-06-01T08:00:00Z")],
            id="hubspot-subscriber",
        ),
        pytest.param(
            HUBSPOT_HEADER,
            HUBSPOT_ROWS[2][1],
            "hubspot",
            [
                ("hubspot:103:01-contact", "form_submitted", "2024-03-01T00:00:00Z"),
                ("hubspot:103:02-lead", "form_submitted", "2024-03-01T00:00:00Z"),
                ("hubspot:103:04-sql", "qualification_recorded", "2024-03-20T00:00:00Z"),
                ("hubspot:103:05-opportunity", "opportunity_opened", "2024-03-25T00:00:00Z"),
                ("hubspot:103:07-lost", "deal_lost", "2024-04-01T00:00:00Z"),
            ],
            id="hubspot-deal-lost-at-its-close-date",
        ),
        pytest.param(
            HUBSPOT_HEADER,
            HUBSPOT_ROWS[5][1],
            "hubspot",
            [
                ("hubspot:106:01-contact", "form_submitted", "2024-02-01T08:00:00Z"),
                ("hubspot:106:02-lead", "form_submitted", "2024-02-20T00:00:00Z"),
                ("hubspot:106:04-sql", "qualification_recorded", "2024-02-20T00:00:00Z"),
                ("hubspot:106:05-opportunity", "opportunity_opened", "2024-02-20T00:00:00Z"),
                ("hubspot:106:06-customer", "deal_won", "2024-02-20T00:00:00Z"),
            ],
            id="hubspot-won-deal-implies-lead-sql-and-opportunity",
        ),
        pytest.param(
            HUBSPOT_HEADER,
            HUBSPOT_ROWS[6][1],
            "hubspot",
            [
                ("hubspot:107:01-contact", "form_submitted", "2024-04-01T08:00:00Z"),
                ("hubspot:107:02-lead", "form_submitted", "2024-04-01T08:00:00Z"),
                ("hubspot:107:04-sql", "qualification_recorded", "2024-04-01T08:00:00Z"),
                ("hubspot:107:05-opportunity", "opportunity_opened", "2024-04-01T08:00:00Z"),
            ],
            id="hubspot-open-deal-undated-takes-the-latest-date",
        ),
        pytest.param(
            SALESFORCE_HEADER,
            SALESFORCE_ROWS[0][1],
            "salesforce",
            [("salesforce:00Q1:01-lead", "form_submitted", "2024-03-04T09:15:00Z")],
            id="salesforce-open-lead",
        ),
        pytest.param(
            SALESFORCE_HEADER,
            SALESFORCE_ROWS[2][1],
            "salesforce",
            [
                ("salesforce:00Q3:01-lead", "form_submitted", "2024-01-10T00:00:00Z"),
                ("salesforce:00Q3:02-sql", "qualification_recorded", "2024-01-20T00:00:00Z"),
                ("salesforce:00Q3:03-opportunity", "opportunity_opened", "2024-01-20T00:00:00Z"),
                ("salesforce:00Q3:04-customer", "deal_won", "2024-03-01T00:00:00Z"),
            ],
            id="salesforce-converted-and-won",
        ),
        pytest.param(
            SALESFORCE_HEADER,
            SALESFORCE_ROWS[5][1],
            "salesforce",
            [
                ("salesforce:00Q6:01-lead", "form_submitted", "2024-02-10T00:00:00Z"),
                ("salesforce:00Q6:06-disqualified", "disqualified", "2024-02-10T00:00:00Z"),
            ],
            id="salesforce-not-converted",
        ),
    ],
)
def test_a_row_becomes_the_interactions_of_its_history(
    header: str, line: str, mapping: str, expected: list[tuple[str, str, str]]
) -> None:
    made = row_interactions(_row(header, line), load_mapping(mapping), now=NOW)
    assert [(i.id, i.type.value, r) for i, r in [(i, _at(raw)) for i, raw in made]] == expected


def _at(raw: bytes) -> str:
    return str(orjson.loads(raw)["occurred_at"])


def test_the_person_goes_on_the_first_form_and_the_deal_on_its_interactions() -> None:
    made = [
        orjson.loads(raw)
        for _, raw in row_interactions(
            _row(HUBSPOT_HEADER, HUBSPOT_ROWS[0][1]), load_mapping("hubspot"), now=NOW
        )
    ]
    assert made[0]["data"] == {
        "form_kind": "newsletter",
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Analytical",
        "job_title": "CTO",
    }
    assert all("email" not in o["data"] for o in made[1:])
    assert {o["lead_id"] for o in made} == {"hubspot:101"}
    assert {o["channel"] for o in made} == {"seo"}
    assert made[4]["data"] == {
        "opportunity_id": "hubspot:101",
        "amount": 12500.0,
        "currency": "EUR",
    }
    assert made[5]["data"] == {
        "opportunity_id": "hubspot:101",
        "amount": 12500.0,
        "currency": "EUR",
    }
    assert made[3]["data"] == {
        "need": True,
        "budget": True,
        "authority": True,
        "timing": True,
        "accepted": True,
    }


def test_the_lost_reason_and_the_deal_id_come_from_their_columns() -> None:
    lost = row_interactions(_row(HUBSPOT_HEADER, HUBSPOT_ROWS[2][1]), load_mapping("hubspot"))
    assert orjson.loads(lost[-1][1])["data"] == {
        "reason": "Chose a competitor",
        "opportunity_id": "hubspot:103",
    }
    won = row_interactions(
        _row(SALESFORCE_HEADER, SALESFORCE_ROWS[2][1]), load_mapping("salesforce")
    )
    assert orjson.loads(won[-1][1])["data"] == {
        "opportunity_id": "006A",
        "amount": 25000.0,
        "currency": "USD",
    }
    assert orjson.loads(won[0][1])["channel"] == "referral"


def test_dates_out_of_order_take_the_earlier_stages_time() -> None:
    line = (
        "109,Jo,Late,jo@example.com,,,Sales Qualified Lead,2024-05-10 08:00,2024-05-01 08:00,,"
        "2024-05-12 08:00,,,,,,,,"
    )
    made = row_interactions(_row(HUBSPOT_HEADER, line), load_mapping("hubspot"))
    assert [_at(raw) for _, raw in made] == [
        "2024-05-10T08:00:00Z",
        "2024-05-10T08:00:00Z",  # the lead date was before the create date
        "2024-05-12T08:00:00Z",
    ]


# -- bad rows ------------------------------------------------------------------------------


def _problems(line: str) -> list[Problem]:
    with pytest.raises(ContractError) as caught:
        row_interactions(_row(HUBSPOT_HEADER, line), load_mapping("hubspot"), now=NOW)
    return list(caught.value.problems)


HUBSPOT_DATES = (
    "a date like 2024-03-05T14:22:00Z or 2024-03-05 14:22 or 2024-03-05 14:22:00 or "
    "2024-03-05 or 03/05/2024 14:22 or 03/05/2024"
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            ",Al,,al@example.com,,,Lead,2024-01-01,,,,,,,,,,,",
            [Problem("Record ID", "a value (the record's id)", "nothing")],
            id="no-record-id",
        ),
        pytest.param(
            "1,Al,,al@example.com,,,Lead,01.02.2024,2024-13-01,,,,,,,,,,",
            [
                Problem("Create Date", HUBSPOT_DATES, '"01.02.2024"'),
                Problem("Became a Lead Date", HUBSPOT_DATES, '"2024-13-01"'),
            ],
            id="bad-dates-each-named",
        ),
        pytest.param(
            "1,Al,,al@example.com,,,Prospect,2024-01-01,,,,,,,,,,,",
            [
                Problem(
                    "Lifecycle Stage",
                    "one of subscriber, lead, marketing qualified lead, marketingqualifiedlead, "
                    "sales qualified lead, salesqualifiedlead, opportunity, customer, "
                    "evangelist, other",
                    '"Prospect"',
                )
            ],
            id="unknown-stage",
        ),
        pytest.param(
            '1,Al,,al@example.com,,,Opportunity,2024-01-01,,,,2024-01-05,,,,"12,50",,,',
            [Problem("Amount", "an amount of money (12500 or 12,500.00)", '"12,50"')],
            id="bad-amount",
        ),
        pytest.param(
            "1,Al,,al@example.com,,,Opportunity,2024-01-01,,,,2024-01-05,,,,,,,",
            [Problem("Amount", "an amount (the row has a deal)", "nothing")],
            id="opportunity-without-amount",
        ),
        pytest.param(
            "1,Al,,al@example.com,,,Opportunity,2024-01-01,,,,2024-01-05,,,,100,,EURO,",
            [Problem("Currency", "a string of at most 3 characters", '"EURO"')],
            id="bad-currency-named-by-its-column",
        ),
        pytest.param(
            "1,Al,,al@example.com,,,Lead,,,,,,,,,,,,",
            [
                Problem(
                    "Create Date, Became a Lead Date, Became a Marketing Qualified Lead Date, "
                    "Became a Sales Qualified Lead Date, Became an Opportunity Date, "
                    "Became a Customer Date, Close Date",
                    "a date in one of these columns",
                    "none",
                )
            ],
            id="no-date-at-all",
        ),
        pytest.param(
            "1,Al,,al@example.com,,,Lead,2025-06-03,,,,,,,,,,,",
            [
                Problem(
                    "Create Date",
                    "a time no later than 2025-06-02T00:00:00+00:00 (one day after the message "
                    "was sent)",
                    "2025-06-03T00:00:00+00:00",
                )
            ],
            id="in-the-future",
        ),
        pytest.param(
            "1," + "A" * 501 + ",,al@example.com,,,Lead,2024-01-01,,,,,,,,,,,",
            [
                Problem(
                    "First Name",
                    "a string of at most 500 characters",
                    "501 characters (personal data, not shown)",
                )
            ],
            id="personal-value-not-shown",
        ),
    ],
)
def test_a_bad_row_is_refused_with_every_problem_by_its_column(
    line: str, expected: list[Problem]
) -> None:
    assert _problems(line) == expected


def test_a_rejected_row_goes_to_the_rejects_with_its_line_and_the_others_go_out(
    tmp_path: Path,
) -> None:
    text = (
        HUBSPOT_HEADER
        + "\r\n"
        + HUBSPOT_ROWS[1][1]
        + "\r\n"
        # a quoted company name over two lines: the next record starts two lines further
        + '7,Al,,al@example.com,"Two\nLines",,Lead,bad,,,,,,,,,,,\r\n'
        + HUBSPOT_ROWS[4][1]
        + "\r\n\r\n"
        + ",No,,x@example.com,,,Lead,2024-01-01,,,,,,,,,,,\r\n"
    )
    counts = ImportCounts()
    with (tmp_path / "rejects.jsonl").open("wb") as out:
        lines = _imported(text, rejects=RejectLog(out=out), counts=counts, source_name="hs.csv")
    assert [o["lead_id"] for o in lines] == ["hubspot:102", "hubspot:105", "hubspot:105"]
    assert (counts.rows, counts.imported, counts.rejected, counts.interactions) == (4, 2, 2, 3)
    records = [orjson.loads(x) for x in (tmp_path / "rejects.jsonl").read_bytes().splitlines()]
    assert [(r["input"], r["file"], r["line"]) for r in records] == [
        ("crm", "hs.csv", 3),
        ("crm", "hs.csv", 7),
    ]
    assert records[0]["problems"] == [
        {"path": "Create Date", "expected": HUBSPOT_DATES, "got": '"bad"'}
    ]
    assert records[0]["original"] == '7,Al,,al@example.com,"Two\nLines",,Lead,bad,,,,,,,,,,,'
    assert records[1]["problems"][0]["path"] == "Record ID"


def test_a_file_without_the_id_column_is_refused_whole() -> None:
    with pytest.raises(CrmFileError, match="no column 'Record ID'"):
        _imported("Email,Create Date\r\nada@example.com,2024-01-01\r\n")


def test_columns_the_file_lacks_are_counted_and_read_as_empty() -> None:
    counts = ImportCounts()
    lines = _imported("Record ID,Create Date\r\n1,2024-01-01\r\n", counts=counts)
    assert [o["id"] for o in lines] == ["hubspot:1:01-contact"]
    assert "Email" in counts.missing_columns
    assert "Record ID" not in counts.missing_columns


# -- ids and idempotency -------------------------------------------------------------------


def test_ids_come_from_the_record_so_two_imports_give_the_same_lines() -> None:
    text = _csv(HUBSPOT_HEADER, HUBSPOT_ROWS)
    first = _imported(text)
    again = _imported(text)
    assert first == again
    ids = [o["id"] for o in first]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(o["lead_id"] + ":") for i, o in zip(ids, first, strict=True))


def test_ids_of_a_row_sort_in_the_order_of_its_history() -> None:
    # The lifecycle orders ties (and late interactions it places together) by id.
    for objs in (_imported(_csv(HUBSPOT_HEADER, HUBSPOT_ROWS)),):
        by_lead: dict[str, list[str]] = {}
        for o in objs:
            by_lead.setdefault(o["lead_id"], []).append(o["id"])
        for ids in by_lead.values():
            assert ids == sorted(ids)


# -- replaying an import -------------------------------------------------------------------


def _stages_after_replay(lines: list[bytes]) -> dict[str, Stage]:
    replay = replay_lines(lines, load_policy("b2b_saas"))
    assert replay.counts.rejected == 0
    assert replay.counts.refused == 0
    assert replay.app is not None
    return {
        lead: replay.app.lead(lead).stage for lead in {orjson.loads(x)["lead_id"] for x in lines}
    }


@pytest.mark.parametrize(
    ("header", "rows", "mapping"),
    [
        pytest.param(HUBSPOT_HEADER, HUBSPOT_ROWS, "hubspot", id="hubspot"),
        pytest.param(HUBSPOT_HEADER, HUBSPOT_ROWS[::-1], "hubspot", id="hubspot-reversed"),
        pytest.param(SALESFORCE_HEADER, SALESFORCE_ROWS, "salesforce", id="salesforce"),
        pytest.param(
            SALESFORCE_HEADER, SALESFORCE_ROWS[::-1], "salesforce", id="salesforce-reversed"
        ),
    ],
)
def test_replaying_an_import_puts_each_lead_in_the_stage_its_row_says(
    header: str, rows: list[tuple[str, str, Stage]], mapping: str
) -> None:
    text = _csv(header, rows)
    lines = list(import_csv(io.StringIO(text, newline=""), load_mapping(mapping), now=NOW))
    assert _stages_after_replay(lines) == {lead: stage for lead, _, stage in rows}


def test_replaying_an_import_twice_has_the_effect_of_once() -> None:
    text = _csv(HUBSPOT_HEADER, HUBSPOT_ROWS)
    lines = list(import_csv(io.StringIO(text, newline=""), load_mapping("hubspot"), now=NOW))
    once = replay_lines(lines, load_policy("b2b_saas"))
    twice = replay_lines(lines + lines, load_policy("b2b_saas"))
    assert twice.counts.duplicates == len(lines)
    assert twice.counts.accepted == once.counts.accepted == len(lines)
    assert once.app is not None and twice.app is not None
    for lead, _, _ in HUBSPOT_ROWS:
        assert [e.event_id for e in twice.app.lead_events(lead)] == [
            e.event_id for e in once.app.lead_events(lead)
        ]


def test_personal_fields_are_sealed_by_the_lifecycle() -> None:
    text = _csv(HUBSPOT_HEADER, HUBSPOT_ROWS[:1])
    lines = list(import_csv(io.StringIO(text, newline=""), load_mapping("hubspot"), now=NOW))
    replay = replay_lines(lines, load_policy("b2b_saas"))
    assert replay.app is not None
    stored = b"".join(
        item.state for item in replay.app.recorder.select_events(Lead.create_id("hubspot:101"))
    )
    assert b"hubspot:101:01-contact" in stored  # the stream recorded the form
    assert b"ada@example.com" not in stored
    assert b"Lovelace" not in stored


# -- streaming -----------------------------------------------------------------------------


def test_the_file_is_read_as_the_interactions_are_taken() -> None:
    read = 0

    def endless() -> Iterator[str]:
        nonlocal read
        read += 1
        yield HUBSPOT_HEADER + "\r\n"
        number = 0
        while True:
            number += 1
            read += 1
            yield f"{number},,,,,,Subscriber,2024-01-01 08:00,,,,,,,,,,,\r\n"

    lines = import_csv(endless(), load_mapping("hubspot"), now=NOW)
    taken = [next(lines) for _ in range(1000)]
    assert orjson.loads(taken[-1])["lead_id"] == "hubspot:1000"
    assert read <= 1002  # the header, the rows taken, and not more than one ahead


# -- custom mappings -----------------------------------------------------------------------

CUSTOM = """
[mapping]
name = "pipedrive"
lead_id_prefix = "pd-"
timezone = "Europe/Berlin"
date_formats = ["%d.%m.%Y %H:%M", "%d.%m.%Y"]
default_channel = "direct"
default_currency = "EUR"

[columns]
lead_id = "Person ID"
email = "E-Mail"
channel = "Quelle"
deal_outcome = "Status"
amount = "Wert"

[deal_outcomes]
won = "won"
lost = "lost"
open = "open"

[channels]
google = "seo"
messe = "events"

[[milestones]]
stage = "lead"
date = "Angelegt"
interaction = "form_submitted"
data = { form_kind = "trial_signup" }

[[milestones]]
stage = "sql"
date = "Qualifiziert"
interaction = "qualification_recorded"
data = { need = true, budget = true, authority = true, timing = false, accepted = true }
requires = "lead"

[[milestones]]
stage = "opportunity"
deal = ["open", "won", "lost"]
deal_date = "Qualifiziert"
interaction = "opportunity_opened"
requires = "sql"

[[milestones]]
stage = "customer"
deal = ["won"]
deal_date = "Gewonnen am"
interaction = "deal_won"
requires = "opportunity"
"""


def test_a_custom_mapping_reads_its_own_columns_formats_zone_and_channels(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pipedrive.toml"
    path.write_text(CUSTOM, encoding="utf-8")
    text = (
        "Person ID;E-Mail;Quelle;Angelegt;Qualifiziert;Status;Wert;Gewonnen am\r\n"
        "7;p@example.com;Messe;02.01.2024 09:30;10.01.2024;won;5000;01.02.2024\r\n"
        "8;q@example.com;Radio;03.01.2024;;;;\r\n"
    ).replace(";", ",")
    objs = [
        orjson.loads(x)
        for x in import_csv(io.StringIO(text, newline=""), load_mapping(path), now=NOW)
    ]
    assert [(o["id"], o["occurred_at"], o["channel"]) for o in objs] == [
        ("pipedrive:7:01-lead", "2024-01-02T08:30:00Z", "events"),  # 09:30 in Berlin
        ("pipedrive:7:02-sql", "2024-01-09T23:00:00Z", "events"),
        ("pipedrive:7:03-opportunity", "2024-01-09T23:00:00Z", "events"),
        ("pipedrive:7:04-customer", "2024-01-31T23:00:00Z", "events"),
        ("pipedrive:8:01-lead", "2024-01-02T23:00:00Z", "direct"),  # not in [channels]
    ]
    assert {o["lead_id"] for o in objs} == {"pd-7", "pd-8"}
    assert objs[0]["data"] == {"form_kind": "trial_signup", "email": "p@example.com"}
    assert objs[3]["data"]["currency"] == "EUR"
    stages = _stages_after_replay([orjson.dumps(o) for o in objs])
    assert stages == {"pd-7": Stage.CUSTOMER, "pd-8": Stage.LEAD}


@pytest.mark.parametrize(
    ("change", "path", "problem"),
    [
        (('lead_id = "Person ID"', ""), "columns.lead_id", "required"),
        (('email = "E-Mail"', 'mail = "E-Mail"'), "columns.mail", "no such key"),
        (('timezone = "Europe/Berlin"', 'timezone = "Mars/Base"'), "mapping.timezone", "no time"),
        (('won = "won"', 'won = "yes"'), "deal_outcomes.won", "expected one of open, won, lost"),
        (('messe = "events"', 'messe = "fairs"'), "channels.messe", "expected one of seo"),
        (('requires = "lead"', 'requires = "mql"'), "milestones[1].requires", "no earlier"),
        (
            ('form_kind = "trial_signup"', 'form_kind = "signup"'),
            "milestones[0]",
            "makes no valid interaction (data.form_kind: expected one of",
        ),
        (('stage = "sql"', 'stage = "lead"'), "milestones[1].stage", "has a milestone already"),
        (('default_currency = "EUR"', 'default_currency = "euro"'), "mapping.default_currency", ""),
    ],
)
def test_a_bad_mapping_is_refused_naming_the_key(
    change: tuple[str, str], path: str, problem: str
) -> None:
    old, new = change
    assert old in CUSTOM
    with pytest.raises(MappingError) as caught:
        parse_mapping(CUSTOM.replace(old, new, 1), "custom.toml")
    assert caught.value.path == path
    assert problem in caught.value.problem


def test_a_stage_value_must_be_a_stage_some_milestone_reaches() -> None:
    text = CUSTOM.replace("[deal_outcomes]", '[stages]\nkunde = "mql"\n\n[deal_outcomes]')
    with pytest.raises(MappingError, match=r"stages\.kunde: no milestone reaches mql"):
        parse_mapping(text)


def test_an_unknown_mapping_name_is_refused() -> None:
    with pytest.raises(MappingError, match="no built-in mapping or file"):
        load_mapping("zoho")


# -- the command ---------------------------------------------------------------------------


def test_leadflow_import_writes_the_lines_counts_and_rejects(tmp_path: Path) -> None:
    source = tmp_path / "hubspot.csv"
    source.write_bytes(
        b"\xef\xbb\xbf"  # HubSpot's exports start with a byte-order mark
        + _csv(HUBSPOT_HEADER, HUBSPOT_ROWS[:2]).encode()
        + b"9,,,,,,Lead,yesterday,,,,,,,,,,,\r\n"
    )
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    env = {"LEADFLOW_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    result = CliRunner().invoke(
        app,
        [
            "import",
            str(source),
            "--mapping",
            "hubspot",
            "--out",
            str(out),
            "--rejects",
            str(rejects),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert f"3 rows: 2 imported as 7 interactions to {out}, 1 rejected" in result.output
    assert len(out.read_bytes().splitlines()) == 7
    (record,) = [orjson.loads(x) for x in rejects.read_bytes().splitlines()]
    assert (record["line"], record["problems"][0]["path"]) == (4, "Create Date")
    assert (rejects.stat().st_mode & 0o777) == 0o600


def test_leadflow_import_needs_a_destination_and_a_known_mapping(tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text(HUBSPOT_HEADER + "\r\n")
    env = {"LEADFLOW_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    runner = CliRunner()
    nowhere = runner.invoke(app, ["import", str(source), "--mapping", "hubspot"], env=env)
    assert nowhere.exit_code == 2
    assert "give --out FILE or --publish" in nowhere.output
    unknown = runner.invoke(
        app, ["import", str(source), "--mapping", "zoho", "--out", str(tmp_path / "o")], env=env
    )
    assert unknown.exit_code == 2
    assert "mapping zoho: no built-in mapping or file of that name" in unknown.output


def test_the_documented_mapping_example_loads_and_maps_a_row() -> None:
    readme = (Path(__file__).parents[2] / "docs" / "contracts.md").read_text(encoding="utf-8")
    section = readme.split("### CRM history import", 1)[1].split("\n### ", 1)[0]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    mapping = parse_mapping(example, "docs/contracts.md")
    row = {"Person ID": "1", "Added": "01.03.2024", "Status": "won", "Value": "10"}
    row["Won at"] = "05.03.2024 10:00"
    made = row_interactions(row, mapping, now=NOW)
    assert [i.id for i, _ in made] == [
        "pipedrive:1:01-lead",
        "pipedrive:1:02-sql",
        "pipedrive:1:03-opportunity",
        "pipedrive:1:04-customer",
    ]
    assert made[-1][0].occurred_at == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
