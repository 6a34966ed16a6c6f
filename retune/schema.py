"""Arrow schemas of the data retune writes: one row per conversation turn, and the quarantine."""

import pyarrow as pa

TURN_SCHEMA = pa.schema(
    [
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("turn", pa.int32(), nullable=False),
        pa.field("role", pa.string(), nullable=False),  # "system" | "user" | "assistant"
        pa.field("text", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        pa.field("channel", pa.string()),
        pa.field("source", pa.string(), nullable=False),  # the file (or URL) the record came from
        pa.field("source_offset", pa.int64(), nullable=False),  # record index within the source
        pa.field("content_hash", pa.string(), nullable=False),  # sha256 of the input record (dedup key)
    ]
)

ROLES = ("system", "user", "assistant")

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_offset", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string()),  # raw record: personal data, kept only in the local quarantine area
    ]
)
