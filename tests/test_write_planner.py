"""The server sink's write planning, without a server: desired + current copies -> writes (create, update,
unchanged per strategy; duplicates; refused), withdrawals (ours, theirs, already cancelled), our lines on
billing Claims (two Claims merged into one write, line withdrawal), and as a property: the planned writes
applied to an in-memory server give the desired content, and planning again gives no writes."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_cat2.emit.ids import (
    CLAIM_IDENTIFIER_SYSTEM,
    MEASURE_REPORT_IDENTIFIER_SYSTEM,
    TAG_CODE,
    TAG_SYSTEM,
    claim_key,
    measure_report_key,
    resource_id,
)
from fhir_cat2.sinks.planner import (
    LINE_EXTENSION,
    Plan,
    Write,
    append,
    business_key,
    comparable,
    line_withdrawals,
    merge_lines,
    plan,
    withdrawal,
)

from .test_server_sink import on_server, our_claim

KEY = our_claim()["identifier"][0]["value"]


def measure_report(patient: str = "p1") -> dict[str, Any]:
    key = measure_report_key(patient, "https://example.org/Measure/x", 2025)
    return {
        "resourceType": "MeasureReport",
        "id": resource_id(key),
        "meta": {"tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]},
        "identifier": [{"system": MEASURE_REPORT_IDENTIFIER_SYSTEM, "value": key}],
        "status": "complete",
    }


def program_claim(program: str, code: str = "3074F") -> dict[str, Any]:
    """One of our Claims for encounter e1 under ``program`` (one billing Claim, one Claim per program)."""
    claim = our_claim("e1", code)
    key = claim_key("p1", "Encounter/e1", program, 2025)
    return {
        **claim,
        "id": resource_id(key),
        "identifier": [{"system": CLAIM_IDENTIFIER_SYSTEM, "value": key}],
        "related": [{"claim": {"reference": "Claim/bill-1"}}],
    }


def billing_claim(version: str = "7") -> dict[str, Any]:
    return {
        "resourceType": "Claim",
        "id": "bill-1",
        "meta": {"versionId": version},
        "status": "active",
        "diagnosis": [
            {"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": "icd", "code": "I10"}]}}
        ],
        "item": [{"sequence": 1, "productOrService": {"coding": [{"code": "99214"}]}}],
    }


def line_keys(claim: dict[str, Any]) -> list[str | None]:
    return [
        next(
            (e["valueIdentifier"]["value"] for e in i.get("extension", []) if e["url"] == LINE_EXTENSION),
            None,
        )
        for i in claim["item"]
    ]


# ------------------------------------------------------------------------------------------ plan: update


def test_update_creates_with_a_put_to_our_id_and_no_precondition():
    claim = our_claim()
    planned = plan([claim], {}, strategy="update")
    (write,) = planned.writes
    assert (write.method, write.url, write.outcome) == ("PUT", f"Claim/{claim['id']}", "created")
    assert write.resource == claim and write.if_match is None and write.if_none_exist is None
    assert write.desired == {KEY: claim} and planned.unchanged == [] and planned.refused == []


def test_update_of_changed_content_puts_with_if_match_on_the_current_version():
    desired = our_claim("e1", "3075F")
    (write,) = plan([desired], {KEY: on_server(our_claim("e1", "3074F"), "4")}, strategy="update").writes
    assert (write.method, write.url, write.outcome, write.if_match) == (
        "PUT",
        f"Claim/{desired['id']}",
        "updated",
        'W/"4"',
    )
    assert write.headers() == {"Prefer": "return=minimal", "If-Match": 'W/"4"'}


def test_content_equal_but_for_id_meta_and_narrative_is_unchanged():
    current = {**on_server(our_claim(), "9"), "text": {"status": "generated", "div": "<div>x</div>"}}
    assert plan([our_claim()], {KEY: current}, strategy="update") == Plan(unchanged=[("Claim", KEY)])


# ------------------------------------------------------------------------------ plan: conditional create


def test_conditional_create_posts_a_new_one_with_if_none_exist_and_no_id():
    claim = our_claim()
    (write,) = plan([claim], {}, strategy="conditional-create").writes
    assert (write.method, write.url, write.outcome) == ("POST", "Claim", "created")
    assert write.if_none_exist == f"identifier={CLAIM_IDENTIFIER_SYSTEM}|{KEY}"
    assert write.resource is not None and "id" not in write.resource
    assert write.desired == {KEY: claim}  # the outbox keeps the desired state, id and all
    assert write.entry()["request"] == {
        "method": "POST",
        "url": "Claim",
        "ifNoneExist": f"identifier={CLAIM_IDENTIFIER_SYSTEM}|{KEY}",
    }


def test_conditional_create_updates_the_server_assigned_id_with_if_match():
    current = on_server({**our_claim("e1", "3074F"), "id": "server-uuid-1"}, "2")
    (write,) = plan([our_claim("e1", "3075F")], {KEY: current}, strategy="conditional-create").writes
    assert (write.method, write.url, write.if_match) == ("PUT", "Claim/server-uuid-1", 'W/"2"')
    assert write.resource is not None and write.resource["id"] == "server-uuid-1"


def test_an_identifier_token_is_escaped():
    claim = our_claim()
    odd = {**claim, "identifier": [{"system": CLAIM_IDENTIFIER_SYSTEM, "value": "a|b,c$d\\e"}]}
    (write,) = plan([odd], {}, strategy="conditional-create").writes
    assert write.if_none_exist == f"identifier={CLAIM_IDENTIFIER_SYSTEM}|a\\|b\\,c\\$d\\\\e"


# ------------------------------------------------------------------------------ plan: duplicates, refused


def test_a_key_twice_in_one_batch_is_one_write_of_its_last_state():
    first, last = our_claim("e1", "3074F"), our_claim("e1", "3075F")
    other = our_claim("e2")
    planned = plan([first, other, last], {}, strategy="update")
    assert [w.desired for w in planned.writes] == [{KEY: last}, {business_key(other): other}]
    current = {KEY: on_server(last, "1")}
    assert plan([first, last], current, strategy="update") == Plan(unchanged=[("Claim", KEY)])


def test_a_resource_without_our_business_identifier_is_refused_not_planned():
    bare = {**our_claim(), "identifier": [{"system": "urn:other", "value": "x"}]}
    report = measure_report()
    planned = plan([bare, report], {}, strategy="update")
    assert planned.refused == [bare]
    assert [w.url for w in planned.writes] == [f"MeasureReport/{report['id']}"]


# ------------------------------------------------------------------------------------------ withdrawal


def test_our_claim_is_cancelled_with_if_match_and_only_our_tag_kept_in_meta():
    current = on_server(our_claim(), "3")
    write = withdrawal(current)
    assert write is not None and write.resource is not None
    assert (write.method, write.url, write.outcome, write.if_match) == (
        "PUT",
        f"Claim/{current['id']}",
        "withdrawn",
        'W/"3"',
    )
    assert write.resource["status"] == "cancelled" and write.resource["meta"] == {
        "tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]
    }
    assert write.desired == {KEY: None}


def test_our_measure_report_is_deleted():
    report = on_server(measure_report(), "2")
    write = withdrawal(report)
    assert write is not None
    assert (write.method, write.url, write.resource, write.keys) == (
        "DELETE",
        f"MeasureReport/{report['id']}",
        None,
        (business_key(report),),
    )


def test_what_is_not_ours_is_never_withdrawn_and_a_cancelled_claim_not_again():
    theirs = on_server({**our_claim(), "meta": {}}, "1")  # our identifier system, but not our tag
    assert withdrawal(theirs) is None
    assert withdrawal(on_server({**measure_report(), "meta": {"tag": []}})) is None
    assert withdrawal(on_server({**our_claim(), "status": "cancelled"}, "5")) is None


# ------------------------------------------------------------------------------------------ billing Claims


def test_two_of_our_claims_for_one_billing_claim_are_one_write_carrying_both():
    hedis, mips = program_claim("hedis", "3074F"), program_claim("mips", "G8752")
    billing = billing_claim("7")
    write = append(billing, [mips, hedis])
    assert write is not None and write.resource is not None
    assert (write.method, write.url, write.outcome, write.if_match) == (
        "PUT",
        "Claim/bill-1",
        "appended",
        'W/"7"',
    )
    assert set(write.keys) == {business_key(hedis), business_key(mips)}
    assert write.desired == {business_key(mips): mips, business_key(hedis): hedis}
    merged = write.resource
    assert sorted(k for k in line_keys(merged) if k) == sorted(write.keys)
    assert [i["sequence"] for i in merged["item"]] == [1, 2, 3]
    assert all(i["diagnosisSequence"] == [1] for i in merged["item"][1:])  # I10 is already billed
    assert append({**merged, "meta": {"versionId": "8"}}, [hedis, mips]) is None  # a rerun: nothing


def test_merging_one_claim_keeps_the_lines_of_our_other_claims_in_any_order():
    hedis, mips = program_claim("hedis", "3074F"), program_claim("mips", "G8752")
    together = merge_lines(billing_claim(), [hedis, mips])
    one_then_other = merge_lines(merge_lines(billing_claim(), [mips]), [hedis])
    other_then_one = merge_lines(merge_lines(billing_claim(), [hedis]), [mips])
    assert together["item"] == one_then_other["item"] == other_then_one["item"]
    changed = merge_lines(together, [program_claim("mips", "G8753")])
    codes = [i["productOrService"]["coding"][0]["code"] for i in changed["item"]]
    assert sorted(codes) == ["3074F", "99214", "G8753"]


def test_line_withdrawal_takes_off_every_stale_key_on_a_billing_claim_in_one_write():
    a, b, c = (program_claim(p, code) for p, code in (("hedis", "3074F"), ("mips", "G8752"), ("x", "3075F")))
    billing = {**merge_lines(billing_claim(), [a, b, c]), "meta": {"versionId": "4"}}
    ours = {**on_server(our_claim("e1")), "item": billing["item"]}  # one of our own Claims: never touched
    stale = {business_key(a) or "", business_key(b) or "", "key-on-no-claim"}
    (write,) = line_withdrawals([ours, billing], stale, "Encounter/e1")
    assert write.resource is not None
    assert (write.url, write.outcome, write.if_match, write.encounter) == (
        "Claim/bill-1",
        "withdrawn",
        'W/"4"',
        "Encounter/e1",
    )
    assert set(write.keys) == {business_key(a), business_key(b)} and set(write.desired.values()) == {None}
    assert line_keys(write.resource) == [None, business_key(c)]
    assert [i["sequence"] for i in write.resource["item"]] == [1, 2] and "meta" not in write.resource
    assert line_withdrawals([billing_claim()], stale, "Encounter/e1") == []


# ------------------------------------------------------------------------------ property: apply, re-plan

CODES = ("3074F", "3075F", "3077F")
CLAIM_KEYS = [our_claim(f"e{i}")["identifier"][0]["value"] for i in range(4)]


def variant(index: int, code: str) -> dict[str, Any]:
    return our_claim(f"e{index}", code)


class MemoryServer:
    """The few write semantics the planner relies on: PUT with If-Match, conditional POST, versions."""

    def __init__(self, copies: list[dict[str, Any]]) -> None:
        self.by_id = {c["id"]: c for c in copies}
        self.created = 0

    def current(self) -> dict[str, dict[str, Any]]:
        return {business_key(c) or "": c for c in self.by_id.values()}

    def apply(self, write: Write) -> None:
        resource_type, _, resource_id_ = write.url.partition("/")
        assert resource_type == write.resource_type and write.resource is not None
        existing = self.by_id.get(resource_id_)
        if write.method == "POST":
            assert write.if_none_exist and write.key not in self.current()
            self.created += 1
            resource_id_ = f"server-{self.created}"
        elif write.if_match is not None:
            assert existing is not None and write.if_match == f'W/"{existing["meta"]["versionId"]}"'
        else:
            assert existing is None
        version = int(existing["meta"]["versionId"]) + 1 if existing else 1
        self.by_id[resource_id_] = on_server({**write.resource, "id": resource_id_}, str(version))


@settings(max_examples=150, deadline=None)
@given(
    strategy=st.sampled_from(["update", "conditional-create"]),
    on_the_server=st.dictionaries(st.integers(0, 3), st.tuples(st.sampled_from(CODES), st.integers(1, 9))),
    wanted=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(CODES)), max_size=8),
)
def test_applying_the_plan_gives_the_desired_content_and_planning_again_writes_nothing(
    strategy, on_the_server, wanted
):
    copies = []
    for index, (code, version) in on_the_server.items():
        copy_ = on_server(variant(index, code), str(version))
        if strategy == "conditional-create":
            copy_["id"] = f"assigned-{index}"
        copies.append(copy_)
    server = MemoryServer(copies)
    before = copy.deepcopy(server.current())
    desired = [variant(index, code) for index, code in wanted]

    planned = plan(desired, server.current(), strategy=strategy)
    assert len({w.key for w in planned.writes}) == len(planned.writes)  # one write per key
    for write in planned.writes:
        server.apply(write)

    after = server.current()
    last = {business_key(r): r for r in desired}
    for key, resource in last.items():
        assert comparable(after[key]) == comparable(resource)
    assert {k: v for k, v in after.items() if k not in last} == {
        k: v for k, v in before.items() if k not in last
    }
    assert {k for _, k in planned.unchanged} | {w.key for w in planned.writes} == set(last)
    again = plan(desired, after, strategy=strategy)
    assert again.writes == [] and {k for _, k in again.unchanged} == set(last)


PROGRAMS = ("hedis", "mips", "p3")


def claim_with_lines(program: str, codes: list[str]) -> dict[str, Any]:
    claim = program_claim(program)
    line = claim["item"][0]
    claim["item"] = [
        {**line, "sequence": n, "productOrService": {"coding": [{"code": code}]}}
        for n, code in enumerate(codes, start=1)
    ]
    return claim


@settings(max_examples=150, deadline=None)
@given(
    lines=st.dictionaries(
        st.sampled_from(PROGRAMS), st.lists(st.sampled_from(CODES), min_size=1, max_size=3), min_size=1
    ),
    batches=st.randoms(use_true_random=False),
)
def test_our_lines_on_a_billing_claim_do_not_depend_on_how_the_claims_were_batched(lines, batches):
    claims = [claim_with_lines(program, codes) for program, codes in lines.items()]
    together = merge_lines(billing_claim(), claims)
    split = billing_claim()
    order = list(claims)
    batches.shuffle(order)
    while order:
        size = batches.randint(1, len(order))
        write = append(split, order[:size])
        assert write is not None and write.resource is not None  # each batch brings new lines
        split, order = {**write.resource, "meta": {"versionId": "9"}}, order[size:]
    assert comparable(split) == comparable(together)
    assert append(split, claims) is None  # a rerun of all of them: nothing to write
