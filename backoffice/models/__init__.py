"""SQLAlchemy models. The schema itself is defined by the Alembic migrations; these map onto it."""

from backoffice.models.base import Base
from backoffice.models.controls import ApprovalDelegation, ApprovalPolicy, ApprovalPolicyStep, Hold, InvoiceApproval
from backoffice.models.einvoicing import EInvoiceProfile, InvoiceAcceptance, SelfBillingAgreement
from backoffice.models.engagements import (
    ChangeOrder,
    ChangeOrderLine,
    Engagement,
    Milestone,
)
from backoffice.models.money import (
    ApExportBatch,
    ApExportChunk,
    Invoice,
    InvoiceTask,
    LedgerEntry,
    Payment,
    PayoutAttempt,
    RailFinding,
    RailReconciliation,
)
from backoffice.models.notifications import AccountMessage, Document, EmailMessage, Notification, UserPreference
from backoffice.models.org import (
    AuditEvent,
    Contractor,
    Invite,
    Membership,
    Organization,
    PayoutAccount,
    RailEvent,
    TaxProfile,
    TaxYearFiling,
    User,
)
from backoffice.models.projects import (
    Project,
    ProjectCategory,
    ProjectInvitation,
    Proposal,
    ProposalFile,
    ProposalMilestone,
)
from backoffice.models.reviews import EvidenceChunk, EvidenceFile, Review, Submission

__all__ = [
    "AccountMessage",
    "ApExportBatch",
    "ApExportChunk",
    "ApprovalDelegation",
    "ApprovalPolicy",
    "ApprovalPolicyStep",
    "AuditEvent",
    "Base",
    "ChangeOrder",
    "ChangeOrderLine",
    "Contractor",
    "Document",
    "EInvoiceProfile",
    "EmailMessage",
    "Engagement",
    "EvidenceChunk",
    "EvidenceFile",
    "Hold",
    "Invite",
    "Invoice",
    "InvoiceAcceptance",
    "InvoiceApproval",
    "InvoiceTask",
    "LedgerEntry",
    "Membership",
    "Milestone",
    "Notification",
    "Organization",
    "Payment",
    "PayoutAccount",
    "PayoutAttempt",
    "Project",
    "ProjectCategory",
    "ProjectInvitation",
    "Proposal",
    "ProposalFile",
    "ProposalMilestone",
    "RailEvent",
    "RailFinding",
    "RailReconciliation",
    "Review",
    "SelfBillingAgreement",
    "Submission",
    "TaxProfile",
    "TaxYearFiling",
    "User",
    "UserPreference",
]
