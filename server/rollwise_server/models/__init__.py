"""The shapes of the HTTP API, declared once as msgspec models.

Handlers decode request bodies with ``decode`` (every problem named by its JSON path, 422) and
encode answers from the models; ``openapi.py`` takes each model's JSON Schema from
``components``. Decision 0015 says which shapes are declared where.
"""

from __future__ import annotations

from rollwise_server.models.actions import Promote, Revert, VersionedWrite
from rollwise_server.models.audit import AuditEntry, AuditPage
from rollwise_server.models.decoding import decode, in_field_order, problems_of, valid_fields
from rollwise_server.models.environments import (
    Environment,
    EnvironmentCreate,
    EnvironmentList,
    EnvironmentUpdate,
)
from rollwise_server.models.events import (
    EventError,
    Exposure,
    ExposureEvents,
    IngestResult,
    Outcome,
    OutcomeEvents,
    Prediction,
    PredictionEvents,
)
from rollwise_server.models.health import Health
from rollwise_server.models.history import History, HistoryEntry, JsonPatchOperation
from rollwise_server.models.metrics import (
    Metric,
    MetricEntry,
    MetricList,
    MetricWrite,
    UndefinedMetric,
)
from rollwise_server.models.monitors import Monitor, MonitorBaseline, MonitorList, MonitorSpec
from rollwise_server.models.ofrep import OfrepBulk, OfrepFailure, OfrepRequest, OfrepSuccess
from rollwise_server.models.problems import Problem, ProblemItem, RolloutRef
from rollwise_server.models.results import Results
from rollwise_server.models.rollouts import (
    Approval,
    Guardrail,
    Lessons,
    LessonsWrite,
    Rollout,
    RolloutAction,
    RolloutPlan,
    RolloutRun,
    RolloutRuns,
    RolloutStage,
    RolloutState,
    ShadowCriteria,
    ShadowScore,
)
from rollwise_server.models.schema import components
from rollwise_server.models.tokens import CreatedToken, Token, TokenCreate, TokenList
from rollwise_server.models.webhooks import WebhookDelivery, WebhookDeliveryPage

__all__ = [
    "MODELS",
    "Approval",
    "AuditEntry",
    "AuditPage",
    "CreatedToken",
    "Environment",
    "EnvironmentCreate",
    "EnvironmentList",
    "EnvironmentUpdate",
    "EventError",
    "Exposure",
    "ExposureEvents",
    "Guardrail",
    "Health",
    "History",
    "HistoryEntry",
    "IngestResult",
    "JsonPatchOperation",
    "Lessons",
    "LessonsWrite",
    "Metric",
    "MetricEntry",
    "MetricList",
    "MetricWrite",
    "Monitor",
    "MonitorBaseline",
    "MonitorList",
    "MonitorSpec",
    "OfrepBulk",
    "OfrepFailure",
    "OfrepRequest",
    "OfrepSuccess",
    "Outcome",
    "OutcomeEvents",
    "Prediction",
    "PredictionEvents",
    "Problem",
    "ProblemItem",
    "Promote",
    "Results",
    "Revert",
    "Rollout",
    "RolloutAction",
    "RolloutPlan",
    "RolloutRef",
    "RolloutRun",
    "RolloutRuns",
    "RolloutStage",
    "RolloutState",
    "ShadowCriteria",
    "ShadowScore",
    "Token",
    "TokenCreate",
    "TokenList",
    "UndefinedMetric",
    "VersionedWrite",
    "WebhookDelivery",
    "WebhookDeliveryPage",
    "components",
    "decode",
    "in_field_order",
    "problems_of",
    "valid_fields",
]

MODELS = (
    AuditPage,
    CreatedToken,
    EnvironmentCreate,
    EnvironmentList,
    EnvironmentUpdate,
    ExposureEvents,
    Health,
    History,
    IngestResult,
    Lessons,
    LessonsWrite,
    MetricList,
    MetricWrite,
    MonitorList,
    MonitorSpec,
    OfrepBulk,
    OfrepFailure,
    OfrepRequest,
    OfrepSuccess,
    OutcomeEvents,
    PredictionEvents,
    Problem,
    Promote,
    Results,
    Revert,
    Rollout,
    RolloutAction,
    RolloutRuns,
    RolloutState,
    TokenCreate,
    TokenList,
    VersionedWrite,
    WebhookDeliveryPage,
)
"""The models whose schemas the OpenAPI document holds (with every model they use)."""
