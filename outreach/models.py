"""Imports every table so that Base.metadata (and Alembic) sees the whole schema."""

from audiences.models import Audience, RegistryImport, Suppression, Unit, Worker
from outreach.accounts import auth_models, webhooks  # noqa: F401
from outreach.accounts.models import Organisation
from outreach.campaigns.content_models import ArtworkVersion, ContentChange, PeriodContent  # noqa: F401
from outreach.campaigns.models import Campaign
from outreach.ledger.models import Budget, BudgetVersion, LedgerEntry, RateCard, RateCardFee  # noqa: F401
from outreach.offers.models import AdBooking, CodeLookupFailure, Redemption, RedemptionCode  # noqa: F401
from outreach.runs.models import Batch, Piece, Run
from outreach.runs.sms import SmsReceipt, SmsReply  # noqa: F401

__all__ = [
    "Audience",
    "Batch",
    "Campaign",
    "Organisation",
    "Piece",
    "RegistryImport",
    "Run",
    "Suppression",
    "Unit",
    "Worker",
]
