"""The API's request and response shapes, one module per resource: a schema per direction
(`XCreate`/`XUpdate` in, `XPublic` out), so internal columns (secrets, hashes) never reach a
response and every route's answer is in the OpenAPI document."""

from zapsync.api.schemas.contacts import ContactPage, ContactPublic
from zapsync.api.schemas.conversations import (
    ContactDetail,
    ConversationPage,
    ConversationPublic,
    ConversationUpdate,
)
from zapsync.api.schemas.health import HealthPublic, ReadyPublic
from zapsync.api.schemas.jobs import JobPublic, JobQueuePublic, JobReport, QueuedJobs
from zapsync.api.schemas.me import MePublic
from zapsync.api.schemas.messages import MessageCreate, MessagePage, MessagePublic
from zapsync.api.schemas.runs import (
    HealAttempt,
    ImportReportPublic,
    RunCounts,
    RunSummary,
    SessionError,
    StatusChange,
    StatusCheck,
    StatusSyncDryRun,
    StatusSyncReport,
)
from zapsync.api.schemas.sandbox import InboundIn, InboundPublic, PhonePublic, ScanIn, SentPublic
from zapsync.api.schemas.sessions import (
    LiveStatusPublic,
    QrPublic,
    SessionArchived,
    SessionCreate,
    SessionCreated,
    SessionPublic,
)
from zapsync.api.schemas.webhooks import WebhookReceived

__all__ = [
    "ContactDetail",
    "ContactPage",
    "ContactPublic",
    "ConversationPage",
    "ConversationPublic",
    "ConversationUpdate",
    "HealAttempt",
    "HealthPublic",
    "ImportReportPublic",
    "InboundIn",
    "InboundPublic",
    "JobPublic",
    "JobQueuePublic",
    "JobReport",
    "LiveStatusPublic",
    "MePublic",
    "MessageCreate",
    "MessagePage",
    "MessagePublic",
    "PhonePublic",
    "QrPublic",
    "QueuedJobs",
    "ReadyPublic",
    "RunCounts",
    "RunSummary",
    "ScanIn",
    "SentPublic",
    "SessionArchived",
    "SessionCreate",
    "SessionCreated",
    "SessionError",
    "SessionPublic",
    "StatusChange",
    "StatusCheck",
    "StatusSyncDryRun",
    "StatusSyncReport",
    "WebhookReceived",
]
