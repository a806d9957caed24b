"""Request and response schemas of the service (and so of its OpenAPI document).

They derive from the declarations the models use, so there is one place to change: the
unknown-id policy is the estimators' own ``UnknownPolicy``, reason kinds are
:data:`~chuchun.models._results.REASON_KINDS`, explanation and reason records carry exactly the
fields of :meth:`Explanation.to_dict` / :meth:`Reason.to_dict`, and a model card lists every
hyperparameter from its :class:`~chuchun._params.Param` declaration.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from chuchun.models._base import UnknownPolicy
from chuchun.models._results import REASON_KINDS

__all__ = [
    "MAX_BATCH", "MAX_K", "MAX_LIST", "ErrorResponse", "ExplainResponse", "ExplanationOut",
    "HistoryRequest", "Id", "ModelCard", "ModelList", "PredictRequest", "PredictResponse",
    "ReasonOut", "RecommendRequest", "RecommendResponse", "ReloadRequest", "ReloadResponse",
    "SimilarResponse", "UnknownPolicy",
]

#: longest list a request may ask for
MAX_K = 1000
#: most users (or pairs) in one batch request
MAX_BATCH = 1000
#: most ids in a candidates / exclude / history list
MAX_LIST = 100_000

#: an external id as the training data held it: an integer or a string
Id = StrictInt | StrictStr
ReasonKind = Literal[REASON_KINDS]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ---------------------------------------------------------------------------------
class _ListOptions(_Strict):
    k: int = Field(10, ge=1, le=MAX_K, description="List length.")
    exclude_seen: bool = Field(True, description="Leave out items the user had in training.")
    candidates: list[Id] | None = Field(
        None, max_length=MAX_LIST, description="Rank only these items (unknown ones ignored)."
    )
    exclude: list[Id] | None = Field(
        None, max_length=MAX_LIST, description="Never recommend these items."
    )


class RecommendRequest(_ListOptions):
    """Top-k lists for a batch of users."""

    users: list[Id] = Field(..., min_length=1, max_length=MAX_BATCH)
    unknown: UnknownPolicy = Field("fallback", description="Policy for users unseen in training.")
    explain: bool = Field(False, description="Attach the reasons behind each recommendation.")
    n_reasons: int = Field(3, ge=0, le=100, description="Reasons kept per explanation.")


class HistoryRequest(_ListOptions):
    """Top-k for a user unseen in training, from their items (and ratings) given now."""

    items: list[Id] = Field(..., max_length=MAX_LIST)
    ratings: list[StrictFloat | StrictInt] | None = Field(
        None, max_length=MAX_LIST, description="Ratings parallel to items (rating models)."
    )


class PredictRequest(_Strict):
    """Scores (or ratings) of (user, item) pairs."""

    users: list[Id] = Field(..., min_length=1, max_length=MAX_BATCH)
    items: list[Id] = Field(..., min_length=1, max_length=MAX_BATCH)
    unknown: UnknownPolicy = "fallback"


class ReloadRequest(_Strict):
    """Load the artifact of one model (or of all, when ``name`` is left out) again."""

    name: str | None = None


# -- responses --------------------------------------------------------------------------------
class ErrorResponse(BaseModel):
    error: str = Field(..., description="A short machine-readable error name.")
    detail: Any = Field(None, description="What was expected and what arrived.")


class ReasonOut(BaseModel):
    """One reason behind a score (:class:`chuchun.models.Reason`)."""

    kind: ReasonKind
    id: Any
    label: str
    contribution: float
    detail: dict[str, Any]


class ExplanationOut(BaseModel):
    """Why an item is scored as it is for a user (:class:`chuchun.models.Explanation`)."""

    user: Any
    item: Any
    label: str
    score: float
    additive: bool
    remainder: float | None
    method: str
    reasons: list[ReasonOut]


class ItemOut(BaseModel):
    rank: int
    item: Any
    label: str
    score: float | None
    explanation: ExplanationOut | None = None


class UserList(BaseModel):
    user: Any
    known: bool
    items: list[ItemOut]


class RecommendResponse(BaseModel):
    model: str
    version: int
    results: list[UserList]
    ignored: list[Any] = Field(
        default_factory=list, description="History items unknown to the model (ignored)."
    )


class SimilarResponse(BaseModel):
    model: str
    version: int
    item: Any
    label: str
    known: bool
    items: list[ItemOut]


class Prediction(BaseModel):
    user: Any
    item: Any
    score: float | None


class PredictResponse(BaseModel):
    model: str
    version: int
    predictions: list[Prediction]


class ExplainResponse(BaseModel):
    model: str
    version: int
    explanation: ExplanationOut


class ParamCard(BaseModel):
    value: Any
    default: Any
    doc: str
    expected: str


class ModelCard(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), populate_by_name=True)

    name: str
    class_: str = Field(..., alias="class")
    summary: str
    version: int
    params: dict[str, ParamCard]
    data_fingerprint: Any
    n_users: int
    n_items: int
    trained_at: str | None
    loaded_at: str
    chuchun_version: str | None
    predicts_ratings: bool
    supports_fold_in: bool
    has_similar_items: bool
    explain_method: str
    explain_is_additive: bool
    index: Literal["exact", "ann"]
    example_users: list[Any]
    labels: int
    evaluation: dict[str, Any] | None


class ItemHit(BaseModel):
    item: Any
    label: str
    popularity: float


class ItemSearchResponse(BaseModel):
    model: str
    items: list[ItemHit]


class ModelList(BaseModel):
    models: list[ModelCard]


class ReloadOutcome(BaseModel):
    name: str
    ok: bool
    version: int | None
    error: str | None = None


class ReloadResponse(BaseModel):
    results: list[ReloadOutcome]
