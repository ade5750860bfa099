"""The tamper-evident audit log (DPA 2018 Part 3)."""

from evr_desktop.audit.log import (
    AuditEntry,
    AuditLog,
    AuditTamperedError,
    Category,
    VerifyResult,
    format_result,
    merkle_root,
    run_verify,
    verify,
)

__all__ = [
    "AuditEntry",
    "AuditLog",
    "AuditTamperedError",
    "Category",
    "VerifyResult",
    "format_result",
    "merkle_root",
    "run_verify",
    "verify",
]
