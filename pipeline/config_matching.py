"""The settings model of rules/matching.yaml (link and clustering).

It accepts exactly the keys pipeline/link and pipeline/cluster read, with their defaults (a
test checks they equal the stages' own copies, which serve `Rules` built in code).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from . import config_defaults
from .config_base import Strict, bad_value, check_keys

Probability = Annotated[float, Field(ge=0, le=1)]


def _features() -> dict[str, tuple[str, ...]]:
    from .link.compare import FEATURES

    return FEATURES


def _check_levels(when: Any, what: str) -> Any:
    """{feature: [levels]} with features and levels that link knows."""
    if not isinstance(when, dict):
        return when
    features = _features()
    check_keys(when, features, f"not a feature of {what}")
    for feature, labels in when.items():
        for label in labels if isinstance(labels, (list, dict)) else []:
            if label not in features[feature]:
                raise bad_value(f"has level {label!r} for {feature}; its levels are {', '.join(features[feature])}")
    return when


class Thresholds(Strict):
    match: float = Field(default=0.99, gt=0, lt=1, description=">= match: merged automatically")
    review: float = Field(default=0.6, gt=0, lt=1, description=">= review: review queue; below: non_match")

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.review > self.match:
            raise bad_value(f"review ({self.review}) must not be above match ({self.match})")
        return self


class KeyRule(Strict):
    """A blocking (or training) rule: records sharing the key are compared."""

    name: str | None = None
    columns: str | list[str] = Field(description="key columns; `col:initial`, `col:soundex`, `col:year` transform")
    method: Literal["block", "sortedneighbourhood"] = "block"
    window: int = Field(default=3, ge=1, description="sortedneighbourhood: neighbouring distinct values compared")

    @model_validator(mode="before")
    @classmethod
    def _on_is_columns(cls, data: Any) -> Any:
        """link also reads `on:` (which YAML reads as the key true) for `columns`."""
        if isinstance(data, dict) and "columns" not in data:
            for key in ("on", True):
                if key in data:
                    data = {**{k: v for k, v in data.items() if k != key}, "columns": data[key]}
        return data

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        if not value:
            raise bad_value("must name at least one column")
        return value


def _default_rules(name: str):
    def make():
        return [dict(r) for r in DEFAULTS[name]]

    return make


DEFAULTS: dict[str, list[dict]] = {
    "blocking": config_defaults.BLOCKING_RULES,
    "training": config_defaults.TRAINING_RULES,
    "training_fallback": config_defaults.TRAINING_FALLBACK_RULES,
    "hard_constraints": config_defaults.HARD_CONSTRAINTS,
}


def _empty_is_default(name: str):
    """link reads an empty or null rule list as its default list."""

    def convert(value: Any) -> Any:
        return _default_rules(name)() if not value else value

    return BeforeValidator(convert)


class Blocking(Strict):
    max_block_size: int = Field(
        default=50, ge=1, description="a key value shared by more records is skipped (thinned when records recur)"
    )
    oversize_window: int = Field(
        default=10,
        ge=0,
        description="a thinned block pairs each record with this many - 1 sorted neighbours; 0 = never thin",
    )
    rules: Annotated[list[KeyRule], _empty_is_default("blocking")] = Field(default_factory=_default_rules("blocking"))


class Cap(Strict):
    """When every listed feature is at one of the listed levels, the decision is at most `decision`
    (a hard constraint: a fact such as Jr vs Sr, or the user's own rule), named in the pair's `cap`."""

    name: str = "cap"
    when: dict[str, list[str]]
    decision: Literal["non_match", "review", "match"]

    @field_validator("when", mode="before")
    @classmethod
    def _known(cls, value: Any) -> Any:
        return _check_levels(value, "the comparison")


Learned = StrictBool | Literal["learned"]


class Guards(Strict):
    """true / false, or "learned": on when link's training found look-alikes of that kind."""

    suffix: StrictBool = Field(default=True, description="Jr vs Sr, II vs III never merge (a fact)")
    birth_date: Learned = Field(default="learned", description="birth dates more than max_birth_gap_years apart")
    max_birth_gap_years: int | float = Field(default=2, ge=0)
    learn_birth_gap: StrictBool = Field(
        default=True, description="widen max_birth_gap_years to the birth dates' spread among matched pairs"
    )
    household: Learned = Field(default="learned", description="different first names and birth dates at one address")
    twins: Learned = Field(default="learned", description="different first names, same birth date")
    gender: Learned = Field(default="learned", description="different gender and different first name")
    first_name_alone: StrictBool = False
    first_name_min_similarity: Probability = Field(default=0.85, description="Jaro-Winkler below this = different")
    trust_direct_matches: StrictBool = Field(default=False, description="guards never split a pair matched directly")


class Clustering(Strict):
    """Read by pipeline/cluster.py (clustering_settings)."""

    max_cluster_size: int = Field(default=50, ge=1, description="larger components keep only very strong edges")
    strong_edge_min_probability: Probability = 0.9999
    guard_max_cluster_size: int = Field(default=2000, ge=1, description="above this, guards check direct edges only")
    guard_max_pairs: int = Field(default=10_000_000, ge=1)
    guards: Guards = Field(default_factory=Guards)


class Comparison(Strict):
    """Comparison level cut-offs, read by link (recorded in the model: a change retrains it)."""

    jw_high: Probability = Field(default=0.92, description="name level `close`: Jaro-Winkler >= this")
    jw_low: Probability = Field(default=0.80, description="name level `similar`: Jaro-Winkler >= this")
    years_apart: int = Field(default=10, ge=1, description="birth years this far apart: another generation")
    address_fuzzy: Probability = Field(default=0.85, description="similarity of the fuzzy address level")
    middle_names: bool = Field(default=True, description="a given name with and without a middle name is `exact`")
    name_boundary: bool = Field(default=True, description="both names `exact` when given + family joined are equal")

    @model_validator(mode="after")
    def _ordered(self) -> Comparison:
        if self.jw_low > self.jw_high:
            raise bad_value(f"jw_low ({self.jw_low}) must not be above jw_high ({self.jw_high})")
        return self


class ExtraComparisons(Strict):
    """Unmapped categorical columns (attr_*_std) compared exactly with term-frequency adjustment."""

    enabled: StrictBool = True
    exclude: list[str] = Field(default_factory=list, description="column or feature names left out")


class TrainingMinimum(Strict):
    """The evidence EM needs; below it the model uses neutral priors and is never reused."""

    records: int = Field(default=50, ge=1)
    candidate_pairs: int = Field(default=20, ge=1)
    pairs_per_level: int = Field(
        default=20, ge=1, description="a feature's m is learnt from a session with this many pairs"
    )
    growth_factor: float = Field(
        default=2.0, gt=1, description="retrain when the data grew past this × the trained size"
    )


def _none_is(default: Any):
    return BeforeValidator(lambda v: default() if v is None else v)


class MatchingSettings(Strict):
    """rules/matching.yaml."""

    thresholds: Thresholds = Field(default_factory=Thresholds)
    blocking: Blocking = Field(default_factory=Blocking)
    shared_value_limit: int | None = Field(
        default=None,
        ge=0,
        description="contact values held by more records count as missing; null = blocking.max_block_size, 0 = off",
    )
    chunk_size: int = Field(default=200_000, ge=1, description="pairs compared at a time")
    u_sample_pairs: int = Field(default=500_000, ge=1, description="random pairs for u")
    training_max_pairs: int = Field(default=300_000, ge=1)
    em_max_iterations: int = Field(default=60, ge=1)
    seed: int = 42
    training_rules: Annotated[list[KeyRule], _empty_is_default("training")] = Field(
        default_factory=_default_rules("training")
    )
    training_fallback_rules: Annotated[list[KeyRule], _none_is(_default_rules("training_fallback"))] = Field(
        default_factory=_default_rules("training_fallback"),
        description="sessions for a feature no training rule learnt; [] = none",
    )
    prior: float | None = Field(default=None, gt=0, lt=1, description="null = estimated by EM")
    tf_min_u: float = Field(default=1e-7, gt=0, le=1, description="floor of a value's frequency in TF adjustment")
    level_weight_max: Annotated[dict[str, dict[str, float]], _none_is(lambda: {"phone": {"landline_exact": 4.0}})] = (
        Field(default_factory=lambda: {"phone": {"landline_exact": 4.0}})
    )
    correlated_disagreement: Annotated[list[list[str]], _none_is(lambda: [["address", "phone"]])] = Field(
        default_factory=lambda: [["address", "phone"]]
    )
    hard_constraints: Annotated[list[Cap], _none_is(list)] = Field(default_factory=_default_rules("hard_constraints"))
    caps: Annotated[list[Cap], _none_is(list)] = Field(default_factory=list, description="the user's own caps")
    comparison: Comparison = Field(default_factory=Comparison)
    training_minimum: TrainingMinimum = Field(default_factory=TrainingMinimum)
    family_noise_sigmas: float = Field(default=3.0, gt=0, description="look-alike cells: noise allowance in sigmas")
    em_start_m: dict[str, list[Probability]] = Field(
        default_factory=dict, description="{feature: [m per level]} to start EM from; empty = built in"
    )
    extra_comparisons: ExtraComparisons = Field(default_factory=ExtraComparisons)
    clustering: Clustering = Field(default_factory=Clustering)

    @field_validator("level_weight_max", mode="before")
    @classmethod
    def _levels(cls, value: Any) -> Any:
        return _check_levels(value, "link")

    @field_validator("correlated_disagreement")
    @classmethod
    def _groups(cls, value: list[list[str]]) -> list[list[str]]:
        features = _features()
        for group in value:
            for feature in group:
                if feature not in features:
                    raise bad_value(f"has {feature!r}, not a feature ({', '.join(features)})")
        return value

    @model_validator(mode="after")
    def _shared_limit(self) -> MatchingSettings:
        """null means "as blocking.max_block_size": resolved here so the value is explicit."""
        if self.shared_value_limit is None:
            self.shared_value_limit = self.blocking.max_block_size
        return self
