"""The wire: envelopes, every interaction and lifecycle event kind, the codec and topic names.

Depends on nothing of leadflow's. Decoding validates (``ContractError`` lists every problem with
its field path) and upcasts older versions; encoding is orjson.
"""

from contracts.alerts import AlertKind, SlaAlert, alert_id
from contracts.codec import (
    DEFAULT_MAX_BYTES,
    decode_alert,
    decode_interaction,
    decode_lifecycle_event,
    decode_rejection,
    decode_spend,
    encode,
    interaction_from_object,
    interaction_from_stored,
    lifecycle_event_from_object,
    load_object,
    split_json_array,
    split_personal,
)
from contracts.errors import ContractError, Problem
from contracts.interactions import (
    CURRENT_VERSIONS,
    DATA_TYPES,
    PERSONAL_FIELDS,
    Interaction,
    InteractionData,
)
from contracts.lifecycle_events import (
    LIFECYCLE_DATA_TYPES,
    LIFECYCLE_TYPE_OF,
    LifecycleData,
    LifecycleEvent,
    PolicyRef,
    Touch,
)
from contracts.rejections import Rejection, RejectionKind, Source, drop_duplicates
from contracts.spend import Spend
from contracts.topics import Topics, lead_key
from contracts.vocabulary import (
    CRM_RECORDS,
    DEFAULT_TOUCH_TYPES,
    Channel,
    InteractionType,
    LifecycleEventType,
    Stage,
    Temperature,
)

__all__ = [
    "CRM_RECORDS",
    "CURRENT_VERSIONS",
    "DATA_TYPES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TOUCH_TYPES",
    "LIFECYCLE_DATA_TYPES",
    "LIFECYCLE_TYPE_OF",
    "PERSONAL_FIELDS",
    "AlertKind",
    "Channel",
    "ContractError",
    "Interaction",
    "InteractionData",
    "InteractionType",
    "LifecycleData",
    "LifecycleEvent",
    "LifecycleEventType",
    "PolicyRef",
    "Problem",
    "Rejection",
    "RejectionKind",
    "SlaAlert",
    "Source",
    "Spend",
    "Stage",
    "Temperature",
    "Topics",
    "Touch",
    "alert_id",
    "decode_alert",
    "decode_interaction",
    "decode_lifecycle_event",
    "decode_rejection",
    "decode_spend",
    "drop_duplicates",
    "encode",
    "interaction_from_object",
    "interaction_from_stored",
    "lead_key",
    "lifecycle_event_from_object",
    "load_object",
    "split_json_array",
    "split_personal",
]
