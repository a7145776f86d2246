"""The one settings object: every knob, read from OUTREACH_* environment variables (or a .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("outreach-data")
DEFAULT_SMS_OPT_OUT = "拒收请回复R"
DEFAULT_RETENTION_DAYS = 90


class UnionProfile(BaseModel):
    """The union's own details, printed by every kit (envelope sender, letter signature, SMS signature).

    Set with OUTREACH_UNION__NAME, OUTREACH_UNION__ADDRESS, OUTREACH_UNION__POSTCODE, OUTREACH_UNION__PHONE,
    OUTREACH_UNION__HOTLINE and OUTREACH_UNION__SMS_SIGNATURE.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(default="尤溪县总工会", min_length=2, max_length=40)
    address: str = Field(
        default="福建省三明市尤溪县城关镇水南路1号 工人文化宫三楼", min_length=2, max_length=60
    )
    postcode: str = Field(default="365100", pattern=r"^\d{6}$")
    phone: str = Field(default="0598-6322351", max_length=30)
    hotline: str = Field(default="12351", max_length=20, description="The 职工维权 hotline.")
    sms_signature: str = Field(default="", max_length=20, description="SMS 【signature】; default the name.")


class Settings(BaseSettings):
    """Outreach settings; each field is OUTREACH_<NAME> in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="OUTREACH_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="Folder for the SQLite file and batches.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default a SQLite file in data_dir."
    )
    broker_url: str | None = Field(
        default=None, description="Celery broker (redis://...); unset runs tasks in-process."
    )
    result_backend: str | None = Field(default=None, description="Celery result backend; default broker_url.")
    batch_dir: Path | None = Field(default=None, description="Shared folder for batch files.")
    storage_url: str | None = Field(
        default=None, description="s3://bucket/prefix for batch files instead of batch_dir."
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible store (MinIO, Ceph); unset means AWS."
    )
    s3_region: str | None = Field(default=None, description="Region of the S3 bucket.")
    public_url: str | None = Field(
        default=None, description="The site's address as print shops reach it (portal URLs in webhooks)."
    )
    webhook_backoff: float = Field(
        default=30.0, gt=0, description="Seconds before a failed webhook's first retry; doubles each time."
    )
    s3_access_key_id: str | None = Field(default=None, description="S3 key id; unset uses boto3's own chain.")
    s3_secret_access_key: str | None = Field(default=None, description="S3 secret for s3_access_key_id.")
    fonts: list[Path] = Field(
        default_factory=list,
        description="TrueType/OpenType fonts tried first, in order, before system fonts.",
    )
    visibility_timeout: int = Field(
        default=60,
        description="Seconds before Redis hands an unacknowledged task (a lost worker's) to another worker.",
    )
    broker_key_prefix: str = Field(
        default="", description="Prefix of every Redis key the broker uses (several installs on one Redis)."
    )
    supervise_every: float = Field(
        default=60, gt=0, description="Seconds between the supervisor's checks of unfinished runs (beat)."
    )
    stall_after: int = Field(
        default=3, ge=1, description="Re-dispatches without progress after which a run is marked stalled."
    )
    zip_batches: bool = Field(default=False, description="Also pack each print batch into one ZIP.")
    sms_gateway_batch: int = Field(default=1000, description="Numbers per SMS gateway upload file.")
    sms_opt_out_text: str = DEFAULT_SMS_OPT_OUT
    sms_send_start_hour: int = 8
    sms_send_end_hour: int = 21
    # Live SMS: the gateway account (credentials only from here, never from a kit or the database).
    sms_gateway: Literal["aliyun", "tencent"] | None = Field(
        default=None, description="Live SMS gateway: aliyun or tencent; unset sends no live SMS."
    )
    sms_sign_name: str | None = Field(
        default=None, description="Approved SMS signature (签名) at the gateway; default the union's."
    )
    sms_rate_per_second: float = Field(
        default=100, gt=0, description="Numbers a second sent to the gateway account, all workers together."
    )
    sms_gateway_timeout: float = Field(default=10, gt=0, description="Seconds to wait for a gateway answer.")
    sms_template_code: str | None = Field(
        default=None, description="Approved gateway template with one variable, content: the composed text."
    )
    sms_retry_backoff: float = Field(
        default=1.0, ge=0, description="Seconds before the first retry of a throttled SMS call (doubling)."
    )
    sms_marketing_hours: str = Field(
        default="08:00-20:00", description="Hours marketing (推广) SMS may leave, local time."
    )
    sms_notice_hours: str = Field(
        default="08:00-21:00", description="Hours notice (通知) SMS may leave, local time."
    )
    sms_daily_cap: int = Field(
        default=1, ge=1, le=50, description="Messages per number per day per campaign (at most 50)."
    )
    sms_callback_token: SecretStr | None = Field(
        default=None, description="Secret in the SMS callback URLs (?token=); unset refuses them."
    )
    aliyun_access_key_id: str | None = Field(default=None, description="Aliyun AccessKey id for dysmsapi.")
    aliyun_access_key_secret: SecretStr | None = Field(default=None, description="Aliyun AccessKey secret.")
    aliyun_endpoint: str = Field(
        default="dysmsapi.aliyuncs.com", description="dysmsapi host, or http(s)://host:port (default https)."
    )
    tencent_secret_id: str | None = Field(default=None, description="Tencent Cloud SecretId for SMS.")
    tencent_secret_key: SecretStr | None = Field(default=None, description="Tencent Cloud SecretKey.")
    tencent_sdk_app_id: str | None = Field(default=None, description="Tencent SMS SdkAppId (1400...).")
    tencent_region: str = Field(default="ap-guangzhou", description="Tencent Cloud region of the SMS API.")
    tencent_endpoint: str = Field(
        default="sms.tencentcloudapi.com", description="Tencent SMS API host, or http(s)://host:port."
    )
    retention_days: int = DEFAULT_RETENTION_DAYS
    upload_limit_mb: int = Field(default=50, ge=1, description="Largest upload the web service takes, in MB.")
    quarter_start_day: int = Field(default=1, ge=1, le=28, description="Day of the quarter's first month.")
    quarter_start_hour: int = Field(default=8, ge=0, le=23)
    timezone: str = Field(
        default="Asia/Shanghai", description="The union's time zone: dates and times people read."
    )
    batch_ack_days: int = Field(
        default=3, ge=1, description="Days a print shop has to download a ready batch before it is flagged."
    )
    lang: str = Field(default="zh_CN", description="Language of messages: zh_CN (default) or en.")
    union: UnionProfile = Field(default_factory=UnionProfile, description="The union's own details (kits).")

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'outreach.db').resolve()}"

    @property
    def resolved_batch_dir(self) -> Path:
        """Where batch files go when no object store is set."""
        return self.batch_dir if self.batch_dir is not None else self.data_dir / "batches"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Gets the process-wide settings (read once)."""
    return Settings()
