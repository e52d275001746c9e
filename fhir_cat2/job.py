"""A run's job: what to evaluate and how, prepared once, immutable, and picklable (sent to forked workers and
to Spark executors as it is).

``RunOptions`` are what the user asked for (flags over configuration); a ``Job`` adds what follows from the
options and the input: the rules with their value sets resolved, the measures selected, the measurement
period (which for replay may follow the data), the date written on reports, and the emit defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .criteria.judge import Criteria
from .deviations import ALL as DEVIATIONS_ALL
from .emit.claim import EmitDefaults
from .errors import ConfigError
from .measures.evaluate import MeasureEvaluator
from .rules.claims_denominators import ClaimsYear, load_claims_year
from .rules.loader import RuleSet
from .rules.measure_schema import MeasureDef

EMIT_KINDS = ("claim", "measure-report", "gaps")
DEFAULT_EMIT = frozenset({"claim", "measure-report"})
"""What a run writes unless told: care gaps (``gaps``) are asked for."""
RESOURCE_OF_KIND = {"claim": "Claim", "measure-report": "MeasureReport", "gaps": "Bundle"}


def emitted_types(emit: Iterable[str]) -> tuple[str, ...]:
    """The resource types the emit kinds write (Claim, MeasureReport, Bundle), in that order."""
    return tuple(RESOURCE_OF_KIND[kind] for kind in EMIT_KINDS if kind in emit)


PROGRAMS = ("hedis", "mips-claims")


@dataclass(frozen=True)
class RunOptions:
    program: str = "hedis"
    period_year: int | None = None
    emit: frozenset[str] = DEFAULT_EMIT
    now: str | None = None
    measures: tuple[str, ...] | None = None
    """Only these measure ids (None: every measure of the rules table)."""
    only_patient: str | None = None
    """Keep only this patient's records (explain)."""
    thorough: bool = False
    """Judge every sub-criterion for the explanation trail (explain) instead of stopping at the decision."""
    report: str = "individual"
    """MeasureReports to write: individual (one per patient in an initial population), summary (one per
    measure), or both."""
    period_defaulted_on: date | None = None
    """The day ``period_year`` was defaulted to the current year on (sync without --period): None when it
    was given, or follows the data (replay)."""
    deviations: frozenset[str] = frozenset()
    """Named deviations from the published measure logic that are on (``fhir_cat2.deviations``): none by
    default, so MeasureReports and claims codes follow the measures as written."""


def selected_measures(ruleset: RuleSet, options: RunOptions) -> tuple[MeasureDef, ...]:
    """The measures a run evaluates; refuses unknown measures and programs (a configuration error)."""
    if options.program not in PROGRAMS:
        raise ConfigError(f"unknown program '{options.program}' (hedis or mips-claims)")
    measures = ruleset.table.measures
    if options.measures is not None:
        unknown = set(options.measures) - {m.id for m in measures}
        if unknown:
            raise ConfigError(f"unknown measure(s): {', '.join(sorted(unknown))}")
        measures = tuple(m for m in measures if m.id in options.measures)
    return measures


def year_period(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)


@dataclass(frozen=True)
class Job:
    """Everything ``core.evaluate_patient`` needs besides a patient's records. Build it with ``prepare_job``.

    Pickled, it carries the rules and options only: the measure evaluator (whose memo of prepared criteria
    is keyed by object identity, meaningless in another process) is made afresh on unpickling."""

    ruleset: RuleSet
    options: RunOptions
    measures: tuple[MeasureDef, ...]
    period: tuple[date, date]
    report_date: str
    defaults: EmitDefaults
    evaluator: MeasureEvaluator = field(init=False, repr=False, compare=False)
    """Measures and claims codes: the published logic with the run's deviations."""
    claims_year: ClaimsYear = field(init=False, repr=False, compare=False)
    """The claims denominators of the period's year (program mips-claims; empty otherwise)."""
    code_criteria: Criteria = field(init=False, repr=False, compare=False)
    """What the code rules judge with: for program hedis their own reading, every deviation on; else the
    measures' criteria (claims report the measure)."""

    def __post_init__(self) -> None:
        options = self.options
        evaluator = MeasureEvaluator(
            self.ruleset, *self.period, thorough=options.thorough, deviations=options.deviations
        )
        object.__setattr__(self, "evaluator", evaluator)
        criteria = evaluator.criteria
        if self.code_deviations != options.deviations:
            criteria = Criteria(self.ruleset, thorough=options.thorough, deviations=self.code_deviations)
        object.__setattr__(self, "code_criteria", criteria)
        year = self.period[0].year
        claims_year = (
            load_claims_year(year)
            if options.program == "mips-claims"
            else ClaimsYear(year, "", {}, frozenset())
        )
        object.__setattr__(self, "claims_year", claims_year)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["evaluator"], state["code_criteria"], state["claims_year"]
        return state

    @property
    def code_deviations(self) -> frozenset[str]:
        """The deviations the code rules read with: all for program hedis, else the run's."""
        return DEVIATIONS_ALL if self.options.program == "hedis" else self.options.deviations

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    @property
    def year(self) -> int:
        return self.period[0].year

    @property
    def reported_measures(self) -> tuple[MeasureDef, ...]:
        """The measures that write MeasureReports (claims-only measures write none)."""
        return tuple(m for m in self.measures if m.url is not None)

    def emits(self, kind: str) -> bool:
        return kind in self.options.emit

    @property
    def individual_reports(self) -> bool:
        return self.emits("measure-report") and self.options.report in ("individual", "both")

    @property
    def summary_reports(self) -> bool:
        return self.emits("measure-report") and self.options.report in ("summary", "both")


def prepare_job(
    ruleset: RuleSet,
    options: RunOptions,
    period: tuple[date, date],
    defaults: EmitDefaults | None = None,
) -> Job:
    """The job of a run, once its period is known. Refuses unknown measures and programs."""
    return Job(
        ruleset=ruleset,
        options=options,
        measures=selected_measures(ruleset, options),
        period=period,
        report_date=options.now or period[1].isoformat(),
        defaults=defaults if defaults is not None else EmitDefaults(),
    )
