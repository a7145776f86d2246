"""Who may do what: the one table of permissions per role. Views name a permission; only this file knows
which roles hold it (the web service checks it with the dependency `outreach.web.dependencies.require`)."""

from __future__ import annotations

from outreach.accounts.auth_models import ROLES

UNION_STAFF = frozenset({"admin", "planner", "approver", "finance"})

PERMISSIONS: dict[str, frozenset[str]] = {
    # The union's administration.
    "accounts.read": frozenset({"admin"}),
    "accounts.manage": frozenset({"admin"}),
    "audit.read": frozenset({"admin"}),
    # The print shops' processing log (entrusted processing of personal data).
    "processing.read": frozenset({"admin"}),
    # The print shops' webhooks (URL, signing secret) and their delivery log.
    "webhooks.manage": frozenset({"admin"}),
    # The registry and audiences hold personal data: the planners who build campaigns, and the admin.
    "registry.import": frozenset({"planner"}),
    "registry.read": frozenset({"admin", "planner"}),
    "audiences.read": frozenset({"admin", "planner"}),
    "audiences.save": frozenset({"planner"}),
    # Names and mobiles shown whole on the pages (the registry's worker view, an audience's sample); others
    # see them masked.
    "personal.unmasked": frozenset({"admin"}),
    # Campaigns and runs: every union role reads them.
    "campaigns.read": UNION_STAFF,
    "runs.read": UNION_STAFF,
    # A campaign's content per period (text, artwork, proof, submission): the planners prepare it. Approving
    # it is the approvers' work, and a planner's for a colleague's change (DESIGN: planners check the proof
    # and approve); four eyes (outreach.campaigns.content) refuses whoever made the last change.
    "campaigns.prepare": frozenset({"planner"}),
    "campaigns.approve": frozenset({"approver", "planner"}),
    # Starting a run spends budget; the planners who prepared the campaign start, resume and cancel it.
    "runs.start": frozenset({"planner"}),
    "runs.cancel": frozenset({"planner"}),
    # The ledger: every union role reads budgets and statements; finance alone sets budgets, rate cards and
    # adjustments.
    "ledger.read": UNION_STAFF,
    "ledger.manage": frozenset({"finance"}),
    # A print shop's own batches (which batches are its own is checked against its organisation).
    "batches.read": frozenset({"printshop"}),
    "batches.download": frozenset({"printshop"}),
    "batches.report": frozenset({"printshop"}),
    "batches.returns": frozenset({"printshop"}),
    # Merchant offers: a merchant records redemptions of its own offers and reads its own aggregated figures;
    # planners read every offer's figures (outreach.offers).
    "offers.redeem": frozenset({"merchant"}),
    "offers.own_report": frozenset({"merchant"}),
    "offers.report": frozenset({"admin", "planner"}),
}


def allowed(role: str, permission: str) -> bool:
    """Whether `role` holds `permission`; an unknown permission is a programming error (KeyError)."""
    return role in PERMISSIONS[permission]


def permissions_of(role: str) -> list[str]:
    """Every permission a role holds, sorted."""
    if role not in ROLES:
        return []
    return sorted(name for name, roles in PERMISSIONS.items() if role in roles)
