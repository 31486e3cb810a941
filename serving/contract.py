"""The rules the service enforces on a request, stated for the OpenAPI document.

Both transports hand the request models to :mod:`serving.service`, which (with the core)
checks every rule once, so that gRPC and HTTP refuse the same request with the same code,
message and field. The models therefore stay lenient, and publish the same rules as JSON
Schema keywords built here from the constants those checks use: a generated client knows
``k`` is 1..1000 because :data:`recsys.types.MAX_K` says so, not because a second copy does.
"""

from __future__ import annotations

from typing import Any, Final

from pricing.fairness.clean_room import COARSE_REGION_PATTERN, MAX_ITEMS_PER_QUOTE
from pricing.guardrail_rules import OBJECTIVES, PRICE_ENDING_PATTERN, SCOPE_ID_PATTERN
from recsys.schema import EVENT_TYPES
from recsys.types import MAX_ID_LENGTH, MAX_K
from serving.store.events_store import MAX_BATCH, MAX_LABEL_LENGTH, MAX_QUANTITY

Schema = dict[str, Any]

# The most guardrail changes one history page returns.
MAX_HISTORY: Final[int] = 1000
# Versions are 64-bit integers in the database; the bound is the largest integer a JSON
# number carries exactly (2^53 - 1), so clients that read numbers as doubles agree on it.
MAX_VERSION: Final[int] = 2**53 - 1

_EMPTY: Final[Schema] = {"type": "string", "maxLength": 0}
_NULL: Final[Schema] = {"type": "null"}

# An identifier: 1..256 characters, not all blank (:func:`recsys.types.check_id`).
ID: Final[Schema] = {"minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": r"\S"}
# An optional identifier: empty means absent, otherwise as :data:`ID`.
OPTIONAL_ID: Final[Schema] = {"maxLength": MAX_ID_LENGTH, "pattern": r"^$|\S"}
OPTIONAL_LABEL: Final[Schema] = {"maxLength": MAX_LABEL_LENGTH, "pattern": r"^$|\S"}
QUOTE_ITEMS: Final[Schema] = {
    "minItems": 1,
    "maxItems": MAX_ITEMS_PER_QUOTE,
    "uniqueItems": True,
    "items": {"type": "string", "minLength": 1},
}
ID_LIST: Final[Schema] = {"items": {"type": "string", **ID}}
PRICE_ENDING: Final[Schema] = {
    "anyOf": [{"type": "string", "pattern": PRICE_ENDING_PATTERN}, _NULL]
}
K: Final[Schema] = {"minimum": 1, "maximum": MAX_K}
HISTORY_LIMIT: Final[Schema] = {"minimum": 1, "maximum": MAX_HISTORY}
EVENTS: Final[Schema] = {"minItems": 1, "maxItems": MAX_BATCH}
SCOPE: Final[Schema] = {"pattern": SCOPE_ID_PATTERN}
# An optional RFC 3339 date-time (:mod:`serving.rfc3339`); empty or null means absent.
TIMESTAMP: Final[Schema] = {"anyOf": [{"type": "string", "format": "date-time"}, _EMPTY, _NULL]}
EVENT_TYPE: Final[Schema] = {"anyOf": [{"type": "string", "enum": list(EVENT_TYPES)}]}
OBJECTIVE: Final[Schema] = {"anyOf": [{"type": "string", "enum": sorted(OBJECTIVES)}, _NULL]}
# A coarse market code (rule G1: no precise location); empty or null means none.
REGION: Final[Schema] = {
    "anyOf": [{"type": "string", "pattern": COARSE_REGION_PATTERN}, _EMPTY, _NULL]
}
# A reason a person wrote: required, and not blank.
REASON: Final[Schema] = {"minLength": 1, "pattern": r"\S"}
# Fields typed optional for gRPC's sake that the service nevertheless requires.
REQUIRED_ID: Final[Schema] = {"anyOf": [{"type": "string", **ID}]}
REQUIRED_BOOL: Final[Schema] = {"anyOf": [{"type": "boolean"}]}
REQUIRED_PRICE: Final[Schema] = {"anyOf": [{"type": "number", "minimum": 0}]}
VERSION: Final[Schema] = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_VERSION}]}
POSITIVE: Final[Schema] = {"exclusiveMinimum": 0}
NON_NEGATIVE: Final[Schema] = {"minimum": 0}
FRACTION: Final[Schema] = {"exclusiveMinimum": 0, "exclusiveMaximum": 1}
QUANTITY: Final[Schema] = {"minimum": 1, "maximum": MAX_QUANTITY}


def required(*names: str) -> Schema:
    """``json_schema_extra`` for a model whose ``names`` the service requires."""
    return {"required": list(names)}
