"""The event contract (docs/architecture.md §Events): field table, kind inference, JSON Schema."""

from alphatrace.events.fields import KINDS, SPECS, Field, Kind
from alphatrace.events.jsonschema import event_schema

__all__ = ["KINDS", "SPECS", "Field", "Kind", "event_schema"]
