"""What each email was written for, in words (issue 22, item 8): the outbox says "Milestone approved", not
``milestone.approved``. An event this table does not know still reads as words (its code, spaced out)."""

from __future__ import annotations

EMAIL_EVENTS = {
    "admin.digest": "Admins' daily summary",
    "batch.exported": "Payments exported to accounts payable",
    "change_order.issued": "Change order issued",
    "email.requeued": "Email sent again",
    "engagement.completed_by_final": "Engagement completed by its final payment",
    "engagement.work_request_accepted": "Work request accepted",
    "engagement.work_request_declined": "Work request declined",
    "engagement.work_request_sent": "Work request sent",
    "finance.digest": "Finance's daily summary",
    "invoice.advance_authorized": "Advance authorized",
    "invoice.approval_completed": "Payment fully approved",
    "invoice.approval_overdue": "Payment approval overdue",
    "invoice.approval_rejected": "Payment approval rejected",
    "invoice.approval_waiting": "Payment waiting for your approval",
    "invoice.authorized": "Payment authorized",
    "invoice.completion_raised": "Completed tasks invoiced",
    "invoice.final_authorized": "Final payment authorized",
    "member.invite_reissued": "New invitation link",
    "member.invited": "Invitation",
    "member.removed": "Removed from the organization",
    "member.role_changed": "Role changed",
    "milestone.approved": "Milestone approved",
    "milestone.disputed": "Milestone disputed",
    "milestone.partially_approved": "Milestone partly approved or sent back for changes",
    "milestone.submitted": "Milestone submitted for review",
    "invite": "Invitation",
    "password_reset": "Password reset",
    "payment.recorded": "Payment recorded",
    "payment.reversed": "Payment reversed",
    "payment.run": "Payments made",
    "payout.failed": "Payout failed",
    "payout.paid": "Payout paid",
    "payout.refused": "Payout refused",
    "project.awarded": "Project awarded",
    "project.cancelled": "Project cancelled",
    "project.opened": "Invitation to propose on a project",
    "proposal.submitted": "Proposal received",
    "proposal.withdrawn": "Proposal withdrawn",
    "reconciliation.findings": "Stripe payments to check",
    "retainage.released": "Retainage released",
    "review.overdue": "Review overdue",
    "self_billing.agreement_recorded": "Self-billing agreement to confirm",
    "self_billing.invoice_rejected": "Self-billed invoice rejected",
}


def event_words(event: str) -> str:
    if event in EMAIL_EVENTS:
        return EMAIL_EVENTS[event]
    spaced = event.replace(".", " ").replace("_", " ").strip()
    return spaced[:1].upper() + spaced[1:]
