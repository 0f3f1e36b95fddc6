"""PynamoDB models. Table names and the endpoint come from configuration: `bind_models()` points every model at the
configured table before first use (it is called by the repositories' getters, not at import)."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.config import Settings


class AttachmentAttribute(MapAttribute):
    id = UnicodeAttribute()
    key = UnicodeAttribute()
    filename = UnicodeAttribute()
    content_type = UnicodeAttribute()
    size_bytes = NumberAttribute()
    added_by = UnicodeAttribute()
    at = UnicodeAttribute()


class IncidentsByDay(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    created_day = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class IncidentModel(Model):
    class Meta:
        table_name = "incidents"

    incident_id = UnicodeAttribute(hash_key=True)
    reference = UnicodeAttribute()
    kind = UnicodeAttribute()
    severity = UnicodeAttribute()
    status = UnicodeAttribute()
    owner = UnicodeAttribute()
    created_at = UnicodeAttribute()
    created_day = UnicodeAttribute()
    request_hash = UnicodeAttribute()
    order_id = UnicodeAttribute(null=True)
    # Location, description and callback phone live in a PersonalDataModel row that expires (retention).
    cancel_pin_hash = UnicodeAttribute(null=True)
    cancel_pin_failures = NumberAttribute(default=0)
    acknowledged_at = UnicodeAttribute(null=True)
    acknowledged_by = UnicodeAttribute(null=True)
    acknowledged_by_name = UnicodeAttribute(null=True)
    resolved_at = UnicodeAttribute(null=True)
    resolved_by = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute(null=True)
    cancelled_at = UnicodeAttribute(null=True)
    attachments = ListAttribute(of=AttachmentAttribute, null=True)
    # Escalation: the frozen policy snapshot, and the step the state machine last claimed (-1: none yet).
    policy_id = UnicodeAttribute(null=True)
    escalation = JSONAttribute(null=True)
    escalation_step = NumberAttribute(default=-1)
    escalation_tier = NumberAttribute(default=0)
    escalation_owner = UnicodeAttribute(null=True)
    escalated_at = UnicodeAttribute(null=True)
    escalation_exhausted = BooleanAttribute(default=False)
    # The newest step whose `escalated`/`escalation_exhausted` event is written: a redelivered request writes none.
    escalation_recorded_step = NumberAttribute(default=0)
    # While set (and younger than the lease), a pager is sending SMS; an acknowledgement waits for it to clear.
    paging_since = UnicodeAttribute(null=True)
    # Sequence and hash of the newest timeline event: every event is written in one transaction with a conditional
    # update of these, which keeps seq gapless and the hash chain linear under concurrent writers.
    last_seq = NumberAttribute(default=0)
    last_hash = UnicodeAttribute(null=True)

    by_day = IncidentsByDay()


class TimelineEventModel(Model):
    class Meta:
        table_name = "timeline"

    incident_id = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    at = UnicodeAttribute()
    type = UnicodeAttribute()
    actor = UnicodeAttribute(null=True)
    details = JSONAttribute()
    prev_hash = UnicodeAttribute()
    hash = UnicodeAttribute()


class PagesByPhone(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_phone"
        projection = AllProjection()

    phone = UnicodeAttribute(hash_key=True)
    sent_at = UnicodeAttribute(range_key=True)


class PagesByMessage(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_message"
        projection = AllProjection()

    message_id = UnicodeAttribute(hash_key=True)


class PageModel(Model):
    """One SMS to one responder for one step: the claim that keeps a redelivered page request from paging twice."""

    class Meta:
        table_name = "pages"

    incident_id = UnicodeAttribute(hash_key=True)
    page_key = UnicodeAttribute(range_key=True)
    responder_id = UnicodeAttribute()
    phone = UnicodeAttribute()
    purpose = UnicodeAttribute()  # page | exhausted | cancelled
    tier = NumberAttribute(default=0)
    state = UnicodeAttribute()  # sending | sent
    sent_at = UnicodeAttribute()
    message_id = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    by_phone = PagesByPhone()
    by_message = PagesByMessage()


class ResponderByPhone(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_phone"
        projection = AllProjection()

    phone = UnicodeAttribute(hash_key=True)


class DirectoryModel(Model):
    """Responders, schedules, escalation policies and routing: admin-managed, read at incident open."""

    class Meta:
        table_name = "directory"

    entity = UnicodeAttribute(hash_key=True)  # responder | schedule | policy | routing
    id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    active = BooleanAttribute(null=True)
    opted_out = BooleanAttribute(null=True)
    body = JSONAttribute(null=True)
    updated_at = UnicodeAttribute()

    by_phone = ResponderByPhone()


class PersonalDataModel(Model):
    """Personal data kept apart so DynamoDB TTL can expire it after the retention period while the incident and its
    timeline skeleton (types, times, actors, hashes) stay: `personal#<incident>` holds the incident's location,
    description and callback phone; `personal#<incident>#<seq>` the private part of one timeline event."""

    class Meta:
        table_name = "lookups"

    key = UnicodeAttribute(hash_key=True)
    body = JSONAttribute()
    expires_at = TTLAttribute()


class LookupModel(Model):
    """Unique claims and small counters: reference -> incident, SMS reply rate windows."""

    class Meta:
        table_name = "lookups"

    key = UnicodeAttribute(hash_key=True)
    incident_id = UnicodeAttribute(null=True)
    count = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


_TABLE_SETTING = {
    IncidentModel: "incidents_table",
    TimelineEventModel: "timeline_table",
    PageModel: "pages_table",
    DirectoryModel: "directory_table",
    LookupModel: "lookups_table",
    PersonalDataModel: "lookups_table",
}

_bound_to: Settings | None = None


def bind_models(cfg: Settings) -> None:
    global _bound_to
    if _bound_to is cfg:
        return
    for model, setting_name in _TABLE_SETTING.items():
        model.Meta.table_name = getattr(cfg, setting_name)
        model.Meta.host = cfg.aws_endpoint_url
        model.Meta.region = cfg.region
        model.Meta.connect_timeout_seconds = 3
        model.Meta.read_timeout_seconds = 10
        model._connection = None  # rebuilt from Meta on next use; indexes share the model's connection
    _bound_to = cfg
