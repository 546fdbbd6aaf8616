"""The README's "Encoding your own manual" walkthrough must stay true: its policy loads, its
misspelling error reads as printed, and its edges behave as the text says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import policyengine as pe

README = Path(__file__).resolve().parents[1] / "README.md"


def _walkthrough_yaml() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Encoding your own manual", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match is not None, "the walkthrough lost its policy"
    return match.group(1)


@pytest.fixture(scope="module")
def policy() -> pe.Policy:
    return pe.load_policy_text(_walkthrough_yaml(), name="shipping.yaml")


def _history(call_at: str | None) -> list[dict[str, str]]:
    events = [
        {
            "id": "s1",
            "type": "goods_shipped",
            "at": "2026-03-01T21:00:00+08:00",
            "customer": "C1",
            "order": "O1",
            "employee": "li",
            "waybill": "SF123",
        }
    ]
    if call_at is not None:
        events.append(
            {
                "id": "k1",
                "type": "shipping_call",
                "at": call_at,
                "customer": "C1",
                "order": "O1",
                "employee": "li",
            }
        )
    return events


@pytest.mark.parametrize(
    ("call_at", "status"),
    [("2026-03-01T23:59:59+08:00", "met"), ("2026-03-02T00:00:00+08:00", "late")],
)
def test_same_day_edges(policy: pe.Policy, call_at: str, status: str) -> None:
    d = policy.evaluate(_history(call_at), as_of="2026-03-02T12:00:00+08:00")
    [o] = d.obligations
    assert (o.what, o.status, o.met_by, o.clause) == (
        "phone the customer with the waybill number",
        status,
        "k1",
        "MY-1",
    )


def test_open_before_midnight(policy: pe.Policy) -> None:
    d = policy.evaluate(_history(None), as_of="2026-03-01T23:59:59+08:00")
    assert [o.status for o in d.obligations] == ["open"]
    assert "MY-1" in d.explain("C1")


def test_misspelt_event_is_reported_as_printed() -> None:
    broken = _walkthrough_yaml().replace("event: shipping_call", "event: shiping_call")
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy_text(broken, name="shipping.yaml")
    message = str(info.value)
    assert (
        "shipping.yaml:17:14: PE109 unknown event type 'shiping_call' "
        "(did you mean 'shipping_call'?)" in message
    )
