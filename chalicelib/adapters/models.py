"""PynamoDB models. Table names and the endpoint come from configuration: `bind_models()` points every model at the
configured table before first use (the stores' getters call it, never an import)."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

# What a listing shows (services/views.py `incident_summary`) and what review metrics need: the listing indexes
# project only these, so a status change of a hot incident rewrites a small index item, and a list page reads no
# base-table item.
LIST_ATTRIBUTES = [
    "reference", "kind", "severity", "status", "owner", "created_at", "order_id", "acknowledged_at",
    "acknowledged_by", "acknowledged_by_name", "resolved_at", "outcome", "cancelled_at", "escalation_tier",
    "escalation_exhausted", "policy_id", "duress", "owner_cancelled_at", "responder_ids", "dispatch",
    "first_contact_at", "ack_expiries", "deliveries", "check_in_id", "owner_view",
]


class IncidentsByList(GlobalSecondaryIndex):
    """Reviewers' listing, newest first. The partition is a month and one of LIST_SHARDS shards (a hash of the id),
    so a regional burst spreads its writes over several index partitions; the sort key is unique per incident
    (created_at#id), so a cursor is an exact key condition."""

    class Meta:
        index_name = "by_list"
        projection = IncludeProjection(LIST_ATTRIBUTES)

    list_pk = UnicodeAttribute(hash_key=True)
    list_sk = UnicodeAttribute(range_key=True)


class IncidentsByOwner(GlobalSecondaryIndex):
    """A shopper's own incidents, newest first."""

    class Meta:
        index_name = "by_owner"
        projection = IncludeProjection(LIST_ATTRIBUTES)

    owner = UnicodeAttribute(hash_key=True)
    list_sk = UnicodeAttribute(range_key=True)


class IncidentModel(Model):
    class Meta:
        table_name = "incidents"

    incident_id = UnicodeAttribute(hash_key=True)
    list_pk = UnicodeAttribute()
    list_sk = UnicodeAttribute()
    reference = UnicodeAttribute()
    kind = UnicodeAttribute()
    severity = UnicodeAttribute()
    status = UnicodeAttribute()
    owner = UnicodeAttribute()
    created_at = UnicodeAttribute()
    request_hash = UnicodeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    has_location = BooleanAttribute(default=False)
    has_callback_phone = BooleanAttribute(default=False)
    check_in_id = UnicodeAttribute(null=True)
    test_responder = UnicodeAttribute(null=True)
    cancel_pin_hash = UnicodeAttribute(null=True)
    duress_pin_hash = UnicodeAttribute(null=True)
    pin_checks = NumberAttribute(default=0)
    duress = BooleanAttribute(default=False)
    owner_cancelled_at = UnicodeAttribute(null=True)
    owner_view = JSONAttribute(null=True)
    pressed_again = NumberAttribute(default=0)
    acknowledged_at = UnicodeAttribute(null=True)
    acknowledged_by = UnicodeAttribute(null=True)
    acknowledged_by_name = UnicodeAttribute(null=True)
    ack_count = NumberAttribute(default=0)
    ack_expiries = NumberAttribute(default=0)
    generation = NumberAttribute(default=0)
    ack_tier = NumberAttribute(null=True)
    resolved_at = UnicodeAttribute(null=True)
    resolved_by = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute(null=True)
    cancelled_at = UnicodeAttribute(null=True)
    first_contact_at = UnicodeAttribute(null=True)
    attachments = JSONAttribute(null=True)
    policy_id = UnicodeAttribute(null=True)
    escalation = JSONAttribute(null=True)
    # Written by the escalation state machine too (infra/escalation.asl.json ClaimStep), which bumps `version`.
    escalation_step = NumberAttribute(default=-1)
    escalation_tier = NumberAttribute(default=0)
    escalation_owner = UnicodeAttribute(null=True)
    escalated_at = UnicodeAttribute(null=True)
    escalation_exhausted = BooleanAttribute(default=False)
    exhausted_notified = BooleanAttribute(default=False)
    recorded_step = NumberAttribute(default=-1)
    sent_step = NumberAttribute(default=-1)
    paging_since = UnicodeAttribute(null=True)
    responder_ids = ListAttribute(of=UnicodeAttribute, null=True)
    dispatch = JSONAttribute(null=True)
    deliveries = JSONAttribute(null=True)
    last_seq = NumberAttribute(default=0)
    last_hash = UnicodeAttribute(null=True)
    version = NumberAttribute(default=0)

    by_list = IncidentsByList()
    by_owner = IncidentsByOwner()


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
    """A reply names a code: which page to this phone had it (newest first). No code: the latest pages."""

    class Meta:
        index_name = "by_phone"
        projection = IncludeProjection(["responder_id", "code", "purpose", "tier", "step", "state", "sent_at",
                                        "message_id"])

    phone = UnicodeAttribute(hash_key=True)
    phone_sk = UnicodeAttribute(range_key=True)  # "<code>#<sent_at>"


class PagesByPhoneTime(GlobalSecondaryIndex):
    """A reply without a code ("ACK"): the latest pages to this phone, a bounded number."""

    class Meta:
        index_name = "by_phone_time"
        projection = IncludeProjection(["responder_id", "code", "purpose", "tier", "step", "state", "message_id"])

    phone = UnicodeAttribute(hash_key=True)
    sent_at = UnicodeAttribute(range_key=True)


class PagesByMessage(GlobalSecondaryIndex):
    """Two-way replies carry previousPublishedMessageId, delivery receipts the message id: the page they concern."""

    class Meta:
        index_name = "by_message"
        projection = IncludeProjection(["responder_id", "phone", "code", "purpose", "tier", "step", "state",
                                        "sent_at", "channel", "delivery"])

    message_id = UnicodeAttribute(hash_key=True)


class PageModel(Model):
    class Meta:
        table_name = "pages"

    incident_id = UnicodeAttribute(hash_key=True)
    page_key = UnicodeAttribute(range_key=True)
    responder_id = UnicodeAttribute()
    phone = UnicodeAttribute()
    phone_sk = UnicodeAttribute()
    code = UnicodeAttribute()
    purpose = UnicodeAttribute()
    tier = NumberAttribute(default=0)
    step = NumberAttribute(default=0)
    state = UnicodeAttribute()
    sent_at = UnicodeAttribute()
    message_id = UnicodeAttribute(null=True)
    channel = UnicodeAttribute(default="sms")
    delivery = UnicodeAttribute(null=True)
    delivered_at = UnicodeAttribute(null=True)
    failover = ListAttribute(of=UnicodeAttribute, null=True)
    expires_at = TTLAttribute(null=True)

    by_phone = PagesByPhone()
    by_phone_time = PagesByPhoneTime()
    by_message = PagesByMessage()


class ResponderByPhone(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_phone"
        projection = IncludeProjection(["name", "active", "opted_out", "voice", "email", "verified_at"])

    phone = UnicodeAttribute(hash_key=True)


class DirectoryModel(Model):
    """Responders, schedules, escalation policies, routing, and phone claims (one responder per number)."""

    class Meta:
        table_name = "directory"

    entity = UnicodeAttribute(hash_key=True)  # responder | schedule | policy | routing | phone
    id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    active = BooleanAttribute(null=True)
    opted_out = BooleanAttribute(null=True)
    voice = BooleanAttribute(null=True)
    email = UnicodeAttribute(null=True)
    verified_at = UnicodeAttribute(null=True)
    responder_id = UnicodeAttribute(null=True)  # a phone claim's owner
    body = JSONAttribute(null=True)
    updated_at = UnicodeAttribute()

    by_phone = ResponderByPhone()


class LookupModel(Model):
    """Keys pointing at incidents (references, short codes, idempotency keys, a shopper's open incident, a dispatch
    provider's alarm id, processed message ids) and small counters (reply rate windows)."""

    class Meta:
        table_name = "lookups"

    key = UnicodeAttribute(hash_key=True)
    incident_id = UnicodeAttribute(null=True)
    at = UnicodeAttribute(null=True)
    body = JSONAttribute(null=True)
    count = NumberAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class PersonalDataModel(Model):
    """Personal data kept apart so DynamoDB TTL expires it after the retention period while the incident and its
    timeline skeleton (types, times, actors, hashes) stay: `personal#<incident>` holds the incident's location trail,
    description and callback phone; `personal#<incident>#<seq>` the private part of one timeline event."""

    class Meta:
        table_name = "lookups"

    key = UnicodeAttribute(hash_key=True)
    body = JSONAttribute()
    expires_at = TTLAttribute()


class CheckInModel(Model):
    class Meta:
        table_name = "checkins"

    check_in_id = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    due_at = UnicodeAttribute()
    request_hash = UnicodeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    completed_at = UnicodeAttribute(null=True)
    missed_at = UnicodeAttribute(null=True)
    incident_id = UnicodeAttribute(null=True)
    # Location and note are personal: they expire with the row after the retention period.
    location = JSONAttribute(null=True)
    note = UnicodeAttribute(null=True)
    version = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


_TABLE_SETTING = {
    IncidentModel: "incidents_table",
    TimelineEventModel: "timeline_table",
    PageModel: "pages_table",
    DirectoryModel: "directory_table",
    LookupModel: "lookups_table",
    PersonalDataModel: "lookups_table",
    CheckInModel: "checkins_table",
}

_bound_to: object | None = None


def bind_models(cfg) -> None:
    global _bound_to
    if _bound_to is cfg:
        return
    # PynamoDB gives every connection a botocore session of its own, each loading botocore's models again: share the
    # process's one (adapters/clients.py), so the first request does not pay for it once per table.
    import pynamodb.connection.base as pynamodb_connection

    from chalicelib.adapters.clients import botocore_session

    pynamodb_connection.get_session = botocore_session
    for model, setting_name in _TABLE_SETTING.items():
        model.Meta.table_name = getattr(cfg, setting_name)
        model.Meta.host = cfg.aws_endpoint_url
        model.Meta.region = cfg.region
        model.Meta.connect_timeout_seconds = 3
        model.Meta.read_timeout_seconds = 10
        model._connection = None  # rebuilt from Meta on next use; indexes share the model's connection
    _bound_to = cfg
