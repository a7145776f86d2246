"""Live SMS gateways (Aliyun, Tencent Cloud) behind one small interface, and the account's shared rate limit.

`gateway_from_settings()` builds the configured gateway with its credentials from the settings (never from a
kit or the database) and its account's token bucket: in Redis, shared by every worker, when given a client;
in the process otherwise (the embedded default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from outreach.channels.gateways.base import DeliveryReceipt, Gateway, GatewayName, RateLimit, Reply
from outreach.channels.gateways.ratelimit import TokenBucket, bucket_key, local_bucket
from outreach.errors import InputError
from outreach.i18n import _
from outreach.settings import Settings


def gateway_from_settings(settings: Settings, *, redis_client: Any | None = None) -> Gateway:
    """The gateway the settings name (OUTREACH_SMS_GATEWAY), rate-limited in Redis when a client is given."""
    sign = settings.sms_sign_name or settings.union.sms_signature or settings.union.name
    if settings.sms_gateway == "aliyun":
        if not settings.aliyun_access_key_id or settings.aliyun_access_key_secret is None:
            raise InputError(
                _(
                    "SMS gateway {gateway}: {fields} must be set",
                    gateway="aliyun",
                    fields="OUTREACH_ALIYUN_ACCESS_KEY_ID, OUTREACH_ALIYUN_ACCESS_KEY_SECRET",
                )
            )
        from outreach.channels.gateways.aliyun import AliyunGateway

        return AliyunGateway(
            access_key_id=settings.aliyun_access_key_id,
            access_key_secret=settings.aliyun_access_key_secret,
            sign_name=sign,
            endpoint=settings.aliyun_endpoint,
            timeout=settings.sms_gateway_timeout,
            limiter=_limiter(settings, redis_client, "aliyun", settings.aliyun_access_key_id),
        )
    if settings.sms_gateway == "tencent":
        if (
            not settings.tencent_secret_id
            or settings.tencent_secret_key is None
            or not settings.tencent_sdk_app_id
        ):
            raise InputError(
                _(
                    "SMS gateway {gateway}: {fields} must be set",
                    gateway="tencent",
                    fields="OUTREACH_TENCENT_SECRET_ID, OUTREACH_TENCENT_SECRET_KEY, "
                    "OUTREACH_TENCENT_SDK_APP_ID",
                )
            )
        from outreach.channels.gateways.tencent import TencentGateway

        return TencentGateway(
            secret_id=settings.tencent_secret_id,
            secret_key=settings.tencent_secret_key,
            sdk_app_id=settings.tencent_sdk_app_id,
            sign_name=sign,
            region=settings.tencent_region,
            endpoint=settings.tencent_endpoint,
            timeout=settings.sms_gateway_timeout,
            limiter=_limiter(settings, redis_client, "tencent", settings.tencent_sdk_app_id),
        )
    raise InputError(_("no live SMS gateway is set: OUTREACH_SMS_GATEWAY must be aliyun or tencent"))


class Pushes(Protocol):
    """What the callbacks need of a gateway: its pushed receipts and replies read, and its answer."""

    name: GatewayName

    def parse_receipts(self, body: bytes, headers: Mapping[str, str]) -> list[DeliveryReceipt]:
        """The delivery receipts in a pushed body."""

    def parse_replies(self, body: bytes, headers: Mapping[str, str]) -> list[Reply]:
        """The replies in a pushed body."""

    def ack(self) -> dict[str, object]:
        """The body the gateway expects back."""


def pushes(name: str) -> Pushes:
    """The reader of a gateway's pushes (aliyun or tencent), without its account's credentials."""
    if name == "aliyun":
        from outreach.channels.gateways.aliyun import AliyunPushes

        return AliyunPushes()
    if name == "tencent":
        from outreach.channels.gateways.tencent import TencentPushes

        return TencentPushes()
    raise InputError(_("no live SMS gateway is set: OUTREACH_SMS_GATEWAY must be aliyun or tencent"))


def _limiter(settings: Settings, client: Any | None, gateway: str, account: str) -> RateLimit:
    """The account's bucket: in Redis when there is one (all workers), else in this process."""
    key = bucket_key(settings.broker_key_prefix, gateway, account)
    if client is None:
        return local_bucket(key, rate=settings.sms_rate_per_second)
    return TokenBucket(client, key=key, rate=settings.sms_rate_per_second)
